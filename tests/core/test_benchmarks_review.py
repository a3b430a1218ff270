"""The benchmark scripts' output contract, checked without running them: stdout holds a table and
ends with one JSON line that every JSON reader accepts (no NaN or Infinity), and what a child
process prints is a log, not part of that output."""

from __future__ import annotations

import ast
import importlib
import json
import os
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if p.name != "bench_common.py")


def _calls(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return f"{_name(func.value)}.{func.attr}"
    return func.id if isinstance(func, ast.Name) else ""


def test_the_scan_finds_the_benchmarks():
    assert len(SCRIPTS) > 15


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_a_printed_json_line_goes_through_strict_json(path: Path):
    # json.dumps writes NaN and Infinity, which json.loads(parse_constant=refuse) and most
    # readers reject; strict_json writes null instead (explain_faithfulness's ratio can be inf).
    printed = [
        arg
        for call in _calls(path)
        if _name(call.func) == "print"
        for arg in call.args
        if isinstance(arg, ast.Call) and _name(arg.func) == "json.dumps"
    ]
    assert not printed, f"{path.name}:{printed[0].lineno} prints json.dumps(...)"
    assert any(_name(call.func) == "strict_json" for call in _calls(path)), path.name


def test_support_load_sends_its_child_processes_output_to_stderr():
    children = [
        call
        for call in _calls(BENCHMARKS / "support_load.py")
        if _name(call.func) in ("subprocess.run", "subprocess.Popen")
    ]
    assert len(children) == 3  # index, calibrate, serve
    for call in children:
        stdout = {k.arg: k.value for k in call.keywords}.get("stdout")
        assert stdout is not None and ast.unparse(stdout) == "sys.stderr", call.lineno


@pytest.fixture
def portable_pooling():
    environ = dict(os.environ)
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module("portable_pooling")
    finally:
        sys.path.remove(str(BENCHMARKS))
        os.environ.clear()
        os.environ.update(environ)


def test_portable_pooling_cells_show_a_missing_figure_instead_of_crashing(portable_pooling):
    cell = portable_pooling.cell
    assert cell(0.91234) == "    0.9123"
    assert cell("refused") == "   refused"
    assert cell(None) == "         -"


def test_strict_json_turns_what_the_benchmarks_can_hit_into_null():
    from tunesmith.events import strict_json

    line = strict_json({"ratio": float("inf"), "ece": float("nan"), "ok": 1.5})

    def refuse(word: str) -> None:
        raise ValueError(word)

    assert json.loads(line, parse_constant=refuse) == {"ratio": None, "ece": None, "ok": 1.5}
