"""Load and validate data files: every bad input is one ``DataError`` naming file, row, column."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tunesmith.data.excel import EXCEL_SUFFIXES, data_file, expect_columns, sheet_names
from tunesmith.data.file_errors import read_failure
from tunesmith.data.limits import MAX_FIELD_CHARS, names_for_message, text_problem
from tunesmith.data.readers import (
    ROW_KEY,
    STDIN_NAME,
    read_stdin,
    reader_for,
    short_row_problem,
)
from tunesmith.data.records import TextDataset, TokenDataset, sort_labels
from tunesmith.errors import DataError, UserInputError

#: Cell values that are a missing value, not real text: the strings pandas' ``read_csv`` (and
#: so Hugging Face ``datasets``' CSV loader) reads as missing by default, and ``NAN``. Compared
#: after stripping spaces, case-sensitively, as pandas does: ``none`` and ``Null`` are text.
MISSING_STRINGS = frozenset(
    {"#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
     "<NA>", "N/A", "NA", "NAN", "NULL", "NaN", "None", "n/a", "nan", "null"}
)  # fmt: skip
SCHEMES = ("BIO", "IO")
_TAG = re.compile(r"^(?:O|([BI])-(\S+))$")


class _Problems:
    """Collects problems so the one line shown is the first, with a count of the rest."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.first: DataError | None = None
        self.count = 0

    def add(self, message: str, row: int | None, column: str | None) -> None:
        self.count += 1
        if self.first is None:
            self.first = DataError(message, path=self.path, row=row, column=column)

    def raise_if_any(self) -> None:
        if self.first is None:
            return
        first = self.first
        if self.count > 1:
            more = self.count - 1
            first = DataError(
                f"{first.message} (and {more} more problem{'s' if more > 1 else ''} in this file)",
                path=first.path,
                row=first.row,
                column=first.column,
            )
        raise first


def _existing_file(path: str | Path) -> Path:
    """``path`` when it names a data file that is there (``book.xlsx#Sheet``: the workbook)."""
    path = Path(path)
    if str(path) == "-" and not path.exists():
        raise DataError("'-' (standard input) is not read here; give a data file", path=STDIN_NAME)
    try:
        found, folder = data_file(path).exists(), path.is_dir()
    except OSError as exc:  # a folder on the way that is not the user's to open
        raise read_failure(exc, data_file(path)) from None
    if not found:
        raise DataError("file not found", path=data_file(path))
    if folder:
        raise DataError("this is a folder; give a data file", path=path)
    return path


def _read_rows(path: Path) -> list[dict[str, Any]]:
    rows = [row for row in reader_for(path)(path)]
    if not rows:
        raise DataError(_no_rows(path), path=path)
    for i, row in enumerate(rows):
        row.setdefault(ROW_KEY, i + 1)
    return rows


def _no_rows(path: Path) -> str:
    """What is empty: the file, or the workbook's sheet (naming the others, since the one read
    by default may be a cover sheet)."""
    if data_file(path).suffix.lower() not in EXCEL_SUFFIXES:
        return "the file has no data rows"
    name, names = sheet_names(path)
    others = f"; the sheets are: {', '.join(repr(n) for n in names)}" if len(names) > 1 else ""
    return f"the sheet '{name}' has no data rows{others}"


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows[:1000]:  # enough to list what a file has, cheap on big files
        for key in row:
            if key != ROW_KEY:
                seen.setdefault(str(key), None)
    return list(seen)


def _token_file(path: Path, what: str) -> DataError:
    """The error for a token file where a table of texts is needed."""
    return DataError(
        f"{path.suffix or 'this'} files are read as CoNLL token files (a token and its tag a "
        f"line, a blank line between sentences); {what} needs a table with a text column: CSV, "
        "TSV, JSONL, JSON, Parquet or Excel (.xlsx)",
        path=path,
    )


def _check_column(
    rows: Sequence[dict[str, Any]], column: str, path: Path, also: Sequence[str] = ()
) -> None:
    """Refuse a file none of whose rows has ``column`` (nor any of ``also``)."""
    if any(name in row for name in (column, *also) for row in rows):
        return
    if "tokens" in rows[0] and "token_rows" in rows[0]:  # not a table: no column to list
        raise _token_file(path, "text classification")
    names = _columns(rows)
    columns = names_for_message(names)
    # No row: the column is missing from the file (a CSV's header is line 1, not the first
    # data row, which the message named), not from one row.
    nor = f" (nor {', '.join(also)})" if also else ""
    raise DataError(
        f"there is no column '{column}'{nor}; the columns are: {columns}"
        + _separator_hint(names, column, path),
        path=path,
        column=column,
    )


