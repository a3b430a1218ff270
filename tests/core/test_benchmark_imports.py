"""Benchmarks and tools run rarely and outside the suite, so a name the core moves can break
them unnoticed (``quiet_transformers`` left ``engine.modeling`` and three benchmarks failed only
when their embedding cache was cold). Every tunesmith name they import must exist."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tunesmith_imports() -> list[tuple[str, int, str, str]]:
    found = []
    for path in sorted([*ROOT.glob("benchmarks/*.py"), *ROOT.glob("tools/*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.split(".")[0].startswith("tunesmith")
            ):
                rel = str(path.relative_to(ROOT))
                found += [(rel, node.lineno, node.module, alias.name) for alias in node.names]
    return found


def test_every_tunesmith_name_a_benchmark_or_tool_imports_exists():
    imports = _tunesmith_imports()
    assert len(imports) > 40  # the scan found the benchmarks' imports
    missing = []
    for where, line, module, name in imports:
        loaded = importlib.import_module(module)
        if hasattr(loaded, name):
            continue
        try:
            importlib.import_module(f"{module}.{name}")  # a submodule
        except ModuleNotFoundError:
            missing.append(f"{where}:{line} from {module} import {name}")
    assert not missing, "\n".join(missing)
