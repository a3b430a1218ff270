"""Delivering one recorded event to its sinks: attempts with backoff, each one recorded in the
outbox, and what failed said on stderr."""

from __future__ import annotations

import shlex
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.events import holds
from tunesmith.events.outbox import default_outbox_path
from tunesmith.events.shown import shown_sink, without_secrets
from tunesmith.hooktypes import Event, utc_now
from tunesmith.store import Store


@dataclass(frozen=True)
class RetryPolicy:
    """``tries`` attempts per delivery, waiting ``base_delay * 2**i`` (at most ``max_delay``).

    ``send_timeout`` bounds each attempt: a sink whose ``send`` has not returned by then counts
    as failed (``None``: wait for ever). Only the webhook sink bounds itself; a plugin's sink
    that hangs would otherwise hold ``emit``, and the request or command behind it, for good.

    After ``hold_after`` deliveries in a row to one sink failed, an emit does not try it for
    ``hold_for`` seconds, doubled at each hold in a row up to ``max_hold``, then sends it one
    trial delivery (see :mod:`tunesmith.events.holds`); ``hold_after=None`` never holds.

    ``hold_on_timeout``: an attempt that timed out (a ``TimeoutError``: a webhook that takes the
    request and never answers, a sink past ``send_timeout``) ends its delivery, which is not
    tried again in this emit, and holds the sink at once. Each such attempt costs a whole
    timeout, and the next one would most likely cost another: three deliveries of three tries
    against a webhook that hangs took 47 s before the hold. ``False``: a timeout is retried and
    counted like any failure.
    """

    tries: int = 3
    base_delay: float = 0.2
    max_delay: float = 5.0
    send_timeout: float | None = 10.0
    hold_after: int | None = 3
    hold_for: float = 30.0
    max_hold: float = 600.0
    hold_on_timeout: bool = True

    def __post_init__(self) -> None:
        # tries=0 would make no attempt yet report every delivery as delivered.
        if isinstance(self.tries, bool) or not isinstance(self.tries, int) or self.tries < 1:
            raise UserInputError(
                f"RetryPolicy.tries must be a whole number >= 1, got {self.tries!r}"
            )
        after = self.hold_after
        if after is not None and (
            isinstance(after, bool) or not isinstance(after, int) or after < 1
        ):
            raise UserInputError(
                f"RetryPolicy.hold_after must be a whole number >= 1 or None, got {after!r}"
            )
        for name in ("base_delay", "max_delay", "hold_for", "max_hold"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 <= value < float("inf"):
                raise UserInputError(
                    f"RetryPolicy.{name} must be a finite number >= 0, got {value!r}"
                )
        timeout = self.send_timeout
        if timeout is not None and (
            not isinstance(timeout, int | float) or not 0 < timeout < float("inf")
        ):
            raise UserInputError(
                f"RetryPolicy.send_timeout must be a positive number or None, got {timeout!r}"
            )

    def delay(self, attempt: int) -> float:
        """The wait before attempt ``attempt`` (1-based; the first attempt does not wait)."""
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 2)) if attempt > 1 else 0.0


