"""Times in data files: ISO 8601 text or Unix seconds, to an aware UTC datetime.

One reader for every plugin that keeps events in time (finance documents, recommendation
events), so that the same value means the same moment everywhere:

* ISO 8601 (``2026-11-05T14:03:00+01:00``, ``...Z``; a date alone is midnight). A time without a
  zone is read in ``naive_tz`` (UTC unless the caller says otherwise).
* ``YYYYMMDD`` (ISO 8601's basic date, 1900 to 2099), as a whole number or text: that date,
  not Unix seconds in 1970.
* Unix seconds as a number or numeric text; **milliseconds** when above 10^11 (a number of
  seconds that large is past the year 5000, while milliseconds since 1973 are all above it), the
  way JavaScript and many exports write them.
* A ``datetime`` (Parquet timestamps) as it is, naive ones in ``naive_tz``.

Errors are ``ValueError`` with a short reason a caller can put after a file, row and column:
``missing time``, ``unparsable time '...' (expected ISO 8601, YYYYMMDD or Unix seconds)``,
``time ... is out of range``, ``time ... is not a finite number``. The unparsable one is an
:class:`UnparsableTimeError`, so that a reader that also takes other formats (finance reads RFC
2822) can say what *it* accepts with :func:`unparsable_message`.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, tzinfo
from typing import Any

#: Eight digits from 19000101 to 20991231 that form a date are ``YYYYMMDD``, not seconds.
_BASIC_DATE = re.compile(r"(19|20)\d{6}")
#: Numbers above this are milliseconds, not seconds.
MILLISECONDS_ABOVE = 1e11
UNIX_SECONDS = "unix seconds"
UNIX_MILLISECONDS = "unix milliseconds"
ISO_8601 = "ISO 8601"
#: What :func:`parse_time` reads, as its "unparsable time" message says it.
ACCEPTED = "ISO 8601, YYYYMMDD or Unix seconds"


def unparsable_message(shown: str, accepted: str = ACCEPTED) -> str:
    """``unparsable time 'next tuesday' (expected ...)``: ``shown`` is the value as quoted,
    ``accepted`` the formats the reader takes."""
    return f"unparsable time {shown} (expected {accepted})"


class UnparsableTimeError(ValueError):
    """A time value in none of the formats read; ``shown`` is the value as the message quotes
    it (cut to 40 characters), for a reader that accepts more to say so in its own message."""

    def __init__(self, shown: str) -> None:
        self.shown = shown
        super().__init__(unparsable_message(shown))


def _number(value: Any) -> float | None:
    """``value`` as a float when it is a number or numeric text, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _basic_date(value: Any) -> datetime | None:
    """``YYYYMMDD`` (ISO 8601's basic date, 1900 to 2099, as a whole number or text) as that
    date: as Unix seconds, 20240105 would be a moment in August 1970, which no export means."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    text = str(value).strip()
    if not _BASIC_DATE.fullmatch(text):
        return None
    try:
        return datetime.strptime(text, "%Y%m%d")
    except ValueError:  # 20241399: not a date, so a number of seconds after all
        return None


def parse_time(value: Any, naive_tz: tzinfo = UTC) -> tuple[datetime, str]:
    """``(moment in UTC, format)`` for one time value; format is :data:`UNIX_SECONDS`,
    :data:`UNIX_MILLISECONDS` or :data:`ISO_8601`. ``ValueError`` when it is none of them."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError("missing time")
    if isinstance(value, float) and math.isnan(value):  # an empty cell read by pandas
        raise ValueError("missing time")
    basic = _basic_date(value)
    if isinstance(value, datetime) or basic is not None:
        moment = value if isinstance(value, datetime) else basic
        kind = ISO_8601
    else:
        number = _number(value)
        if number is not None:
            if not math.isfinite(number):
                raise ValueError(f"time {value!r} is not a finite number")
            kind = UNIX_MILLISECONDS if abs(number) > MILLISECONDS_ABOVE else UNIX_SECONDS
            seconds = number / 1000.0 if kind == UNIX_MILLISECONDS else number
            try:
                return datetime.fromtimestamp(seconds, UTC), kind
            except (OverflowError, OSError, ValueError):
                raise ValueError(f"time {value!r} is out of range") from None
        if not isinstance(value, str):
            raise UnparsableTimeError(repr(value)[:40])
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise UnparsableTimeError(repr(value.strip()[:40])) from None
        kind = ISO_8601
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=naive_tz)
    try:
        return moment.astimezone(UTC), kind
    except OverflowError:  # 0001-01-01T00:00:00+01:00: its zone moves it off the calendar
        raise ValueError(f"time {str(value).strip()[:40]!r} is out of range") from None
