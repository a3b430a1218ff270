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
