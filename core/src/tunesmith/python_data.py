"""What the Python APIs (the core's and the plugins') share: data given in memory (a
DataFrame, records, columns) as the JSONL file the engine's readers take, so training and
evaluation read it exactly as they read a file; and errors said in Python's words.

The file lives only for the call. Errors about it name the argument and the record
(``data[2], column 'label': ...``), never the temporary file. :func:`keyword_errors` makes the
commands' lines name the keyword a caller passed (``text_col``), not the flag (``--text-col``).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tunesmith.errors import DataError, UserInputError

#: The folder under ``$TUNESMITH_HOME`` that holds the files while a call runs.
FOLDER = "python_data"
#: The forms data may take, for messages.
DATA_FORMS = "a file path, a pandas DataFrame, a list of dicts or a dict of columns"


def _plain(value: Any, where: str) -> Any:
    """A cell as a JSON value: numpy and pandas scalars and arrays made plain, a moment (a
    pandas ``Timestamp``, a ``datetime``, a date) as ISO 8601 text; a missing value (NaN,
    ``pd.NA``, ``NaT``) as null, which the reader reports at its record."""
    if isinstance(value, float) and math.isnan(value):
        return None  # pandas' empty cell; json.dumps would write NaN, read back as text 'nan'
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(item, where) for item in value]
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(value, datetime.date):
        # ISO 8601 text, as a CSV of the frame would hold it: a pandas Timestamp (a datetime),
        # a date; a zone kept, none read as UTC by the readers (tunesmith.data.times).
        return value.isoformat()
    if type(value).__name__ == "datetime64":
        # numpy's own: its tolist() is an int of nanoseconds, which would read as a number
        return _plain(None if value != value else value.astype("datetime64[us]").item(), where)
    if hasattr(value, "tolist"):  # numpy scalars and arrays (a multi-label cell)
        return _plain(value.tolist(), where)
    raise UserInputError(f"{where}: a {type(value).__name__} is neither a text nor a label")


def _records(data: Any, what: str) -> list[Any]:
    """``data`` as a list of records, whatever in-memory form it came in."""
    if hasattr(data, "columns") and hasattr(data, "to_dict"):  # a pandas DataFrame
        return list(data.to_dict(orient="records"))
    if hasattr(data, "column_names") and hasattr(data, "to_list"):  # a datasets.Dataset
        return list(data.to_list())
    if isinstance(data, Mapping):
        columns = {name: list(values) for name, values in data.items()}
        for name, values in data.items():
            if isinstance(values, (str, bytes)):
                raise UserInputError(
                    f"{what}: column {name!r} is one string; give a list of values per column"
                )
        lengths = {name: len(values) for name, values in columns.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{name} {n}" for name, n in lengths.items())
            raise UserInputError(f"{what}: the columns have different lengths ({shown})")
        names = list(columns)
        return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        return list(data)
    raise UserInputError(f"{what}: give {DATA_FORMS}; got {type(data).__name__}")


#: A column the data must have: a name, or the names a reader takes for it (``("time",
#: "timestamp")``: either, each one present kept).
Column = str | Sequence[str]


def _names(column: Column) -> tuple[str, ...]:
    return (column,) if isinstance(column, str) else tuple(column)


def _jsonl(
    data: Any, what: str, columns: Sequence[Column], *, texts_ok: bool, optional: Sequence[str]
) -> str:
    """The JSONL text of ``data``'s records, only their ``columns`` and ``optional`` kept."""
    lines = []
    records = _records(data, what)
    kept = [name for column in columns for name in _names(column)] + list(optional)
    for number, record in enumerate(records):
        if texts_ok and isinstance(record, str):
            record = {kept[0]: record}
        if not isinstance(record, Mapping):
            wanted = "a text or a dict" if texts_ok else "a dict"
            raise UserInputError(
                f"{what}[{number}] is a {type(record).__name__}, not {wanted} of column values "
                f"({', '.join(kept)})"
            )
        row = {c: _plain(record[c], f"{what}[{number}], column {c!r}") for c in kept if c in record}
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    if not lines:
        raise UserInputError(f"{what}: there are no records")
    _check_columns(records, what, columns, texts_ok=texts_ok)
    return "".join(lines)


def _check_columns(
    records: list[Any], what: str, columns: Sequence[Column], *, texts_ok: bool
) -> None:
    """A column no record has is named with the columns the data has: the file written keeps
    only ``columns``, so the reader's own message would list those alone."""
    from tunesmith.data.limits import names_for_message

    if texts_ok and isinstance(records[0], str):
        return
    present: dict[str, None] = {}
    for record in records:
        present.update(dict.fromkeys(record))
    for column in columns:
        first, *others = _names(column)
        if not any(name in present for name in (first, *others)):
            nor = f" (nor {', '.join(map(repr, others))})" if others else ""
            raise DataError(
                f"there is no column {first!r}{nor}; the columns are: {names_for_message(present)}",
                path=what,
                column=first,
            )