#: Separators a header may show inside one column name, as a user would call them.
_SEPARATOR_NAMES = {";": "';'", "\t": "tab", ",": "comma", "|": "'|'"}


def _separator_hint(names: Sequence[str], column: str, path: Path) -> str:
    """What to do when ``column`` is inside one of ``names`` behind a separator the file was
    not read with (``text;label`` read as one column), else ``""``."""
    for name in names:
        for separator, said in _SEPARATOR_NAMES.items():
            parts = [part.strip().strip('"') for part in name.split(separator)]
            if separator not in name or column not in parts:
                continue
            looks = f". The file looks {said}-separated"
            if path.suffix.lower() == ".tsv":
                what = "rename it to .csv" if separator == "," else "save it with tabs"
                return f"{looks}, but a .tsv file is read as tab-separated: {what}"
            if separator in (";", "\t"):
                return (
                    f"{looks}, but its header line also holds a comma (a .csv file is read as "
                    "';'- or tab-separated only when its header line has no comma): save it "
                    "with one separator throughout"
                )
            return f"{looks}; tunesmith reads comma-separated CSV: save it with commas"
    return ""


def _missing(value: Any) -> str | None:
    """Why ``value`` is a missing value, or None when it is present."""
    if value is None:
        return "missing value (null)"
    if isinstance(value, float) and math.isnan(value):
        return "missing value (NaN)"
    if isinstance(value, str):
        if not value.strip():
            return "empty value"
        if value.strip() in MISSING_STRINGS:
            return f"missing value written as '{value.strip()}'"
    return None


def _kind(value: Any) -> str:
    """A value's type in the user's words (JSON's names, not Python's)."""
    names = {dict: "an object", list: "a list", tuple: "a list", bytes: "bytes"}
    return names.get(type(value), type(value).__name__)


def _as_label(value: Any) -> tuple[str | None, str | None]:
    """``(label, None)`` for text, a whole number or true/false; ``(None, why)`` for any other
    value, so a dict or bytes is never trained as its Python repr."""
    if isinstance(value, bool):
        # JSON's and Parquet's spelling, as a CSV cell writes it: Python's "True" made a
        # JSONL-trained model refuse a CSV evaluation file's "true" as a label it never saw.
        return ("true" if value else "false"), None
    if isinstance(value, int):
        return str(value), None
    if isinstance(value, float):
        if value.is_integer():  # Parquet and pandas store an int column with gaps as floats
            return str(int(value)), None
        return None, f"label {value} is a fractional number; a label is a name or a whole number"
    if isinstance(value, str):
        label = value.strip()
        problem = text_problem(label)
        return (None, problem.replace("the text", "the label")) if problem else (label, None)
    return None, f"a label must be text, a whole number or true/false, found {_kind(value)}"


def _text_of(row: dict[str, Any], column: str, problems: _Problems) -> str | None:
    if column not in row:
        problems.add("this row has no such field", row[ROW_KEY], column)
        return None
    value = row[column]
    if short := short_row_problem(row, column):
        problems.add(short, row[ROW_KEY], column)
        return None
    reason = _missing(value)
    if reason is not None:
        problems.add(f"{reason} where a text is needed", row[ROW_KEY], column)
        return None
    if not isinstance(value, str):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        problems.add(f"expected text, found {_kind(value)}", row[ROW_KEY], column)
        return None
    problem = text_problem(value)
    if problem is not None:
        problems.add(problem, row[ROW_KEY], column)
        return None
    return value


