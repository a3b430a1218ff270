"""The outbox's deliveries as read back: one :class:`Delivery` per (event, sink) row."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError
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


def list_deliveries(
    outbox: Store | str | Path | None = None,
    *,
    status: str | None = None,
    event_ids: list[str] | None = None,
    newest: int | None = None,
) -> list[Delivery]:
    """Deliveries in the outbox, oldest first; ``newest=N`` keeps the N most recent."""
    if status is not None and status not in STATUSES:
        raise UserInputError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    if isinstance(event_ids, str):
        raise UserInputError(f"event_ids must be a list of ids, got {event_ids!r}")
    if newest is not None and newest < 0:
        raise UserInputError(f"newest must be 0 or more, got {newest}")
    if holds_no_outbox(outbox):
        return []
    store = open_outbox(outbox)
    where, params = [], []
    if status is not None:
        where.append("d.status = ?")
        params.append(status)
    if event_ids:
        where.append(f"e.id IN ({', '.join('?' * len(event_ids))})")
        params.extend(event_ids)
    sql = (
        "SELECT e.*, d.sink, d.status, d.attempts, d.last_error, d.last_attempt_at, "
        "d.delivered_at FROM outbox_deliveries d JOIN outbox_events e ON e.id = d.event_id"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY e.created_at DESC, e.rowid DESC, d.sink DESC"
        + (f" LIMIT {int(newest)}" if newest is not None else "")
    )
    rows = store.query(sql, params)
    return [_row_to_delivery(row) for row in reversed(rows)]
