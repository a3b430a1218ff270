"""Items and events: read from CSV, JSONL or Parquet (columns named by flags) and validated.

Every problem a user can fix is one :class:`~tunesmith.errors.DataError` line naming the file,
row and column. Decisions (documented in docs/recommend.md):

- an item whose title and text fields are all empty is refused: a text recommender cannot place
  it, and a silent skip would hide the problem;
- a catalogue needs at least two items (there is nothing to rank with one);
- HTML entities in titles and text fields are decoded (``Withnail &amp; I`` is read as
  ``Withnail & I``, as MovieTweetings and many web exports store titles): the encoder reads,
  and every command and the demo shows, the text they stand for. Ids are kept as they are, so
  events still name them; what is shown is escaped where it is shown (the demo's Markdown);
- times are unix seconds (milliseconds above 10^11) or ISO 8601 (a time without a zone is read
  as UTC), read by the core's ``tunesmith.data.times``; one file must use
  one format, because a mix usually means two exports were pasted together; rows need not be in
  time order (they are sorted per user). Unix seconds that all fall in 1970 are accepted (as
  sequence numbers) with a note in ``Events.notes``, since a ratings column named by mistake
  looks the same.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.data.excel import expect_columns
from tunesmith.data.limits import names_for_message, text_problem
from tunesmith.data.readers import data_file, reader_for
from tunesmith.data.times import UNIX_SECONDS
from tunesmith.errors import DataError
from tunesmith_recommend.item_fields import read_fields

ROW = "__row__"
#: Unix seconds below this (1971-01-01) are noted: likely a column that is not a time
YEAR = 365 * 86400.0


@dataclass
class Catalogue:
    """The items: stable string ids, titles, and the text the encoder reads."""

    ids: list[str]
    titles: list[str]
    texts: list[str]
    path: str = ""
    position: dict[str, int] = field(default_factory=dict)
    rows: list[int] = field(default_factory=list)  # each item's row in its file, when read
    #: the columns it was read from: {"id": ..., "title": ..., "text": [...]}
    columns: dict[str, Any] = field(default_factory=dict)
    #: fields kept for filtering (``--filter-cols``): column -> one cell per item, and each
    #: column's type (``item_fields``)
    fields: dict[str, list[Any]] = field(default_factory=dict)
    field_types: dict[str, str] = field(default_factory=dict)
    #: things the reader noticed that are not errors (said to the user before training)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.position:
            self.position = {item: i for i, item in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Events:
    """Positive events sorted by user, then time (then file order): parallel arrays."""

    user_ids: list[str]  # one per distinct user; ``users`` indexes into it
    users: np.ndarray  # int32 [n]
    items: np.ndarray  # int32 [n], positions in the catalogue
    times: np.ndarray  # float64 [n], unix seconds
    path: str = ""
    #: things the reader noticed that are not errors (said to the user before training)
    notes: list[str] = field(default_factory=list)
    #: each user's items rated below ``--min-rating`` (catalogue positions, file order): not
    #: positive events, but the user has seen them, so serving never recommends them back
    rated_below: dict[str, list[int]] = field(default_factory=dict)
    #: the time of each of those ratings (unix seconds, parallel to ``rated_below``): the
    #: evaluation excludes only those rated before each held-out event
    rated_below_times: dict[str, list[float]] = field(default_factory=dict)
    #: how the file was read: {"user", "item", "time", "rating", "kind": column or None,
    #: "kinds": list or None} (``add-events`` reads a day's file the same way)
    columns: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.items)

    def sequences(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each user's (items, times), oldest first; the list is indexed like ``user_ids``."""
        bounds = np.flatnonzero(np.diff(self.users)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [len(self.users)]])
        return [(self.items[s:e], self.times[s:e]) for s, e in zip(starts, ends, strict=True)]


def _read(path: str | Path, columns: Sequence[str | None]) -> tuple[Path, list[dict[str, Any]]]:
    """The rows of ``path``; ``columns``: those the caller reads (the column flags), so a
    workbook's header is the row naming them rather than a title row of two cells above it."""
    path = Path(path)
    if not data_file(path).exists():  # book.xlsx#Sheet: the book
        raise DataError("no such file", path=path)
    with expect_columns(columns):
        rows = list(reader_for(path)(path))
    return path, rows


