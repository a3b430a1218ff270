"""Holding a sink that keeps failing (a circuit breaker), its state shared through the outbox.

Once ``RetryPolicy.hold_after`` deliveries in a row to one sink have failed, or one timed out
(``RetryPolicy.hold_on_timeout``: a webhook that never answers costs a whole timeout a try),
the sink is held for a cool-down (``hold_for``, doubled at each hold in a row, at most ``max_hold``): an
:func:`~tunesmith.events.emit` to it records the delivery as ``failed`` at once, without
trying, so a hand-off or an alert check does not pay every delivery's tries and timeouts while
a webhook is down. Once the cool-down is over, one emitter (across processes) sends one trial
delivery: delivered, the hold is lifted; failed, the sink is held again for twice as long.

The state is a row per sink in ``outbox_sinks`` of the outbox, so that every process emitting
into one outbox (``support serve``, the CLI, ``finance watch``) sees the same hold. A held
delivery is an ordinary failed one: ``tunesmith events retry`` sends it, and tries a held sink
at once (that is how to force it); its success lifts the hold for every process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunesmith.events.ages import stamp
from tunesmith.events.outbox import holds_no_outbox, open_outbox
from tunesmith.events.owners import current_owner, owner_alive
from tunesmith.hooktypes import utc_now
from tunesmith.store import Store, Transaction

if TYPE_CHECKING:
    from tunesmith.events.delivery import RetryPolicy

#: What :func:`gate` says of a sink: send as usual, send one trial delivery, or do not try.
SEND, PROBE, HELD = "send", "probe", "held"
#: How long a trial delivery may take beyond the policy's ``send_timeout`` before another
#: process may try one (its process may be stuck); with no ``send_timeout``, a minute.
PROBE_SLACK = 5.0


@dataclass(frozen=True)
class SinkHold:
    """A sink held after failing: until when, after how many failed deliveries in a row, how
    many holds in a row (each cool-down twice the last) and the last error."""

    sink: str
    held_until: str
    failures: int
    holds: int
    last_error: str | None

    @property
    def why(self) -> str:
        """Why it is held, as the ``held:`` lines of ``events list`` say it."""
        return held_why(self.failures, self.last_error)

    @property
    def over(self) -> bool:
        """True once the cool-down has ended: the next emit or retry tries one delivery."""
        return self.held_until <= utc_now()

    def to_dict(self) -> dict[str, Any]:
        return {
            "sink": self.sink,
            "held_until": self.held_until,
            "failures": self.failures,
            "holds": self.holds,
            "last_error": self.last_error,
        }


def gate(store: Store, name: str, policy: RetryPolicy) -> tuple[str, str | None]:
    """Whether an emit sends to ``name`` (:data:`SEND`), sends it one trial delivery
    (:data:`PROBE`, this process now holds the trial) or leaves it untried (:data:`HELD`,
    with the reason to record)."""
    if policy.hold_after is None:
        return SEND, None
    row = _row(store, name)
    if row is None or row["held_until"] is None:
        return SEND, None  # the common case: one read, no write lock
    now = utc_now()
    if row["held_until"] > now:
        return HELD, held_reason(row)
    with store.transaction() as tx:  # one trial across processes: claimed under the lock
        row = _row(tx, name)
        if row is None or row["held_until"] is None:
            return SEND, None  # lifted meanwhile
        if row["held_until"] > now or _probing(row, now, policy):
            return HELD, held_reason(row, trial=row["held_until"] <= now)
        tx.execute(
            "UPDATE outbox_sinks SET prober = ?, probe_at = ? WHERE sink = ?",
            (current_owner(), now, name),
        )
    return PROBE, None


def settle(
    tx: Transaction, name: str, error: str | None, policy: RetryPolicy, *, timed_out: bool = False
) -> None:
    """Count a delivery's outcome for ``name``, inside the transaction that records it: a
    success lifts any hold; a failure counts one more in a row, and the ``hold_after``-th (or
    a failed trial, or one that ``timed_out``) holds the sink for the next cool-down."""
    if error is None:
        tx.execute("DELETE FROM outbox_sinks WHERE sink = ?", (name,))
        return
    if policy.hold_after is None:
        return
    tx.execute(
        "INSERT INTO outbox_sinks(sink, failures, last_error) VALUES (?, 1, ?) "
        "ON CONFLICT(sink) DO UPDATE SET failures = failures + 1, last_error = excluded.last_error, "
        "prober = CASE WHEN prober = ? THEN NULL ELSE prober END",
        (name, error, current_owner()),
    )
    row = _row(tx, name)
    now = datetime.now(UTC)
    # A hold still running is not lengthened: a delivery that started before it failed late.
    # Held before (a failed trial) counts whatever the count: a hold that began on a timeout
    # did not reach ``hold_after``, and would otherwise send each emit a trial of its own.
    enough = timed_out or row["failures"] >= policy.hold_after or row["held_until"] is not None
    if not enough or (row["held_until"] or "") > stamp(now):
        return
    seconds = min(policy.max_hold, policy.hold_for * 2 ** row["holds"])
    tx.execute(
        "UPDATE outbox_sinks SET held_until = ?, holds = holds + 1 WHERE sink = ?",
        (stamp(now + timedelta(seconds=seconds)), name),
    )


def list_holds(outbox: Store | str | Path | None = None) -> list[SinkHold]:
    """The sinks of ``outbox`` held now or whose cool-down ended without a trial yet, by sink;
    ``[]`` for an outbox that does not exist (nothing is created)."""
    if holds_no_outbox(outbox):
        return []
    rows = open_outbox(outbox).query(
        "SELECT * FROM outbox_sinks WHERE held_until IS NOT NULL ORDER BY sink"
    )
    return [
        SinkHold(r["sink"], r["held_until"], r["failures"], r["holds"], r["last_error"])
        for r in rows
    ]


def held_names(store: Store) -> set[str]:
    """The names of the sinks held in ``store`` (their cool-down over or not)."""
    rows = store.query("SELECT sink FROM outbox_sinks WHERE held_until IS NOT NULL")
    return {row["sink"] for row in rows}


def held_reason(row: Any, *, trial: bool = False) -> str:
    """Why a delivery was not tried, as its ``last_error`` records it."""
    when = "held, another emit sending its trial" if trial else f"held until {row['held_until']}"
    # No command here: the emit's own line names `events retry` with the outbox it needs.
    return f"not tried: sink {when}: {held_why(row['failures'], row['last_error'])}"


def held_why(failures: int, last_error: str | None) -> str:
    """``3 deliveries in a row failed``; ``a delivery timed out`` (a timeout holds at once)."""
    timed_out = (last_error or "").startswith("TimeoutError")
    if timed_out and failures == 1:
        return "a delivery timed out"
    return f"{failures} deliveries in a row failed" + (", the last timed out" if timed_out else "")


def _row(reader: Store | Transaction, name: str) -> Any:
    rows = reader.query("SELECT * FROM outbox_sinks WHERE sink = ?", (name,))
    return rows[0] if rows else None


def _probing(row: Any, now: str, policy: RetryPolicy) -> bool:
    """True while another trial delivery runs: its process is alive and it started less than
    its longest possible send ago (a process that hangs, or lost its trial, does not keep the
    sink held for good)."""
    if row["prober"] is None or not owner_alive(row["prober"]):
        return False
    lease = (policy.send_timeout or 60.0) + PROBE_SLACK
    started = datetime.fromisoformat(row["probe_at"])
    return started + timedelta(seconds=lease) > datetime.fromisoformat(now)
