"""Item fields kept for filtering (``train --filter-cols category,price``): read and typed.

A field is a number when every non-empty cell of the column is a finite number, else text.
The types are recorded in ``meta.json`` (``item_fields``), and items added later must fit
them: a price of ``abc`` in an hourly ``add-items`` file is one line naming file, row and
column, not a catalogue where ``price<20`` quietly skips the item. Text cells keep their
``a|b`` lists (and JSONL arrays, Parquet lists) as lists, so ``genres=horror`` matches a film
of ``horror|comedy``. An empty cell is a missing value (``None``), which no filter matches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.errors import DataError

NUMBER, TEXT = "number", "text"
#: Cell values stored in ``catalogue.json``: a number, a text, a list of texts, or None.
Cell = float | str | list[str] | None


def _number(value: Any) -> float | None:
    """``value`` as a finite number, or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
    else:
        try:
            number = float(str(value).strip())
        except ValueError:
            return None
    return number if math.isfinite(number) else None


def _empty(value: Any) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    if isinstance(value, (list, tuple, np.ndarray)):
        return not any(not _empty(v) for v in value)
    return not str(value).strip()


def _texts(value: Any) -> str | list[str] | None:
    """A text cell: one text, a list of texts (``a|b``, an array), or None when empty."""
    if _empty(value):
        return None
    parts = (
        [str(v).strip() for v in value if not _empty(v)]
        if isinstance(value, (list, tuple, np.ndarray))
        else [p.strip() for p in str(value).split("|") if p.strip()]
    )
    return parts[0] if len(parts) == 1 else parts


def read_fields(
    rows: list[dict[str, Any]],
    columns: Sequence[str],
    types: dict[str, str] | None,
    *,
    path: Path,
    row_key: str,
) -> tuple[dict[str, list[Cell]], dict[str, str], list[str]]:
    """The cells of ``columns`` for each row, their types and notes for the user.

    ``types``: the model's own (``add-items``): a cell that does not fit is a
    :class:`~tunesmith.errors.DataError` naming file, row and column. None (``train``): each
    column's type is found from its cells, and a column read as text because of a few cells
    that are not numbers gets a note naming the first."""
    fields: dict[str, list[Cell]] = {}
    found: dict[str, str] = {}
    notes: list[str] = []
    for column in columns:
        cells = [row.get(column) for row in rows]
        kind = (types or {}).get(column)
        if kind is None:
            numbers = [_number(c) for c in cells if not _empty(c)]
            kind = NUMBER if numbers and all(n is not None for n in numbers) else TEXT
            odd = next(
                (
                    r
                    for r, c in zip(rows, cells, strict=True)
                    if not _empty(c) and _number(c) is None
                ),
                None,
            )
            if (
                kind == TEXT
                and odd is not None
                and sum(n is not None for n in numbers) > len(numbers) / 2
            ):
                notes.append(
                    f"--filter-cols {column}: read as text ({str(odd.get(column))[:40]!r} on row "
                    f"{odd[row_key]} is not a number), so --where compares it with = and != only"
                )
        found[column] = kind
        if kind == NUMBER:
            values: list[Cell] = []
            for row, cell in zip(rows, cells, strict=True):
                number = None if _empty(cell) else _number(cell)
                if number is None and not _empty(cell):
                    raise DataError(
                        f"{str(cell)[:40]!r} is not a number (the model reads {column} as a "
                        "number, for --where filters)",
                        path=path,
                        row=row[row_key],
                        column=column,
                    )
                values.append(number)
            fields[column] = values
        else:
            fields[column] = [_texts(cell) for cell in cells]
    return fields, found, notes
