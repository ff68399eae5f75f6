"""The docs stay a reference of this repository: every signaling event is documented in
docs/signaling.md, and no page under docs/ links outside the repository (a link is a path,
relative to its page, to a file or folder that exists here, or an anchor)."""

from __future__ import annotations

import re
from pathlib import Path

from contracts.signaling_events import EventName

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
# [text](target "title"), ![alt](target), [id]: target, <scheme:...>, href="...", src="..."
_INLINE = re.compile(r"\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'(][^)]*)?\)")
_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
_AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.-]*:[^>\s]*)>")
_HTML = re.compile(r"\b(?:href|src)\s*=\s*[\"']([^\"']*)[\"']", re.IGNORECASE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:|^//")


def _prose(markdown: str) -> str:
    """The page without code blocks and code spans: text there is code, not a link."""
    return _CODE_SPAN.sub("", _FENCE.sub("", markdown))


def links(page: Path) -> list[str]:
    text = _prose(page.read_text(encoding="utf-8"))
    return [
        m.group(1)
        for pattern in (_INLINE, _DEFINITION, _AUTOLINK, _HTML)
        for m in pattern.finditer(text)
    ]


def bad_links(page: Path, root: Path) -> list[str]:
    """Each link of `page` that leaves `root` or names nothing in it, with why."""
    bad = []
    for target in links(page):
        if _SCHEME.match(target):
            bad.append(f"{target}: outside the repository")
            continue
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not path:
            continue  # an anchor on the same page
        if path.startswith("/"):
            bad.append(f"{target}: absolute (a page links relative to itself)")
            continue
        resolved = (page.parent / path).resolve()
        if not resolved.is_relative_to(root.resolve()):
            bad.append(f"{target}: outside the repository")
        elif not resolved.exists():
            bad.append(f"{target}: no such file")
    return bad


def test_every_signaling_event_is_documented() -> None:
    text = (DOCS / "signaling.md").read_text(encoding="utf-8")
    missing = [name.value for name in EventName if f"`{name.value}`" not in text]
    assert missing == [], "events missing from docs/signaling.md"


def test_no_doc_links_outside_the_repository() -> None:
    pages = sorted(DOCS.rglob("*.md"))
    assert DOCS / "README.md" in pages and DOCS / "architecture.md" in pages
    found = {str(p.relative_to(ROOT)): bad_links(p, ROOT) for p in pages}
    assert {page: bad for page, bad in found.items() if bad} == {}


def test_the_link_check_catches_what_it_is_for(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "there.md").write_text("# There\n")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "[ok](there.md) [ok too](there.md#there) [anchor](#top)\n"
        "[web](https://example.com/x) [gone](missing.md) [up](../../elsewhere.md)\n"
        "[root](/docs/there.md) <http://example.org>\n"
        '[ref]: https://example.net/y\n<a href="mailto:someone@example.com">mail</a>\n'
        "`[code](https://example.com/in-code)`\n\n```\n[block](https://example.com/b)\n```\n"
    )
    assert bad_links(page, tmp_path) == [
        "https://example.com/x: outside the repository",
        "missing.md: no such file",
        "../../elsewhere.md: outside the repository",
        "/docs/there.md: absolute (a page links relative to itself)",
        "https://example.net/y: outside the repository",
        "http://example.org: outside the repository",
        "mailto:someone@example.com: outside the repository",
    ]
