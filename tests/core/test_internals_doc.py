"""docs/internals.md names every module of the core, so a newcomer finds each one's job there,
and names no module that is gone."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "core" / "src" / "tunesmith"
#: A file the doc names: `stages/state.py`, `sample.py`, `commands/engine/train_pairs.py::_f`.
FILE_REF = re.compile(r"`((?:\w+/)*\w+\.py)(?:::\w+)?`")
#: Where a file the doc names may live: the core, its engine (`stages/...`), the repository, and
#: the plugins' and apps' packages (finance's `sources.py`, the suite's `app.py`).
SOURCE_DIRS = [
    PACKAGE,
    PACKAGE / "engine",
    PACKAGE.parent,
    ROOT,
    *sorted(p for p in ROOT.glob("plugins/*/src/*") if p.is_dir()),
    *sorted(p for p in ROOT.glob("apps/*/src/*") if p.is_dir()),
]


def _doc() -> str:
    return (ROOT / "docs" / "internals.md").read_text(encoding="utf-8")


def _package_sections(doc: str) -> dict[str, str]:
    """Each package section's text by its package: "## Engine (`tunesmith.engine`)" -> engine."""
    headings = list(re.finditer(r"^## .*$", doc, re.M))
    sections = {}
    for i, heading in enumerate(headings):
        package = re.search(r"\(`tunesmith\.(\w+)`\)", heading.group())
        end = headings[i + 1].start() if i + 1 < len(headings) else len(doc)
        if package:
            sections[package.group(1)] = doc[heading.start() : end]
    return sections


def _named(doc: str, sections: dict[str, str], module: Path) -> bool:
    rel = module.relative_to(PACKAGE)
    dotted = "tunesmith." + ".".join(rel.with_suffix("").parts)
    if f"`{dotted}`" in doc or f"`{dotted}." in doc:
        return True
    # A path with its folder (`stages/state.py`, `commands/engine/train.py`) names one module.
    paths = ["/".join(rel.parts[i:]) for i in range(len(rel.parts) - 1)]
    if any(f"`{p}`" in doc or f"`{p}::" in doc for p in paths):
        return True
    # A bare `name.py` names a module only in its package's own section: elsewhere the data
    # section's `sample.py` would pass for commands/sample.py.
    if len(rel.parts) == 2:
        return f"`{rel.name}`" in sections.get(rel.parts[0], "")
    return False


def test_internals_doc_names_every_core_module():
    doc = _doc()
    sections = _package_sections(doc)
    assert {"data", "engine", "retrieval", "explain"} <= set(sections)
    modules = [p for p in sorted(PACKAGE.rglob("*.py")) if p.name != "__init__.py"]
    assert len(modules) > 50
    missing = [str(p.relative_to(PACKAGE)) for p in modules if not _named(doc, sections, p)]
    assert missing == [], f"docs/internals.md does not name: {missing}"


def test_a_bare_file_name_outside_its_package_section_does_not_count_as_named():
    doc = "## Data (`tunesmith.data`)\n\n- `sample.py`: sample data.\n"
    sections = _package_sections(doc)
    assert _named(doc, sections, PACKAGE / "data" / "sample.py")
    assert not _named(doc, sections, PACKAGE / "commands" / "sample.py")
    assert _named(doc + "- `commands/sample.py`\n", sections, PACKAGE / "commands" / "sample.py")


def test_internals_doc_names_no_file_or_module_that_is_gone():
    doc = _doc()
    sections = _package_sections(doc)
    gone = [
        ref
        for ref in sorted(set(FILE_REF.findall(doc)))
        if not any((d / ref).is_file() for d in SOURCE_DIRS)
        and not any((PACKAGE / package / ref).is_file() for package in sections)
    ]
    # `tunesmith.x.y`: a module, or a name the module's source defines or re-exports.
    for dotted in sorted(set(re.findall(r"`(tunesmith(?:\.\w+)+)", doc))):
        parts = dotted.split(".")
        if _module_file(parts) is not None:
            continue
        owner = _module_file(parts[:-1])
        if owner is None or not re.search(rf"\b{parts[-1]}\b", owner.read_text(encoding="utf-8")):
            gone.append(dotted)
    assert gone == [], f"docs/internals.md names what no longer exists: {gone}"


def _module_file(parts: list[str]) -> Path | None:
    base = PACKAGE.parent.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None
