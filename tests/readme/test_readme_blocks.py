"""The README's code blocks, in the fast loop: every one annotated, every config part loads.

The commands themselves run in test_readme_commands.py (integration: the demo,
docker, podman). What needs no daemon is checked here on every run: a block
without an annotation fails at once, YAML parses, proxy.yml parts pass
check-config merged into the repository's proxy.yml, and the outputs the
README shows for check-config are what check-config prints.
"""

from __future__ import annotations

import pytest

from tests.readme.blocks import AnnotationError, Block, parse_annotation, parse_blocks, readme_blocks
from tests.readme.checks import check_file_block
from tests.support.proxyproc import REPO_ROOT

README = REPO_ROOT / "README.md"


def test_every_readme_code_block_says_what_the_suite_does_with_it() -> None:
    blocks = readme_blocks(README)
    problems = []
    for block in blocks:
        try:
            block.annotation()
        except AnnotationError as exc:
            problems.append(str(exc))
    assert not problems, "\n".join(problems)
    kinds = {block.annotation().kind for block in blocks}
    assert kinds >= {"run", "file"}, kinds


def test_readme_config_and_output_blocks_check_out() -> None:
    """YAML parses; proxy.yml parts load with check-config; shown check-config output is printed."""
    last_config: Block | None = None
    verdicts = []
    for block in readme_blocks(README):
        try:
            note = block.annotation()
        except AnnotationError:
            continue  # the test above names it
        if note.kind != "file" or note.file_kind == "haproxy.cfg":  # haproxy: in the integration run
            continue
        verdict = check_file_block(REPO_ROOT, block, note, last_config)
        verdicts.append((block, verdict))
        if note.file_kind == "proxy.yml":
            last_config = block
    failed = [f"README.md:{block.line} {block.ident}: {v.text}" for block, v in verdicts if not v.ok]
    assert not failed, "\n".join(failed)
    assert any("check-config" in v.text for _, v in verdicts), "no proxy.yml block was checked"


# --- the parser and the annotation grammar --------------------------------------------------

SAMPLE = """# Title

Text, then an annotated block:

<!-- readme: run tty=a,b fails=refused timeout=30 -->
    first command
      indented continuation

    after a blank line, same block
Text right after a paragraph line
    is a lazy continuation, not code.

- a list item

  <!-- readme: file yaml -->
      key: value

## Other

    unannotated

<!-- readme: skip: needs a real cluster somewhere -->
```yaml
fenced: true
```
"""


def test_parser_finds_indented_list_and_fenced_blocks_with_sections() -> None:
    blocks = parse_blocks(SAMPLE)
    assert [(b.section, b.first_line, b.fenced) for b in blocks] == [
        ("Title", "first command", False),
        ("Title", "key: value", False),
        ("Other", "unannotated", False),
        ("Other", "fenced: true", True),
    ]
    assert blocks[0].text == "first command\n  indented continuation\n\nafter a blank line, same block"
    assert blocks[0].line == 6
    assert blocks[3].info == "yaml"


def test_annotations_are_parsed_and_a_missing_one_is_an_error() -> None:
    run, listed, bare, fenced = (block for block in parse_blocks(SAMPLE))
    note = run.annotation()
    assert (note.kind, note.tty, note.fails, note.timeout) == ("run", ("a", "b"), "refused", 30.0)
    assert listed.annotation().file_kind == "yaml"
    assert fenced.annotation().reason == "needs a real cluster somewhere"
    with pytest.raises(AnnotationError, match=r"README.md:20 \(Other: unannotated\) has no"):
        bare.annotation()


@pytest.mark.parametrize("raw", ["skip", "skip: no", "run stdin=x", "file toml", "walk", ""])
def test_bad_annotations_are_refused(raw: str) -> None:
    with pytest.raises(AnnotationError):
        parse_annotation(raw)


def test_output_check_names_the_mismatch() -> None:
    """A shown check-config output that check-config does not print fails, with what it printed."""
    config, shown = parse_blocks(
        "<!-- readme: file proxy.yml -->\n    access: {push: [pusher]}\n\n"
        "<!-- readme: file output check-config -->\n    access:\n      (default)  nobody  nobody  nobody\n"
    )
    verdict = check_file_block(REPO_ROOT, shown, shown.annotation(), config)
    assert not verdict.ok
    assert "(default)" in verdict.text and "[pusher]" in verdict.text
