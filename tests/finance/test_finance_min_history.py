"""`--min-history N`: how many documents a key must have had before its windows are tested, a
flag of `finance alerts`, `watch --alerts`, `replay` and `demo` (and `Monitor.alerts`). Without
it the wait follows `--prior` as the dashboard's did: 20 documents without it, 0 with it."""

from __future__ import annotations

import json

import pytest
from finance_fakes import KeywordModel, doc

DAILY = ["--bucket", "1d", "--no-explain"]


def _young_key_database(path) -> None:
    """A ticker-like topic negative from its first day (four documents a day for three days)
    beside quiet documents: the database is at 17 % negatives, so the young key's first windows
    alert against that share unless the detector waits for the key's own past."""
    from tunesmith_finance.ingest import Ingester
    from tunesmith_finance.storage import open_store

    rows = [
        doc(i, f"Markets drift {i}", "2026-11-02T07:00:00Z", topic="markets") for i in range(60)
    ]
    for day in range(3):
        for j in range(4):
            rows.append(doc(100 + 4 * day + j, f"FXC shares plunge {day} {j}",
                            f"2026-11-{day + 2:02d}T{j + 9:02d}:00:00Z", topic="fxc"))  # fmt: skip
    store = open_store(path)
    try:
        Ingester(store, KeywordModel(), warn=lambda _m: None).ingest_records(rows)
    finally:
        store.close()


def test_alerts_without_prior_wait_for_a_young_keys_history_as_the_dashboard_does(cli, tmp_path):
    db = tmp_path / "f.sqlite"
    _young_key_database(db)
    # Before, the command decided the wait on the database's share it had resolved (a number,
    # so "an analyst's prior": no wait) and alerted the young key's first windows.
    result = cli("finance", "alerts", "--db", str(db), *DAILY, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []


def test_min_history_zero_tests_a_young_keys_first_windows_and_is_stored_and_listed(cli, tmp_path):
    db = tmp_path / "f.sqlite"
    _young_key_database(db)
    result = cli("finance", "alerts", "--db", str(db), *DAILY, "--min-history", "0", "--json")
    assert result.exit_code == 0, result.output
    (alert,) = json.loads(result.stdout)
    assert alert["key"] == "fxc" and alert["settings"]["min_history"] == 0
    listed = cli("finance", "alerts", "--db", str(db), "--list").stdout
    # The flags that find it again name the wait, which no flag could set before.
    assert " --min-history 0\n" in listed


def test_min_history_overrides_the_wait_an_analysts_prior_implies(cli, tmp_path):
    db = tmp_path / "f.sqlite"
    _young_key_database(db)
    with_prior = [*DAILY, "--prior", "0.17", "--json"]
    found = cli("finance", "alerts", "--db", str(db), *with_prior)
    assert [a["key"] for a in json.loads(found.stdout)] == ["fxc"]
    db2 = tmp_path / "g.sqlite"
    _young_key_database(db2)
    waited = cli("finance", "alerts", "--db", str(db2), *with_prior, "--min-history", "20")
    assert waited.exit_code == 0, waited.output
    assert json.loads(waited.stdout) == []


def test_watch_alerts_wait_for_a_young_keys_history_and_take_min_history(cli, tiny_model, tmp_path):
    db, folder = tmp_path / "f.sqlite", tmp_path / "in"
    folder.mkdir()
    _young_key_database(db)
    # Nothing new to score: the model only explains the alert found.
    watch = ["finance", "watch", str(folder), "--model", str(tiny_model), "--db", str(db),
             "--once", "--alerts", "--bucket", "1d"]  # fmt: skip
    quiet = cli(*watch)
    assert quiet.exit_code == 0, quiet.output
    assert "fxc" not in quiet.output
    found = cli(*watch, "--min-history", "0")
    assert found.exit_code == 0, found.output
    assert "fxc" in found.output


def test_monitor_alerts_take_min_history(tmp_path):
    import tunesmith_finance as finance
    from tunesmith.errors import UserInputError

    db = tmp_path / "f.sqlite"
    _young_key_database(db)
    monitor = finance.Monitor(db)
    assert monitor.alerts(bucket="1d", explain=False) == []
    (alert,) = monitor.alerts(bucket="1d", explain=False, min_history=0)
    assert alert["settings"]["min_history"] == 0
    with pytest.raises(UserInputError, match="^min_history must be at least 0 documents"):
        monitor.alerts(bucket="1d", explain=False, min_history=-1)


@pytest.mark.parametrize("command", ["alerts", "watch", "replay", "demo"])
def test_a_negative_min_history_is_one_error_line_and_every_alerts_command_lists_it(
    cli, tmp_path, command
):
    from tunesmith_finance.sample import STREAM

    db = tmp_path / "f.sqlite"
    _young_key_database(db)
    args = {
        "alerts": ["--db", str(db)],
        "watch": [str(tmp_path), "--model", str(tmp_path), "--db", str(db), "--alerts"],
        "replay": [str(STREAM), "--model", str(tmp_path), "--db", str(tmp_path / "r.sqlite")],
        "demo": ["--db", str(db), "--port", "0"],
    }[command]
    result = cli("finance", command, *args, "--min-history", "-1")
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        "Error: --min-history must be at least 0 documents"
    ]
    assert "--min-history" in cli("finance", command, "--help").output


def test_the_dashboard_takes_min_history_for_its_checks_its_replay_and_its_note(monkeypatch):
    import tunesmith_finance.replay
    from tunesmith_finance import demo
    from tunesmith_finance.sample import STREAM

    board = demo.Dashboard(prior=0.1, detector_settings={"min_history": 7.0})
    assert board.detector().min_history == 7.0
    used = []
    monkeypatch.setattr(tunesmith_finance.replay, "replay", lambda _i, _s, **kw: used.append(kw))
    board._replay(None, STREAM)  # was a TypeError: min_history given twice
    assert used[0]["detector"].min_history == 7.0
    assert "--prior 0.1 --min-history 7`" in demo.detector_note(board.detector(), given_prior=0.1)
