"""Records from JSONL and CSV input, read from a byte offset so that ingest can resume.

Each record comes with its line number and the byte offset just after it; ingest stores that
offset with each committed batch. With ``follow=True`` (a watched file that may still grow), a
last line without its newline, or a CSV record whose quotes are still open, is left for later.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tunesmith.errors import UserInputError

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


@dataclass
class RawRow:
    """One record: its first line, the offset after it, and its fields or why it is unreadable."""

    line: int
    end: int
    value: dict[str, Any] | None
    error: str | None = None


def format_of(path: str | Path) -> str:
    """``jsonl`` or ``csv`` from a file's suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UserInputError(
            f"{path}: unsupported file type {suffix or '(none)'}; use .jsonl or .csv"
        )
    return FORMATS[suffix]


def iter_jsonl(
    handle: IO[bytes], *, offset: int = 0, line: int = 0, follow: bool = False
) -> Iterator[RawRow]:
    """JSON objects, one a line, from ``offset`` (``line`` lines already read before it)."""
    position = offset
    while True:
        raw = handle.readline()
        if not raw:
            return
        if follow and not raw.endswith(b"\n"):
            return  # the writer has not finished this line yet
        position += len(raw)
        line += 1
        stripped = raw.strip()
        if not stripped:
            continue
        try:
            value = json.loads(stripped.decode("utf-8"))
        except UnicodeDecodeError:
            yield RawRow(line, position, None, "not UTF-8 text")
            continue
        except json.JSONDecodeError as exc:
            yield RawRow(line, position, None, f"malformed JSON ({exc.msg}, column {exc.colno})")
            continue
        if not isinstance(value, dict):
            yield RawRow(
                line, position, None, f"expected a JSON object, got {type(value).__name__}"
            )
            continue
        yield RawRow(line, position, value)


def _csv_record(handle: IO[bytes], follow: bool) -> tuple[bytes, int] | None:
    """The bytes of one CSV record (physical lines until its quotes close) and its line count."""
    parts: list[bytes] = []
    quotes = 0
    while True:
        raw = handle.readline()
        if not raw:
            if parts and not follow:
                return b"".join(parts), len(parts)  # the last record, quotes left open
            return None
        if follow and not raw.endswith(b"\n"):
            return None
        parts.append(raw)
        quotes += raw.count(b'"')
        if quotes % 2 == 0:
            return b"".join(parts), len(parts)


def _parse_csv(data: bytes) -> list[str]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    return rows[0] if rows else []


def read_header(handle: IO[bytes]) -> tuple[list[str], int, int]:
    """The CSV header at the start of ``handle``: field names, bytes and lines it takes."""
    record = _csv_record(handle, follow=False)
    if record is None:
        return [], 0, 0
    data, lines = record
    try:
        names = [name.strip() for name in _parse_csv(data)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserInputError(f"unreadable CSV header: {exc}") from None
    return names, len(data), lines


def iter_csv(
    handle: IO[bytes],
    header: list[str],
    *,
    offset: int,
    line: int,
    follow: bool = False,
) -> Iterator[RawRow]:
    """CSV records after the header, from ``offset``; quoted fields may span lines."""
    position = offset
    while True:
        record = _csv_record(handle, follow)
        if record is None:
            return
        data, lines = record
        first = line + 1
        position += len(data)
        line += lines
        if not data.strip():
            continue
        try:
            fields = _parse_csv(data)
        except UnicodeDecodeError:
            yield RawRow(first, position, None, "not UTF-8 text")
            continue
        except csv.Error as exc:
            yield RawRow(first, position, None, f"malformed CSV ({exc})")
            continue
        if len(fields) != len(header):
            yield RawRow(first, position, None, f"expected {len(header)} fields, got {len(fields)}")
            continue
        yield RawRow(first, position, dict(zip(header, fields, strict=True)))