def _check_columns(path: Path, rows: list[dict[str, Any]], needed: Sequence[str]) -> None:
    if not rows:
        raise DataError("the file has no rows", path=path)
    # Every row's keys, not the first row's: a JSONL export often leaves out a row's empty fields.
    present: set[str] = set()
    for row in rows:
        present.update(row)
    present.discard(ROW)
    for name in needed:
        if name not in present:
            known = names_for_message(sorted(present))
            raise DataError(f"no such column (columns: {known})", path=path, column=name)


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, list | tuple | np.ndarray):
        # a JSONL array or a Parquet list column (genres, tags): "a, b", as an ``a|b`` cell reads,
        # not Python's "['a', 'b']"
        return ", ".join(part for part in (_text(v) for v in value) if part)
    return str(value).strip()


def _decoded(value: Any) -> str:
    """A title or text field with its HTML entities decoded (``&amp;`` as ``&``, ``&#39;`` as
    ``'``); an entity for a blank (``&nbsp;``) at either end is stripped like one typed."""
    return html.unescape(_text(value)).strip()


def _usable(value: str, *, path: Path, row: int, column: str) -> str:
    """``value``, or a DataError naming the cell when no encoder or JSON file can hold it (a
    JSONL ``"\\ud800"`` escape: it failed in the encoder, or in writing the model after all
    the training, without naming file, row or column)."""
    problem = text_problem(value)
    if problem:
        raise DataError(problem, path=path, row=row, column=column)
    return value


def item_text(title: str, fields: Sequence[str]) -> str:
    """What the encoder reads: the title, then each non-empty field; ``a|b`` lists as ``a, b``."""
    parts = [title] + [f.replace("|", ", ") for f in fields]
    text = ""
    for part in (p for p in parts if p):
        if text:
            # A field that ends a sentence itself gets no second full stop ("coast.. horror").
            text += " " if text[-1] in ".!?" else ". "
        text += part
    return text


def load_items(
    path: str | Path,
    *,
    id_col: str = "item_id",
    title_col: str = "title",
    text_cols: Sequence[str] = ("description", "genres"),
    min_items: int = 2,
    field_cols: Sequence[str] = (),
    field_types: dict[str, str] | None = None,
) -> Catalogue:
    """Read a catalogue; refuses duplicate ids, empty ids, items without any text, one item.

    ``min_items=1`` reads a file of items to add to a trained model. ``field_cols``: columns
    kept for filtering (:mod:`~tunesmith_recommend.item_fields`), of the model's
    ``field_types`` when given.
    """
    path, rows = _read(path, [id_col, title_col, *text_cols, *field_cols])
    _check_columns(path, rows, [id_col, title_col, *text_cols, *field_cols])
    ids: list[str] = []
    titles: list[str] = []
    texts: list[str] = []
    first_row: dict[str, int] = {}
    for row in rows:
        item = _usable(_text(row.get(id_col)), path=path, row=row[ROW], column=id_col)
        if not item:
            raise DataError("empty item id", path=path, row=row[ROW], column=id_col)
        if item in first_row:
            raise DataError(
                f"duplicate item id {item!r} (first on row {first_row[item]})",
                path=path,
                row=row[ROW],
                column=id_col,
            )
        first_row[item] = row[ROW]
        title, *fields = (
            _usable(_decoded(row.get(c)), path=path, row=row[ROW], column=c)
            for c in (title_col, *text_cols)
        )
        text = item_text(title, fields)
        if not text:
            raise DataError(
                f"item {item!r} has no text (empty {title_col} and {', '.join(text_cols)}); "
                "a text recommender needs a title or description",
                path=path,
                row=row[ROW],
                column=title_col,
            )
        ids.append(item)
        titles.append(title or item)
        texts.append(text)
    if len(ids) < min_items:
        raise DataError(
            "the catalogue has only one item; recommending needs at least two", path=path
        )
    fields, types, notes = read_fields(rows, list(field_cols), field_types, path=path, row_key=ROW)
    return Catalogue(
        ids=ids,
        titles=titles,
        texts=texts,
        path=str(path),
        rows=list(first_row.values()),
        columns={"id": id_col, "title": title_col, "text": list(text_cols)},
        fields=fields,
        field_types=types,
        notes=notes,
    )


