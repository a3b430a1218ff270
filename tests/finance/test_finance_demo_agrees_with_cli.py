"""The dashboard beside `finance alerts` on one database: the page's alert checks must find the
alerts the command finds, with the same baselines, and the page must say which settings it uses.
Driven through the page's own handlers (``on_start``, ``refresh``)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import threading

from tunesmith.testing import demo_handler
from tunesmith_finance import demo

START = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)


def _quiet_database_with_a_surge() -> list[dict[str, str]]:
    """Ten quiet days (3.6 % negative overall, as real tweets have 6 %), then 4 of 8 energy
    headlines negative in three hours: `finance alerts` alerts, a 0.2 prior did not."""
    rows = []
    for i in range(60):  # an energy headline every four hours, one in sixteen negative
        text = "shares plunge on worries" if i % 16 == 5 else "shares steady"
        time = START + dt.timedelta(hours=4 * i)
        rows.append({"id": f"q{i}", "time": time.isoformat(), "text": text, "topic": "energy"})
    for j in range(12):
        text = "shares plunge on worries" if j < 4 else "shares steady"
        time = START + dt.timedelta(days=10, hours=2, minutes=15 * j)
        rows.append({"id": f"s{j}", "time": time.isoformat(), "text": text, "topic": "energy"})
    for i in range(150):  # market chatter of no topic
        time = START + dt.timedelta(hours=1.5 * i)
        rows.append({"id": f"m{i}", "time": time.isoformat(), "text": "markets quiet"})
    return rows


def _database(path, rows, model_path: str = "keyword-model") -> None:
    """Store ``rows`` scored by keywords, under the name ``model_path`` (the model `finance
    alerts` then explains them with)."""
    from finance_fakes import KeywordModel

    from tunesmith_finance.ingest import Ingester
    from tunesmith_finance.rules import load_rules
    from tunesmith_finance.sample import RULES
    from tunesmith_finance.storage import open_store

    store = open_store(path)
    try:
        model = KeywordModel(path=model_path)
        Ingester(store, model, load_rules(RULES), warn=lambda _m: None).ingest_records(rows)
    finally:
        store.close()


def _page_after_one_check(model, db_path, monkeypatch) -> tuple[str, dict, str]:
    """Start the page on ``db_path`` (``model``: its ``--model``, or None), let its monitor
    check for alerts once, and return what the page's refresh shows: status, alert table and
    details."""
    checked = threading.Event()

    def monitor_once(board) -> None:
        board.check_alerts()
        checked.set()

    monkeypatch.setattr(demo.Dashboard, "_monitor", monitor_once)
    blocks = demo.build_demo(model=model and str(model), db=str(db_path), autostart=False)
    demo_handler(blocks, "on_start")()
    assert checked.wait(60)
    status, _figure, table, details, *_ = demo_handler(blocks, "refresh")(
        "topic",
        "auto",
        demo.TOP,
        "UTC",
        None,
        None,  # no alert chosen to triage, nothing shown
    )
    return status, table, details


def test_the_dashboard_finds_the_alerts_finance_alerts_finds_with_the_same_baselines(
    cli, tiny_model, tmp_path, monkeypatch
):
    page_db, cli_db = tmp_path / "page.sqlite", tmp_path / "cli.sqlite"
    _database(page_db, _quiet_database_with_a_surge())
    shutil.copy(page_db, cli_db)
    result = cli("finance", "alerts", "--db", str(cli_db), "--no-explain", "--json")
    assert result.exit_code == 0, result.output
    expected = [
        [a["window"], a["key"], a["n"], round(100 * a["share"], 1), round(100 * a["baseline"], 1)]
        for a in json.loads(result.stdout)
    ]
    assert [row[:2] for row in expected] == [
        ["2026-11-12T01:00:00Z/2026-11-12T04:00:00Z", "energy"]
    ]
    status, table, _details = _page_after_one_check(tiny_model, page_db, monkeypatch)
    # The page's checks started from a 0.2 prior whatever the database's share: its bar was
    # higher, and this surge was never shown.
    assert "1 alert(s) by topic" in status
    assert [row[:5] for row in table["data"]] == expected


def test_the_dashboard_says_which_detector_settings_and_prior_it_uses(
    tiny_model, tmp_path, monkeypatch
):
    page_db = tmp_path / "page.sqlite"
    _database(page_db, _quiet_database_with_a_surge())
    _status, _table, details = _page_after_one_check(tiny_model, page_db, monkeypatch)
    assert "`tunesmith finance alerts --db DB --by topic|ticker --bucket 1h`" in details
    assert "a window of 3 buckets" in details and "a cool-down of 6h" in details
    assert "the database's negative share (3.6% now)" in details


def test_a_users_database_is_explained_by_the_model_that_scored_it_as_finance_alerts_does(
    cli, tiny_model, tmp_path, monkeypatch
):
    page_db, cli_db = tmp_path / "page.sqlite", tmp_path / "cli.sqlite"
    _database(page_db, _quiet_database_with_a_surge(), model_path=str(tiny_model))
    shutil.copy(page_db, cli_db)
    result = cli("finance", "alerts", "--db", str(cli_db), "--json")  # words: the ingest's model
    assert result.exit_code == 0, result.output
    (alert,) = json.loads(result.stdout)
    assert alert["words"]

    def no_sample_model(*_args, **_options):
        raise AssertionError("the sample model was trained to explain the user's database")

    # Without --model the page trained the sample model (450 fictional sentences) and explained
    # the analyst's alerts and scored their texts with it: the same alert, other words.
    monkeypatch.setattr(demo, "train_sample_model", no_sample_model)
    assert demo.Dashboard(db=str(page_db)).should_autostart()
    _status, table, _details = _page_after_one_check(None, page_db, monkeypatch)
    (row,) = table["data"]
    assert row[5] == ", ".join(w["word"] for w in alert["words"][:6])


def test_the_page_says_which_model_explains_a_users_database(tiny_model, tmp_path):
    scored = tmp_path / "scored.sqlite"
    _database(scored, _quiet_database_with_a_surge(), model_path=str(tiny_model))
    intro = demo.Dashboard(db=str(scored)).intro
    assert f"Model: {demo._plain(tiny_model.name)}, the one it was scored with." in intro
    gone = tmp_path / "gone.sqlite"
    _database(gone, _quiet_database_with_a_surge(), model_path=str(tmp_path / "deleted"))
    board = demo.Dashboard(db=str(gone))
    assert "is gone: alert words and scored texts come from the sample model" in board.intro
    assert board.model_dir == demo.demo_paths()[0]
