"""The dashboard on a growing database: its refresh reads only the documents stored since the
last one (late ones included), and shows the alerts and chart a full recomputation shows."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime

import pytest

from tunesmith_finance import alerts as alerts_module
from tunesmith_finance import live_counts, storage
from tunesmith_finance import trends as trends_module
from tunesmith_finance.alerts import AlertOptions, default_detector, list_alerts, run_alerts
from tunesmith_finance.demo import GROUPS, TOP, Dashboard
from tunesmith_finance.documents import resolve_zone
from tunesmith_finance.live_counts import LiveCounts
from tunesmith_finance.trends import bucket_counts

START = datetime(2026, 11, 2, tzinfo=UTC).timestamp()
HOUR = 3600.0
TOPICS = ["banking", "macro", "energy"]
TICKERS = ["HLX", "ORC", "ZEN"]


def _docs(rng: random.Random, prefix: str, times: list[float], negative: float = 0.15) -> list:
    """Documents at ``times``, about ``negative`` of them negative, with topics and tickers."""
    out = []
    for i, ts in enumerate(times):
        label = "negative" if rng.random() < negative else rng.choice(["neutral", "positive"])
        text = f"{prefix} headline {i} {label}"
        score = {"negative": -0.75, "neutral": 0.05, "positive": 0.625}[label]
        out.append(
            storage.StoredDocument(
                id=f"{prefix}-{i}",
                ts=ts,
                time=datetime.fromtimestamp(ts, UTC).isoformat(),
                source="wire",
                text=text,
                text_hash=hashlib.sha256(text.encode()).hexdigest(),
                chars=len(text),
                truncated=False,
                label=label,
                score=score,
                p_negative=0.8 if label == "negative" else 0.1,
                p_neutral=0.1,
                p_positive=0.1 if label == "negative" else 0.8,
                topics=[rng.choice(TOPICS)] if rng.random() < 0.9 else [],
                tickers=rng.sample(TICKERS, rng.choice([0, 1, 2])),
            )
        )
    return out


def _store(db, docs) -> None:
    with db.transaction() as tx:
        storage.insert_documents(tx, docs)


def _history(rng: random.Random) -> list:
    """Four days at about 12 documents an hour, quiet."""
    return _docs(rng, "old", [START + rng.random() * 4 * 86400 for _ in range(1200)])


def _arrivals(rng: random.Random) -> list:
    """A batch that arrives later: the next hours, plus late documents (a negative surge
    on banking two days back) and stragglers anywhere in the history."""
    now = START + 4 * 86400
    new = _docs(rng, "new", [now + rng.random() * 6 * HOUR for _ in range(80)])
    surge = _docs(
        rng, "late", [START + 2 * 86400 + rng.random() * 2 * HOUR for _ in range(40)], 0.9
    )
    for doc in surge:
        doc.topics = ["banking"]
    stragglers = _docs(rng, "straggler", [START + rng.random() * 4 * 86400 for _ in range(30)])
    return new + surge + stragglers


def _exact(rows) -> list[tuple]:
    """Bucket counts without the score sums (added in another order, so equal to ~1e-12)."""
    return [(key, b, n, neg) for key, b, n, neg, _total in rows]


@pytest.mark.parametrize(("size", "tz"), [(HOUR, "UTC"), (86400.0, "America/New_York"),
                                          (7 * 86400.0, "Asia/Kolkata")])  # fmt: skip
def test_live_counts_equal_the_stored_counts_after_new_late_and_pruned_documents(db, size, tz):
    rng = random.Random(3)
    zone = resolve_zone(tz, "--tz")
    _store(db, _history(rng))
    live = LiveCounts(db, size, zone)
    assert live.update() == 1200

    def same() -> None:
        for kind in GROUPS:
            held = list(live.rows(kind))
            stored = bucket_counts(db, by=kind, bucket=size, zone=zone)
            assert _exact(held) == _exact(stored)
            assert [t for *_, t in held] == pytest.approx([t for *_, t in stored], abs=1e-9)
        assert live.negative_share() == alerts_module.global_negative_share(db)

    same()
    _store(db, _arrivals(rng))
    assert live.update() == 150
    same()
    # A prune removes documents: the held counts are read again, not left with them in.
    db.execute("DELETE FROM finance_documents WHERE ts < ?", (START + 86400,))
    live.update()
    assert live.rebuilds == 1
    same()


def _alerts_of(db) -> list[dict]:
    return [
        {k: v for k, v in a.items() if k not in ("created_at", "event_id", "sent")}
        for a in list_alerts(db)
    ]


def _full_check(db) -> None:
    """What `finance alerts --by topic` and `--by ticker` find and store, reading everything."""
    detector = default_detector(db)
    for by in GROUPS:
        run_alerts(db, detector=detector, options=AlertOptions(by=by))


def test_dashboard_refresh_after_new_and_late_documents_shows_a_full_recomputations_alerts(
    tmp_path,
):
    rng_page, rng_full = random.Random(5), random.Random(5)
    page_db = storage.open_store(tmp_path / "page.sqlite")
    full_db = storage.open_store(tmp_path / "full.sqlite")
    try:
        board = Dashboard(db=str(tmp_path / "page.sqlite"))
        board._db = page_db
        for db, rng in ((page_db, rng_page), (full_db, rng_full)):
            _store(db, _history(rng))
        board.check_alerts()
        _full_check(full_db)
        assert _alerts_of(page_db) == _alerts_of(full_db)
        first = board.snapshot("topic", "auto", TOP, "UTC")

        for db, rng in ((page_db, rng_page), (full_db, rng_full)):
            _store(db, _arrivals(rng))
        board.check_alerts()
        _full_check(full_db)
        found = _alerts_of(page_db)
        # The late surge two days back is alerted, as a full run alerts it.
        assert any(a["key"] == "banking" and a["window_start"] < START + 3 * 86400 for a in found)
        assert found == _alerts_of(full_db)

        # The chart: the incremental page draws what a page reading everything draws.
        fresh = Dashboard(db=str(tmp_path / "full.sqlite"))
        fresh._db = full_db
        for by in GROUPS:
            for bucket in ("auto", "1h", "6h", "1w"):
                now, full = (
                    b.snapshot(by, bucket, TOP, "America/New_York") for b in (board, fresh)
                )
                for name in ("rows", "details", "keys", "choices", "bucket", "chart_words"):
                    assert now[name] == full[name], (by, bucket, name)
        assert first["chart_words"] != board.snapshot("topic", "auto", TOP, "UTC")["chart_words"]
    finally:
        page_db.close()
        full_db.close()


def test_dashboard_refresh_reads_only_the_documents_stored_since(tmp_path, monkeypatch):
    rng = random.Random(8)
    db = storage.open_store(tmp_path / "page.sqlite")
    try:
        _store(db, _history(rng))
        board = Dashboard(db=str(tmp_path / "page.sqlite"))
        board._db = db
        board.check_alerts()
        board.snapshot("ticker", "auto", TOP, "UTC")
        _store(db, _arrivals(rng))

        def whole_history(*_args, **_kwargs):
            raise AssertionError("the refresh read every document's counts again")

        # The full reads a refresh made before: bucket counts (detector and trends) and the
        # prior over every document.
        monkeypatch.setattr(alerts_module, "bucket_counts", whole_history)
        monkeypatch.setattr(trends_module, "bucket_counts", whole_history)
        monkeypatch.setattr(live_counts, "bucket_counts", whole_history)
        monkeypatch.setattr(alerts_module, "global_negative_share", whole_history)
        board.check_alerts()
        assert board.status == "Ready."
        view = board.snapshot("ticker", "auto", TOP, "UTC")
        assert "150" not in view["status"] and "1350 documents stored" in view["status"]
    finally:
        db.close()


# Sunday 1 November 2026 02:00 EDT the clocks went back: a 25-hour day in New York.
CLOCK_CHANGE = datetime(2026, 11, 1, 6, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("size", "tz"), [(86400.0, "America/New_York"),
                                          (7 * 86400.0, "Asia/Kolkata"), (86400.0, "UTC"),
                                          (6 * HOUR, "Australia/Sydney")])  # fmt: skip
def test_counts_summed_from_held_hours_equal_the_stored_counts_across_a_clock_change(db, size, tz):
    rng = random.Random(12)
    zone = resolve_zone(tz, "--tz")
    times = [CLOCK_CHANGE + (rng.random() - 0.5) * 16 * 86400 for _ in range(1500)]
    _store(db, _docs(rng, "old", times))
    hours = LiveCounts(db, HOUR, zone)
    hours.update()

    def up_to_date() -> LiveCounts:
        hours.update()
        return hours

    summed = LiveCounts(db, size, zone, source=up_to_date)
    summed.update()
    assert summed.rebuilds == 0

    def same() -> None:
        for kind in GROUPS:
            held = list(summed.rows(kind))
            stored = bucket_counts(db, by=kind, bucket=size, zone=zone)
            assert _exact(held) == _exact(stored)
            assert [t for *_, t in held] == pytest.approx([t for *_, t in stored], abs=1e-9)
        assert summed.negative_share() == alerts_module.global_negative_share(db)

    same()
    _store(db, _arrivals(rng))  # and then it follows the documents stored since
    summed.update()
    same()


def test_counts_summed_from_other_buckets_refuse_sizes_that_do_not_add_up(db):
    _store(db, _history(random.Random(1)))
    threes = LiveCounts(db, 3 * HOUR)
    with pytest.raises(ValueError, match="do not add up"):
        LiveCounts(db, 86400.0 * 7 + HOUR, source=lambda: threes).update()


def test_live_counts_follow_a_document_that_took_the_rowid_of_a_removed_one(db):
    rng = random.Random(4)
    _store(db, _history(rng))
    live = LiveCounts(db, HOUR)
    live.update()
    # The newest document goes and another arrives: SQLite gives it the same rowid, and the
    # document count is what it was.
    db.execute(
        "DELETE FROM finance_documents WHERE rowid = (SELECT MAX(rowid) FROM finance_documents)"
    )
    _store(db, _docs(rng, "replacement", [START + 3600.0], negative=1.0))
    live.update()
    for kind in GROUPS:
        assert _exact(live.rows(kind)) == _exact(bucket_counts(db, by=kind, bucket=HOUR))
    assert live.negative_share() == alerts_module.global_negative_share(db)


def test_first_read_is_tried_again_when_a_batch_lands_while_it_runs(db, monkeypatch):
    rng = random.Random(6)
    _store(db, _history(rng))
    landing = _arrivals(rng)
    real = live_counts.bucket_counts
    calls = []

    def batch_lands(*args, **kwargs):
        calls.append(kwargs["by"])
        if len(calls) == 1:
            _store(db, landing)
        return real(*args, **kwargs)

    read_by_rowid = []
    add_range = LiveCounts._add_range
    monkeypatch.setattr(live_counts, "bucket_counts", batch_lands)
    monkeypatch.setattr(
        LiveCounts,
        "_add_range",
        lambda self, a, b: (read_by_rowid.append(b - a), add_range(self, a, b)),
    )
    live = LiveCounts(db, HOUR)
    assert live.update() == 1350
    # Read again with SQLite's grouping, not document by document (four times slower)
    assert read_by_rowid == [] and len(calls) == 4
    for kind in GROUPS:
        assert _exact(live.rows(kind)) == _exact(real(db, by=kind, bucket=HOUR))


def test_first_chart_sums_the_alert_checks_hours_instead_of_reading_the_history(
    tmp_path, monkeypatch
):
    rng = random.Random(9)
    db = storage.open_store(tmp_path / "page.sqlite")
    try:
        _store(db, _history(rng))
        board = Dashboard(db=str(tmp_path / "page.sqlite"))
        board._db = db
        board.check_alerts()
        reads = []
        real = live_counts.bucket_counts

        def counted(*args, **kwargs):
            reads.append(kwargs["bucket"])
            return real(*args, **kwargs)

        monkeypatch.setattr(live_counts, "bucket_counts", counted)
        view = board.snapshot("topic", "auto", TOP, "UTC")
        assert reads == []  # the weeks and the days: both summed from the held hours
        fresh = Dashboard(db=str(tmp_path / "page.sqlite"))
        fresh._db = db
        monkeypatch.setattr(live_counts, "bucket_counts", real)
        # A page whose first chart comes before its first check: one read (the hours) for all
        assert fresh.snapshot("topic", "auto", TOP, "UTC")["chart_words"] == view["chart_words"]
    finally:
        db.close()


def _surge(rng: random.Random, prefix: str, topic: str, at: float) -> list:
    docs = _docs(rng, prefix, [at + rng.random() * 2 * HOUR for _ in range(40)], 0.9)
    for doc in docs:
        doc.topics, doc.tickers = [topic], []
    return docs


def test_alert_check_runs_the_detector_only_on_keys_with_a_window_beyond_the_stored_alerts(
    tmp_path, monkeypatch
):
    from tunesmith_finance.detector import SurgeDetector

    rng = random.Random(5)
    db = storage.open_store(tmp_path / "page.sqlite")
    full_db = storage.open_store(tmp_path / "full.sqlite")
    detected: list[str] = []
    detect = SurgeDetector.detect

    def counted(self, key, counts, quiet=()):
        detected.append(key)
        return detect(self, key, counts, quiet)

    monkeypatch.setattr(SurgeDetector, "detect", counted)
    try:
        board = Dashboard(db=str(tmp_path / "page.sqlite"))
        board._db = db
        history = _history(rng) + _surge(rng, "scare", "banking", START + 2 * 86400)
        quiet = _docs(
            rng, "quiet", [START + 4 * 86400 + rng.random() * 6 * HOUR for _ in range(80)]
        )
        later = _surge(rng, "later", "macro", START + 4 * 86400 + 2 * HOUR)
        for step in (history, quiet, later):
            detected.clear()
            for target in (db, full_db):
                _store(target, step)
            board.check_alerts()
            if step is quiet:
                # The banking scare is stored: its windows are inside its cool-down
                assert detected == []
            if step is later:
                assert detected == ["macro"]
            _full_check(full_db)
            assert _alerts_of(db) == _alerts_of(full_db)
        assert {a["key"] for a in _alerts_of(db)} >= {"banking", "macro"}
    finally:
        db.close()
        full_db.close()


def test_alert_check_runs_after_a_prune_of_as_many_documents_as_arrived(tmp_path):
    rng_page, rng_full = random.Random(2), random.Random(2)
    page_db = storage.open_store(tmp_path / "page.sqlite")
    full_db = storage.open_store(tmp_path / "full.sqlite")
    try:
        board = Dashboard(db=str(tmp_path / "page.sqlite"))
        board._db = page_db
        for db, rng in ((page_db, rng_page), (full_db, rng_full)):
            _store(db, _history(rng))
        board.check_alerts()
        before = board.signature("topic", "auto", TOP, "UTC")
        for db, rng in ((page_db, rng_page), (full_db, rng_full)):
            surge = _surge(rng, "late", "energy", START + 3 * 86400)
            first = db.query("SELECT MIN(ts) AS t FROM finance_documents")[0]["t"]
            cut = sorted(r["ts"] for r in db.query("SELECT ts FROM finance_documents"))[len(surge)]
            assert cut > first
            db.execute("DELETE FROM finance_documents WHERE ts < ?", (cut,))
            _store(db, surge)
        assert storage.count_documents(page_db) == 1200
        # The page checks again and redraws, though the document count is the same
        after = board.signature("topic", "auto", TOP, "UTC")
        board.check_alerts()
        _full_check(full_db)
        assert any(a["key"] == "energy" for a in _alerts_of(page_db))
        assert _alerts_of(page_db) == _alerts_of(full_db)
        assert after != before
    finally:
        page_db.close()
        full_db.close()


@pytest.mark.parametrize("seed", range(6))
def test_screen_lets_through_every_key_the_detector_alerts(db, seed):
    from tunesmith_finance.detector import SurgeDetector

    rng = random.Random(seed)
    times = [START + rng.random() * 3 * 86400 for _ in range(900)]
    docs = _docs(rng, "d", times, negative=rng.choice([0.1, 0.3]))
    for doc in docs:  # a few keys, some small, some surging now and then
        doc.tickers = [rng.choice(TICKERS + ["TINY", "RARE"])]
        if rng.random() < 0.1:
            doc.label = "negative"
    _store(db, docs)
    live = LiveCounts(db, HOUR)
    live.update()
    for _ in range(20):
        detector = SurgeDetector(
            window=rng.choice([1, 2, 3, 5]),
            half_life=rng.choice([None, 600.0, 6 * HOUR, 100 * HOUR]),
            min_volume=rng.choice([1, 3, 8]),
            min_lift=rng.choice([0.0, 0.05, 0.15]),
            p_value=rng.choice([0.5, 0.05, 0.001]),
            prior=rng.choice([0.05, 0.2, 0.5]),
        )
        stored = {
            key: [START + rng.randrange(72) * HOUR for _ in range(rng.randrange(3))]
            for key in (*TICKERS, "TINY", "RARE")
        }
        passed = live.could_alert("ticker", detector, stored)
        for key in (*TICKERS, "TINY", "RARE"):
            found = _detect_key(detector, live, key, stored.get(key, []))
            assert not found or key in passed, (detector, key)


def _detect_key(detector, live, key, stored_ends):
    rows = [(b, n, k, s) for name, b, n, k, s in live.rows("ticker", {key}) if name == key]
    return detector.detect(key, rows, quiet=stored_ends)
