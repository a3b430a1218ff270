"""The outbox after a year: `events prune` (retention), `events list --since/--limit`, a tail
that reads only what it shows, and a retry that stops trying a sink that keeps failing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tunesmith.errors import UserInputError
from tunesmith.events import (
    RetryPolicy,
    emit,
    list_deliveries,
    open_outbox,
    plan_prune,
    prune,
    prune_cutoff,
    pruned_before,
    retry,
)
from tunesmith.events.ages import stamp
from tunesmith.hooktypes import Event

NOW = datetime.now(UTC)


class Sink:
    """A sink named ``memory:NAME`` that keeps what it got, or fails every send (``down``)."""

    def __init__(self, name: str = "ok", down: bool = False) -> None:
        self.sink_url = f"memory:{name}"
        self.down = down
        self.got: list[str] = []

    def send(self, event: Event) -> None:
        self.got.append(event.message)
        if self.down:
            raise ConnectionError("[Errno 111] Connection refused")


def once() -> RetryPolicy:
    # Sinks never held (test_events_holds.py): these emits fill an outbox as a sink down all
    # day leaves it, each delivery tried, for the retry's own give-up to work through.
    return RetryPolicy(tries=1, base_delay=0, hold_after=None)


def emit_at(outbox, message: str, days_ago: float, sinks) -> str:
    """Emit an event created ``days_ago`` days ago and date its deliveries then too."""
    when = stamp(NOW - timedelta(days=days_ago))
    report = emit(
        Event(kind="k", message=message, created_at=when), sinks, outbox=outbox, retry=once()
    )
    open_outbox(outbox).execute(
        "UPDATE outbox_deliveries SET delivered_at = ? WHERE event_id = ? AND delivered_at IS NOT NULL",
        (when, report.event_id),
    )
    return report.event_id


def messages(outbox) -> list[str]:
    return [d.event.message for d in list_deliveries(outbox)]


def test_prune_removes_only_events_delivered_to_every_sink_before_the_cutoff(tmp_path, capsys):
    outbox = tmp_path / "o.sqlite"
    ok, down = Sink("ok"), Sink("down", down=True)
    emit_at(outbox, "old delivered", 60, [ok])
    emit_at(outbox, "old failed", 60, [down])
    emit_at(outbox, "old half", 60, [ok, down])
    emit_at(outbox, "recent delivered", 5, [ok])
    late = emit_at(outbox, "old, delivered late", 60, [ok])
    open_outbox(outbox).execute(
        "UPDATE outbox_deliveries SET delivered_at = ? WHERE event_id = ?",
        (stamp(NOW - timedelta(days=1)), late),
    )
    pending = emit_at(outbox, "old pending", 60, [ok])
    open_outbox(outbox).execute(
        "UPDATE outbox_deliveries SET status = 'pending' WHERE event_id = ?", (pending,)
    )
    cutoff = stamp(NOW - timedelta(days=30))

    plan = plan_prune(outbox, cutoff)
    assert (plan.events, plan.deliveries, plan.kept_events, plan.kept_unsettled) == (1, 1, 5, 4)
    report = prune(outbox, cutoff)

    assert (report.events, report.deliveries) == (1, 1)
    assert messages(outbox) == [
        "old failed",
        "old half",
        "old half",
        "old, delivered late",
        "old pending",
        "recent delivered",
    ]
    assert pruned_before(outbox) == cutoff


def test_prune_removes_in_batches_of_its_own_transactions(tmp_path):
    outbox = tmp_path / "o.sqlite"
    ok = Sink()
    for i in range(7):
        emit_at(outbox, f"m{i}", 40, [ok])
    emit_at(outbox, "kept", 40, [Sink("down", down=True)])
    store = open_outbox(outbox)
    begun: list[str] = []
    store._conn.set_trace_callback(
        lambda sql: begun.append(sql) if sql == "BEGIN IMMEDIATE" else None
    )
    try:
        report = prune(outbox, stamp(NOW - timedelta(days=30)), batch=3, pause=0)
    finally:
        store._conn.set_trace_callback(None)

    assert (report.events, report.batches) == (7, 3)
    # One transaction to log the prune, then one per batch: an emitter waits at most one.
    assert len(begun) == 4
    assert messages(outbox) == ["kept"]


def test_prune_does_not_read_again_the_old_events_it_keeps_in_each_batch(tmp_path):
    """Kept events (still failing) at the oldest end were read by every batch's query."""
    outbox = tmp_path / "o.sqlite"
    down, ok = Sink("down", down=True), Sink()
    for i in range(30):
        emit_at(outbox, f"failed {i}", 50 + i / 100, [down])
    for i in range(30):
        emit_at(outbox, f"delivered {i}", 40, [ok])
    store = open_outbox(outbox)
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    store._conn.set_progress_handler(count, 1)
    try:
        prune(outbox, stamp(NOW - timedelta(days=30)), batch=1, pause=0)
    finally:
        store._conn.set_progress_handler(None, 1)
    with_cursor = steps[0]
    # The same work without kept events in front: the 30 kept ones add little.
    other = tmp_path / "p.sqlite"
    for i in range(30):
        emit_at(other, f"delivered {i}", 40, [ok])
    store = open_outbox(other)
    steps[0] = 0
    store._conn.set_progress_handler(count, 1)
    try:
        prune(other, stamp(NOW - timedelta(days=30)), batch=1, pause=0)
    finally:
        store._conn.set_progress_handler(None, 1)
    assert with_cursor < 2 * steps[0]