def _labels_of(
    row: dict[str, Any], column: str, sep: str | None, required: bool, problems: _Problems
) -> tuple[list[str], str | None]:
    """The row's labels, and how they were written: ``"list"`` (a JSON list or a ``sep``-split
    cell, which make the data multi-label), ``"single"``, or None (missing)."""
    where = (row[ROW_KEY], column)
    if column not in row:
        if required:
            problems.add("this row has no such field", *where)
        return [], None
    value = row[column]
    if isinstance(value, list | tuple):
        labels = []
        for item in value:
            if _missing(item) is not None:
                problems.add(f"{_missing(item)} inside the label list", *where)
                return [], "list"
            label, problem = _as_label(item)
            if label is None:
                problems.add(f"{problem} inside the label list", *where)
                return [], "list"
            labels.append(label)
        if not labels and required:
            problems.add("empty label list", *where)
        return labels, "list"
    reason = _missing(value)
    if reason is not None:
        if required:
            problems.add(
                short_row_problem(row, column) or f"{reason} where a label is needed", *where
            )
        return [], None
    text, problem = _as_label(value)
    if text is None:
        problems.add(str(problem), *where)
        return [], None
    if sep is None:
        if _is_written_list(text):
            # A CSV cell is text: '["billing", "refund"]' trained a label of that very name.
            problems.add(
                f"the label {text} is a list written as text, which reads as one label; give "
                "several labels per text as a list in a JSONL file, or in one cell split with "
                "--label-sep ('billing|refund' with --label-sep '|')",
                *where,
            )
            return [], None
        return [text], "single"
    parts = [part.strip() for part in text.split(sep)]
    if any(not part for part in parts):
        problems.add(f"empty label between '{sep}' separators in '{text}'", *where)
        return [], "list"
    # Order kept, repeats dropped: "a|b|a" is {a, b}.
    return list(dict.fromkeys(parts)), "list"


def _is_written_list(text: str) -> bool:
    """Whether a label cell holds a JSON list of strings (``["a", "b"]``) as text."""
    if not (text.startswith("[") and text.endswith("]")):
        return False
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _rows(count: int) -> str:
    return "1 other row has" if count == 1 else f"{count:,} other rows have"


def _check_label_forms(forms: dict[str, list[int]], column: str, problems: _Problems) -> None:
    """Lists and single labels in one file: refused, naming the first row of the rarer form.

    One list among single labels used to turn the whole set multi-label without a word; which
    was meant cannot be known, so the user says it (every label a list, or none).
    """
    lists, singles = forms.get("list", []), forms.get("single", [])
    if not lists or not singles:
        return
    if len(lists) <= len(singles):
        row = lists[0]
        message = (
            f"this label is a list but {_rows(len(singles))} a single label; for "
            'multi-label data write every label as a list (["a"]), else write one label'
        )
    else:
        row = singles[0]
        message = (
            f"this label is a single value but {_rows(len(lists))} a list; for "
            'multi-label data write every label as a list (["a"])'
        )
    problems.add(message, row, column)


def load_text_dataset(
    path: str | Path,
    *,
    text_col: str = "text",
    label_col: str = "label",
    label_sep: str | None = None,
    require_labels: bool = True,
) -> TextDataset:
    """Read and validate a labelled text file (any suffix a reader is registered for).

    ``label_sep`` splits multi-label values (``"billing|refund"``) and makes the data set
    multi-label, as do JSON list values. With ``require_labels=False`` a missing label column
    gives an unlabelled data set. Raises ``DataError`` naming file, row and column.
    """
    if label_sep is not None and not label_sep:
        # Every command passes --label-sep here; str.split("") would be a ValueError traceback.
        raise UserInputError(
            "--label-sep '' is not valid; expected a non-empty separator such as '|'"
        )
    path = _existing_file(path)
    with expect_columns([text_col, label_col]):  # a workbook's header: the row naming them
        rows = _read_rows(path)
    _check_column(rows, text_col, path)
    has_label_col = any(label_col in row for row in rows)
    if require_labels:
        _check_column(rows, label_col, path)
    problems = _Problems(path)
    texts: list[str] = []
    labels: list[list[str]] = []
    line_numbers: list[int] = []
    multilabel = label_sep is not None
    forms: dict[str, list[int]] = {}
    for row in rows:
        text = _text_of(row, text_col, problems)
        row_labels: list[str] = []
        if has_label_col:
            row_labels, form = _labels_of(row, label_col, label_sep, require_labels, problems)
            if form is not None:
                forms.setdefault(form, []).append(row[ROW_KEY])
        if text is None:
            continue
        texts.append(text)
        labels.append(row_labels)
        line_numbers.append(row[ROW_KEY])
    _check_label_forms(forms, label_col, problems)
    problems.raise_if_any()
    multilabel = multilabel or "list" in forms
    names = sort_labels({label for row_labels in labels for label in row_labels})
    return TextDataset(
        texts=texts,
        labels=labels,
        label_names=names,
        multilabel=multilabel,
        source=str(path),
        rows=line_numbers,
    )


