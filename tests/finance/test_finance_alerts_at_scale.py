"""`finance alerts` over a desk's tickers: the detector's pass in Python runs only on the keys
whose windows the numpy screen lets through, and finds what a pass over every key finds."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from tunesmith_finance import alerts as alerts_module
from tunesmith_finance import live_counts, storage
from tunesmith_finance.detector import SurgeDetector

START = datetime(2026, 11, 2, tzinfo=UTC).timestamp()


def _doc(i: int, ts: float, ticker: str, negative: bool) -> storage.StoredDocument:
    text = f"{ticker} headline {i}"
    label = "negative" if negative else "neutral"
    return storage.StoredDocument(
        id=f"d{i}", ts=ts, time=datetime.fromtimestamp(ts, UTC).isoformat(), source="wire",
        text=text, text_hash=hashlib.sha256(text.encode()).hexdigest(), chars=len(text),
        truncated=False, label=label, score=-0.7 if negative else 0.0, p_negative=0.8,
        p_neutral=0.1, p_positive=0.1, topics=[], tickers=[ticker],
    )  # fmt: skip


def _desk(path) -> None:
    """150 tickers at three documents an hour for two days (one in five negative), and one
    surge: T007, twelve negative documents an hour for three hours."""
    docs, i = [], 0
    for h in range(48):
        for t in range(150):
            for j in range(3):
                i += 1
                docs.append(
                    _doc(i, START + h * 3600 + t * 10 + j, f"T{t:03d}", (h + t + j) % 5 == 0)
                )
    for h in (40, 41, 42):
        for j in range(12):
            i += 1
            docs.append(_doc(i, START + h * 3600 + 2000 + j, "T007", True))
    db = storage.open_store(path)
    with db.transaction() as tx:
        storage.insert_documents(tx, docs)
    db.close()


def _run(path, monkeypatch, *, screened: bool) -> tuple[list[tuple[str, float]], list[str]]:
    tested: list[str] = []
    detect = SurgeDetector.detect

    def counted(self, key, counts, quiet=()):
        tested.append(key)
        return detect(self, key, counts, quiet)

    monkeypatch.setattr(SurgeDetector, "detect", counted)
    if not screened:
        monkeypatch.setattr(live_counts, "screens", lambda detector: False)
    db = storage.open_store(path)
    try:
        found = alerts_module.run_alerts(
            db,
            detector=SurgeDetector(prior=0.2, min_volume=20),
            options=alerts_module.AlertOptions(by="ticker"),
        )
    finally:
        db.close()
    monkeypatch.undo()
    return [(a["key"], a["window_end"]) for a in found], tested


def test_finance_alerts_runs_the_detector_only_on_the_tickers_the_screen_lets_through(
    tmp_path, monkeypatch
):
    _desk(tmp_path / "a.sqlite")
    _desk(tmp_path / "b.sqlite")
    found, tested = _run(tmp_path / "a.sqlite", monkeypatch, screened=True)
    everything, all_tested = _run(tmp_path / "b.sqlite", monkeypatch, screened=False)
    assert [key for key, _end in found] == ["T007"]
    assert found == everything
    # Before, every ticker's 48 hours went through the detector's loop in Python.
    assert len(all_tested) == 150
    assert tested == ["T007"]
