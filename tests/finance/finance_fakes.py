"""Test helpers for the finance tests: a keyword sentiment model that needs no torch, so ingest,
trends and alert tests are exact and fast (the real-model path has its own tests)."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from tunesmith_finance.scoring import Score

NEGATIVE_WORDS = (
    "plunge", "tumble", "falls", "fall", "slide", "sinks", "drops", "halted", "fears", "worries",
    "misses", "cuts", "downgrade", "warns", "suspends", "lawsuit", "pull", "pile", "negative",
)  # fmt: skip
POSITIVE_WORDS = ("beats", "raises", "upgrade", "jumps", "buyback", "wins", "lifts", "rallies")


class KeywordModel:
    """Scores a text negative / positive by keywords, neutral otherwise; ``delay`` per batch."""

    def __init__(self, delay: float = 0.0, path: str = "keyword-model") -> None:
        self.delay = delay
        self.path = path
        self.calls = 0

    def score(self, texts: list[str], *, batch_size: int = 32) -> list[Score]:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        out = []
        for text in texts:
            lower = text.lower()
            if any(w in lower for w in NEGATIVE_WORDS):
                out.append(Score(0.8, 0.15, 0.05, "negative"))
            elif any(w in lower for w in POSITIVE_WORDS):
                out.append(Score(0.05, 0.15, 0.8, "positive"))
            else:
                out.append(Score(0.1, 0.8, 0.1, "neutral"))
        return out


def write_jsonl(path: Path, rows: list[object]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def doc(
    i: int, text: str | None = None, time: str = "2026-11-02T10:00:00Z", **extra: object
) -> dict:
    """A minimal valid document."""
    return {
        "id": f"d{i}",
        "time": time,
        "source": "test",
        "text": text or f"note number {i}",
        **extra,
    }


def wait_for(condition, timeout: float = 30.0) -> bool:
    """Poll ``condition`` every 0.1 s until it is true (True) or ``timeout`` seconds pass."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def spy_loader(monkeypatch) -> list[str]:
    """``load_ensemble`` of the scoring module records the device asked for; loads on the CPU."""
    import tunesmith_finance.scoring as scoring

    asked: list[str] = []
    real = scoring.load_ensemble

    def spy(path, *, quantize=None, device="cpu"):
        asked.append(device)
        return real(path, quantize=quantize, device="cpu")

    monkeypatch.setattr(scoring, "load_ensemble", spy)
    return asked


def store_docs(path: Path, rows: list[dict]) -> None:
    """Score ``rows`` with :class:`KeywordModel` and store them in the finance database at
    ``path`` (created when missing), as `finance ingest` does."""
    from tunesmith_finance.ingest import Ingester
    from tunesmith_finance.storage import open_store

    store = open_store(path)
    try:
        Ingester(store, KeywordModel(), warn=lambda _m: None).ingest_records(rows)
    finally:
        store.close()


def store_sample_stream(path: Path, model_path: str = "keyword-model") -> Path:
    """The plugin's sample stream, with its rules, scored by :class:`KeywordModel` and stored
    at ``path`` as scored by ``model_path`` (a tiny model's folder, for a page that explains
    its alerts); returns ``path``."""
    from tunesmith_finance.ingest import Ingester
    from tunesmith_finance.rules import load_rules
    from tunesmith_finance.sample import RULES, STREAM
    from tunesmith_finance.storage import open_store

    store = open_store(path)
    try:
        model = KeywordModel(path=model_path)
        Ingester(store, model, load_rules(RULES), warn=lambda _m: None).ingest_file(STREAM)
    finally:
        store.close()
    return path


def clock_change_docs(path: Path, keys: list[str]) -> None:
    """Five hourly documents per topic in ``keys`` over the night New York's clocks go
    forward (02:00 on 2026-03-08), stored at ``path``: every other one negative."""
    rows = []
    for i, topic in enumerate(keys):
        for h in range(5):
            text = f"Shares {'plunge' if h % 2 else 'drift'} {i} {h}"
            rows.append(doc(10 * i + h, text, f"2026-03-08T{h + 5:02d}:10:00Z", topics=[topic]))
    store_docs(path, rows)
