"""The finance dashboard's pieces without a browser: its set-up and its alert text."""

from __future__ import annotations

import contextlib

import pytest

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


class _StopMonitor(BaseException):
    """Ends the dashboard's endless monitor loop after a given number of checks."""


def _run_monitor(board, monkeypatch, checks: int) -> None:
    """Run ``board._monitor()`` for ``checks`` checks, without its pauses."""
    done = []

    class _Clock:
        @staticmethod
        def sleep(_seconds: float) -> None:
            done.append(1)
            if len(done) >= checks:
                raise _StopMonitor

    monkeypatch.setattr(demo, "time", _Clock)
    with contextlib.suppress(_StopMonitor):
        board._monitor()


def _sample_board(db, tz="UTC"):
    from finance_fakes import KeywordModel

    from tunesmith_finance.ingest import Ingester
    from tunesmith_finance.rules import load_rules
    from tunesmith_finance.sample import RULES, STREAM

    Ingester(db, KeywordModel(), load_rules(RULES), warn=lambda _m: None).ingest_file(STREAM)
    board = demo.Dashboard(model="unused", db="unused", tz=tz)
    board._db = db
    board.status = "Ready."
    return board


def test_a_locked_database_during_an_alert_check_is_retried_not_a_failed_set_up(db, monkeypatch):
    from tunesmith.store import StoreLockedError
    from tunesmith_finance import alerts

    board = _sample_board(db)
    calls = []

    def locked_once(*_args, **_options):
        calls.append(1)
        if len(calls) == 1:  # another process held a write lock longer than the busy timeout
            raise StoreLockedError("finance.sqlite: the database is locked by another process")
        return []

    monkeypatch.setattr(alerts, "run_alerts", locked_once)
    _run_monitor(board, monkeypatch, checks=1)
    assert board.status.startswith("Ready, but the alert check failed (StoreLockedError")
    _run_monitor(board, monkeypatch, checks=1)  # the next check runs the detector again
    assert len(calls) > 1 and board.status == "Ready."


def test_the_dashboard_detects_surges_per_ticker_as_well_as_per_topic(db, monkeypatch):
    from tunesmith_finance.alerts import list_alerts

    board = _sample_board(db)
    _run_monitor(board, monkeypatch, checks=1)
    kinds = {(a["kind"], a["key"]) for a in list_alerts(db)}
    assert ("topic", "banking") in kinds and ("ticker", "HLXB") in kinds
    assert "0 alert(s) by ticker" not in board.snapshot("ticker", "3h", demo.TOP)["status"]


def test_a_sample_replay_cut_short_is_finished_at_the_next_start(tiny_model, tmp_path, monkeypatch):
    from tunesmith_finance import replay as replaying
    from tunesmith_finance.replay import read_stream
    from tunesmith_finance.sample import STREAM
    from tunesmith_finance.storage import count_documents, open_store

    db_path = tmp_path / "demo.sqlite"
    # The sample's own database: only that one is filled with the sample stream.
    monkeypatch.setattr(demo, "demo_paths", lambda: (tmp_path / "sample_model", db_path))
    whole = replaying.replay

    def stopped_midway(ingester, path, **options):  # the server stopped during the replay
        records, _ = read_stream(path)
        ingester.ingest_records([r[2] for r in records[:50]], name=str(path))
        raise KeyboardInterrupt

    monkeypatch.setattr(replaying, "replay", stopped_midway)
    monkeypatch.setattr(demo.Dashboard, "_monitor", lambda self: None)
    with pytest.raises(KeyboardInterrupt):
        demo.Dashboard(model=str(tiny_model))._prepare()

    monkeypatch.setattr(replaying, "replay", lambda *a, **o: whole(*a, **{**o, "speed": 0}))
    board = demo.Dashboard(model=str(tiny_model))  # the server started again
    board._prepare()
    assert board.status == "Ready."
    store = open_store(db_path)
    try:  # it stayed at 50 of 435: documents were stored, so the replay never ran again
        assert count_documents(store) == len(read_stream(STREAM)[0])
    finally:
        store.close()


