"""The documentation holds together: README.md is a front page whose command table is the
`hf-spam` command's, and every relative link of README.md and docs/*.md reaches a file (and,
with `#anchor`, a heading of it, slugged as GitHub does)."""

from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest
from helpers import ROOT

from hf_spam.cli import COMMANDS

README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
README_MAX_LINES = 260

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
# [text](target) and ![alt](target); the target ends at whitespace (an optional "title" follows).
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # https:, mailto:, ...


def _prose_lines(path: Path) -> list[tuple[int, str]]:
    """`(line number, line)` outside fenced code blocks."""
    lines, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line))
    return lines


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its rendered text, lower case, punctuation dropped
    (letters, digits, `_` and `-` kept), spaces to hyphens."""
    text = INLINE_CODE.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link reads as its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = unicodedata.normalize("NFC", text).lower()
    text = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LNM")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of `path`; a repeated slug gets `-1`, `-2`, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in _prose_lines(path):
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(path: Path) -> list[tuple[int, str]]:
    """`(line number, target)` of every link that is not a URL, inline code left out."""
    links = []
    for number, line in _prose_lines(path):
        prose = INLINE_CODE.sub("", line)
        links += [(number, t) for t in LINK.findall(prose) if not EXTERNAL.match(t)]
    return links


def broken_links(path: Path) -> list[str]:
    """`file:line: target (why)` for each relative link of `path` that does not resolve."""
    broken = []
    for number, target in relative_links(path):
        where = f"{path.relative_to(ROOT)}:{number}: {target}"
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{where} (no such file: {linked.relative_to(ROOT.resolve())})")
        elif anchor and linked.suffix == ".md" and unquote(anchor) not in anchors(linked):
            broken.append(f"{where} (no heading #{anchor} in {linked.name})")
        elif anchor and linked.suffix != ".md":
            broken.append(f"{where} (#{anchor} on a file that is not Markdown)")
    return broken


def command_table(text: str) -> dict[str, str]:
    """`command -> script` from README's table whose header starts `| \\`hf-spam …\\` |`."""
    rows: dict[str, str] = {}
    in_table = False
    for line in text.splitlines():
        if line.startswith("| `hf-spam"):
            in_table = True
        elif in_table and not line.startswith("|"):
            break
        elif in_table and (match := re.match(r"^\| `([\w-]+)` \| `([^`]+)` \|", line)):
            rows[match.group(1)] = match.group(2)
    return rows


# ------------------------------------------------------------------------------------------------
# The checks themselves, checked on small pages written here


def test_github_slugs():
    assert github_slug("The book's classifier knobs") == "the-books-classifier-knobs"
    assert github_slug("Scale: the trunk feature store at IMDb-like sizes") == (
        "scale-the-trunk-feature-store-at-imdb-like-sizes"
    )
    assert github_slug("`pipeline()`") == "pipeline"
    assert github_slug("hf_spam documentation") == "hf_spam-documentation"
    assert github_slug("Row × row, 2 × 4") == "row--row-2--4"


def test_the_link_check_names_the_file_line_and_why(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "other.md").write_text("# Other page\n\n## Same\n\n## Same\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[ok](other.md#same-1) [ok](#page) [url](https://example.com/x) `[code](nothing.md)`\n"
        "```\n[fenced](nothing.md)\n```\n"
        "[gone](missing.md)\n"
        "[bad anchor](other.md#same-2)\n"
        "![img](pic.png#x)\n"
    )
    (tmp_path / "pic.png").write_bytes(b"")
    assert broken_links(page) == [
        "page.md:7: missing.md (no such file: missing.md)",
        "page.md:8: other.md#same-2 (no heading #same-2 in other.md)",
        "page.md:9: pic.png#x (#x on a file that is not Markdown)",
    ]


def test_the_command_table_parser():
    text = "| `hf-spam …` | script | does |\n| --- | --- | --- |\n| `a-b` | `s/a.py` | x |\n\nafter"
    assert command_table(text) == {"a-b": "s/a.py"}


# ------------------------------------------------------------------------------------------------
# The documentation


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = broken_links(page)
    assert not broken, "\n".join(broken)


def test_readme_is_a_front_page():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines (at most {README_MAX_LINES}); move details to docs/"
    )


def test_every_command_has_its_row_in_readme():
    table = command_table(README.read_text(encoding="utf-8"))
    missing = [name for name in COMMANDS if name not in table]
    unknown = [name for name in table if name not in COMMANDS]
    assert not missing, f"README.md's command table lacks: {', '.join(missing)}"
    assert not unknown, f"README.md's command table names no command: {', '.join(unknown)}"
    scripts = [script for script in table.values() if not (ROOT / script).is_file()]
    assert not scripts, f"README.md's command table names missing scripts: {', '.join(scripts)}"


def test_every_docs_page_is_linked_from_readme():
    linked = {
        (README.parent / target.partition("#")[0]).resolve() for _, target in relative_links(README)
    }
    unlinked = [p.relative_to(ROOT) for p in DOCS.glob("*.md") if p.resolve() not in linked]
    assert not unlinked, f"README.md links none of: {', '.join(map(str, sorted(unlinked)))}"


def test_readme_keeps_the_install_and_test_lines_ci_runs():
    """.ci/run installs "as README says" and runs README's test command."""
    ci = ROOT / ".ci" / "run"
    if not ci.is_file():
        pytest.skip(".ci/run is not part of this checkout")
    readme = README.read_text(encoding="utf-8")
    ci_lines = ci.read_text(encoding="utf-8").splitlines()
    installs = [
        re.sub(r"^python -m pip install (-q )?", "pip install ", line.strip())
        for line in ci_lines
        if line.strip().startswith("python -m pip install") and "--upgrade" not in line
    ]
    tests = [line.strip() for line in ci_lines if line.strip().startswith("python -m pytest")]
    assert installs and tests, ".ci/run no longer installs and tests as this check expects"
    missing = [line for line in installs + tests if line not in readme]
    assert not missing, f"README.md lacks the lines .ci/run runs: {missing}"
