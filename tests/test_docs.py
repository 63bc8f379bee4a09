"""Every reference the code makes to the documentation resolves inside the repository.

- ``DESIGN §N`` and ``docs/FILE.md §N`` (also ``§3, §4``) in ``src``, ``tests`` and ``bench``
  must name an existing file and a section heading ``## N.`` in it (``DESIGN`` means
  ``docs/design.md``);
- ``docs/FILE.md`` must exist;
- ``docs/design.md`` keeps the numbering §1-§7 that the code cites;
- relative links between the documents (``[text](file.md#anchor)``) point at existing files
  and headings.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CODE_DIRS = ("src", "tests", "bench")

# "DESIGN §3", "docs/design.md §3, §4", "docs/vfs.md"
REFERENCE = re.compile(r"(DESIGN|docs/[A-Za-z0-9_./-]+\.md)((?:\s*,?\s*§\d+)*)")
SECTION = re.compile(r"§(\d+)")
LINK = re.compile(r"\]\(([^)\s]+)\)")

# What each original section is about: citations in the code rely on these numbers.
DESIGN_SECTIONS = {
    1: "layers",
    2: "kv store contract",
    3: "storage layout",
    4: "engine operations",
    5: "client vfs",
    6: "v1 format",
    7: "workloads",
}


def headings(path: Path) -> list[str]:
    return [
        line.lstrip("#").strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    ]


def has_section(path: Path, number: int) -> bool:
    return any(re.match(rf"{number}\.\s", h) for h in headings(path))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    kept = re.sub(r"[^\w\- ]", "", heading.lower())
    return kept.replace(" ", "-")


def code_references() -> list[tuple[str, str, list[int]]]:
    """(where, doc path relative to the repository, sections) for every reference."""
    found = []
    for directory in CODE_DIRS:
        for path in sorted((ROOT / directory).rglob("*.py")):
            if path == Path(__file__).resolve():
                continue
            text = path.read_text(encoding="utf-8")
            for match in REFERENCE.finditer(text):
                target = "docs/design.md" if match.group(1) == "DESIGN" else match.group(1)
                sections = [int(n) for n in SECTION.findall(match.group(2))]
                line = text.count("\n", 0, match.start()) + 1
                found.append((f"{path.relative_to(ROOT)}:{line}", target, sections))
    return found


def test_the_code_cites_the_design_document() -> None:
    cited = [ref for ref in code_references() if ref[1] == "docs/design.md" and ref[2]]
    assert len(cited) >= 10, "the docstrings' design citations were not found; check REFERENCE"


def test_every_documentation_reference_in_the_code_resolves() -> None:
    broken = []
    for where, target, sections in code_references():
        path = ROOT / target
        if not path.is_file():
            broken.append(f"{where}: {target} does not exist")
            continue
        for number in sections:
            if not has_section(path, number):
                broken.append(f"{where}: {target} has no section '## {number}.'")
    assert not broken, "references to missing documentation:\n" + "\n".join(broken)


def test_design_document_keeps_the_numbering_the_code_cites() -> None:
    design = DOCS / "design.md"
    for number, topic in DESIGN_SECTIONS.items():
        titles = [h for h in headings(design) if re.match(rf"{number}\.\s", h)]
        assert len(titles) == 1, f"docs/design.md must have exactly one section §{number}"
        assert topic in titles[0].lower(), f"§{number} is '{titles[0]}', not about {topic}"


@pytest.mark.parametrize("doc", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_links_between_documents_resolve(doc: Path) -> None:
    broken = []
    for target in LINK.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # an external URL
        file_part, _, anchor = target.partition("#")
        path = (doc.parent / file_part).resolve() if file_part else doc
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in {slug(h) for h in headings(path)}:
            broken.append(f"{target}: no heading with anchor #{anchor}")
    assert not broken, f"broken links in {doc.name}:\n" + "\n".join(broken)
