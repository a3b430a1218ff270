"""Built-in readers: one file in, row dicts out, each carrying its 1-based line in ``__row__``.

Readers are found by file suffix through the ``tunesmith_data_readers`` hook, so a plugin can add
a format or replace one of these. Token files (``.conll``, ``.txt``) yield one dict per sentence:
``{"tokens": [...], "tags": [...], "token_rows": [...], "__row__": first line}``.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import io
import json
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tunesmith.data.excel import EXCEL_SUFFIXES, REFUSED_SPREADSHEETS, data_file, read_sheet
from tunesmith.data.excel import refuse_spreadsheet as _refuse_spreadsheet
from tunesmith.data.file_errors import read_failure
from tunesmith.data.limits import (
    MAX_FIELD_CHARS,
    MAX_FILE_BYTES,
    MAX_INT_DIGITS,
    MAX_JSON_DEPTH,
    json_depth_exceeds,
)
from tunesmith.errors import DataError
from tunesmith.plugins import collect_dict

ROW_KEY = "__row__"

Row = dict[str, Any]

#: Line breaks as editors and ``wc -l`` count them. Not ``str.splitlines()``: it also breaks at
#: U+2028, U+0085 and other characters that are valid inside a JSON string or a token.
LINE_BREAK = re.compile(r"\r\n|\r|\n")


def check_file_size(path: Path) -> None:
    """Refuse what cannot be read whole before reading it: a file larger than ``MAX_FILE_BYTES``,
    and anything that is not a regular file (``/dev/zero`` never ends, a pipe may never send)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise read_failure(exc, path) from None
    if stat.S_ISDIR(info.st_mode):
        raise DataError("this is a folder; give a data file", path=path)
    if not stat.S_ISREG(info.st_mode):
        raise DataError("not a regular file (a device or a pipe?); give a data file", path=path)
    size = info.st_size
    if size > MAX_FILE_BYTES:
        raise DataError(
            f"the file is {size / 2**30:.1f} GiB; files up to {MAX_FILE_BYTES / 2**30:.0f} GiB "
            "are read (split it into smaller files)",
            path=path,
        )


def split_lines(text: str) -> list[str]:
    """``text`` cut at CR LF, LF and CR only, so line numbers match the user's editor."""
    return LINE_BREAK.split(text)


def read_bytes(path: Path) -> bytes:
    """The file's bytes, after :func:`check_file_size`; a path at fault is a ``DataError``, a
    machine at fault (no file descriptor left, an I/O error) the ``OSError``
    (:func:`~tunesmith.data.file_errors.read_failure`)."""
    check_file_size(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise read_failure(exc, path) from None


def read_utf8(path: Path) -> str:
    """The file's text; a file that is not UTF-8 fails naming the line of the first bad byte."""
    return decode_utf8(read_bytes(path), path)


#: Byte-order marks of the encodings a "Unicode" export is saved in instead of UTF-8 (Excel's
#: "Unicode Text" is UTF-16); UTF-32's first, since its little-endian mark starts with UTF-16's.
_OTHER_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32", "utf-32"),
    (codecs.BOM_UTF32_BE, "UTF-32", "utf-32"),
    (codecs.BOM_UTF16_LE, "UTF-16", "utf-16"),
    (codecs.BOM_UTF16_BE, "UTF-16", "utf-16"),
)
#: Bytes looked at for UTF-16 without a byte-order mark.
_SNIFF_BYTES = 4096


def _mostly_nul(data: bytes, share: float = 0.9) -> bool:
    """Whether at least ``share`` of ``data``'s bytes are NUL."""
    return data.count(0) >= share * len(data)


