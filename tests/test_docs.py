"""README is the front door: it links every page under docs/, and no link in README or docs/ is broken."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PAGES = sorted((REPO / "docs").rglob("*.md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
README_MAX_LINES = 220


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of ``page``: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    in_code = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        heading = re.match(r"(#{1,6}) (.*)", line)
        if heading and not in_code:
            found.add(re.sub(r"[^\w\- ]", "", heading[2].strip().lower()).replace(" ", "-"))
    return found


def links(page: Path) -> list[tuple[str, str]]:
    """(target path, anchor) of every relative link on ``page``, outside code blocks."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    out = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        out.append((path, anchor))
    return out


def test_readme_is_short_and_links_every_page_under_docs():
    """A page counts as linked when README links it or a folder holding it (docs/mechanism/: one folder of
    measured tables per run, added as runs are made)."""
    assert len(README.read_text().splitlines()) < README_MAX_LINES
    linked = {(REPO / path).resolve() for path, _ in links(README) if path} - {REPO, REPO / "docs"}
    missing = [page.relative_to(REPO).as_posix() for page in PAGES
               if not {page.resolve(), *page.resolve().parents} & linked]
    assert missing == [], f"README links no page {missing}"


def test_every_relative_link_resolves():
    broken = []
    for page in [README, *PAGES]:
        for path, anchor in links(page):
            target = (page.parent / path).resolve() if path else page
            if not target.exists():
                broken.append(f"{page.relative_to(REPO)}: {path}")
            elif anchor and target.suffix == ".md" and anchor not in anchors(target):
                broken.append(f"{page.relative_to(REPO)}: {path}#{anchor} (no such heading)")
    assert broken == []


def test_anchor_slugs_follow_github(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Top\n## Measured by hand before `aea.timing`\n```\n# not a heading\n```\n## A, b: c (d)\n")
    assert anchors(page) == {"top", "measured-by-hand-before-aeatiming", "a-b-c-d"}
