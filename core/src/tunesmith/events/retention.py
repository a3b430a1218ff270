"""Retention: events delivered to every sink before a cut-off leave the outbox
(``tunesmith events prune``); a pending or failed delivery, and its event, always stays.

Deleted in short transactions (``batch`` events with their deliveries each, a pause between),
so a serving process recording events in the same file waits at most one batch for the lock.
Killed at any moment, a prune has removed some such events and nothing else; running it again
finishes the job. The freed pages stay in the file and new events fill them, so an outbox
pruned daily stops growing. ``vacuum=True`` gives them back to the disk
(:func:`tunesmith.store_space.reclaim`) on an outbox made in incremental auto-vacuum mode
(every outbox :func:`open_outbox` creates), in short transactions an emit hardly waits for. An
older outbox would need a full ``VACUUM``, which rewrites the file while holding the write lock
every emit needs (a year's outbox: longer than the 5 s an emit waits); it gets one only when
asked with ``full=True`` (the services stopped), and the report says ``skipped`` otherwise.

Each prune is logged first in ``outbox_prunes`` (:func:`pruned_before`): a caller that treats
an event missing from the outbox as never recorded (finance's alerts) can tell it from one a
prune removed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.events.ages import parse_moment, stamp
from tunesmith.events.outbox import holds_no_outbox, open_outbox
from tunesmith.hooktypes import utc_now
from tunesmith.store import Store
from tunesmith.store_space import file_sizes, is_incremental, reclaim

#: Events (with their deliveries) deleted per transaction: well under a second on a busy
#: 2-core machine, far below the 5 s an emitting process waits for the lock.
DEFAULT_BATCH = 1000
#: Pages a `--vacuum` gives back per transaction: within SQLite's default page cache (2 MB),
#: so a transaction never spills to the WAL midway. 400 pages took 25 ms on a busy 2-core
#: machine, 2,048 (finance's) 190 ms to 660 ms, each an emit's wait.
VACUUM_PAGES = 400
#: The shortest age `--delivered-before` takes: ``30m`` typed for ``30d`` would keep half an
#: hour of the record of what was sent.
SHORTEST_SECONDS = 86400.0

#: An event every delivery of which was delivered before ``:cut`` (and that was created
#: before it); an event with no delivery row (emitted to no sink) counts by its creation.
_SETTLED = (
    "e.created_at < :cut AND NOT EXISTS (SELECT 1 FROM outbox_deliveries u "
    "WHERE u.event_id = e.id AND (u.status != 'delivered' OR u.delivered_at IS NULL "
    "OR u.delivered_at >= :cut))"
)


@dataclass
class PrunePlan:
    """What a prune at ``cutoff`` removes and what it keeps."""

    cutoff: str
    events: int
    deliveries: int
    oldest: str | None
    kept_events: int
    kept_unsettled: int
    file_bytes: int
    free_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PruneReport:
    """What a prune did: the plan it followed, what it removed, the file afterwards."""

    plan: PrunePlan
    events: int = 0
    deliveries: int = 0
    batches: int = 0
    file_bytes: int = 0
    free_bytes: int = 0
    seconds: float = 0.0
    #: How the free pages went back to the disk: ``none`` (not asked), ``incremental``,
    #: ``full``, or ``skipped`` (asked, but the outbox is not in incremental mode and a full
    #: VACUUM was not allowed).
    vacuum: str = "none"
    vacuum_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["plan"] = self.plan.to_dict()
        data["seconds"] = round(self.seconds, 2)
        data["vacuum_seconds"] = round(self.vacuum_seconds, 2)
        return data


def prune_cutoff(text: str, flag: str = "--delivered-before") -> str:
    """The cut-off of a prune as the outbox writes its stamps: an age (``30d``, at least a
    day) or an ISO 8601 time not in the future (it would remove what was delivered a moment
    ago, the record of what a receiver got)."""
    now = datetime.now(UTC)
    moment = parse_moment(text, flag, now=now)
    if (now - moment).total_seconds() < SHORTEST_SECONDS:
        if moment > now:
            raise UserInputError(f"{flag} {text}: is in the future")
        raise UserInputError(
            f"{flag} {text} would keep less than a day of delivered events; give days (30d) "
            "or weeks, or an ISO 8601 time"
        )
    return stamp(moment)


def plan_prune(outbox: Store | str | Path | None, cutoff: str) -> PrunePlan:
    """What :func:`prune` at ``cutoff`` would remove; reads only (``--dry-run``)."""
    if holds_no_outbox(outbox):
        return PrunePlan(cutoff, 0, 0, None, 0, 0, 0, 0)
    store = open_outbox(outbox)
    gone = store.query(
        f"SELECT COUNT(*) AS n, MIN(e.created_at) AS oldest FROM outbox_events e WHERE {_SETTLED}",
        {"cut": cutoff},
    )[0]
    deliveries = store.query(
        "SELECT COUNT(*) AS n FROM outbox_deliveries d JOIN outbox_events e ON e.id = d.event_id "
        f"WHERE {_SETTLED}",
        {"cut": cutoff},
    )[0]["n"]
    total = store.query("SELECT COUNT(*) AS n FROM outbox_events")[0]["n"]
    older = store.query("SELECT COUNT(*) AS n FROM outbox_events WHERE created_at < ?", (cutoff,))[
        0
    ]["n"]
    size, free = file_sizes(store)
    return PrunePlan(
        cutoff=cutoff,
        events=int(gone["n"]),
        deliveries=int(deliveries),
        oldest=gone["oldest"],
        kept_events=int(total) - int(gone["n"]),
        kept_unsettled=int(older) - int(gone["n"]),
        file_bytes=size,
        free_bytes=free,
    )


def prune(
    outbox: Store | str | Path | None,
    cutoff: str,
    *,
    batch: int = DEFAULT_BATCH,
    pause: float = 0.02,
    on_batch: Callable[[int], None] | None = None,
    vacuum: bool = False,
    full: bool = False,
) -> PruneReport:
    """Remove the events delivered to every sink before ``cutoff`` (a stamp, see
    :func:`prune_cutoff`) with their deliveries, oldest first, ``batch`` events per
    transaction and ``pause`` seconds apart, so that a waiting emitter gets the lock between
    them. ``on_batch(events removed so far)`` is called after each committed batch.

    ``vacuum``: then give the file's free pages back to the disk, in short transactions on an
    outbox in incremental auto-vacuum mode; on an older one only with ``full`` (one full
    ``VACUUM`` holding the lock every emit needs, which also switches the mode on), else the
    report's ``vacuum`` is ``skipped``."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise UserInputError(f"batch must be a whole number >= 1, got {batch!r}")
    started = time.perf_counter()
    plan = plan_prune(outbox, cutoff)
    report = PruneReport(plan=plan)
    if holds_no_outbox(outbox):  # nothing to remove, and no file or tables made for it
        return report
    store = open_outbox(outbox)
    # Logged before anything goes (see pruned_before).
    store.execute("INSERT INTO outbox_prunes(pruned_at, cutoff) VALUES (?, ?)", (utc_now(), cutoff))
    # The next `batch` events before the cut-off, read outside any write transaction (a read
    # never waits in WAL mode) along a cursor over (created_at, rowid): each transaction then
    # does a batch's work however few of them go. Chosen inside the write lock, a year's
    # failed or late-delivered events were scanned while every emit waited (3.7 s).
    after: tuple[str, int] = ("", 0)
    while True:
        window = store.query(
            "SELECT rowid AS r, created_at AS c, id FROM outbox_events "
            "WHERE created_at < :cut AND (created_at, rowid) > (:c, :r) "
            "ORDER BY created_at, rowid LIMIT :n",
            {"cut": cutoff, "c": after[0], "r": after[1], "n": batch},
        )
        if not window:
            break
        ids = json.dumps([row["id"] for row in window])
        with store.transaction() as tx:
            # Settled checked again under the lock: a delivery re-recorded as pending
            # meanwhile (a re-sent alert keeps its event id) keeps its event.
            gone = [
                (row["id"],)
                for row in tx.query(
                    "SELECT e.id FROM outbox_events e WHERE e.id IN "
                    f"(SELECT value FROM json_each(:ids)) AND {_SETTLED}",
                    {"ids": ids, "cut": cutoff},
                )
            ]
            if gone:
                report.deliveries += tx.executemany(
                    "DELETE FROM outbox_deliveries WHERE event_id = ?", gone
                )
                report.events += tx.executemany("DELETE FROM outbox_events WHERE id = ?", gone)
        after = (window[-1]["c"], window[-1]["r"])
        report.batches += 1
        if on_batch is not None:
            on_batch(report.events)
        if len(window) < batch:
            break
        time.sleep(pause)
    if vacuum:
        report.vacuum, report.vacuum_seconds = _give_back(store, full)
    report.file_bytes, report.free_bytes = file_sizes(store)
    report.seconds = time.perf_counter() - started
    return report


def _give_back(store: Store, full: bool) -> tuple[str, float]:
    """The free pages back to the disk (see :func:`prune`): how, and how long it took."""
    if not (full or is_incremental(store)):
        return "skipped", 0.0
    started = time.perf_counter()
    how = reclaim(store, VACUUM_PAGES, flag="--vacuum --full", rows="events")
    return how, time.perf_counter() - started


def pruned_before(outbox: Store | str | Path | None = None) -> str | None:
    """The latest cut-off a prune of ``outbox`` used (a stamp), or None when none ran: an
    event created before it may be missing because it was delivered and pruned."""
    if holds_no_outbox(outbox):
        return None
    store = open_outbox(outbox)
    return store.query("SELECT MAX(cutoff) AS cut FROM outbox_prunes")[0]["cut"]