def read_texts(
    path: str | Path,
    *,
    text_col: str | Sequence[str] = "text",
    stdin_format: str | None = None,
) -> list[str]:
    """Just the texts of a file, for prediction; token files give their tokens joined by spaces.

    ``text_col`` may name several columns (``("text", "headline", "title")``, as a news feed
    writes its text under any of them): each row's text is then the first of them it has a
    value in, and errors name the first column.

    With ``stdin_format`` (``lines``, ``jsonl``, ``csv`` or ``tsv``) a ``path`` of ``-`` reads
    standard input in that format (:func:`~tunesmith.data.readers.read_stdin`); without it,
    ``-`` is refused as a file that is not there.
    """
    columns = (text_col,) if isinstance(text_col, str) else tuple(text_col)
    if not columns:
        raise ValueError("read_texts: text_col names no column")
    if stdin_format is not None and str(path) == "-":
        stdin_rows = read_stdin(stdin_format, column=columns[0])
        if not stdin_rows:
            raise DataError("standard input has no texts", path=STDIN_NAME)
        return _texts_of(stdin_rows, columns, Path(STDIN_NAME))
    path = _existing_file(path)
    with expect_columns(columns):
        rows = _read_rows(path)
    if "tokens" in rows[0] and not any(column in rows[0] for column in columns):
        # A token file's last column must be a tag: in a plain text file read this way (a
        # .txt of one text a line) it is the line's last word, and the text would silently
        # be cut to its first word.
        for row in rows:
            for tag, line in zip(row["tags"], row["token_rows"], strict=True):
                if tag is not None and _TAG.match(tag) is None:
                    raise DataError(
                        f"'{tag}' is not a tag (O, B-TYPE or I-TYPE): "
                        f"{_token_file(path, 'a file of texts').message}",
                        path=path,
                        row=line,
                        column="tag",
                    )
        return [" ".join(row["tokens"]) for row in rows]
    return _texts_of(rows, columns, path)


def _texts_of(rows: list[dict[str, Any]], columns: Sequence[str], path: Path) -> list[str]:
    """Every row's text (its first of ``columns`` with a value), or one DataError for the first
    bad one (with a count)."""
    present = [column for column in columns if any(column in row for row in rows)]
    if not present:
        _check_column(rows, columns[0], path, also=columns[1:])
    problems = _Problems(path)
    texts = [_text_of(row, _text_column(row, present), problems) for row in rows]
    problems.raise_if_any()
    return [text for text in texts if text is not None]


def _text_column(row: dict[str, Any], columns: Sequence[str]) -> str:
    """The first of ``columns`` with a value in ``row``; else the first it has (or the first of
    all), whose missing value is then reported."""
    for column in columns:
        if column in row and _missing(row[column]) is None:
            return column
    return next((column for column in columns if column in row), columns[0])


