"""The README's code blocks and the annotation that says what each one is.

Every code block (indented or fenced) must sit under an invisible HTML comment
that tells the suite what to do with it, so a block added later cannot slip in
unchecked and the documentation cannot drift from the behaviour:

    <!-- readme: run -->                        run it, in order, in a fresh copy; must exit 0
    <!-- readme: run tty=pw,pw -->              ... on a terminal, typing these answers at its password prompts
    <!-- readme: run fails=unauthorized -->     ... must exit non-zero and print that word
    <!-- readme: skip: REASON -->               a command that cannot run on a CI box, and why
    <!-- readme: file yaml -->                  not a command: YAML that must parse
    <!-- readme: file proxy.yml -->             ... a proxy.yml part: merged into ./proxy.yml, check-config must pass
    <!-- readme: file haproxy.cfg -->           ... an HAProxy config: ``haproxy -c`` must accept it
    <!-- readme: file output check-config -->   ... what check-config prints for the last proxy.yml block
    <!-- readme: file output -->                ... a shown output: nothing to run
    <!-- readme: file text -->                  ... a listing or a sketch: nothing to run

The comment is the nearest non-blank line above the block (inside a list item,
indent it like the item's text, or Markdown ends the item). The parser follows
CommonMark only as far as this README needs: fences, and indented blocks that
start after a blank line or a comment, never as a paragraph's lazy continuation.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
ANNOTATION = re.compile(r"^\s*<!--\s*readme:\s*(.*?)\s*-->\s*$")
COMMENT = re.compile(r"^\s*<!--.*-->\s*$")
RUN_OPTIONS = {"tty", "fails", "timeout"}
FILE_KINDS = {"yaml", "proxy.yml", "haproxy.cfg", "output", "text"}


class AnnotationError(ValueError):
    """An annotation the suite cannot act on: a missing one is the same mistake as a wrong one."""


@dataclass(frozen=True)
class Annotation:
    """What to do with one block: ``run`` / ``skip`` / ``file`` and their options."""

    kind: str
    reason: str = ""
    tty: tuple[str, ...] | None = None  # answers to type at password prompts
    fails: str | None = None
    timeout: float | None = None
    file_kind: str = "output"
    checks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Block:
    """One code block: where it is, its text (dedented), and its annotation's raw text."""

    section: str
    line: int  # 1-based line of the block's first line in the README
    text: str
    fenced: bool
    info: str = ""  # a fence's info string (```yaml)
    raw_annotation: str | None = field(default=None, compare=False)

    @property
    def first_line(self) -> str:
        return next((ln.strip() for ln in self.text.splitlines() if ln.strip()), "")

    @property
    def ident(self) -> str:
        """``Section: first line`` (both shortened), the name a reader finds the block by."""
        section = re.split(r" \(|: ", self.section)[0]
        first = self.first_line
        return f"{section}: {first[:57] + '...' if len(first) > 60 else first}"

    def annotation(self) -> Annotation:
        if self.raw_annotation is None:
            raise AnnotationError(
                f"README.md:{self.line} ({self.ident}) has no `<!-- readme: run|skip: REASON|file KIND -->` "
                "line above it: say whether the suite runs it"
            )
        try:
            return parse_annotation(self.raw_annotation)
        except AnnotationError as exc:
            raise AnnotationError(f"README.md:{self.line} ({self.ident}): {exc}") from None


def parse_annotation(raw: str) -> Annotation:
    """``run [tty=a,b] [fails=WORD] [timeout=S]`` | ``skip: REASON`` | ``file [KIND] [CHECK...]``."""
    if raw.startswith("skip"):
        reason = raw[len("skip"):].lstrip(":").strip()
        if len(reason.split()) < 3:
            raise AnnotationError(f"`{raw}`: a skip needs a reason of a few words (`skip: REASON`)")
        return Annotation("skip", reason=reason)
    words = shlex.split(raw)
    if not words:
        raise AnnotationError("empty annotation")
    kind, rest = words[0], words[1:]
    if kind == "run":
        options: dict[str, str] = {}
        for word in rest:
            key, sep, value = word.partition("=")
            if not sep or key not in RUN_OPTIONS:
                raise AnnotationError(f"`{raw}`: unknown run option {word!r} (known: {sorted(RUN_OPTIONS)})")
            options[key] = value
        return Annotation(
            "run",
            tty=tuple(options["tty"].split(",")) if "tty" in options else None,
            fails=options.get("fails"),
            timeout=float(options["timeout"]) if "timeout" in options else None,
        )
    if kind == "file":
        file_kind = rest[0] if rest else "output"
        if file_kind not in FILE_KINDS:
            raise AnnotationError(f"`{raw}`: unknown file kind {file_kind!r} (known: {sorted(FILE_KINDS)})")
        return Annotation("file", file_kind=file_kind, checks=tuple(rest[1:]))
    raise AnnotationError(f"`{raw}`: expected run, skip: REASON or file KIND")


def parse_blocks(markdown: str) -> list[Block]:
    """Every fenced and indented code block, in order, with its section and annotation."""
    lines = markdown.splitlines()
    blocks: list[Block] = []
    section = "(top)"
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        if fence:
            indent, marker, info = fence.groups()
            end = i + 1
            while end < len(lines) and not re.match(rf"^\s*{re.escape(marker[0])}{{{len(marker)},}}\s*$", lines[end]):
                end += 1
            body = textwrap.dedent("\n".join(ln[len(indent):] if ln.startswith(indent) else ln
                                             for ln in lines[i + 1:end]))
            blocks.append(Block(section, i + 2, body, True, info.strip(), _annotation_above(lines, i)))
            i = end + 1
            continue
        heading = HEADING.match(line)
        if heading:
            section = heading.group(1).strip("`* ")
        elif _starts_indented_block(lines, i):
            end = i
            while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) >= _indent(line)):
                end += 1
            while not lines[end - 1].strip():
                end -= 1
            body = textwrap.dedent("\n".join(lines[i:end]))
            blocks.append(Block(section, i + 1, body, False, "", _annotation_above(lines, i)))
            i = end
            continue
        i += 1
    return blocks


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _starts_indented_block(lines: list[str], i: int) -> bool:
    """A line indented 4+ after a blank line or a comment line (a list item's code is indented more)."""
    line = lines[i]
    if not line.strip() or _indent(line) < 4 or i == 0:
        return False
    before = lines[i - 1]
    if before.strip() and not COMMENT.match(before):
        return False  # a paragraph's lazy continuation line, or inside a list
    # Inside a list item, text is indented by the item's marker width: only 4 more than that is code.
    item_indent = _list_item_indent(lines, i)
    return _indent(line) >= item_indent + 4


def _list_item_indent(lines: list[str], i: int) -> int:
    """The content indent of the list item a line belongs to (0 outside lists)."""
    for j in range(i - 1, -1, -1):
        text = lines[j]
        if not text.strip() or COMMENT.match(text) or _indent(text) >= 4:
            continue
        item = re.match(r"^(\s*)([-*+]|\d+[.)])\s+", text)
        if item:
            return len(item.group(0))
        if _indent(text) > 0:
            continue  # the item's own continuation lines
        return 0
    return 0


def _annotation_above(lines: list[str], i: int) -> str | None:
    for j in range(i - 1, -1, -1):
        if lines[j].strip():
            match = ANNOTATION.match(lines[j])
            return match.group(1) if match else None
    return None


def readme_blocks(path: Path) -> list[Block]:
    return parse_blocks(path.read_text(encoding="utf-8"))
