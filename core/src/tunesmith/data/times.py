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
* A ``datetime`` (Parquet timestamps, Excel date cells) as it is, naive ones in ``naive_tz``.
* A number read from a workbook cell (:class:`WorkbookNumber`, what ``tunesmith.data.excel``
  gives for every number) is **Excel serial days**, as a date column in General format holds
  them (45231.5 is 2023-11-01 12:00): in the 1900 date system, or the 1904 one when the
  workbook uses it. Numbers past Excel's last day (9999-12-31) are read as above (YYYYMMDD,
  Unix seconds pasted into a sheet); one below its first day, or Excel's 1900-02-29 (a day
  that never was), is an error, never a moment in January 1970. The format is
  :data:`ISO_8601`, as for a date cell: both are calendar dates.

Errors are ``ValueError`` with a short reason a caller can put after a file, row and column:
``missing time``, ``unparsable time '...' (expected ISO 8601, YYYYMMDD or Unix seconds)``,
``time ... is out of range``, ``time ... is not a finite number``, ``time ... is not an Excel
date ...``. The unparsable one is an
:class:`UnparsableTimeError`, so that a reader that also takes other formats (finance reads RFC
2822) can say what *it* accepts with :func:`unparsable_message`.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, tzinfo
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
#: Day 0 of Excel's 1900 date system, for the serial days from 61 (1900-03-01) on: Excel counts
#: a 1900-02-29 that never was (Lotus 1-2-3's bug), so days 1 to 59 are one day later than this.
_EXCEL_1900 = datetime(1899, 12, 30)
#: Day 0 of the 1904 date system (early Mac Excel; a workbook says when it uses it).
_EXCEL_1904 = datetime(1904, 1, 1)
#: Past this many days (9999-12-31 in the 1900 system) a workbook number is no Excel date.
_EXCEL_LAST_DAY = 2958466


class WorkbookNumber:
    """A number read from a workbook cell (:class:`WorkbookInt`, :class:`WorkbookFloat`): as a
    time, Excel serial days. ``date1904``: the workbook uses the 1904 date system."""

    date1904 = False


class WorkbookInt(int, WorkbookNumber):
    """A whole number from a workbook cell; otherwise an ``int``."""


class WorkbookFloat(float, WorkbookNumber):
    """A number with a fraction from a workbook cell; otherwise a ``float``."""


class WorkbookText(str):
    """A number stored as text in a workbook cell (a Text-formatted cell: ``"45231.5"``,
    ``"1700000000"``); otherwise a ``str``. ``date1904`` as for :class:`WorkbookNumber`."""

    date1904 = False


def _workbook_text(value: WorkbookText) -> None:
    """Refuse a number stored as text that could be Excel serial days as well as Unix seconds:
    Excel keeps a date typed into a Text cell as the typed text (``2023-11-01``), so these
    digits were pasted, from Excel's serial days or from a Unix time, and only the user knows
    which. At or past Excel's last day it cannot be serial days: read as in any file."""
    number = float(value)
    if not math.isfinite(number) or number >= _EXCEL_LAST_DAY:
        return
    cls = type("_Days", (WorkbookFloat,), {"date1904": value.date1904})
    try:
        days = _excel_date(cls(number))
        as_days = f"as Excel serial days {days:%Y-%m-%d %H:%M}" if days else None
    except ValueError:
        as_days = None
    try:
        seconds = datetime.fromtimestamp(number, UTC)
        as_seconds = f"as Unix seconds {seconds:%Y-%m-%d %H:%M:%S}"
    except (OverflowError, OSError, ValueError):
        as_seconds = None
    readings = " or ".join(r for r in (as_days, as_seconds) if r) or "no time"
    raise ValueError(
        f"time {str(value).strip()!r} is a number stored as text (a Text-formatted cell): "
        f"{readings}?; in Excel, convert the cell to a number (read as serial days) or "
        "format it as a date, or write the time as 2023-11-01T12:00"
    )


def _excel_date(value: WorkbookNumber) -> datetime | None:
    """The naive moment of ``value`` serial days, or None when it is past Excel's last day
    (then it is read as any number: a YYYYMMDD date, Unix seconds pasted into a sheet)."""
    days = float(value)  # type: ignore[arg-type]
    if not math.isfinite(days) or days >= _EXCEL_LAST_DAY:
        return None
    first = 0 if value.date1904 else 1
    if days < first:
        raise ValueError(
            f"time {value!r} is not an Excel date (day {first} is "
            f"{'1904-01-01' if value.date1904 else '1900-01-01'}); a time of day alone, or a "
            "number that is no time"
        )
    if not value.date1904 and 60 <= days < 61:
        raise ValueError(f"time {value!r} is Excel's 1900-02-29, a day that never was")
    day_zero = _EXCEL_1904 if value.date1904 else _EXCEL_1900
    shift = 1 if not value.date1904 and days < 60 else 0
    # To the millisecond, as Excel shows times: 10:00 is stored as 0.41666666666666669 days,
    # which is a hair before 10:00 read to the microsecond.
    return day_zero + timedelta(milliseconds=round((days + shift) * 86_400_000))


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
    if isinstance(value, WorkbookText):
        _workbook_text(value)
    basic = _excel_date(value) if isinstance(value, WorkbookNumber) else None
    basic = basic or _basic_date(value)
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