def utf16_problem(data: bytes) -> str | None:
    """Why ``data`` is UTF-16 or UTF-32 rather than UTF-8, with the command that converts it;
    None when it is neither. Without a byte-order mark, UTF-16 of Latin letters is valid UTF-8
    with a NUL beside each letter: read as such, its header named no column the user wrote."""
    for bom, name, codec in _OTHER_BOMS:
        if data.startswith(bom):
            found, source = f"{name} (its byte-order mark says so)", codec
            break
    else:
        # Latin letters in UTF-16: a NUL after each (little-endian) or before it; a binary
        # file's NULs fall on both sides.
        head = data[: _SNIFF_BYTES * 2]
        if len(head) < 2:
            return None
        odd, even = head[1::2], head[0::2]
        if _mostly_nul(odd) and not _mostly_nul(even, 0.1):
            source = "utf-16le"
        elif _mostly_nul(even) and not _mostly_nul(odd, 0.1):
            source = "utf-16be"
        else:
            return None
        found = "UTF-16 (a NUL byte beside each letter)"
    return f"the file is {found}, not UTF-8; re-save it as UTF-8, e.g. `iconv -f {source} -t utf-8`"


def decode_utf8(data: bytes, path: str | Path) -> str:
    """``data`` as text (a BOM dropped); bytes that are not UTF-8 fail naming their line, and a
    UTF-16 or UTF-32 file says so (not "byte 0xff", with a Latin-1 hint that garbles it)."""
    if problem := utf16_problem(data):
        raise DataError(problem, path=path)
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


def _csv_problem(exc: csv.Error) -> str:
    """The csv module's message, said in terms of the file."""
    message = str(exc)
    if "unexpected end of data" in message:
        return (
            "a quoted field starts on this line and its closing quote never comes (an unclosed "
            '"); close it, or write a quote inside a quoted field as ""'
        )
    if "expected after" in message:
        return (
            "text follows the closing quote of a quoted field; quote the whole field and "
            'write each quote inside it as ""'
        )
    if "field larger than field limit" in message:
        return f"a field is longer than {MAX_FIELD_CHARS:,} characters (an unclosed quote?)"
    return f"cannot parse this row: {message}"


def check_unique_header(
    header: list[str],
    path: str | Path,
    *,
    row: int = 1,
    positions: list[str] | None = None,
) -> None:
    """A column named twice would silently lose one of them to the other in each row.

    ``row`` is the header's row; ``positions`` names each column as the user sees it (Excel's
    letters), by default its 1-based number."""
    seen: dict[str, str] = {}
    for index, name in enumerate(header):
        position = positions[index] if positions is not None else str(index + 1)
        if name and name in seen:
            raise DataError(
                f"the header names this column twice (columns {seen[name]} and {position}); "
                "rename one",
                path=path,
                row=row,
                column=name,
            )
        seen.setdefault(name, position)


class ShortRow(dict):
    """A CSV or TSV row with fewer fields than the header (a missing separator, a line cut
    short): the fields it lacks are None, like any absent value, and ``fields`` and
    ``header_fields`` say how many it had and how many the header names, so that a check that
    needs one of those columns can say so (:func:`short_row_problem`)."""

    fields: int = 0
    header_fields: int = 0


def short_row_problem(row: Row, column: str) -> str | None:
    """``"this row has 2 fields but the header has 3"`` when ``row[column]`` is None because
    the CSV/TSV row ended before that column; None otherwise (a value, or a JSON null).

    A reader fills a short row's missing trailing fields with None, so that optional columns
    may be left off; a check that needs ``column`` says this instead of "missing value".
    """
    if not isinstance(row, ShortRow) or row.get(column, "") is not None:
        return None
    return (
        f"this row has {row.fields} field{'s' if row.fields != 1 else ''} but the header has "
        f"{row.header_fields} (a missing separator, or a line cut short?)"
    )


#: Separators a ``.csv`` file may use instead of commas, when its header line shows it.
SNIFFED_SEPARATORS = {";": "';'", "\t": "tab"}


