""":func:`emit`, and its two halves: :func:`record` an event with a pending delivery per sink,
then :func:`send` it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.data.limits import lone_surrogate
from tunesmith.errors import UserInputError
from tunesmith.events.delivery import EmitReport, RetryPolicy, say_failed, send_all
from tunesmith.events.marks import delivery_mark, outbox_key
from tunesmith.events.outbox import open_outbox
from tunesmith.events.owners import current_owner
from tunesmith.events.serialize import strict_json
from tunesmith.events.sinks import make_sink, sink_name
from tunesmith.hooktypes import Event, EventSink, utc_now
from tunesmith.store import Store


def emit(
    event: Event,
    sinks: list[str | EventSink],
    *,
    outbox: Store | str | Path | None = None,
    retry: RetryPolicy | None = None,
) -> EmitReport:
    """Record ``event`` in the outbox, then deliver it to every sink (URLs or sink objects).

    One failing sink does not stop the others. A bad sink URL, or an event the outbox cannot
    store (a payload that is not JSON-serialisable), raises before anything is recorded.
    Returns which sinks got the event; failures are also said on stderr.
    """
    return send(record(event, sinks, outbox=outbox), retry=retry)


@dataclass
class Outgoing:
    """An event recorded in the outbox with a pending delivery per sink, not yet sent
    (:func:`record`); :func:`send` delivers it."""

    store: Store
    event: Event
    sinks: list[tuple[str, Any]]


def record(
    event: Event, sinks: list[str | EventSink], *, outbox: Store | str | Path | None = None
) -> Outgoing:
    """The first half of :func:`emit`: check ``event`` and record it with a pending delivery per
    sink, without sending. Inside a caller's ``with store.transaction()`` on the outbox's store,
    the event commits with the caller's own writes or not at all (a transactional outbox);
    :func:`send` it after the transaction, so that no sink waits on an open transaction."""
    payload = _check_event(event)
    if isinstance(sinks, str) or not isinstance(sinks, list | tuple):
        # A string would be taken for one sink URL per character.
        raise UserInputError(f"sinks must be a list of sink URLs or objects, got {sinks!r}")
    named: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for item in sinks:
        sink = make_sink(item) if isinstance(item, str) else item
        name = base = sink_name(sink)
        if lone_surrogate(name):
            raise UserInputError(
                f"event sink {name!r} holds a lone surrogate, not a character; the outbox "
                "cannot record it"
            )
        if name in seen and (isinstance(item, str) or getattr(item, "sink_url", None)):
            continue  # the same URL twice in one call: deliver once
        n = 2
        while name in seen:  # two URL-less sink objects of one class: keep their rows apart
            name, n = f"{base}#{n}", n + 1
        seen.add(name)
        named.append((name, sink))
    store = open_outbox(outbox)
    _insert_rows(store, event, [name for name, _sink in named], payload)
    return Outgoing(store, event, named)


def send(outgoing: Outgoing, *, retry: RetryPolicy | None = None) -> EmitReport:
    """The second half of :func:`emit`: deliver a :func:`record`-ed event to its sinks, with
    retries; failures stay in the outbox and are said on stderr."""
    report = send_all(outgoing.store, outgoing.event, outgoing.sinks, retry or RetryPolicy())
    say_failed(report, outgoing.store)
    return report


def _check_event(event: Event) -> str:
    """The payload as JSON; a UserInputError naming the field an outbox cannot store.

    Checked before anything is recorded or sent: SQLite refuses a lone surrogate and ``None``
    for the text columns, and ``json.dumps`` a circular payload or a tuple key, each with a
    bare library error that says nothing of the event.
    """
    if not isinstance(event, Event):
        raise UserInputError(f"emit takes a tunesmith.hooktypes.Event, got {type(event).__name__}")
    texts = {name: getattr(event, name) for name in ("kind", "message", "source", "created_at")}
    texts["id"] = event.id
    for name, value in texts.items():
        required = name in ("kind", "id")
        if not isinstance(value, str) or (required and not value):
            what = "a non-empty string" if required else "a string"
            raise UserInputError(f"event {name} must be {what}, got {value!r}")
    if not isinstance(event.payload, dict):
        raise UserInputError(f"event payload must be a dict, got {type(event.payload).__name__}")
    try:
        texts["payload"] = strict_json(event.payload)
    except (TypeError, ValueError, RecursionError) as exc:
        raise UserInputError(
            f"event {event.kind!r}: payload is not JSON-serialisable ({exc})"
        ) from None
    for name, text in texts.items():
        if found := lone_surrogate(text):
            raise UserInputError(
                f"event {event.kind!r}: {name} holds U+{found[1]:04X}, a lone "
                "surrogate that is not a character"
            )
    return texts["payload"]


def _insert_rows(store: Store, event: Event, names: list[str], payload: str) -> None:
    """Write the event and a pending delivery per sink in one transaction, before any send."""
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO outbox_events(id, kind, source, message, payload, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
            (
                event.id,
                event.kind,
                event.source,
                event.message,
                payload,
                event.created_at or utc_now(),
            ),
        )
        owner = current_owner()
        # Marked from the event row as stored (an id recorded before keeps its first content).
        key = outbox_key(create=True)
        stored = tx.query("SELECT * FROM outbox_events WHERE id = ?", (event.id,))[0]
        marks = [delivery_mark(key, stored, name) if key is not None else None for name in names]
        tx.executemany(
            "INSERT INTO outbox_deliveries(event_id, sink, status, owner, mark) "
            "VALUES (?, ?, 'pending', ?, ?) "
            "ON CONFLICT(event_id, sink) DO UPDATE SET status = 'pending', owner = ?, mark = ?",
            [
                (event.id, name, owner, mark, owner, mark)
                for name, mark in zip(names, marks, strict=True)
            ],
        )
