"""Built-in readers: one file in, row dicts out, each carrying its 1-based line in ``__row__``.

Readers are found by file suffix through the ``tunesmith_data_readers`` hook, so a plugin can add
a format or replace one of these. Token files (``.conll``, ``.txt``) yield one dict per sentence:
``{"tokens": [...], "tags": [...], "token_rows": [...], "__row__": first line}``.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tunesmith.errors import DataError

ROW_KEY = "__row__"

Row = dict[str, Any]


def read_utf8(path: Path) -> str:
    """The file's text; a file that is not UTF-8 fails naming the line of the first bad byte."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # utf-8-sig strips a BOM, so positions still count from the start of the raw bytes.
        line = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start : exc.start + 1].hex()
        raise DataError(
            f"the file is not UTF-8 (byte 0x{bad} at offset {exc.start}); "
            "re-save it as UTF-8, e.g. `iconv -f latin1 -t utf-8`",
            path=path,
            row=line,
        ) from None


def _delimited(path: Path, delimiter: str, quoting: int) -> Iterator[Row]:
    text = read_utf8(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise DataError(f"cannot parse the header: {exc}", path=path, row=1) from None
    header = [name.strip() for name in header]
    last_line = reader.line_num
    while True:
        # A quoted field may span lines: the record starts on the line after the previous one
        # ended, and line_num is where this one ends.
        start = last_line + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"cannot parse this row: {exc}", path=path, row=start) from None
        last_line = reader.line_num
        if not fields:  # a blank line
            continue
        if len(fields) > len(header):
            raise DataError(
                f"this row has {len(fields)} fields but the header has {len(header)} "
                "(an unquoted separator inside a text?)",
                path=path,
                row=start,
            )
        row: Row = dict(zip(header, fields, strict=False))
        for name in header[len(fields) :]:
            row[name] = None
        row[ROW_KEY] = start
        yield row


def read_csv(path: Path) -> Iterator[Row]:
    """RFC 4180 CSV with a header line (line 1); quoted fields may hold newlines."""
    return _delimited(Path(path), ",", csv.QUOTE_MINIMAL)


def read_tsv(path: Path) -> Iterator[Row]:
    """Tab-separated values with a header line; no quoting, as in the IANA TSV format."""
    return _delimited(Path(path), "\t", csv.QUOTE_NONE)


def read_jsonl(path: Path) -> Iterator[Row]:
    """One JSON object per line; blank lines are skipped."""
    path = Path(path)
    for number, line in enumerate(read_utf8(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON: {exc.msg}", path=path, row=number) from None
        if not isinstance(value, dict):
            raise DataError(
                f"expected a JSON object, found {type(value).__name__}", path=path, row=number
            )
        value[ROW_KEY] = number
        yield value


def read_json(path: Path) -> Iterator[Row]:
    """A JSON array of objects; each object's row is the line where it starts."""
    path = Path(path)
    text = read_utf8(path)
    newlines = [m.start() for m in re.finditer("\n", text)]

    def line_of(pos: int) -> int:
        return bisect.bisect_left(newlines, pos) + 1

    decoder = json.JSONDecoder()
    ws = re.compile(r"\s*")
    pos = ws.match(text, 0).end()  # type: ignore[union-attr]
    if pos >= len(text):
        return
    if text[pos] != "[":
        raise DataError("expected a JSON array of objects", path=path, row=line_of(pos))
    pos = ws.match(text, pos + 1).end()  # type: ignore[union-attr]
    if pos < len(text) and text[pos] == "]":
        return
    while True:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON: {exc.msg}", path=path, row=line_of(exc.pos)) from None
        if not isinstance(value, dict):
            raise DataError(
                f"expected a JSON object, found {type(value).__name__}", path=path, row=line_of(pos)
            )
        value[ROW_KEY] = line_of(pos)
        yield value
        pos = ws.match(text, end).end()  # type: ignore[union-attr]
        if pos < len(text) and text[pos] == ",":
            pos = ws.match(text, pos + 1).end()  # type: ignore[union-attr]
            continue
        if pos < len(text) and text[pos] == "]":
            return
        raise DataError("expected ',' or ']' in the JSON array", path=path, row=line_of(pos))


def read_parquet(path: Path) -> Iterator[Row]:
    """A Parquet table; a record's ``__row__`` is its 1-based position (there are no lines)."""
    path = Path(path)
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a core dependency
        raise DataError("reading Parquet needs pyarrow: pip install pyarrow", path=path) from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"cannot read Parquet: {exc}", path=path) from None
    for number, record in enumerate(table.to_pylist(), start=1):
        record[ROW_KEY] = number
        yield record


def read_conll(path: Path) -> Iterator[Row]:
    """Token files: ``token<TAB>tag`` (or space-separated, the tag last), blank lines between
    sentences, ``-DOCSTART-`` lines skipped. A line without a tag has ``tag`` None in its place,
    for the loader to report."""
    path = Path(path)
    tokens: list[str] = []
    tags: list[str | None] = []
    token_rows: list[int] = []

    def flush() -> Row:
        return {"tokens": tokens, "tags": tags, "token_rows": token_rows, ROW_KEY: token_rows[0]}

    for number, line in enumerate(read_utf8(path).splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("-DOCSTART-"):
            if tokens:
                yield flush()
                tokens, tags, token_rows = [], [], []
            continue
        if "\t" in stripped:
            parts = stripped.split("\t")
            token, tag = parts[0], (parts[-1].strip() if len(parts) > 1 else None)
        else:
            parts = stripped.split()
            token, tag = parts[0], (parts[-1] if len(parts) > 1 else None)
        tokens.append(token)
        tags.append(tag or None)
        token_rows.append(number)
    if tokens:
        yield flush()


BUILTIN_READERS: dict[str, Callable[[Path], Any]] = {
    ".csv": read_csv,
    ".tsv": read_tsv,
    ".jsonl": read_jsonl,
    ".json": read_json,
    ".parquet": read_parquet,
    ".conll": read_conll,
    ".txt": read_conll,
}


def available_readers() -> dict[str, Callable[[Path], Any]]:
    """Readers from every plugin, by suffix; a later-registered plugin wins for a suffix."""
    from tunesmith.plugins import get_plugin_manager

    merged: dict[str, Callable[[Path], Any]] = {}
    # pluggy returns results last-registered first; reverse so later plugins override.
    for result in reversed(get_plugin_manager().hook.tunesmith_data_readers()):
        for suffix, reader in (result or {}).items():
            merged[suffix.lower() if suffix.startswith(".") else f".{suffix.lower()}"] = reader
    return merged


def reader_for(path: str | Path) -> Callable[[Path], Any]:
    """The reader for ``path``'s suffix (``.jsonl``; compound ones like ``.jsonl.gz`` first)."""
    path = Path(path)
    readers = available_readers()
    suffixes = [s.lower() for s in path.suffixes]
    for i in range(len(suffixes)):
        candidate = "".join(suffixes[i:])
        if candidate in readers:
            return readers[candidate]
    known = ", ".join(sorted(readers))
    shown = "".join(path.suffixes) or "no suffix"
    raise DataError(f"no reader for files with {shown}; known suffixes: {known}", path=path)