def csv_separator(text: str) -> str:
    """The separator of a ``.csv`` file's ``text``: a comma, unless the header line has none
    and has a ``;`` (Excel's CSV where the decimal mark is a comma) or else a tab; then that.

    Only the header decides, and only when it is unambiguous: a header with a comma is
    comma-separated, whatever its rows hold.
    """
    header = LINE_BREAK.split(text, maxsplit=1)[0]
    if "," in header:
        return ","
    return next((sep for sep in SNIFFED_SEPARATORS if sep in header), ",")


def _delimited(path: Path, delimiter: str, quoting: int) -> Iterator[Row]:
    text = decode_table(read_bytes(path), path, delimiter, quoting)
    return delimited_rows(text, path, delimiter, quoting)


#: What a byte that is not UTF-8 becomes when decoded with ``surrogateescape``.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def decode_table(data: bytes, path: str | Path, delimiter: str | None, quoting: int) -> str:
    """:func:`decode_utf8` for a CSV or TSV file (``delimiter`` None: sniffed as
    :func:`read_csv` does); a byte that is not UTF-8 in a cell also names the cell's column."""
    try:
        return decode_utf8(data, path)
    except DataError as exc:
        if exc.row is None:  # not a bad byte (a UTF-16 file)
            raise
        column = _column_of_bad_byte(data, delimiter, quoting)
        if column is None:
            raise
        raise DataError(exc.message, path=path, row=exc.row, column=column) from None


def _column_of_bad_byte(data: bytes, delimiter: str | None, quoting: int) -> str | None:
    """The header name of the first cell holding a byte that is not UTF-8; None when that byte
    is in the header, or the table cannot be parsed that far."""
    text = data.decode("utf-8-sig", "surrogateescape")
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter or csv_separator(text), quoting=quoting
    )
    try:
        header = next(reader)
        if any(_ESCAPED_BYTE.search(name) for name in header):
            return None
        for fields in reader:
            for index, value in enumerate(fields):
                if _ESCAPED_BYTE.search(value):
                    return header[index].strip() if index < len(header) else None
    except (StopIteration, csv.Error):
        pass
    return None


def nul_problem(fields: list[str], header: list[str]) -> tuple[str, str | None] | None:
    """``(problem, column)`` for the first field of a row holding a NUL byte: no text file
    has one (a damaged file, or part of a binary one), and it would be trained on unseen."""
    for index, value in enumerate(fields):
        at = value.find("\x00")
        if at >= 0:
            column = header[index] if index < len(header) else None
            return (
                f"this cell holds a NUL byte (character {at + 1}), which no text has: "
                "the file is damaged or not text; remove it",
                column,
            )
    return None


def delimited_rows(text: str, path: str | Path, delimiter: str, quoting: int) -> Iterator[Row]:
    """The rows of delimited ``text`` under its header line (``path`` names it in errors)."""
    # Raised, never lowered: the default (131,072) is below the documented field limit.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_CHARS))
    # strict: an unclosed quote is an error at the line it opens on, not one merged text that
    # swallows the rest of the file (which predict would label and train would call "missing").
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True
    )
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise DataError(_csv_problem(exc), path=path, row=1) from None
    header = [name.strip() for name in header]
    # Looked for in each row only when the file has one. A header's NUL is shown escaped where
    # the columns are listed, which is where a user meets it.
    has_nul = "\x00" in text
    check_unique_header(header, path)
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
            raise DataError(_csv_problem(exc), path=path, row=start) from None
        last_line = reader.line_num
        if not fields:  # a blank line
            continue
        if has_nul and (found := nul_problem(fields, header)):
            raise DataError(found[0], path=path, row=start, column=found[1])
        if len(fields) > len(header):
            raise DataError(
                f"this row has {len(fields)} fields but the header has {len(header)} "
                "(an unquoted separator inside a text?)",
                path=path,
                row=start,
            )
        row: Row
        if len(fields) < len(header):
            short = ShortRow(zip(header, fields, strict=False))
            short.fields, short.header_fields = len(fields), len(header)
            # None, as an absent value: an optional column left off the end stays optional.
            for name in header[len(fields) :]:
                short[name] = None
            row = short
        else:
            row = dict(zip(header, fields, strict=True))
        row[ROW_KEY] = start
        yield row


