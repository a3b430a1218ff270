"""`finance demo` with `finance alerts`' detector flags, and on a database of the user's that
has no documents yet. Driven through the real command (its server's `launch` replaced) and the
page's own handlers (``on_start``, ``refresh``)."""

from __future__ import annotations

import json
import shutil
import threading

import pytest
from finance_fakes import store_sample_stream

from tunesmith.testing import demo_handler
from tunesmith_finance import demo

#: Settings under which the sample stream alerts otherwise than under the defaults: 6h
#: buckets find a pharma surge on 4 November that hourly ones do not.
TUNED = ["--bucket", "6h", "--window", "2", "--min-lift", "0.1", "--p-value", "0.01"]


@pytest.fixture
def served(monkeypatch):
    """What `finance demo` would serve: the Blocks given to ``launch`` (nothing is served), the
    page's monitor checking for alerts once."""
    import tunesmith.ui.launch

    pages: list = []
    checked = threading.Event()
    monkeypatch.setattr(tunesmith.ui.launch, "launch", lambda blocks, **_kw: pages.append(blocks))

    def monitor_once(board) -> None:
        board._follow_recorded_model()
        board.check_alerts()
        checked.set()

    monkeypatch.setattr(demo.Dashboard, "_monitor", monitor_once)
    return pages, checked


def _page(blocks, checked) -> tuple[str, dict, str]:
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


def test_finance_demo_takes_the_alerts_flags_and_the_page_shows_the_alerts_they_find(
    cli, served, tiny_model, tmp_path
):
    page_db, cli_db = tmp_path / "page.sqlite", tmp_path / "cli.sqlite"
    store_sample_stream(page_db)
    shutil.copy(page_db, cli_db)
    result = cli("finance", "alerts", "--db", str(cli_db), *TUNED, "--no-explain", "--json")
    assert result.exit_code == 0, result.output
    expected = [[a["window"], a["key"], a["n"]] for a in json.loads(result.stdout)]
    assert ["2026-11-04T12:00:00Z/2026-11-05T00:00:00Z", "pharma", 10] in expected
    pages, checked = served
    result = cli("finance", "demo", "--db", str(page_db), "--model", str(tiny_model),
                 "--port", "0", *TUNED)  # fmt: skip
    assert result.exit_code == 0, result.output
    status, table, details = _page(pages[0], checked)
    # The page detected with --bucket 1h and the defaults whatever the analyst had tuned:
    # the pharma surge of the 6h buckets was never shown.
    assert f"{len(expected)} alert(s) by topic" in status
    assert sorted(row[:3] for row in table["data"]) == sorted(expected)
    assert {row[6] for row in table["data"]} == {"6h"}
    assert (
        "`tunesmith finance alerts --db DB --by topic|ticker --bucket 6h --window 2 --min-lift "
        "0.1 --p-value 0.01`" in details
    )
    assert "a window of 2 buckets" in details and "p < 0.01" in details
    assert "Found with `--bucket 6h --window 2 --half-life 6d" in details


def test_a_bad_detector_flag_for_the_dashboard_is_one_line_before_the_page_starts(
    cli, served, tmp_path
):
    db = tmp_path / "page.sqlite"
    store_sample_stream(db)
    pages, _checked = served
    for flags, said in ((["--window", "0"], "--window must be at least 1 bucket"),
                        (["--bucket", "soon"], "--bucket 'soon'")):  # fmt: skip
        result = cli("finance", "demo", "--db", str(db), "--port", "0", *flags)
        assert result.exit_code == 2 and said in result.output, result.output
    assert pages == []


def test_the_dashboards_prior_flag_starts_the_baseline_as_finance_alerts_prior_does(tmp_path):
    from tunesmith_finance.storage import open_store

    store_sample_stream(tmp_path / "page.sqlite")
    board = demo.Dashboard(model="unused", db=str(tmp_path / "page.sqlite"), prior=0.05)
    board._db = open_store(tmp_path / "page.sqlite")
    try:
        assert board.detector().prior == 0.05  # not the database's negative share
        note = demo.detector_note(board.detector(), given_prior=board.prior)
    finally:
        board._db.close()
    assert "--bucket 1h --prior 0.05`" in note and "starts from `--prior` (5.0%)" in note


def test_finance_demo_on_a_missing_database_is_one_line_not_a_new_empty_one(cli, served, tmp_path):
    pages, _checked = served
    missing = tmp_path / "feed.bd"  # a typo of feed.db
    result = cli("finance", "demo", "--db", str(missing), "--port", "0")
    assert result.exit_code == 2 and "no such database" in result.output, result.output
    assert "finance ingest FILE --model M" in result.output
    assert not missing.exists() and pages == []


def test_an_empty_database_waits_for_the_model_its_first_ingest_records_not_the_sample_model(
    tiny_model, tmp_path, monkeypatch
):
    from tunesmith_finance.storage import open_store

    empty = tmp_path / "feed.sqlite"  # made by a `finance watch` that has seen no file yet
    open_store(empty).close()

    def no_sample_model(*_args, **_options):
        raise AssertionError("the sample model was trained for the user's empty database")

    # Without --model, the page trained the sample model for a minute, then explained the
    # alerts of the documents the analyst's own model scored with it, without a word.
    monkeypatch.setattr(demo, "train_sample_model", no_sample_model)
    monkeypatch.setattr(demo.Dashboard, "_monitor", lambda self: None)
    board = demo.Dashboard(db=str(empty))
    assert board.should_autostart()
    assert "no documents yet, so no model" in board.intro
    board._prepare()
    assert board.status == "Ready." and board._model is None
    view = board.snapshot("topic", "auto", demo.TOP)
    assert "No documents yet: `tunesmith finance ingest FILE" in view["status"]
    _probs, _words, note = demo.score_text(board, "Helix Bank shares plunge")
    assert "No model yet" in note and "finance ingest" in note
    store_sample_stream(empty, model_path=str(tiny_model))  # the analyst's ingest fills it
    board._follow_recorded_model()
    board.check_alerts()
    assert board.model_dir == tiny_model and board._model is not None
    assert board.snapshot("topic", "auto", demo.TOP)["rows"]  # the surge, explained
    assert demo.score_text(board, "Helix Bank shares plunge")[0] is not None
    board._db.close()