def read_table(
    path: str | Path, columns: Sequence[str], *, optional: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The rows of a data file with a plugin's own columns (an id, a text, a category ...).

    Each row is a dict of every name in ``columns`` (its text, required and non-empty) and in
    ``optional`` (its text, ``""`` when the file or the row lacks it or the cell is empty), and
    ``ROW_KEY`` (``"__row__"``), the line users see. Reads any suffix a reader is registered
    for, with the checks ``load_text_dataset`` makes: one ``DataError`` naming the file, the
    row and the column (a missing file, no rows, a column the file lacks, listing those it has,
    an empty or missing value, a short CSV row, a value that is not text), with a count of
    the other bad rows.
    """
    path = _existing_file(path)
    with expect_columns([*columns, *optional]):  # a workbook's header: the row naming them
        rows = _read_rows(path)
    for column in columns:
        _check_column(rows, column, path)
    problems = _Problems(path)
    table: list[dict[str, Any]] = []
    for row in rows:
        record: dict[str, Any] = {ROW_KEY: row[ROW_KEY]}
        for column in columns:
            record[column] = _text_of(row, column, problems)
        for column in optional:
            absent = column not in row or _missing(row[column]) is not None
            record[column] = "" if absent else _text_of(row, column, problems)
        if all(record[column] is not None for column in (*columns, *optional)):
            table.append(record)
    problems.raise_if_any()
    return table


def _detect_scheme(tags: Iterable[str]) -> str:
    return "BIO" if any(tag.startswith("B-") for tag in tags) else "IO"


def load_token_dataset(path: str | Path, *, scheme: str | None = None) -> TokenDataset:
    """Read a token file (CoNLL style) with ``BIO`` or ``IO`` tags, detected when ``scheme`` is
    None. A BIO entity that starts with ``I-`` is accepted and reported in ``notes``."""
    if scheme is not None:
        scheme = scheme.upper()
        if scheme not in SCHEMES:
            raise UserInputError(f"unknown tag scheme {scheme!r}; use one of: {', '.join(SCHEMES)}")
    path = _existing_file(path)
    sentences = _read_rows(path)
    if "tokens" not in sentences[0]:
        raise DataError(
            "not a token file: expected lines of 'token<TAB>tag' with blank lines between "
            "sentences (use a .conll file)",
            path=path,
        )
    problems = _Problems(path)
    for sentence in sentences:
        for token, line in zip(sentence["tokens"], sentence["token_rows"], strict=True):
            if len(token) > MAX_FIELD_CHARS:
                problems.add(
                    f"the token has {len(token):,} characters; the limit is {MAX_FIELD_CHARS:,}",
                    line,
                    "token",
                )
        for tag, line in zip(sentence["tags"], sentence["token_rows"], strict=True):
            if tag is None:
                problems.add("this token has no tag (expected 'token<TAB>tag')", line, "tag")
            elif _TAG.match(tag) is None:
                problems.add(
                    f"tag '{tag}' is not O, B-TYPE or I-TYPE (only BIO and IO are supported)",
                    line,
                    "tag",
                )
    problems.raise_if_any()
    all_tags = [tag for s in sentences for tag in s["tags"]]
    detected = _detect_scheme(all_tags)
    if scheme is None:
        scheme = detected
    elif scheme == "IO" and detected == "BIO":
        first = next(
            (line, tag)
            for s in sentences
            for tag, line in zip(s["tags"], s["token_rows"], strict=True)
            if tag.startswith("B-")
        )
        raise DataError(
            f"tag '{first[1]}' is a B- tag but the scheme is IO",
            path=path,
            row=first[0],
            column="tag",
        )
    notes: list[str] = []
    if scheme == "BIO":
        notes.extend(_bio_notes(sentences))
    return TokenDataset(
        tokens=[list(s["tokens"]) for s in sentences],
        tags=[list(s["tags"]) for s in sentences],
        label_names=sorted(set(all_tags)),
        scheme=scheme,
        source=str(path),
        rows=[s[ROW_KEY] for s in sentences],
        notes=notes,
    )


def _bio_notes(sentences: Sequence[dict[str, Any]]) -> list[str]:
    """Entities that start with I- (after O or another type): accepted, as seqeval does."""
    lines: list[int] = []
    for s in sentences:
        previous = "O"
        for tag, line in zip(s["tags"], s["token_rows"], strict=True):
            if tag.startswith("I-") and previous[2:] != tag[2:]:
                lines.append(line)
            previous = tag
    if not lines:
        return []
    shown = ", ".join(str(n) for n in lines[:5]) + (", ..." if len(lines) > 5 else "")
    return [
        f"{len(lines)} entit{'ies start' if len(lines) > 1 else 'y starts'} with I- instead of B- "
        f"(lines {shown}); read as the start of an entity"
    ]


def validate_labels_known(
    dataset: TextDataset | TokenDataset,
    known_labels: Iterable[str],
    path: str | Path | None = None,
    *,
    label_col: str = "label",
) -> None:
    """Fail on the first row whose label the model never saw (for evaluation files)."""
    known = set(known_labels)
    where = path if path is not None else dataset.source
    shown = sort_labels(known)
    listing = ", ".join(shown[:12]) + (f", ... ({len(shown)} in all)" if len(shown) > 12 else "")
    if isinstance(dataset, TokenDataset):
        for tags, row in zip(dataset.tags, dataset.rows, strict=True):
            for tag in tags:
                if tag not in known:
                    raise DataError(
                        f"tag '{tag}' is not one the model knows ({listing})",
                        path=where,
                        row=row,
                        column="tag",
                    )
        return
    unknown = {lab for labels in dataset.labels for lab in labels} - known
    if not unknown:
        return
    for labels, row in zip(dataset.labels, dataset.rows, strict=True):
        for label in labels:
            if label in unknown:
                extra = f"; {len(unknown)} unknown labels in all" if len(unknown) > 1 else ""
                raise DataError(
                    f"label '{label}' is not one the model knows{extra} (known: {listing})",
                    path=where,
                    row=row,
                    column=label_col,
                )
