"""One input row -> one document: field names, times (normalised to UTC), ids, texts.

Rules, also in docs/finance.md:

* fields: ``id`` (or ``doc_id``), ``time`` (or ``timestamp``, ``published``, ``date``,
  ``created_at``), ``source``, ``text`` (or ``headline``, ``title``), optional ``topic`` (or
  ``topics``) and ``tickers`` (or ``ticker``: a list, or one string split at ``,``, ``;`` or
  spaces);
* times: ISO 8601 (``2026-11-05T14:03:00+01:00``, ``...Z``, a date alone is midnight), Unix
  seconds (milliseconds when above 10^11), or RFC 2822 as RSS ``pubDate`` and Twitter's
  ``created_at`` write it (``Thu, 05 Nov 2026 14:03:00 GMT``, ``Thu Nov 05 14:03:00 +0000
  2026``). A time with a zone is converted to UTC; a **naive
  time is read in** ``naive_tz`` (UTC unless ``--naive-tz`` says otherwise). A missing or
  unparsable time skips the row: trends and alerts need it;
* ids are text as written; a whole float (``2.0``) is its integer (``2``), and ``true``,
  ``false`` or ``NaN`` as an id skips the row;
* a row without an id gets one from its content: ``sha1:`` and the first 16 hex digits of
  SHA-1 over source, time and text, so the same row read twice is still one document;
* a text longer than ``max_chars`` is cut there and counted as truncated; an empty text skips
  the row.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from tunesmith.data.limits import names_for_message
from tunesmith.data.times import ACCEPTED, UnparsableTimeError, unparsable_message
from tunesmith.data.times import parse_time as core_parse_time
from tunesmith.errors import DataError, UserInputError

ID_FIELDS = ("id", "doc_id")
TIME_FIELDS = ("time", "timestamp", "published", "date", "created_at")
TEXT_FIELDS = ("text", "headline", "title")
TOPIC_FIELDS = ("topic", "topics")
TICKER_FIELDS = ("tickers", "ticker")
DEFAULT_MAX_CHARS = 5000
#: Times before this year are refused as placeholders (0001-01-01) rather than read as dates.
FIRST_YEAR = 1000
_SPLIT = re.compile(r"[,;\s]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
#: The word after an RFC 2822 time: its zone (``GMT``, ``EST``), or one the reader does not know.
_ZONE_WORD = re.compile(r"\d:\d\d(?::\d\d)?\s+([A-Za-z]+)\b")
#: What :func:`parse_time` reads: the core's formats and RFC 2822, as its message says it.
ACCEPTED_TIMES = f"{ACCEPTED}, or RFC 2822 as 'Thu, 05 Nov 2026 14:03:00 GMT'"


class RowError(ValueError):
    """Why a row cannot be a document; becomes a skipped-row report with file and line.

    ``column`` names the field at fault when one is (``time``, or ``published`` when that is
    the time the row has): the message then starts with it, as a ``DataError`` names it, so
    that the report says which cell to fix. ``reason`` is the message without it."""

    def __init__(self, reason: str, column: str | None = None) -> None:
        self.reason = reason
        self.column = column
        super().__init__(f"column '{column}': {reason}" if column else reason)


@dataclass
class Document:
    """A parsed input document, before scoring."""

    id: str
    ts: float
    time: str
    source: str | None
    text: str
    text_hash: str
    chars: int
    truncated: bool
    topic: list[str] = field(default_factory=list)
    tickers: list[str] = field(default_factory=list)


def check_columns(header: list[str], origin: str) -> None:
    """Refuse a CSV header without a text or a time column (every row would be skipped), or
    with a column this reader uses twice (each row would silently keep the last one)."""
    used = {*ID_FIELDS, *TIME_FIELDS, *TEXT_FIELDS, *TOPIC_FIELDS, *TICKER_FIELDS, "source"}
    for name in dict.fromkeys(header):
        if name in used and header.count(name) > 1:
            places = [str(i) for i, other in enumerate(header, start=1) if other == name]
            raise DataError(
                f"the header names this column {len(places)} times (fields {', '.join(places)}); "
                "rename all but one",
                path=origin,
                row=1,
                column=name,
            )
    for names in (TEXT_FIELDS, TIME_FIELDS):
        if not any(name in header for name in names):
            others = f" (nor {', '.join(names[1:])})" if len(names) > 1 else ""
            raise DataError(
                f"no such column{others}; the columns are: {names_for_message(header)}",
                path=origin,
                row=1,
                column=names[0],
            )


def resolve_zone(name: str, flag: str = "--naive-tz") -> tzinfo:
    """``UTC`` or an IANA zone name (``Europe/Berlin``); anything else is one error naming
    ``flag``."""
    if name.upper() in ("UTC", "Z"):
        return UTC
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(name)
    # ZoneInfoNotFoundError is a KeyError; a folder of the database ("America") is an OSError.
    except (KeyError, ValueError, OSError):
        raise UserInputError(
            f"{flag} {name!r} is not a known time zone (e.g. UTC, Europe/London)"
        ) from None


def parse_time(value: Any, naive_tz: tzinfo = UTC) -> datetime:
    """A timezone-aware UTC datetime from ISO 8601 text or Unix seconds (the core's
    :func:`tunesmith.data.times.parse_time`) or RFC 2822; RowError if none of them."""
    try:
        moment = core_parse_time(value, naive_tz)[0]
    except ValueError as exc:
        # News feeds (RSS pubDate, Twitter's created_at) write RFC 2822, not ISO 8601.
        rfc = _rfc2822(value, naive_tz)
        if rfc is None:
            if isinstance(exc, UnparsableTimeError):  # the core's message lacks RFC 2822
                raise RowError(unparsable_message(exc.shown, ACCEPTED_TIMES)) from None
            raise RowError(str(exc)) from None
        moment = rfc
    if moment.year < FIRST_YEAR:
        # 0001-01-01 is .NET's "no date": a missing time written as one. It would be bucketed
        # and charted as a real moment (and a chart cannot reach back before year 1).
        raise RowError(
            f"time {str(value).strip()[:40]!r} is before the year {FIRST_YEAR}: a placeholder for "
            "a missing time, not a date"
        )
    return moment


def parse_moment(value: str | None, what: str, zone: tzinfo | None = None) -> float | None:
    """A time a user gives (``trends --since``/``--until``, ``prune --before``, the Python
    API's ``since=``) as Unix seconds, read by :func:`parse_time` with a time without a zone in
    ``zone`` (default UTC); None for None. A time it cannot read is one
    :class:`~tunesmith.errors.UserInputError` naming ``what`` (the flag or argument)."""
    if value is None:
        return None
    try:
        return parse_time(value, zone or UTC).timestamp()
    except RowError as exc:
        raise UserInputError(f"{what}: {exc}") from None


def _rfc2822(value: Any, naive_tz: tzinfo) -> datetime | None:
    """An RFC 2822 time (``Thu, 05 Nov 2026 14:03:00 -0500``) in UTC, or ``None`` when
    ``value`` is not one. ``-0000`` or no zone is naive (read in ``naive_tz``); a zone name the
    reader does not know (``CET``) is a :class:`RowError`, since reading it as naive would
    move the document by hours without a word."""
    from email.utils import parsedate_to_datetime

    if not isinstance(value, str) or not any(c.isalpha() for c in value):
        return None
    text = value.strip()
    try:
        moment = parsedate_to_datetime(text)
    except (ValueError, TypeError, IndexError):
        return None
    if moment.tzinfo is None:
        zone = _ZONE_WORD.search(text)
        if zone is not None:
            raise RowError(
                f"time {text[:40]!r}: unknown time zone {zone.group(1)!r}; write the zone as "
                "an offset (+0100)"
            )
        moment = moment.replace(tzinfo=naive_tz)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None


def _first(row: dict[str, Any], names: tuple[str, ...]) -> Any:
    return _field(row, names)[1]


def _field(row: dict[str, Any], names: tuple[str, ...]) -> tuple[str, Any]:
    """``(name, value)`` of the first of ``names`` with a value in ``row``; else the first of
    them the row has (or the first of all) and None, the column a missing value is in."""
    for name in names:
        value = row.get(name)
        if value is not None and value != "":
            return name, value
    return next((name for name in names if name in row), names[0]), None


def _str(value: Any) -> str:
    """``value`` as text that can be hashed and stored: a lone surrogate (JSON's ``\\ud83d``,
    half of an emoji cut off by a truncated tweet) cannot be encoded as UTF-8, so it becomes
    U+FFFD as a UTF-8 decoder would make it."""
    return _SURROGATE.sub("\ufffd", str(value))


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [_str(v).strip() for v in value if _str(v).strip()]
    return [part for part in _SPLIT.split(_str(value)) if part]


def _id_text(value: Any) -> str:
    """An id as stored: text as given (stripped), a whole number as its digits, so that
    ``2.0`` (a JSON export of a column with gaps, pandas' floats) is the same document as
    ``2``; ``true``/``false`` and ``NaN`` are not ids (a column of flags or a gap)."""
    if isinstance(value, bool):
        raise RowError(f"id is {str(value).lower()}, not an id (a text or a number)")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RowError(f"id is {value}, not an id (a text or a number)")
        if value.is_integer():
            return str(int(value))
    return _str(value).strip()


def content_id(source: str | None, time: str, text: str) -> str:
    """The id of a row that has none: a hash of its source, time and text."""
    digest = hashlib.sha1(f"{source or ''}\x1f{time}\x1f{text}".encode()).hexdigest()
    return f"sha1:{digest[:16]}"


def text_hash(text: str) -> str:
    """The hash stored to notice a changed text under a known id."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def to_document(
    row: Any, *, naive_tz: tzinfo = UTC, max_chars: int = DEFAULT_MAX_CHARS
) -> Document:
    """Turn one input row (a dict) into a :class:`Document`; :class:`RowError` says why not."""
    if not isinstance(row, dict):
        raise RowError(f"expected an object with id, time, text; got {type(row).__name__}")
    text_col, raw_text = _field(row, TEXT_FIELDS)
    id_col, raw_id = _field(row, ID_FIELDS)
    for what, column, value in (("text", text_col, raw_text), ("id", id_col, raw_id)):
        if isinstance(value, dict | list):
            # str() would store and score the Python repr of a nested JSON value.
            kind = "an object" if isinstance(value, dict) else "a list"
            raise RowError(f"{what} is {kind}, not a string", column)
    if raw_text is None or not str(raw_text).strip():
        raise RowError("missing or empty text", text_col)
    text = _str(raw_text).strip()
    time_col, raw_time = _field(row, TIME_FIELDS)
    try:
        moment = parse_time(raw_time, naive_tz)
    except RowError as exc:
        raise RowError(exc.reason, time_col) from None
    iso = moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    chars = len(text)
    truncated = chars > max_chars
    if truncated:
        text = text[:max_chars]
    source = _first(row, ("source",))
    source = None if source is None else _str(source).strip()
    try:
        doc_id = content_id(source, iso, text) if raw_id is None else _id_text(raw_id)
    except RowError as exc:
        raise RowError(exc.reason, id_col) from None
    if not doc_id:
        raise RowError("empty id", id_col)
    return Document(
        id=doc_id,
        ts=moment.timestamp(),
        time=iso,
        source=source,
        text=text,
        text_hash=text_hash(text),
        chars=chars,
        truncated=truncated,
        topic=_list(_first(row, TOPIC_FIELDS)),
        tickers=_list(_first(row, TICKER_FIELDS)),
    )
