"""The finance dashboard's pieces without a browser: its set-up and its alert text."""

from __future__ import annotations

from tunesmith_finance import demo


def _wait(board):
    board._thread.join(timeout=60)
    assert not board._thread.is_alive()


def test_a_mistyped_model_path_fails_the_set_up_instead_of_training_a_model_there(tmp_path):
    board = demo.Dashboard(model=str(tmp_path / "modle"), db=str(tmp_path / "demo.sqlite"))
    board.start()
    _wait(board)
    assert board.status.startswith("Set-up failed:") and board.error
    assert not (tmp_path / "modle").exists()


def test_start_tries_again_after_a_failed_set_up(tmp_path, monkeypatch):
    board = demo.Dashboard(model=str(tmp_path / "missing"), db=str(tmp_path / "demo.sqlite"))
    board.start()
    _wait(board)
    assert board.error
    calls = []
    monkeypatch.setattr(board, "_prepare", lambda: calls.append("again"))
    # The button did nothing after a failure: the failed thread was still remembered.
    assert board.start() == "Starting..."
    _wait(board)
    assert calls == ["again"] and board.error is None


def test_alert_text_from_the_database_is_shown_as_typed():
    alert = {
        "kind": "topic",
        "key": "banking",
        "negatives": 3,
        "n": 4,
        "share": 0.75,
        "baseline": 0.1,
        "window": "2026-11-05T12:00:00Z/2026-11-05T15:00:00Z",
        "words": [{"word": "<b>plunge</b>"}],
        "examples": [
            {"score": -0.9, "time": "t", "text": "<img src=x onerror=alert(1)> *Helix* [Bank](x)"}
        ],
    }
    text = demo._alert_markdown(alert)
    assert "<img" not in text and "<b>" not in text
    assert "**&lt;b&gt;plunge&lt;/b&gt;**" in text
    assert "&lt;img src=x onerror=alert\\(1\\)&gt; \\*Helix\\* \\[Bank\\]\\(x\\)" in text


def test_a_topic_left_selected_after_switching_to_tickers_falls_back_to_the_top_six(db):
    from finance_fakes import KeywordModel

    from tunesmith_finance.ingest import Ingester
    from tunesmith_finance.rules import load_rules
    from tunesmith_finance.sample import RULES, STREAM

    Ingester(db, KeywordModel(), load_rules(RULES), warn=lambda _m: None).ingest_file(STREAM)
    board = demo.Dashboard(model="unused", db="unused")
    board._db = db
    by_topic = board.snapshot("topic", "3h", "banking")
    assert "banking" in by_topic["keys"] and by_topic["key"] == "banking"
    by_ticker = board.snapshot("ticker", "3h", "banking")  # the box still says "banking"
    assert "banking" not in by_ticker["keys"] and by_ticker["key"] == demo.TOP
