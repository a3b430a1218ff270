"""Trend rows as `finance trends --json` and `--csv` write them, fast at a desk's scale: the
text of ``json.dumps(indent=2)`` and of ``csv.DictWriter``, byte for byte, without their
per-row cost (both are pure Python per value; 120,000 rows took 6 s and 3.5 s)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from tunesmith.io import atomic_open
from tunesmith_finance.trends import TREND_FIELDS, TrendRow

#: Rows formatted, then written, at a time: a write per row flushed per row on a terminal.
CHUNK = 4096

#: A cell starting with one of these is a formula to a spreadsheet (OWASP's CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

#: How ``json.dumps`` writes a float that ``repr`` does not (``NaN``, ``Infinity``), as the
#: template below would: a number is the only value followed by ``,`` and a line break (an
#: encoded string has no raw line break), so these find nothing else.
_NOT_FINITE = ('": nan,\n', '": inf,\n', '": -inf,\n')


def spreadsheet_text(value: Any) -> Any:
    """``value`` as a spreadsheet reads it as text: a string that starts like a formula gets a
    leading ``'`` (a topic or ticker comes from the news feed, and ``=HYPERLINK(...)`` in one
    would run when an analyst opens the export). Numbers pass as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _chunks(rows: Iterable[TrendRow], size: int) -> Iterator[list[TrendRow]]:
    it = iter(rows)
    while part := list(islice(it, size)):
        yield part


def _json_template(part: list[TrendRow], strings: dict[str, str]) -> str:
    """``part`` as ``,\\n  {...}`` objects, each as ``json.dumps(row.to_dict(), indent=2)``
    indents it, from a fixed template: ``json.dumps`` only for a string not seen before (a
    key, a bucket start, a zone repeat over thousands of rows), the numbers as JSON writes an
    int or a finite float (``int.__repr__``, ``float.__repr__``; a value of another type
    raises TypeError)."""
    import json

    def text(value: str) -> str:
        out = strings.get(value)
        if out is None:
            out = strings[value] = json.dumps(value, ensure_ascii=False)
        return out

    fr, ir = float.__repr__, int.__repr__
    return "".join(
        f',\n  {{\n    "key": {text(r.key)},\n    "bucket_start": {text(r.bucket_start)},\n'
        f'    "ts": {fr(r.ts)},\n    "count": {ir(r.count)},\n'
        f'    "negatives": {ir(r.negatives)},\n'
        f'    "negative_share": {fr(round(r.negative_share, 4))},\n'
        f'    "share_low": {fr(round(r.share_low, 4))},\n'
        f'    "share_high": {fr(round(r.share_high, 4))},\n'
        f'    "mean_score": {fr(round(r.mean_score, 4))},\n'
        f'    "tz": {text(r.tz)}\n  }}'
        for r in part
    )


def _json_dumped(part: list[TrendRow]) -> str:
    """``part`` as :func:`_json_template` writes it, by ``json.dumps`` row by row: for rows the
    template cannot write (a NaN, a value of another type)."""
    import json

    return "".join(
        ",\n  " + json.dumps(r.to_dict(), indent=2, ensure_ascii=False).replace("\n", "\n  ")
        for r in part
    )


def write_json(rows: Iterable[TrendRow], handle: Any, chunk: int = CHUNK) -> None:
    """The rows as one indented JSON list on ``handle``: the text of
    ``json.dumps([r.to_dict() for r in rows], indent=2, ensure_ascii=False)``, written
    ``chunk`` rows at a time, without the whole document in memory (a million rows of a desk's
    tickers held 2 GB as one string and its dicts)."""
    strings: dict[str, str] = {}
    opened = "["
    for part in _chunks(rows, chunk):
        try:
            body = _json_template(part, strings)
        except TypeError:
            body = None
        if body is None or any(mark in body for mark in _NOT_FINITE):
            body = _json_dumped(part)
        handle.write(opened + body[1:] if opened else body)  # no comma before the first row
        opened = ""
    handle.write("[]\n" if opened else "\n]\n")


def _csv_cells(rows: Iterable[TrendRow]) -> Iterator[tuple[Any, ...]]:
    """Each row's cells as :meth:`TrendRow.to_dict` gives them (in :data:`TREND_FIELDS`'
    order), text cells through :func:`spreadsheet_text` once per distinct string: a dict per
    row and ``csv.DictWriter``'s check of its keys were most of the time."""
    said: dict[str, Any] = {}

    def cell(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        out = said.get(value)
        if out is None:
            out = said[value] = spreadsheet_text(value)
        return out

    for r in rows:
        yield (
            cell(r.key), cell(r.bucket_start), r.ts, r.count, r.negatives,
            round(r.negative_share, 4), round(r.share_low, 4), round(r.share_high, 4),
            round(r.mean_score, 4), cell(r.tz),
        )  # fmt: skip


def write_csv(rows: Iterable[TrendRow], path: str | Path) -> Path:
    """The rows as CSV, written atomically; text cells that a spreadsheet would run as a
    formula are written as text (:func:`spreadsheet_text`)."""
    with atomic_open(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(TREND_FIELDS)
        writer.writerows(_csv_cells(rows))
    return Path(path)
