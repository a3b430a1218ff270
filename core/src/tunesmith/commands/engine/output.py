"""What the engine's commands print: JSON documents (NaN as null) and borderless tables."""

from __future__ import annotations

import json
import math
from typing import Any

import typer


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False, default=_jsonable))


def plain_json(data: Any) -> Any:
    """``data`` as the JSON that :func:`echo_json` prints reads back: plain dicts, lists,
    strings and numbers (numpy values made plain, paths as text, NaN as null), so the Python
    API returns exactly what a command's ``--json`` prints."""
    return json.loads(json.dumps(clean_nan(data), allow_nan=False, default=_jsonable))


def _jsonable(value: Any) -> Any:
    """numpy scalars and paths in reports become plain JSON values."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def clean_nan(value: Any) -> Any:
    """NaN (a metric with nothing to measure) becomes null, so the output is valid JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: clean_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_nan(v) for v in value]
    return value


def fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-" if value is None else str(value)


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """A borderless table on stdout (rich), two spaces between columns.

    On a terminal rich fits it to the window (long texts wrap inside their column); into a
    pipe or file every row stays one whole line, so scripts can split it.
    """
    import sys

    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, padding=(0, 1), show_edge=False, highlight=False)
    for header in headers:
        table.add_column(header, no_wrap=not sys.stdout.isatty(), overflow="fold")
    for row in rows:
        table.add_row(*row)
    console = Console(
        file=sys.stdout,
        width=None if sys.stdout.isatty() else 1_000_000,
        markup=False,
        emoji=False,
        highlight=False,
    )
    with console.capture() as captured:
        console.print(table)
    for line in captured.get().splitlines():
        typer.echo(line.rstrip())