def _finite(number: float) -> float:
    """``number``; ValueError for NaN and infinity (``float`` reads "nan" and "inf" as numbers)."""
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {number}")
    return number


def parse_time(value: Any) -> tuple[float, str]:
    """Unix seconds (milliseconds above 10^11) or ISO 8601 to (seconds, format name); the core's
    :func:`tunesmith.data.times.parse_time`. ValueError when neither."""
    from tunesmith.data.times import parse_time as core_parse_time

    moment, kind = core_parse_time(value)
    return moment.timestamp(), kind


#: What a time is written as, shown after a time that is missing or in no format read.
TIME_EXAMPLE = "e.g. 2026-01-31T18:00:00Z or 1769882400"


def _time_problem(value: Any, exc: Exception) -> str:
    """Why ``value`` is no time, in the core's words: the format it is in none of, or what is
    wrong with a value in one (out of range, not finite, Excel's 1900-02-29, before Excel's
    day 1), which "cannot read the time" hid."""
    from tunesmith.data.times import ACCEPTED, UnparsableTimeError, unparsable_message

    if isinstance(exc, UnparsableTimeError):
        return unparsable_message(exc.shown, f"{ACCEPTED}, {TIME_EXAMPLE}")
    if not _text(value):
        return f"missing time; write unix seconds or ISO 8601, {TIME_EXAMPLE}"
    if isinstance(exc, ValueError):
        return str(exc)
    return f"cannot read the time {_text(value)[:40]!r}: {exc}"


def load_events(
    path: str | Path,
    catalogue: Catalogue,
    *,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str = "timestamp",
    rating_col: str | None = None,
    min_rating: float | None = None,
    kind_col: str | None = None,
    kinds: Sequence[str] | None = None,
    not_in: str | None = None,
    allow_empty: bool = False,
) -> Events:
    """Read events; with ``min_rating`` only ratings at or above it count as positive events.

    With ``kinds`` only events of those kinds count (``kind_col`` names the column).
    ``not_in``: what an unknown item is said not to be in (default: the catalogue's file).
    ``allow_empty``: a file without rows or without a positive event is no error (a day's
    events for ``add-events``: none, or only ratings below the threshold).
    """
    # "--kinds buy," names no empty kind: an empty entry counted every row without a kind
    kinds = [kind.strip() for kind in kinds or () if kind.strip()]
    columns = {
        "user": user_col,
        "item": item_col,
        "time": time_col,
        "rating": rating_col,
        "kind": kind_col,
        "kinds": kinds or None,
    }
    events = _load_events(
        path, catalogue, user_col, item_col, time_col, rating_col, min_rating, kind_col, kinds,
        not_in, allow_empty,
    )  # fmt: skip
    events.columns = columns
    return events