def test_events_cli_prune_dry_run_says_what_would_go_and_changes_nothing(tmp_path, cli):
    outbox = tmp_path / "o.sqlite"
    emit_at(outbox, "old", 60, [Sink()])
    emit_at(outbox, "old failed", 60, [Sink("down", down=True)])

    dry = cli("events", "prune", "--outbox", str(outbox), "--delivered-before", "30d", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would remove 1 event(s) and 1 delivery(ies)" in dry.stdout
    assert "kept 1 event(s), 1 of them older than the cut-off" in dry.stdout
    assert messages(outbox) == ["old", "old failed"]
    assert pruned_before(outbox) is None

    done = cli("events", "prune", "--outbox", str(outbox), "--delivered-before", "30d", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert (report["events"], report["deliveries"], report["plan"]["kept_events"]) == (1, 1, 1)
    assert messages(outbox) == ["old failed"]


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("30m", "would keep less than a day"),
        ("2999-01-01", "is in the future"),
        ("thirty days", "expected an age such as 12h, 30d or 4w"),
    ],
)
def test_events_cli_prune_refuses_a_cutoff_under_a_day_or_unreadable(tmp_path, cli, given, said):
    outbox = tmp_path / "o.sqlite"
    emit_at(outbox, "recent", 0.01, [Sink()])
    result = cli("events", "prune", "--outbox", str(outbox), "--delivered-before", given)
    assert result.exit_code == 2 and said in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert messages(outbox) == ["recent"]


def test_prune_of_an_outbox_that_does_not_exist_creates_no_file(tmp_path):
    outbox = tmp_path / "none.sqlite"
    report = prune(outbox, prune_cutoff("30d"))
    assert report.events == 0 and not outbox.exists()


def test_events_list_since_and_limit_keep_a_large_outbox_short(tmp_path, cli):
    outbox = tmp_path / "o.sqlite"
    ok = Sink()
    for days in (40, 20, 10, 3, 2, 1):
        emit_at(outbox, f"{days} days ago", days, [ok])

    assert [d.event.message for d in list_deliveries(outbox, since="15d")] == [
        "10 days ago",
        "3 days ago",
        "2 days ago",
        "1 days ago",
    ]
    result = cli(
        "events", "list", "--outbox", str(outbox), "--since", "15d", "--limit", "2", "--json"
    )
    assert result.exit_code == 0, result.output
    assert [r["message"] for r in json.loads(result.stdout)] == ["10 days ago", "3 days ago"]
    moment = (NOW - timedelta(days=2, hours=12)).strftime("%Y-%m-%dT%H:%M:%S")
    tail = cli("events", "tail", "--outbox", str(outbox), "--since", moment, "--json")
    assert [r["message"] for r in json.loads(tail.stdout)] == ["2 days ago", "1 days ago"]
    bad = cli("events", "list", "--outbox", str(outbox), "--since", "last week")
    assert bad.exit_code == 2 and "--since 'last week'" in bad.output


