"""``where`` filters on payload fields: checked, then run as a ``json_extract`` query.

``where={"field": value}`` keeps items whose payload field equals the value (a list, tuple or
set means any of them; several fields must all match). Values compare as SQLite's
``json_extract`` returns them: ``true`` equals 1, and ``None`` matches a missing or null field.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

import numpy as np

from tunesmith.data.limits import lone_surrogate
from tunesmith.errors import UserInputError

_SQLITE_INT_MIN, _SQLITE_INT_MAX = -(2**63), 2**63 - 1


def where_fields(where: Mapping[str, Any]) -> list[tuple[str, list[Any]]]:
    """``where`` checked, as (field, values) sorted by field; numpy scalars become plain
    Python values, as they compare in SQLite (a numpy integer is no ``int``)."""
    if not isinstance(where, Mapping):
        raise UserInputError(
            f"where must be a dict of payload field -> value, got {type(where).__name__}"
        )
    fields = []
    for name, value in where.items():
        if not isinstance(name, str):
            raise UserInputError(f"where field must be a non-empty name, got {name!r}")
        # SQLite's JSON path compares a quoted field with the key as JSON writes it, so a
        # name JSON escapes (a quote, a backslash, a control character) would match nothing.
        if not name or json.dumps(name, ensure_ascii=False)[1:-1] != name or lone_surrogate(name):
            raise UserInputError(
                "where field must be a non-empty name without quotes, backslashes or "
                f"control characters, got {name!r}"
            )
        values = list(value) if isinstance(value, list | tuple | set | frozenset) else [value]
        values = [v.item() if isinstance(v, np.generic) else v for v in values]
        for v in values:
            if v is not None and not isinstance(v, str | int | float | bool):
                raise UserInputError(
                    f"where['{name}'] values must be str, number, bool or None, got {v!r}"
                )
            if isinstance(v, str) and lone_surrogate(v):
                raise UserInputError(
                    f"where['{name}'] value {v!r} holds a lone surrogate, not a character"
                )
            if isinstance(v, int) and not _SQLITE_INT_MIN <= v <= _SQLITE_INT_MAX:
                # SQLite stores 64-bit integers; binding a larger one raises OverflowError.
                raise UserInputError(
                    f"where['{name}'] value {v} is outside the 64-bit integer range"
                )
        fields.append((name, values))
    return sorted(fields, key=lambda field: field[0])


def matching_rids(db: sqlite3.Connection, fields: list[tuple[str, list[Any]]]) -> np.ndarray:
    """Sorted rowids of the payload table whose payload matches checked ``fields``."""
    clauses, params = [], []
    for name, values in fields:
        path = f'$."{name}"'
        parts = []
        plain = [v for v in values if v is not None]
        if plain:
            parts.append(f"json_extract(payload, ?) IN ({', '.join('?' * len(plain))})")
            params.extend([path, *plain])
        if len(plain) != len(values):
            parts.append("json_extract(payload, ?) IS NULL")
            params.append(path)
        clauses.append("(" + " OR ".join(parts) + ")" if parts else "0")
    sql = "SELECT rid FROM items WHERE " + " AND ".join(clauses) + " ORDER BY rid"
    return np.fromiter((r[0] for r in db.execute(sql, params)), dtype=np.int64)
