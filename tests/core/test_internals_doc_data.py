"""docs/internals.md's data section names the helpers other modules and plugins build on."""

from __future__ import annotations

from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "internals.md"


def _data_section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Data (`tunesmith.data`)")
    return text[start : text.index("\n## ", start + 1)]


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("readers", "delimited_rows"),
        ("readers", "jsonl_rows"),
        ("readers", "decode_utf8"),
        ("readers", "read_stdin"),
        ("readers", "csv_separator"),
        ("records", "sort_labels"),
        ("times", "UnparsableTimeError"),
    ],
)
def test_internals_data_section_names_the_shared_data_helpers(module, name):
    import importlib

    assert hasattr(importlib.import_module(f"tunesmith.data.{module}"), name)
    assert f"`{name}" in _data_section()
