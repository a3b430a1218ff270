""":func:`retry`: re-sending the outbox's failed (or abandoned pending) deliveries, each row
claimed first, and rebuilt from its URL only where its mark or the user allows it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.events import holds
from tunesmith.events.delivery import EmitReport, RetryPolicy, send_all
from tunesmith.events.listing import list_deliveries
from tunesmith.events.marks import recorded_here
from tunesmith.events.outbox import holds_no_outbox, open_outbox
from tunesmith.events.owners import current_owner, owner_alive
from tunesmith.events.sinks import make_sink
from tunesmith.hooktypes import Event, EventSink
from tunesmith.store import Store

#: Consecutive deliveries to one sink that may fail in one retry before the rest to it are left
#: for the next: a webhook down for a day held 500 failed deliveries, and a retry while it was
#: still down tried each of them in turn (3 tries, up to 10 s each), for over an hour.
GIVE_UP_AFTER = 3


def retry(
    outbox: Store | str | Path | None = None,
    *,
    status: str = "failed",
    event_ids: list[str] | None = None,
    sinks: dict[str, EventSink] | None = None,
    policy: RetryPolicy | None = None,
    allow_sinks: Iterable[str] = (),
) -> list[EmitReport]:
    """Re-send the deliveries in ``status`` (``failed``, or ``pending`` left by a dead process).

    Sinks are rebuilt from their recorded URLs; ``sinks`` supplies objects by recorded name for
    those that have no URL. A sink that cannot be rebuilt counts as failed, with the reason.
    ``event_ids`` may be unique prefixes (``tunesmith events list`` shows 12 characters); an id
    that names no event in the outbox is a :class:`UserInputError`.

    Deliveries go oldest first. Once ``GIVE_UP_AFTER`` deliveries in a row to one sink have
    failed (or one timed out, see ``RetryPolicy.hold_on_timeout``), the rest to it are not
    tried in this call: they stay as they were and are reported failed and ``skipped``, for
    the next retry. A sink held after failing
    (:mod:`tunesmith.events.holds`) is tried at once, cool-down or not, but only its oldest
    delivery unless that one is delivered (which lifts the hold for every process).

    Only deliveries this setup recorded (their mark checks out under ``outbox.key``) are
    rebuilt from their URLs, besides ``stdout``, the names in ``sinks`` and those in
    ``allow_sinks`` (the user's consent, by recorded name): any other one, from an outbox made
    elsewhere or edited since, counts as failed with the reason and stays as it was.
    """
    if isinstance(event_ids, str):
        raise UserInputError(f"event_ids must be a list of ids, got {event_ids!r}")
    if isinstance(allow_sinks, str):
        raise UserInputError(f"allow_sinks must be a list of sink names, got {allow_sinks!r}")
    allowed = set(allow_sinks)
    if holds_no_outbox(outbox):  # nothing to re-send, and nothing written into that file
        if event_ids:
            raise UserInputError(f"no event with id {event_ids[0]!r} in the outbox {outbox}")
        return []
    store = open_outbox(outbox)
    if event_ids:
        event_ids = [_resolve_event_id(store, given) for given in event_ids]
    grouped: dict[str, tuple[Event, list[str]]] = {}
    for delivery in list_deliveries(store, status=status, event_ids=event_ids):
        grouped.setdefault(delivery.event.id, (delivery.event, []))[1].append(delivery.sink)
    try:
        return _resend(store, grouped, sinks, allowed, status, policy)
    except BaseException:
        # Ctrl-C, SIGTERM (tunesmith.signals): the rows this run claimed and had not settled
        # would stay `pending` under a dead owner, which a plain `events retry` (failed ones)
        # never picks up again. Not over the error itself (a full disk may refuse this too).
        with contextlib.suppress(Exception):
            _release_claims(store)
        raise


def _resend(
    store: Store,
    grouped: dict[str, tuple[Event, list[str]]],
    sinks: dict[str, EventSink] | None,
    allowed: set[str],
    status: str,
    policy: RetryPolicy | None,
) -> list[EmitReport]:
    """Send each event's grouped deliveries (see :func:`retry`)."""
    reports = []
    # A held sink has failed already: one more failure here and the rest to it wait.
    held = holds.held_names(store)
    failing: dict[str, int] = dict.fromkeys(held, GIVE_UP_AFTER - 1)  # failures in a row
    built: dict[str, Any] = {}  # the sinks rebuilt from their URLs so far, by name
    timed_out: set[str] = set()  # the sinks a delivery of this retry timed out to
    for event, names in grouped.values():
        named: list[tuple[str, Any]] = []
        unbuildable: dict[str, str] = {}
        skipped = [name for name in names if failing.get(name, 0) >= GIVE_UP_AFTER]
        for name in names:
            if name in skipped:
                continue
            given = (sinks or {}).get(name)
            if given is None and not _may_rebuild(store, event.id, name, allowed):
                unbuildable[name] = (
                    "not sent: this setup did not record this delivery (an outbox from another "
                    "machine or TUNESMITH_HOME, from before tunesmith marked its deliveries, or "
                    "edited since); check the sink with `tunesmith events list --json`, then re-send "
                    f"with `tunesmith events retry --allow-sink '{name}'`"
                )
                continue
            try:
                sink = given or built.get(name) or make_sink(name)
            except UserInputError as exc:  # make_sink says any factory failure this way
                unbuildable[name] = f"cannot rebuild the sink: {exc}"
                continue
            # Built once per run: a webhook sink's client costs ~0.2 s to make, and a retry of
            # 700 deliveries to one webhook made one for each (2 minutes instead of seconds).
            built[name] = sink
            # Claimed just before it is sent: a row another retry (or a live emitter) is
            # sending is left to it, so no delivery goes out twice from two processes.
            if _claim(store, event.id, name, status):
                named.append((name, sink))
        if not named and not unbuildable and not skipped:
            continue
        report = send_all(store, event, named, policy or RetryPolicy(), gated=False)
        for name in report.delivered:
            failing[name] = 0
            held.discard(name)
        for name in report.failed:
            failing[name] = failing.get(name, 0) + 1
        for name in report.timed_out:
            # One timeout is enough (RetryPolicy.hold_on_timeout): each further one costs as
            # long, and 500 deliveries to a webhook that hangs would take minutes.
            failing[name] = GIVE_UP_AFTER
            timed_out.add(name)
        for name, error in unbuildable.items():
            report.failed.append(name)
            report.errors[name] = error
        for name in skipped:
            report.failed.append(name)
            report.skipped.append(name)
            if name in timed_out:
                why = "a delivery to this sink timed out in this retry"
            elif name in held:
                why = (
                    "the sink is held after failing and its trial delivery in this retry failed too"
                )
            else:
                why = f"the last {GIVE_UP_AFTER} deliveries to this sink failed in this retry"
            report.errors[name] = f"not tried: {why}; left as it was for the next one"
        reports.append(report)
    return reports


def _may_rebuild(store: Store, event_id: str, sink: str, allowed: set[str]) -> bool:
    """True when :func:`retry` may rebuild ``sink`` from its recorded name and send to it:
    ``stdout`` (this terminal), a sink the caller allowed, or a delivery this setup recorded."""
    return sink == "stdout" or sink in allowed or recorded_here(store, event_id, sink)


def _claim(store: Store, event_id: str, sink: str, status: str) -> bool:
    """Make this process the one delivering a row still in ``status``; False when another
    retry took it first, or (``pending``) when a live process is delivering it: each would
    send it again."""
    me = current_owner()
    with store.transaction() as tx:
        rows = tx.query(
            "SELECT owner FROM outbox_deliveries WHERE event_id = ? AND sink = ? AND status = ?",
            (event_id, sink, status),
        )
        if not rows:
            return False
        owner = rows[0]["owner"]
        if status == "pending" and owner != me and owner_alive(owner):
            return False
        tx.execute(
            "UPDATE outbox_deliveries SET status = 'pending', owner = ? "
            "WHERE event_id = ? AND sink = ?",
            (me, event_id, sink),
        )
    return True


def _release_claims(store: Store) -> None:
    """Set this process's still-pending deliveries back to ``failed``: stopped before their
    outcome was recorded, they may or may not have arrived (a retry sends at least once)."""
    with store.transaction() as tx:
        tx.execute(
            "UPDATE outbox_deliveries SET status = 'failed', "
            "last_error = 'interrupted before its outcome was recorded' "
            "WHERE status = 'pending' AND owner = ?",
            (current_owner(),),
        )


def _resolve_event_id(store: Store, given: str) -> str:
    """The full id of the one event whose id is ``given`` or starts with it."""
    if not isinstance(given, str) or not given:
        raise UserInputError(f"an event id must be a non-empty string, got {given!r}")
    rows = store.query(
        "SELECT id FROM outbox_events WHERE id = ? OR substr(id, 1, ?) = ? LIMIT 3",
        (given, len(given), given),
    )
    ids = sorted({row["id"] for row in rows})
    if given in ids:
        return given
    if not ids:
        raise UserInputError(f"no event with id {given!r} in the outbox {store.path}")
    if len(ids) > 1:
        raise UserInputError(
            f"event id {given!r} is ambiguous in the outbox {store.path}: give more characters"
        )
    return ids[0]
