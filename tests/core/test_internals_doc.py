"""docs/internals.md names every module of the core, so a newcomer finds each one's job there."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "core" / "src" / "tunesmith"


def _named(doc: str, module: Path) -> bool:
    rel = module.relative_to(PACKAGE)
    dotted = "tunesmith." + ".".join(rel.with_suffix("").parts)
    # `name.py` in its package's section, a path such as `stages/state.py`, or `tunesmith.x.y`
    suffixes = ["/".join(rel.parts[i:]) for i in range(len(rel.parts))]
    return f"`{dotted}`" in doc or f"`{dotted}." in doc or any(f"`{s}`" in doc for s in suffixes)


def test_internals_doc_names_every_core_module():
    doc = (ROOT / "docs" / "internals.md").read_text(encoding="utf-8")
    modules = [p for p in sorted(PACKAGE.rglob("*.py")) if p.name != "__init__.py"]
    assert len(modules) > 50
    missing = [str(p.relative_to(PACKAGE)) for p in modules if not _named(doc, p)]
    assert missing == [], f"docs/internals.md does not name: {missing}"