def _shown(error: UserInputError, path: Path, what: str) -> UserInputError:
    """``error`` about the temporary file said about the argument: its path and name become
    ``what``, and a line number the record's index (JSONL line 1 is record 0)."""
    if isinstance(error, DataError) and error.path == str(path):
        where = what if error.row is None else f"{what}[{error.row - 1}]"
        return DataError(error.message, path=where, column=error.column)
    message = str(error)
    if str(path) not in message and path.name not in message:
        return error
    return UserInputError(message.replace(str(path), what).replace(path.name, what))


def is_path(data: object) -> bool:
    """Whether ``data`` names a file (a ``str`` or path), not data held in memory: what
    :func:`data_file` passes through as it is."""
    return isinstance(data, (str, os.PathLike))


@contextlib.contextmanager
def data_file(
    data: Any,
    *,
    what: str,
    columns: Sequence[Column],
    texts_ok: bool = False,
    stable: bool = False,
    optional: Sequence[str] = (),
) -> Iterator[Path]:
    """A file path for ``data``: a path as it is, else in-memory data written as JSONL under
    ``$TUNESMITH_HOME/python_data`` for the block and removed after it.

    ``what``: the argument's name, for errors; ``columns``: the columns kept, each one the data
    must have (a tuple: one of its names; the first column is the text when ``texts_ok`` lets a
    record be a bare string); ``optional``: columns kept when there; ``stable``: the same data
    gives the same path (``train``: ``resume`` compares the data path with the interrupted
    run's)."""
    if is_path(data):
        yield Path(data)
        return
    from tunesmith.home import tunesmith_home
    from tunesmith.io import atomic_write_text, remove_tree

    body = _jsonl(data, what, columns, texts_ok=texts_ok, optional=optional)
    root = tunesmith_home() / FOLDER
    root.mkdir(parents=True, exist_ok=True)
    if stable:
        digest = hashlib.sha256(f"{what}\n{body}".encode()).hexdigest()[:20]
        folder = root / digest
        folder.mkdir(exist_ok=True)
    else:
        import tempfile

        folder = Path(tempfile.mkdtemp(dir=root, prefix=f"{what}-"))
    path = atomic_write_text(folder / f"{what}.jsonl", body)
    try:
        yield path
    except UserInputError as error:
        raise _shown(error, path, what) from None
    finally:
        remove_tree(folder)


#: A flag in an error line (``--text-col``, ``--items/--events``), not dashes inside a word.
_FLAG = re.compile(r"(?<![\w.-])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)")
#: A command quoted in an error line (`` `tunesmith support calibrate --kb KB` ``): kept as
#: written, since it is run in a terminal, where the flags are the words.
_QUOTED = re.compile(r"(`[^`]*`)")
#: ``epochs (--epochs)`` once the flag is the keyword: said once.
_TWICE = re.compile(r"\b(\w+) \(\1\)")
#: Flags whose keyword is not their snake-case name; an API adds its own (``--out`` -> ``kb``).
SWITCHES = {
    "--force": "force=True",
    "--resume": "resume=True",
    "--allow-network": "allow_network=True",
    "--sample": "sample=True",
    "--no-fine-tune": "fine_tune=False",
}


def keyword_message(message: str, renames: Mapping[str, str] | None = None) -> str:
    """``message`` with each flag (``--text-col``) said as the Python keyword (``text_col``):
    ``renames`` first (a key with a space is a phrase replaced as it is, quoted or not: a
    command the line suggests, said as the Python call), then :data:`SWITCHES`, else the flag
    in snake case. Other commands quoted in backticks keep their flags."""
    names = {**SWITCHES, **(renames or {})}
    phrases = {old: new for old, new in names.items() if " " in old}

    def keyword(match: re.Match[str]) -> str:
        return names.get(match.group(0), match.group(1).replace("-", "_"))

    for old, new in phrases.items():
        message = message.replace(old, new)
    parts = _QUOTED.split(message)
    for number in range(0, len(parts), 2):  # the odd parts are the quoted commands
        parts[number] = _TWICE.sub(r"\1", _FLAG.sub(keyword, parts[number]))
    return "".join(parts)


def _reworded(error: UserInputError, renames: Mapping[str, str] | None) -> None:
    """``error`` said with keywords, in place: the caller catches the same object and class
    (a ``DataError`` keeps its path, row and column)."""
    if isinstance(error, DataError):
        error.message = keyword_message(error.message, renames)
        if error.path is not None and error.path.startswith("--"):
            error.path = keyword_message(error.path, renames)
        error.args = (error.format(),)
    elif len(error.args) == 1 and isinstance(error.args[0], str):
        if type(error).__str__ is not BaseException.__str__:
            return  # a message of its own making (a full disk's): no flag in it
        error.args = (keyword_message(error.args[0], renames),)


def keyword_errors(
    renames: Mapping[str, str] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a Python API function (or method) so that the one-line errors it raises
    (:class:`~tunesmith.errors.UserInputError`, raised by the commands' own checks) name its
    keywords, not the commands' flags: ``text_col 'body' ...``, ``pass force=True``.
    ``renames``: the flags whose keyword differs (``{"--out": "kb"}``)."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except UserInputError as error:
                _reworded(error, renames)
                raise

        return call

    return decorate