def read_csv(path: Path) -> Iterator[Row]:
    """RFC 4180 CSV with a header line (line 1); quoted fields may hold newlines. A header line
    without a comma but with a ``;`` (or a tab) makes that the separator (:func:`csv_separator`)."""
    path = Path(path)
    text = decode_table(read_bytes(path), path, None, csv.QUOTE_MINIMAL)
    return delimited_rows(text, path, csv_separator(text), csv.QUOTE_MINIMAL)


def read_tsv(path: Path) -> Iterator[Row]:
    """Tab-separated values with a header line; no quoting, as in the IANA TSV format."""
    return _delimited(Path(path), "\t", csv.QUOTE_NONE)


def _limits_problem(exc: Exception) -> str:
    """The message for a JSON value past a limit (``RecursionError`` or ``ValueError``)."""
    if isinstance(exc, RecursionError):
        return f"a JSON value is nested more than {MAX_JSON_DEPTH} levels deep"
    if "digits" in str(exc):
        return f"a JSON number has more than {MAX_INT_DIGITS:,} digits"
    return f"invalid JSON: {exc}"


def _check_depth(value: Any, path: str | Path, row: int) -> None:
    if json_depth_exceeds(value):
        raise DataError(
            f"a JSON value is nested more than {MAX_JSON_DEPTH} levels deep", path=path, row=row
        )


def read_jsonl(path: Path) -> Iterator[Row]:
    """One JSON object per line; blank lines are skipped."""
    path = Path(path)
    return jsonl_rows(read_utf8(path), path)


def jsonl_rows(text: str, path: str | Path) -> Iterator[Row]:
    """The objects of JSON-lines ``text`` (``path`` names it in errors)."""
    for number, line in enumerate(split_lines(text), start=1):
        if not line.strip(" \t"):  # JSON's own whitespace; U+2028 alone is not a blank line
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON: {exc.msg}", path=path, row=number) from None
        except (RecursionError, ValueError) as exc:
            raise DataError(_limits_problem(exc), path=path, row=number) from None
        _check_depth(value, path, number)
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
    newlines = [m.start() for m in LINE_BREAK.finditer(text)]

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
        except (RecursionError, ValueError) as exc:
            raise DataError(_limits_problem(exc), path=path, row=line_of(pos)) from None
        _check_depth(value, path, line_of(pos))
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
    check_file_size(path)
    try:
        table = pq.read_table(path)
    except MemoryError:  # pyarrow's ArrowMemoryError too: the machine's limit, not the file's
        raise
    except OSError as exc:
        if exc.errno is None:  # pyarrow's own IOError: a damaged file
            raise DataError(f"cannot read Parquet: {exc}", path=path) from None
        raise read_failure(exc, path) from None
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(_parquet_problem(exc), path=path) from None
    batch = 1024
    for start in range(0, table.num_rows, batch):
        for offset, record in enumerate(_parquet_records(table, start, batch, path)):
            record[ROW_KEY] = start + offset + 1
            yield record


def _parquet_problem(exc: Exception) -> str:
    """pyarrow's words for a file it cannot open, said in terms of the file."""
    message = str(exc)
    if "magic bytes not found" in message:
        # A Parquet file ends with its footer: without it, it was cut short (a copy or a write
        # that did not finish) or is some other file named .parquet.
        return (
            "not a complete Parquet file: its footer is missing (cut short while copied or "
            "written, or another format named .parquet); write or copy it again"
        )
    return f"cannot read Parquet: {message}"