def test_a_scored_text_shows_the_topics_and_tickers_of_the_rules_file_given(tiny_model, tmp_path):
    # The box always used the sample's fictional rules: with one's own database and rules,
    # "Apple cut to Sell at JPMorgan" was shown with no topic and no ticker.
    from tunesmith_finance.scoring import SentimentModel

    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[tickers.AAPL]\naliases = ["Apple"]\n[topics.ratings]\nkeywords = ["cut to"]\n',
        encoding="utf-8",
    )
    board = demo.Dashboard(model=str(tiny_model), db=str(tmp_path / "d.sqlite"), rules=str(rules))
    board._model = SentimentModel.load(tiny_model)
    note = board.score("Apple cut to Sell at JPMorgan")[2]
    assert "Topics and tickers (rules.toml): ratings, $AAPL." in note
    sample = demo.Dashboard(model=str(tiny_model), db=str(tmp_path / "d.sqlite"))
    sample._model = board._model
    assert "(topics.toml): none." in sample.score("Apple cut to Sell at JPMorgan")[2]


def test_a_bad_rules_file_for_the_dashboard_is_one_error_before_the_page_starts(tmp_path):
    from tunesmith.errors import UserInputError

    with pytest.raises(UserInputError, match="no such file"):
        demo.Dashboard(model="unused", db="unused", rules=str(tmp_path / "missing.toml"))


def test_the_dashboard_cuts_day_buckets_in_its_zone_as_finance_trends_tz_does(db, monkeypatch):
    # The dashboard stayed in UTC while `finance trends --tz` cut local days: a New York desk
    # saw days from 7 or 8 pm to 7 or 8 pm, and other counts than the CLI's.
    from zoneinfo import ZoneInfo

    from tunesmith_finance import trends as trends_mod

    board = _sample_board(db)
    board_ny = demo.Dashboard(model="unused", db="unused", tz="America/New_York")
    board_ny._db, board_ny.status = db, "Ready."  # the same database
    drawn = []
    real = trends_mod.trends
    rows_of = trends_mod.trend_rows  # what the page draws, from the counts it holds

    def spy(*args, **options):
        drawn.append(rows_of(*args, **options))
        return drawn[-1]

    monkeypatch.setattr(trends_mod, "trend_rows", spy)
    view = board_ny.snapshot("topic", "1d", demo.TOP)
    cli_rows = real(db, by="topic", bucket="1d", zone=ZoneInfo("America/New_York"))
    assert drawn[-1] == cli_rows and view["zone"] == "America/New_York"
    assert {r.bucket_start[10:] for r in cli_rows} <= {"T00:00:00-05:00", "T00:00:00-04:00"}
    assert "(America/New_York)" in view["figure"].axes[0].get_title()
    # The default stays UTC, as the CLI's; and a page may choose another zone.
    board.snapshot("topic", "1d", demo.TOP)
    assert drawn[-1] == real(db, by="topic", bucket="1d")
    board.snapshot("topic", "1d", demo.TOP, "America/New_York")
    assert drawn[-1] == cli_rows


def test_the_dashboard_detects_alerts_in_its_zone_and_shows_windows_in_the_pages(db, monkeypatch):
    from tunesmith_finance.alerts import list_alerts

    board = _sample_board(db, tz="Asia/Kolkata")
    _run_monitor(board, monkeypatch, checks=1)
    found = list_alerts(db)
    assert found and {a["tz"] for a in found} == {"Asia/Kolkata"}  # as `alerts --tz` cuts them
    view = board.snapshot("topic", "3h", demo.TOP, "UTC")
    assert view["rows"] and all(row[0].endswith("Z") for row in view["rows"])
    assert demo.alert_headers(view["zone"])[0] == "window (UTC)"


def test_an_unknown_zone_typed_in_the_page_is_said_and_the_dashboards_zone_is_used(db):
    board = _sample_board(db)
    view = board.snapshot("topic", "1d", demo.TOP, "Mars/Olympus")
    assert view["zone"] == "UTC" and view["figure"] is not None
    assert "'Mars/Olympus' is not a known time zone" in view["status"]
    assert "shown in UTC" in view["status"]


def test_a_mistyped_dashboard_zone_is_one_error_before_the_page_starts(cli, tmp_path):
    from tunesmith.errors import UserInputError

    with pytest.raises(UserInputError, match="--tz 'Mars/Olympus' is not a known time zone"):
        demo.Dashboard(model="unused", db="unused", tz="Mars/Olympus")
    result = cli("finance", "demo", "--tz", "Mars/Olympus", "--db", str(tmp_path / "x.sqlite"))
    assert result.exit_code != 0
    assert "--tz 'Mars/Olympus' is not a known time zone" in result.output
    assert "Traceback" not in result.output