@dataclass
class EmitReport:
    """What one :func:`emit` (or one event's :func:`retry`) achieved, by sink name.

    ``skipped``: the sinks among ``failed`` that were not tried (a retry: their sink kept
    failing just before; an emit: the sink is held, see :mod:`tunesmith.events.holds`); their
    deliveries are kept as failed. ``timed_out``: the sinks among ``failed`` whose delivery
    timed out, and so was not tried again (``RetryPolicy.hold_on_timeout``)."""

    event_id: str
    delivered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def _send_within(sink: Any, event: Event, timeout: float | None) -> None:
    """``sink.send(event)``, given up on after ``timeout`` seconds (a ``TimeoutError``).

    The send runs in a daemon thread: Python cannot stop a call that hangs, so a timed-out send
    is abandoned there, and the delivery is recorded as failed (``events retry`` re-sends it).
    """
    if timeout is None:
        sink.send(event)
        return
    outcome: dict[str, BaseException] = {}

    def send() -> None:
        try:
            sink.send(event)
        except BaseException as exc:  # handed to the caller's thread, which decides
            outcome["error"] = exc

    worker = threading.Thread(target=send, name="tunesmith-sink-send", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"the sink did not return within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]


def _deliver(
    store: Store, event: Event, name: str, sink: Any, policy: RetryPolicy
) -> tuple[str | None, bool]:
    """Send with retries, recording every attempt: the last error (None once delivered), and
    whether the delivery ended on a timeout (:attr:`RetryPolicy.hold_on_timeout`). The outcome
    also counts towards holding the sink (:func:`holds.settle`, in the same transaction, so
    the count never disagrees with the rows)."""
    error = None
    for attempt in range(1, policy.tries + 1):
        time.sleep(policy.delay(attempt))
        try:
            _send_within(sink, event, policy.send_timeout)
        except Exception as exc:  # any delivery failure is retried and recorded, never fatal
            # A library's error may quote the URL, token and all (kept in the outbox and shown
            # by `events list`): the sink's own URL is replaced by its shown form.
            error = without_secrets(f"{type(exc).__name__}: {exc}", name)[:2000]
            timed_out = policy.hold_on_timeout and isinstance(exc, TimeoutError)
            status = "failed" if attempt == policy.tries or timed_out else "pending"
            with store.transaction() as tx:
                # Still ours while pending (between attempts); no one's once it rests as failed.
                tx.execute(
                    "UPDATE outbox_deliveries SET attempts = attempts + 1, last_error = ?, "
                    "last_attempt_at = ?, status = ?, owner = CASE WHEN ? = 'failed' THEN NULL "
                    "ELSE owner END WHERE event_id = ? AND sink = ?",
                    (error, utc_now(), status, status, event.id, name),
                )
                if status == "failed":
                    holds.settle(tx, name, error, policy, timed_out=timed_out)
            if timed_out:
                return error, True
            continue
        now = utc_now()
        with store.transaction() as tx:
            tx.execute(
                "UPDATE outbox_deliveries SET attempts = attempts + 1, status = 'delivered', "
                "last_attempt_at = ?, delivered_at = ?, owner = NULL "
                "WHERE event_id = ? AND sink = ?",
                (now, now, event.id, name),
            )
            holds.settle(tx, name, None, policy)
        return None, False
    return error, False


def send_all(
    store: Store,
    event: Event,
    named: list[tuple[str, Any]],
    policy: RetryPolicy,
    *,
    gated: bool = True,
) -> EmitReport:
    """Deliver ``event`` to each sink in turn. ``gated`` (an emit): a held sink is not tried,
    its delivery kept as failed at once, and a sink whose hold is over gets one attempt, the
    trial (:mod:`tunesmith.events.holds`); a retry decides itself (``gated=False``)."""
    report = EmitReport(event.id)
    for name, sink in named:
        verdict, reason = holds.gate(store, name, policy) if gated else (holds.SEND, None)
        if verdict == holds.HELD:
            store.execute(
                "UPDATE outbox_deliveries SET status = 'failed', last_error = ?, owner = NULL "
                "WHERE event_id = ? AND sink = ?",
                (reason, event.id, name),
            )
            report.failed.append(name)
            report.skipped.append(name)
            report.errors[name] = str(reason)
            continue
        tries = replace(policy, tries=1) if verdict == holds.PROBE else policy
        error, timed_out = _deliver(store, event, name, sink, tries)
        if error is None:
            report.delivered.append(name)
        else:
            report.failed.append(name)
            report.errors[name] = error
            if timed_out:
                report.timed_out.append(name)
    return report


def say_failed(report: EmitReport, store: Store) -> None:
    if report.failed:
        # Logged by servers (`support serve`, `finance watch`): a webhook's token stays out.
        details = "; ".join(
            f"{shown_sink(name)}: {without_secrets(report.errors[name], name)}"
            for name in report.failed
        )
        print(
            f"tunesmith: event {report.event_id} not delivered to {details} (kept in the outbox "
            f"{store.path}; `{retry_command(store.path)}` re-sends it)",
            file=sys.stderr,
        )


def retry_command(outbox: str | Path) -> str:
    """The command that re-sends the failed deliveries of ``outbox``: ``--outbox`` named unless
    it is the default one (a KB's or finance database's outbox: a bare `tunesmith events retry`
    looked in the default outbox and said "re-sent 0 deliveries; 0 still failing")."""
    if Path(outbox).resolve() == default_outbox_path().resolve():
        return "tunesmith events retry"
    return f"tunesmith events retry --outbox {shlex.quote(str(outbox))}"