def test_list_deliveries_refuses_newest_and_limit_together(tmp_path):
    with pytest.raises(UserInputError, match="not both"):
        list_deliveries(tmp_path / "o.sqlite", newest=1, limit=1)


def _steps_to_tail(outbox) -> int:
    """SQLite virtual-machine steps that reading the newest 5 deliveries takes."""
    store = open_outbox(outbox)
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    store._conn.set_progress_handler(count, 1)
    try:
        assert len(list_deliveries(outbox, newest=5)) == 5
        assert len(list_deliveries(outbox, limit=5)) == 5
    finally:
        store._conn.set_progress_handler(None, 1)
    return steps[0]


def test_events_tail_reads_about_as_much_of_a_large_outbox_as_of_a_small_one(tmp_path):
    """SQLite chose to scan and sort every delivery for a tail (200,000 in a year's outbox)."""
    outbox = tmp_path / "o.sqlite"
    ok = Sink()
    for i in range(50):
        emit_at(outbox, f"m{i}", 50 - i / 10, [ok])
    small = _steps_to_tail(outbox)
    for i in range(200):
        emit_at(outbox, f"n{i}", 40 - i / 10, [ok])
    assert _steps_to_tail(outbox) < 1.5 * small


def test_retry_stops_trying_a_sink_after_three_failed_deliveries_in_a_row(tmp_path):
    """A webhook down for a day: each of its 500 failed deliveries was tried in turn (three
    tries, up to 10 s each); now the rest wait, as they were, for the next retry."""
    outbox = tmp_path / "o.sqlite"
    down, other = Sink("down", down=True), Sink("other")
    for i in range(10):
        emit_at(outbox, f"m{i}", 1, [down])
    emit_at(outbox, "other's", 1, [Sink("other", down=True)])
    down.got.clear()

    reports = retry(outbox, sinks={"memory:down": down, "memory:other": other}, policy=once())

    assert down.got == ["m0", "m1", "m2"]  # oldest first, then no more
    assert other.got == ["other's"]  # another sink is still tried
    skipped = [r for r in reports if r.skipped]
    assert len(skipped) == 7 and all(r.failed == r.skipped == ["memory:down"] for r in skipped)
    assert "not tried" in skipped[0].errors["memory:down"]
    rows = list_deliveries(outbox, status="failed")
    assert [(d.event.message, d.attempts) for d in rows] == [
        ("m0", 2),
        ("m1", 2),
        ("m2", 2),
        *((f"m{i}", 1) for i in range(3, 10)),
    ]


def test_retry_keeps_trying_a_sink_that_delivers_between_failures(tmp_path):
    """One event a receiver always refuses must not hold back the ones after it."""
    outbox = tmp_path / "o.sqlite"
    picky = Sink("picky")
    for i in range(6):
        emit_at(outbox, f"m{i}", 1, [Sink("picky", down=True)])

    def send(event: Event) -> None:
        picky.got.append(event.message)
        if event.message in ("m0", "m2", "m4"):
            raise RuntimeError("answered 400")

    picky.send = send
    reports = retry(outbox, sinks={"memory:picky": picky}, policy=once())
    assert picky.got == [f"m{i}" for i in range(6)]
    assert not any(r.skipped for r in reports)


def _emit_to_a_blocked_file(outbox, blocked, n: int) -> None:
    """``n`` events m0, m1, ... to a jsonl sink under ``blocked``, a file where its folder
    should be: each delivery fails once."""
    blocked.write_text("x", encoding="utf-8")
    for i in range(n):
        emit(
            Event(kind="k", message=f"m{i}"),
            [f"jsonl:{blocked / 'e.jsonl'}"],
            outbox=outbox,
            retry=once(),
        )


def test_events_cli_retry_says_a_few_failures_per_sink_and_counts_the_rest(tmp_path, cli):
    outbox = tmp_path / "o.sqlite"
    _emit_to_a_blocked_file(outbox, tmp_path / "blocked", 8)

    result = cli("events", "retry", "--outbox", str(outbox), "--tries", "1")

    assert result.exit_code == 1
    assert (
        "re-sent 0 deliveries; 8 still failing (5 of them not tried: their sink kept failing)"
        in (result.stdout)
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("  ")]
    assert len(lines) == 4 and lines[-1].startswith("  ... and 5 more to jsonl:")


