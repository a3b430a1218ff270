"""The outbox's deliveries as read back: one :class:`Delivery` per (event, sink) row."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.events.ages import parse_moment, stamp
from tunesmith.events.outbox import STATUSES, holds_no_outbox, open_outbox
from tunesmith.events.serialize import event_to_dict
from tunesmith.hooktypes import Event
from tunesmith.store import Store


@dataclass(frozen=True)
class Delivery:
    """One (event, sink) row of the outbox."""

    event: Event
    sink: str
    status: str
    attempts: int
    last_error: str | None
    last_attempt_at: str | None
    delivered_at: str | None

    def to_dict(self) -> dict[str, Any]:
        data = {f"event_{k}" if k == "id" else k: v for k, v in event_to_dict(self.event).items()}
        data.update(
            sink=self.sink,
            status=self.status,
            attempts=self.attempts,
            last_error=self.last_error,
            last_attempt_at=self.last_attempt_at,
            delivered_at=self.delivered_at,
        )
        return data


def _row_to_delivery(row: Any) -> Delivery:
    event = Event(
        kind=row["kind"],
        message=row["message"],
        payload=json.loads(row["payload"]),
        source=row["source"],
        created_at=row["created_at"],
        id=row["id"],
    )
    return Delivery(
        event=event,
        sink=row["sink"],
        status=row["status"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        last_attempt_at=row["last_attempt_at"],
        delivered_at=row["delivered_at"],
    )


#: Deliveries read per query by :func:`iter_deliveries`.
PAGE = 1000


def list_deliveries(
    outbox: Store | str | Path | None = None,
    *,
    status: str | None = None,
    event_ids: list[str] | None = None,
    newest: int | None = None,
    since: str | datetime | None = None,
    limit: int | None = None,
) -> list[Delivery]:
    """Deliveries in the outbox, oldest first; ``newest=N`` keeps the N most recent, ``limit=N``
    the N oldest. ``since``: only events created then or later (a datetime, an ISO 8601 time,
    or an age back from now such as ``"7d"``)."""
    _check_count("newest", newest)
    _check_count("limit", limit)
    if newest is not None and limit is not None:
        raise UserInputError("give newest (the most recent) or limit (the oldest), not both")
    where, params, joined = _filters(status, event_ids, since)
    if holds_no_outbox(outbox):
        return []
    order = "DESC" if newest is not None else "ASC"
    count = newest if newest is not None else limit
    rows = open_outbox(outbox).query(_select(where, joined, order, count), params)
    if newest is not None:
        rows.reverse()
    return [_row_to_delivery(row) for row in rows]


def iter_deliveries(
    outbox: Store | str | Path | None = None,
    *,
    status: str | None = None,
    since: str | datetime | None = None,
    limit: int | None = None,
    page: int = PAGE,
) -> Iterator[Delivery]:
    """The deliveries :func:`list_deliveries` returns oldest first, read ``page`` at a time
    after the last one read: `events list --json` of a year's outbox held all 200,000 (1.3 GB),
    and a read never holds the file for long."""
    _check_count("limit", limit)
    where, params, joined = _filters(status, None, since)
    if holds_no_outbox(outbox):
        return
    store = open_outbox(outbox)
    after: tuple[str, int, str] | None = None
    left = limit
    while left is None or left > 0:
        size = page if left is None else min(page, left)
        more = where + ["(e.created_at, e.rowid, d.sink) > (?, ?, ?)"] if after else where
        rows = store.query(_select(more, joined, "ASC", size), [*params, *(after or ())])
        yield from (_row_to_delivery(row) for row in rows)
        if len(rows) < size:
            return
        last = rows[-1]
        after = (last["created_at"], last["r"], last["sink"])
        left = None if left is None else left - len(rows)


def _check_count(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise UserInputError(f"{name} must be a whole number >= 0, got {value!r}")


def _filters(
    status: str | None, event_ids: list[str] | None, since: str | datetime | None
) -> tuple[list[str], list[Any], str]:
    """The WHERE terms and parameters of a listing, and how to join its tables."""
    if status is not None and status not in STATUSES:
        raise UserInputError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    if isinstance(event_ids, str):
        raise UserInputError(f"event_ids must be a list of ids, got {event_ids!r}")
    start = _since_stamp(since)
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        where.append("d.status = ?")
        params.append(status)
    if event_ids:
        where.append(f"e.id IN ({', '.join('?' * len(event_ids))})")
        params.extend(event_ids)
    if start is not None:
        where.append("e.created_at >= ?")
        params.append(start)
    # Walked along the events' time index (CROSS JOIN keeps them the outer loop), so that a
    # limit or a tail stops after N rows; left to the planner when a rare status (failed,
    # pending) or ids pick the rows. Given the choice, SQLite scanned and sorted all 200,000
    # deliveries of a year's outbox for `events tail`.
    along_time = not event_ids and status not in ("failed", "pending")
    return where, params, "CROSS JOIN" if along_time else "JOIN"


def _select(where: list[str], joined: str, order: str, count: int | None) -> str:
    """The listing's SQL: deliveries with their events, in time order."""
    return (
        "SELECT e.*, e.rowid AS r, d.sink, d.status, d.attempts, d.last_error, "
        "d.last_attempt_at, d.delivered_at "
        f"FROM outbox_events e {joined} outbox_deliveries d ON e.id = d.event_id"
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY e.created_at {order}, e.rowid {order}, d.sink {order}"
        + (f" LIMIT {int(count)}" if count is not None else "")
    )


def _since_stamp(since: str | datetime | None) -> str | None:
    """``since`` as the outbox writes ``created_at`` (compared as text, along its index)."""
    if since is None:
        return None
    if isinstance(since, datetime):
        return stamp(since if since.tzinfo else since.replace(tzinfo=UTC))
    if not isinstance(since, str):
        raise UserInputError(f"since must be a time or an age such as '7d', got {since!r}")
    return stamp(parse_moment(since, "since"))