def _parquet_records(table: Any, start: int, length: int, path: Path) -> list[Row]:
    """Rows ``start`` to ``start + length`` as dicts; a value that cannot be converted (a
    damaged page, a string that is not UTF-8) is a DataError at its row."""
    try:
        return table.slice(start, length).to_pylist()
    except MemoryError:
        raise
    except Exception:  # pyarrow and the codecs raise several types; find the row, then say it
        pass
    for row in range(start, min(start + length, table.num_rows)):
        try:
            table.slice(row, 1).to_pylist()
        except MemoryError:
            raise
        except Exception as exc:
            raise DataError(
                f"cannot read this row of the Parquet file: {exc}", path=path, row=row + 1
            ) from None
    raise DataError("cannot read the Parquet file (damaged?)", path=path, row=start + 1)


def read_conll(path: Path) -> Iterator[Row]:
    """Token files: ``token<TAB>tag`` (more tab-separated columns allowed, the tag last), blank
    lines between sentences, ``-DOCSTART-`` lines skipped.

    A file with no tab at all is read as space-separated columns (CoNLL-2003's ``EU NNP B-NP
    B-ORG``); there every token line must have as many columns as the first, so a token holding
    a space (``New York B-LOC``) is an error at its line instead of a dropped word. In a file with
    tabs, a token line without one is an error. A line with a token only has ``tag`` None, for
    the loader to report.
    """
    path = Path(path)
    text = read_utf8(path)
    tabbed = "\t" in text
    width: tuple[int, int] | None = None  # space-separated: (columns, line) of the first token
    tokens: list[str] = []
    tags: list[str | None] = []
    token_rows: list[int] = []

    def flush() -> Row:
        return {"tokens": tokens, "tags": tags, "token_rows": token_rows, ROW_KEY: token_rows[0]}

    for number, line in enumerate(split_lines(text), start=1):
        # Only spaces and tabs are blank: U+2028, U+0085 or U+00A0 may be a token.
        if not line.strip(" \t") or line.lstrip(" \t").startswith("-DOCSTART-"):
            if tokens:
                yield flush()
                tokens, tags, token_rows = [], [], []
            continue
        if tabbed:
            if "\t" not in line:
                one_word = " " not in line.strip(" ")
                raise DataError(
                    "this token has no tag (expected 'token<TAB>tag')"
                    if one_word
                    else "this line has no tab; expected 'token<TAB>tag' (a token may hold "
                    "spaces, the tab separates it from its tag)",
                    path=path,
                    row=number,
                    column="tag",
                )
            parts = [part.strip(" ") for part in line.split("\t")]
        else:
            parts = [part for part in line.split(" ") if part]
            if width is None:
                width = (len(parts), number)
            elif len(parts) != width[0]:
                raise DataError(
                    f"this line has {len(parts)} space-separated columns but line {width[1]} "
                    f"has {width[0]}; {path.suffix} files are read as CoNLL token files, where "
                    "a token cannot hold a space (separate token and tag with a tab)",
                    path=path,
                    row=number,
                    column="tag",
                )
        token = parts[0]
        if not token:
            raise DataError("empty token before the tab", path=path, row=number, column="token")
        tokens.append(token)
        tags.append(parts[-1] if len(parts) > 1 and parts[-1] else None)
        token_rows.append(number)
    if tokens:
        yield flush()


def read_xlsx(path: Path) -> Iterator[Row]:
    """An Excel worksheet's rows under its header (:mod:`tunesmith.data.excel`), each with its
    row number as Excel shows it; ``book.xlsx#Sheet 2`` reads that sheet, else the first."""
    check_file_size(data_file(path))
    sheet = read_sheet(path)
    check_unique_header(
        [name for _, name in sheet.columns],
        sheet.shown,
        row=sheet.header_row,
        positions=[letter for letter, _ in sheet.columns],
    )
    for number, row in sheet.rows:
        row[ROW_KEY] = number
        yield row


