"""Reads a page as a browser would and lists anything that could run or load from elsewhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

ACTIVE = {"img", "iframe", "object", "embed", "svg", "math", "style", "base", "frame", "link", "audio", "video",
          "source", "form", "script", "meta", "template", "noscript"}


@dataclass
class Findings:
    scripts: list[str | None] = field(default_factory=list)
    stylesheets: list[str | None] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found = Findings()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, value in attrs:
            if name.startswith("on") or name in ("style", "srcdoc", "formaction"):
                self.found.problems.append(f"<{tag} {name}=...>")
            if name in ("href", "src", "action") and value is not None:
                lowered = value.strip().lower()
                if not (value.startswith("/") and not value.startswith("//")) and \
                        not lowered.startswith(("https://", "http://")):
                    self.found.problems.append(f"<{tag} {name}={value!r}>")
                if tag == "a":
                    self.found.links.append(value)
        if tag == "script":
            self.found.scripts.append(values.get("src"))
        elif tag == "link" and values.get("rel") == "stylesheet":
            self.found.stylesheets.append(values.get("href"))
        elif tag == "meta" and "http-equiv" in values:
            self.found.problems.append("<meta http-equiv>")
        elif tag in ACTIVE - {"form", "link", "meta", "script"}:
            self.found.problems.append(f"<{tag}>")


def scan(text: str) -> Findings:
    parser = _Scan()
    parser.feed(text)
    parser.close()
    return parser.found


def assert_inert(text: str) -> Findings:
    """Only our own script and stylesheet, no handler attributes, no foreign or script URLs."""
    found = scan(text)
    assert not found.problems, found.problems
    assert len(found.scripts) == 1 and (found.scripts[0] or "").startswith("/ui/static/ui."), found.scripts
    assert len(found.stylesheets) == 1 and (found.stylesheets[0] or "").startswith("/ui/static/ui."), found.stylesheets
    return found
