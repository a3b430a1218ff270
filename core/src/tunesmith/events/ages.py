"""A time a user gives the outbox's commands (``events list --since``, ``events prune
--delivered-before``): an age from now (``30d``) or a moment (ISO 8601), written as the outbox
writes its stamps, so that it compares with them as text (and through their indexes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tunesmith.durations import duration_seconds
from tunesmith.errors import UserInputError


def parse_moment(text: str, flag: str, *, now: datetime | None = None) -> datetime:
    """``text`` as a UTC time: an age back from ``now`` (``90m``, ``36h``, ``30d``, ``12w``) or
    an ISO 8601 time or date (UTC when it names no zone); a UserInputError naming ``flag``."""
    # An age or a zone reaching past the years 1-9999 overflows datetime: a traceback on the
    # command line, a 500 from `GET /v1/handoffs?since=`.
    too_far = UserInputError(f"{flag} {text!r}: that is not a time between the years 1 and 9999")
    seconds = duration_seconds(text)
    if seconds is not None:
        if seconds <= 0:
            raise UserInputError(f"{flag} {text!r}: an age must be more than 0")
        try:
            return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
        except OverflowError:
            raise too_far from None
    try:
        moment = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise UserInputError(
            f"{flag} {text!r}: expected an age such as 12h, 30d or 4w, or an ISO 8601 time "
            "such as 2026-01-31 or 2026-01-31T08:00:00+00:00"
        ) from None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise too_far from None


def stamp(moment: datetime) -> str:
    """``moment`` written as the outbox writes ``created_at`` and ``delivered_at``
    (:func:`tunesmith.hooktypes.utc_now`: UTC, milliseconds, ``+00:00``)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")