def _load_events(
    path: str | Path,
    catalogue: Catalogue,
    user_col: str,
    item_col: str,
    time_col: str,
    rating_col: str | None,
    min_rating: float | None,
    kind_col: str | None,
    kinds: list[str],
    not_in: str | None,
    allow_empty: bool,
) -> Events:
    path, rows = _read(path, [user_col, item_col, time_col, rating_col, kind_col])
    if not rows and allow_empty:
        return _events(path, time_col, [], [], [], None, {}, {}, {}, allow_empty=True)
    needed = [user_col, item_col, time_col]
    if (min_rating is None) != (rating_col is None):
        # One without the other would be ignored, and every event (a 1-star one too) counted.
        raise DataError(
            "--min-rating needs --rating-col"
            if rating_col is None
            else "--rating-col needs --min-rating (the lowest rating that counts as positive)",
            path=path,
        )
    if rating_col is not None:
        needed.append(rating_col)
    if bool(kinds) != (kind_col is not None):
        raise DataError(
            "--kinds needs --kind-col"
            if kind_col is None
            else "--kind-col needs --kinds (the kinds that count as positive)",
            path=path,
        )
    if kind_col is not None:
        needed.append(kind_col)
    _check_columns(path, rows, needed)
    wanted_kinds = set(kinds or ())
    fast = _read_columns(
        rows,
        catalogue,
        user_col,
        item_col,
        time_col,
        rating_col,
        min_rating,
        kind_col,
        wanted_kinds,
    )
    if fast is not None:
        return _events(path, time_col, *fast, allow_empty=allow_empty)
    user_position: dict[str, int] = {}
    users: list[int] = []
    items: list[int] = []
    times: list[float] = []
    time_format: tuple[str, int] | None = None
    rated_below: dict[str, list[int]] = {}
    rated_below_times: dict[str, list[float]] = {}
    for row in rows:
        where = {"path": path, "row": row[ROW]}
        user = _usable(_text(row.get(user_col)), path=path, row=row[ROW], column=user_col)
        if not user:
            raise DataError("empty user id", column=user_col, **where)
        item = _text(row.get(item_col))
        if item not in catalogue.position:
            shown = Path(catalogue.path).name if catalogue.path else "the catalogue"
            raise DataError(f"item {item!r} is not in {not_in or shown}", column=item_col, **where)
        raw_time = row.get(time_col)
        try:
            seconds, kind = parse_time(raw_time)
        except (ValueError, TypeError, OverflowError) as exc:
            raise DataError(_time_problem(raw_time, exc), column=time_col, **where) from None
        if time_format is None:
            time_format = (kind, row[ROW])
        elif kind != time_format[0]:
            raise DataError(
                f"mixed time formats: row {time_format[1]} is {time_format[0]}, this row is {kind}; "
                "use one format for the whole file",
                column=time_col,
                **where,
            )
        if min_rating is not None:
            try:
                rating = _finite(float(_text(row.get(rating_col))))
            except ValueError:
                raise DataError(
                    f"cannot read the rating {_text(row.get(rating_col))!r} as a number",
                    column=rating_col,
                    **where,
                ) from None
            if rating < min_rating:
                rated_below.setdefault(user, []).append(catalogue.position[item])
                rated_below_times.setdefault(user, []).append(seconds)
                continue
        if wanted_kinds and _text(row.get(kind_col)) not in wanted_kinds:
            continue
        users.append(user_position.setdefault(user, len(user_position)))
        items.append(catalogue.position[item])
        times.append(seconds)
    return _events(
        path,
        time_col,
        users,
        items,
        times,
        time_format,
        user_position,
        rated_below,
        rated_below_times,
        allow_empty=allow_empty,
    )


def _events(
    path: Path,
    time_col: str,
    users: list[int],
    items: list[int],
    times: list[float] | np.ndarray,
    time_format: tuple[str, int] | None,
    user_position: dict[str, int],
    rated_below: dict[str, list[int]],
    rated_below_times: dict[str, list[float]],
    *,
    allow_empty: bool = False,
) -> Events:
    """The :class:`Events` of the positive events read (users numbered in first-seen order)."""
    if not len(users) and not allow_empty:
        raise DataError("no positive events left (check --min-rating or --kinds)", path=path)
    # Users in id order, not in the order the file first names them: the split, the folds and
    # every seeded shuffle follow user positions, so the same events in another row order would
    # otherwise train and score differently.
    user_ids = sorted(user_position)
    renumber = np.empty(len(user_ids), dtype=np.int32)
    renumber[[user_position[u] for u in user_ids]] = np.arange(len(user_ids), dtype=np.int32)
    user_arr = renumber[np.asarray(users, dtype=np.int64)]
    time_arr = np.asarray(times, dtype=np.float64)
    order = np.lexsort((np.arange(len(users)), time_arr, user_arr))
    notes = []
    if (
        time_format is not None
        and time_format[0] == UNIX_SECONDS
        and len(time_arr)
        and time_arr.max() < YEAR
    ):
        # Sequence numbers are valid times (only their order matters), but a ratings or count
        # column named by mistake reads the same way and trains without a word.
        low, high = time_arr.min(), time_arr.max()
        notes.append(
            f"{path}: column '{time_col}': every time is within 1970's first year read as "
            f"Unix seconds ({low:g} to {high:g}); if this column is not a time, name the right "
            "one with --time-col"
        )
    return Events(
        user_ids=user_ids,
        users=user_arr[order],
        items=np.asarray(items, dtype=np.int32)[order],
        times=time_arr[order],
        path=str(path),
        notes=notes,
        rated_below=rated_below,
        rated_below_times=rated_below_times,
    )