def test_iter_deliveries_reads_a_page_at_a_time_in_the_order_list_deliveries_gives(tmp_path):
    """`events list --json` of a year's outbox held all 200,000 deliveries at once (1.3 GB)."""
    from tunesmith.events import iter_deliveries

    outbox = tmp_path / "o.sqlite"
    for i in range(7):
        emit_at(outbox, f"m{i}", 10 - (i // 2), [Sink("a"), Sink("b")])  # equal times too
    store = open_outbox(outbox)
    reads: list[str] = []
    store._conn.set_trace_callback(
        lambda sql: reads.append(sql) if "outbox_deliveries d" in sql else None
    )
    try:
        paged = [(d.event.id, d.sink) for d in iter_deliveries(outbox, page=3)]
        limited = [(d.event.id, d.sink) for d in iter_deliveries(outbox, page=2, limit=5)]
    finally:
        store._conn.set_trace_callback(None)

    whole = [(d.event.id, d.sink) for d in list_deliveries(outbox)]
    assert len(whole) == 14 and paged == whole and limited == whole[:5]
    assert len(reads) == 5 + 3  # 14 rows by 3 (the last page short), 5 rows by 2


def test_events_cli_list_json_streams_the_same_list(tmp_path, cli):
    outbox = tmp_path / "o.sqlite"
    for i in range(3):
        emit_at(outbox, f"m{i}", 3 - i, [Sink("a"), Sink("b", down=True)])
    listed = cli("events", "list", "--outbox", str(outbox), "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == [d.to_dict() for d in list_deliveries(outbox)]
    table = cli("events", "list", "--outbox", str(outbox), "--status", "failed")
    assert [line.split()[4] for line in table.stdout.splitlines()[1:]] == ["failed"] * 3
    empty = cli("events", "list", "--outbox", str(outbox), "--since", "1h", "--json")
    assert json.loads(empty.stdout) == []


def _most_steps_under_the_write_lock(outbox, cutoff: str) -> int:
    """The most SQLite steps any one write transaction of a prune (batch 5) took."""
    store = open_outbox(outbox)
    inside, steps, most = [False], [0], [0]

    def trace(sql: str) -> None:
        if sql == "BEGIN IMMEDIATE":
            inside[0], steps[0] = True, 0
        elif sql in ("COMMIT", "ROLLBACK"):
            inside[0], most[0] = False, max(most[0], steps[0])

    def count() -> int:
        steps[0] += inside[0]
        return 0

    store._conn.set_trace_callback(trace)
    store._conn.set_progress_handler(count, 1)
    try:
        prune(outbox, cutoff, batch=5, pause=0)
    finally:
        store._conn.set_trace_callback(None)
        store._conn.set_progress_handler(None, 1)
    return most[0]


def test_a_prune_holds_the_write_lock_for_a_batch_however_many_old_events_it_keeps(tmp_path):
    """A year's outbox whose old events all stay (delivered late, or failing) was scanned
    whole inside the first write transaction: every emit beside it waited 3.7 s."""
    cutoff = stamp(NOW - timedelta(days=30))
    most = []
    for kept in (10, 80):
        outbox = tmp_path / f"o{kept}.sqlite"
        down = Sink("down", down=True)
        for i in range(kept):
            emit_at(outbox, f"failing {i}", 60 - i / 100, [down])
        most.append(_most_steps_under_the_write_lock(outbox, cutoff))
    assert most[1] < 1.5 * most[0]


def test_retry_rebuilds_each_sink_once_not_once_per_delivery(tmp_path, monkeypatch):
    """A webhook sink's client costs ~0.2 s to build: 700 deliveries took two minutes."""
    import tunesmith.events.resend as resend

    outbox = tmp_path / "o.sqlite"
    blocked = tmp_path / "blocked"
    _emit_to_a_blocked_file(outbox, blocked, 5)
    blocked.unlink()
    built: list[str] = []
    real = resend.make_sink
    monkeypatch.setattr(resend, "make_sink", lambda url: built.append(url) or real(url))

    reports = retry(outbox, policy=once())

    assert sum(len(r.delivered) for r in reports) == 5 and len(built) == 1
    lines = (blocked / "e.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["message"] for line in lines] == [f"m{i}" for i in range(5)]


def a_year_of_events(store, n: int = 3000, days_ago: float = 60) -> None:
    """``n`` events with a 2 KB payload each, delivered ``days_ago`` days ago, written through
    the store (emitting them one by one would take most of a minute)."""
    when = stamp(NOW - timedelta(days=days_ago))
    with store.transaction() as tx:
        tx.executemany(
            "INSERT INTO outbox_events(id, kind, source, message, payload, created_at) "
            "VALUES (?, 'k', 't', 'm', ?, ?)",
            [(f"e{i}", json.dumps({"text": "x" * 2000}), when) for i in range(n)],
        )
        tx.executemany(
            "INSERT INTO outbox_deliveries(event_id, sink, status, delivered_at) "
            "VALUES (?, 'memory:ok', 'delivered', ?)",
            [(f"e{i}", when) for i in range(n)],
        )


def auto_vacuum(path) -> int:
    import sqlite3

    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA auto_vacuum").fetchone()[0]


def test_an_outbox_created_now_is_in_incremental_auto_vacuum_mode(tmp_path):
    outbox = tmp_path / "o.sqlite"
    emit_at(outbox, "first", 0, [Sink()])
    assert auto_vacuum(outbox) == 2  # incremental


def test_events_cli_prune_vacuum_shrinks_the_file(tmp_path, cli):
    outbox = tmp_path / "o.sqlite"
    a_year_of_events(open_outbox(outbox))
    emit_at(outbox, "recent", 1, [Sink()])
    before = outbox.stat().st_size

    done = cli("events", "prune", "--outbox", str(outbox), "--delivered-before", "30d",
               "--vacuum")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "(incremental vacuum" in done.stdout
    assert outbox.stat().st_size < before / 5
    assert messages(outbox) == ["recent"]


def test_events_cli_prune_vacuum_of_an_older_outbox_says_how_to_switch_and_rewrites_nothing(
    tmp_path, cli
):
    from tunesmith.events import OUTBOX_MIGRATIONS, OUTBOX_NAMESPACE
    from tunesmith.store import Store

    outbox = tmp_path / "o.sqlite"
    with Store.open(outbox, namespace=OUTBOX_NAMESPACE, migrations=OUTBOX_MIGRATIONS) as old:
        a_year_of_events(old)  # as every outbox was made before: not in incremental mode
    before = outbox.stat().st_size

    done = cli("events", "prune", "--outbox", str(outbox), "--delivered-before", "30d",
               "--vacuum", "--json")  # fmt: skip
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["events"] == 3000 and report["vacuum"] == "skipped"
    (line,) = done.stderr.strip().splitlines()
    assert "space not given back" in line and "--vacuum --full" in line
    assert outbox.stat().st_size >= before and auto_vacuum(outbox) == 0  # no full VACUUM

    full = cli("events", "prune", "--outbox", str(outbox), "--delivered-before", "30d",
               "--vacuum", "--full")  # fmt: skip
    assert full.exit_code == 0, full.output
    assert "(full vacuum" in full.stdout
    assert outbox.stat().st_size < before / 5 and auto_vacuum(outbox) == 2


def test_events_cli_prune_refuses_full_without_vacuum(tmp_path, cli):
    outbox = tmp_path / "o.sqlite"
    emit_at(outbox, "old", 60, [Sink()])
    result = cli("events", "prune", "--outbox", str(outbox), "--delivered-before", "30d", "--full")
    assert result.exit_code == 2 and "--full goes with --vacuum" in result.output
    assert messages(outbox) == ["old"]


def test_events_prune_without_an_outbox_says_there_is_none_not_what_it_would_remove(
    cli, tmp_path, monkeypatch
):
    # It printed "would remove 0 event(s) ...", as if --dry-run had been given.
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "fresh"))  # no default outbox yet
    done = cli("events", "prune", "--delivered-before", "30d")
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "no outbox yet (nothing was emitted): nothing to remove"
    dry = cli("events", "prune", "--delivered-before", "30d", "--dry-run")
    assert "would remove 0 event(s)" in dry.stdout