BUILTIN_READERS: dict[str, Callable[[Path], Any]] = {
    ".csv": read_csv,
    ".tsv": read_tsv,
    ".jsonl": read_jsonl,
    ".json": read_json,
    ".parquet": read_parquet,
    ".conll": read_conll,
    ".txt": read_conll,
    **dict.fromkeys(EXCEL_SUFFIXES, read_xlsx),
    **dict.fromkeys(REFUSED_SPREADSHEETS, _refuse_spreadsheet),
}


def available_readers() -> dict[str, Callable[[Path], Any]]:
    """Readers from every plugin, by suffix; a later-registered plugin wins for a suffix."""
    merged: dict[str, Callable[[Path], Any]] = {}
    for suffix, reader in collect_dict("tunesmith_data_readers").items():
        merged[suffix.lower() if suffix.startswith(".") else f".{suffix.lower()}"] = reader
    return merged


def reader_for(path: str | Path) -> Callable[[Path], Any]:
    """The reader for ``path``'s suffix (``.jsonl``; compound ones like ``.jsonl.gz`` first);
    a workbook's sheet (``book.xlsx#Sheet 2``) is not part of the suffix."""
    path = data_file(path)
    if path.is_dir():  # before the suffix: a folder has no reader, whatever its name
        raise DataError("this is a folder; give a data file", path=path)
    readers = available_readers()
    suffixes = [s.lower() for s in path.suffixes]
    for i in range(len(suffixes)):
        candidate = "".join(suffixes[i:])
        if candidate in readers:
            return readers[candidate]
    known = ", ".join(sorted(readers))
    shown = "".join(path.suffixes) or "no suffix"
    raise DataError(f"no reader for files with {shown}; known suffixes: {known}", path=path)


#: How ``--data -`` names standard input in messages.
STDIN_NAME = "<stdin>"
#: Formats standard input can be read in (``--format``); ``lines`` is one text a line.
STDIN_FORMATS = ("lines", "jsonl", "csv", "tsv")


def line_rows(text: str, column: str) -> Iterator[Row]:
    """One row per line of ``text`` that is not blank, its whole line as ``column``."""
    for number, line in enumerate(split_lines(text), start=1):
        if line.strip():
            yield {column: line, ROW_KEY: number}


def read_stdin(fmt: str, *, column: str = "text", stream: Any = None) -> list[Row]:
    """The rows of standard input (``stream``, default ``sys.stdin.buffer``) read as ``fmt``:
    ``lines`` (each line a text, as ``column``), ``jsonl``, ``csv`` or ``tsv``; errors name
    ``<stdin>`` and the line. At most ``MAX_FILE_BYTES`` are read, as for a file."""
    import sys

    if fmt not in STDIN_FORMATS:
        raise DataError(
            f"unknown format {fmt!r} for standard input; use one of: {', '.join(STDIN_FORMATS)}",
            path=STDIN_NAME,
        )
    source = stream if stream is not None else sys.stdin.buffer
    data = source.read(MAX_FILE_BYTES + 1)
    if isinstance(data, str):  # a text stream (a test's, or an embedding program's)
        data = data.encode("utf-8", "surrogatepass")
    if len(data) > MAX_FILE_BYTES:
        raise DataError(
            f"standard input is larger than {MAX_FILE_BYTES / 2**30:.0f} GiB; "
            "split it into smaller parts",
            path=STDIN_NAME,
        )
    if fmt == "csv":
        text = decode_table(data, STDIN_NAME, None, csv.QUOTE_MINIMAL)
        return list(delimited_rows(text, STDIN_NAME, csv_separator(text), csv.QUOTE_MINIMAL))
    if fmt == "tsv":
        text = decode_table(data, STDIN_NAME, "\t", csv.QUOTE_NONE)
        return list(delimited_rows(text, STDIN_NAME, "\t", csv.QUOTE_NONE))
    text = decode_utf8(data, STDIN_NAME)
    if fmt == "lines":
        return list(line_rows(text, column))
    return list(jsonl_rows(text, STDIN_NAME))