def _plain(values: list[Any]) -> list[str]:
    """``_text`` of each value; a ``str`` (every CSV cell) only stripped, without the call."""
    return [v.strip() if type(v) is str else _text(v) for v in values]


def _whole_unix_seconds(raw: list[Any]) -> np.ndarray | None:
    """The times as float64 when every one is whole Unix seconds from 1970 to 10^11 (an int
    or digits) that the core would read as seconds too; else None.

    What the core's ``parse_time`` makes of such a value, to the bit (a whole number of
    seconds goes through ``datetime`` and back unchanged): a million of its calls were 24 s of
    reading a bookshop's ratings. Eight digits that may be a ``YYYYMMDD`` date, milliseconds,
    fractions, ISO text and anything odd leave it to the per-row reader.
    """
    from tunesmith.data.times import MILLISECONDS_ABOVE

    kinds = {type(v) for v in raw}
    try:
        if kinds == {str}:
            numbers = np.array(raw).astype(np.int64)
        elif kinds == {int}:
            numbers = np.array(raw, dtype=np.int64)
        else:
            return None
    except (ValueError, OverflowError):
        return None
    if numbers.min() < 0 or numbers.max() > MILLISECONDS_ABOVE:
        return None
    if ((numbers >= 19000101) & (numbers <= 20991231)).any():
        return None
    return numbers.astype(np.float64)


def _read_columns(
    rows: list[dict[str, Any]],
    catalogue: Catalogue,
    user_col: str,
    item_col: str,
    time_col: str,
    rating_col: str | None,
    min_rating: float | None,
    kind_col: str | None,
    wanted_kinds: set[str],
) -> tuple[Any, ...] | None:
    """What :func:`load_events`' row loop finds, read a column at a time (40 s -> a few for
    a million ratings); None when any row would be refused or needs the core's time reader,
    so that the row loop reads the file and names the row.

    Returns the arguments of :func:`_events` after ``path`` and ``time_col``.
    """
    user_names = _plain([row.get(user_col) for row in rows])
    for name in set(user_names):
        if not name or text_problem(name):
            return None
    position = catalogue.position
    found = [position.get(item, -1) for item in _plain([row.get(item_col) for row in rows])]
    item_arr = np.asarray(found, dtype=np.int64)
    if len(item_arr) and item_arr.min() < 0:
        return None
    seconds = _whole_unix_seconds([row.get(time_col) for row in rows])
    if seconds is None:
        return None
    positive = np.ones(len(rows), dtype=bool)
    below = np.zeros(len(rows), dtype=bool)
    if min_rating is not None:
        try:
            ratings = np.array([float(v) for v in _plain([row.get(rating_col) for row in rows])])
        except ValueError:
            return None
        if not np.isfinite(ratings).all():
            return None
        below = ratings < min_rating
        positive &= ~below
    if wanted_kinds:
        kind_names = _plain([row.get(kind_col) for row in rows])
        positive &= np.fromiter((k in wanted_kinds for k in kind_names), bool, len(rows))
    rated_below: dict[str, list[int]] = {}
    rated_below_times: dict[str, list[float]] = {}
    for row in np.flatnonzero(below).tolist():
        rated_below.setdefault(user_names[row], []).append(found[row])
        rated_below_times.setdefault(user_names[row], []).append(float(seconds[row]))
    user_position: dict[str, int] = {}
    keep = np.flatnonzero(positive)
    users = [user_position.setdefault(user_names[row], len(user_position)) for row in keep.tolist()]
    time_format = (UNIX_SECONDS, rows[0][ROW])
    return (
        users,
        item_arr[keep].tolist(),
        seconds[keep],
        time_format,
        user_position,
        rated_below,
        rated_below_times,
    )


def sample_paths() -> dict[str, Path]:
    """The shipped sample catalogue, users and events."""
    base = Path(__file__).resolve().parent / "sample_data"
    return {"items": base / "items.csv", "events": base / "events.csv", "users": base / "users.csv"}
