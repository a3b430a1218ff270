"""Triage of stored alerts, as a risk desk does it: acknowledge an alert (who, when, a note),
mark one as noise and count the noise per key and per day, mute a key for a while (its surges
stored as muted, sent to no sink), and old databases keep working."""

from __future__ import annotations

import json
import time

import pytest
from finance_fakes import store_sample_stream

from tunesmith_finance import demo


@pytest.fixture
def alerted(cli, tmp_path):
    """A sample database whose alerts (banking by topic, two tickers) are stored, unsent."""
    db = tmp_path / "feed.sqlite"
    store_sample_stream(db)
    for by in ("topic", "ticker"):
        found = cli("finance", "alerts", "--db", str(db), "--by", by, "--no-explain")
        assert found.exit_code == 0, found.output
    return db


def _listed(cli, db, *flags):
    result = cli("finance", "alerts", "--db", str(db), "--list", "--json", *flags)
    assert result.exit_code == 0, result.output
    return {a["key"]: a for a in json.loads(result.stdout)}


def test_an_acknowledged_alert_leaves_the_open_list_and_keeps_who_when_and_the_note(cli, alerted):
    banking = _listed(cli, alerted)["banking"]
    assert banking["state"] == "open" and banking["triage"] is None
    acked = cli("finance", "alerts", "--db", str(alerted), "--ack", banking["id"][:6],
                "--who", "ana", "--note", "earnings miss, known")  # fmt: skip
    assert acked.exit_code == 0, acked.output
    assert f"{banking['id']}  topic banking: acknowledged by ana at " in acked.stdout
    assert "banking" not in _listed(cli, alerted)  # --list: the open ones
    everything = _listed(cli, alerted, "--state", "all")
    assert everything["banking"]["state"] == "acknowledged"
    assert everything["banking"]["triage"]["by"] == "ana"
    assert everything["banking"]["triage"]["note"] == "earnings miss, known"
    text = cli("finance", "alerts", "--db", str(alerted), "--list")
    # The hidden alert is said, and each listed one shows the id to --ack it by.
    assert "not shown: 1 acknowledged (--state all lists every one)" in text.stderr
    assert f"    id {everything['HLXB']['id']} · open\n" in text.stdout


def test_tunesmith_agent_names_who_acknowledges_when_who_is_not_given(cli, alerted, monkeypatch):
    """The variable support's hand-off queue takes for the agent names the analyst here too."""
    monkeypatch.setenv("TUNESMITH_AGENT", "  ana   lyst ")
    banking = _listed(cli, alerted)["banking"]
    acked = cli("finance", "alerts", "--db", str(alerted), "--ack", banking["id"])
    assert acked.exit_code == 0, acked.output
    everything = _listed(cli, alerted, "--state", "all")
    assert everything["banking"]["triage"]["by"] == "ana lyst"


def test_acknowledging_twice_an_unknown_id_and_a_bad_duration_are_one_line_errors(cli, alerted):
    banking = _listed(cli, alerted)["banking"]["id"]
    assert cli("finance", "alerts", "--db", str(alerted), "--ack", banking).exit_code == 0
    cases = {
        ("--ack", banking): f"Error: alert {banking} is acknowledged already (by ",
        ("--ack", "0000dead"): "Error: alert '0000dead': no such alert in this database",
        ("--reopen", _listed(cli, alerted)["HLXB"]["id"]): "is open, not acknowledged or noise",
        ("--mute", "$TSLA", "--for", "2x"): "Error: --for '2x': expected a duration such as",
        ("--mute", "$TSLA"): "Error: --mute needs --for",
        ("--for", "2d"): "Error: --for goes with --mute KEY",
        ("--unmute", "$TSLA"): "Error: --unmute: ticker TSLA is not muted",
        ("--ack", banking, "--list"): "Error: --ack, --list: give one of them at a time",
    }
    for flags, said in cases.items():
        result = cli("finance", "alerts", "--db", str(alerted), *flags)
        assert result.exit_code == 2, (flags, result.output)
        assert said in result.stderr, (flags, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_marking_several_alerts_writes_all_or_none(cli, alerted):
    ids = {key: a["id"] for key, a in _listed(cli, alerted).items()}
    assert cli("finance", "alerts", "--db", str(alerted), "--noise", ids["HLXB"]).exit_code == 0
    both = cli("finance", "alerts", "--db", str(alerted), "--noise", ids["CRWN"],
               "--noise", ids["HLXB"])  # fmt: skip
    assert both.exit_code == 2 and "is noise already" in both.stderr
    assert _listed(cli, alerted)["CRWN"]["state"] == "open"  # not half-marked


def test_noise_after_an_acknowledgement_and_reopen_keep_every_mark(cli, alerted):
    from tunesmith_finance.storage import open_store

    banking = _listed(cli, alerted)["banking"]["id"]
    for flag in ("--ack", "--noise", "--reopen", "--noise"):
        result = cli("finance", "alerts", "--db", str(alerted), flag, banking, "--who", "ana")
        assert result.exit_code == 0, (flag, result.output)
    refused = cli("finance", "alerts", "--db", str(alerted), "--ack", banking)
    assert refused.exit_code == 2 and "--reopen" in refused.stderr
    store = open_store(alerted)
    try:
        marks = [r["mark"] for r in store.query("SELECT mark FROM finance_alert_marks ORDER BY id")]
    finally:
        store.close()
    assert marks == ["acknowledged", "noise", "reopened", "noise"]


def test_the_noise_report_counts_noise_per_key_overall_and_per_day(cli, alerted):
    ids = {key: a["id"] for key, a in _listed(cli, alerted).items()}
    for flag, key in (("--noise", "HLXB"), ("--noise", "CRWN"), ("--ack", "banking")):
        assert cli("finance", "alerts", "--db", str(alerted), flag, ids[key]).exit_code == 0
    result = cli("finance", "alerts", "--db", str(alerted), "--noise-report", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    overall = report["overall"]
    assert (overall["alerts"], overall["noise"], overall["acknowledged"]) == (3, 2, 1)
    assert overall["noise_share"] == round(2 / 3, 4)
    # The sample stream spans five days: the desk's "false alerts per day".
    assert 4 < report["days"] < 5.5
    assert overall["noise_per_day"] == round(2 / report["days"], 4)
    assert [(k["key"], k["noise"]) for k in report["keys"]][:2] == [("CRWN", 1), ("HLXB", 1)]
    # A period without those alerts counts none; --by narrows to a kind.
    later = cli("finance", "alerts", "--db", str(alerted), "--noise-report", "--json",
                "--since", "2026-11-06")  # fmt: skip
    assert json.loads(later.stdout)["overall"]["alerts"] == 0
    topics = cli("finance", "alerts", "--db", str(alerted), "--noise-report", "--by", "topic")
    assert "topic banking" in topics.stdout and "CRWN" not in topics.stdout


def test_a_surge_on_a_muted_key_is_stored_as_muted_and_sent_to_no_sink_even_after(cli, tmp_path):
    db, sink = tmp_path / "feed.sqlite", tmp_path / "alerts.jsonl"
    store_sample_stream(db)
    muted = cli("finance", "alerts", "--db", str(db), "--mute", "banking", "--for", "2d",
                "--who", "ana", "--note", "earnings week")  # fmt: skip
    assert muted.exit_code == 0, muted.output
    assert "muted topic banking until " in muted.stdout
    mutes = json.loads(cli("finance", "alerts", "--db", str(db), "--mutes", "--json").stdout)
    assert [(m["kind"], m["key"], m["who"], m["note"]) for m in mutes] == [
        ("topic", "banking", "ana", "earnings week")
    ]
    found = cli("finance", "alerts", "--db", str(db), "--no-explain", "--json",
                "--sink", f"jsonl:{sink}")  # fmt: skip
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout) == []  # cron mails what it prints: nothing
    assert "on muted topic banking stored, not sent (muted by ana until" in found.stderr
    assert not sink.exists() or sink.read_text() == ""
    stored = _listed(cli, db, "--state", "muted")["banking"]
    assert stored["sent"] is False and stored["muted"]["note"] == "earnings week"
    # Nothing lost, nothing sent later: unmuted, the next run with a sink sends no old surge.
    assert cli("finance", "alerts", "--db", str(db), "--unmute", "banking").exit_code == 0
    again = cli("finance", "alerts", "--db", str(db), "--no-explain", "--sink", f"jsonl:{sink}")
    assert again.exit_code == 0 and (not sink.exists() or sink.read_text() == "")
    assert json.loads(cli("finance", "alerts", "--db", str(db), "--mutes", "--json").stdout) == []


def test_a_pending_alert_of_a_key_muted_since_is_held_not_sent(cli, alerted, tmp_path):
    sink = tmp_path / "alerts.jsonl"
    assert (
        cli("finance", "alerts", "--db", str(alerted), "--mute", "$hlxb", "--for", "1h").exit_code
        == 0
    )
    sent = cli("finance", "alerts", "--db", str(alerted), "--by", "ticker", "--no-explain",
               "--sink", f"jsonl:{sink}")  # fmt: skip
    assert sent.exit_code == 0, sent.output
    keys = [json.loads(line)["payload"]["key"] for line in sink.read_text().splitlines()]
    assert "HLXB" not in keys and "banking" in keys  # the others pending: sent
    assert _listed(cli, alerted, "--state", "muted")["HLXB"]["sent"] is False


def test_a_mute_expires_by_itself(db):
    from tunesmith_finance.triage import active_mutes, covering_mute, mute_key

    now = time.time()
    mute, before = mute_key(db, "ticker", "TSLA", 2 * 86400, who="ana", now=now)
    assert before is None
    assert [m.key for m in active_mutes(db, now + 86400)] == ["TSLA"]
    assert active_mutes(db, now + 2 * 86400) == []
    # A surge found after it ended is not held, unless its window ended inside it.
    assert covering_mute([mute], "ticker", "TSLA", now + 3 * 86400, now + 3 * 86400) is None
    assert covering_mute([mute], "ticker", "TSLA", now + 3600, now + 3 * 86400) == mute
    again, replaced = mute_key(db, "ticker", "TSLA", 3600, who="bo", now=now + 60)
    assert replaced is not None and replaced.id == mute.id
    assert [m.id for m in active_mutes(db, now + 120)] == [again.id]


def test_an_old_database_migrates_and_its_alerts_are_open(cli, tmp_path):
    from tunesmith.store import Store
    from tunesmith_finance.storage import MIGRATIONS, NAMESPACE

    db = tmp_path / "old.sqlite"
    old = Store.open(db, namespace=NAMESPACE, migrations=MIGRATIONS[:8])  # the last release
    old.execute(
        "INSERT INTO finance_alerts (id, kind, key, window_start, window_end, n, negatives, "
        "share, baseline, z, p_value, mean_score, words, examples, detector, created_at, tz, "
        "explained) VALUES ('a1b2c3', 'topic', 'banking', 0, 10800, 16, 10, 0.625, 0.16, 5.0, "
        "1e-5, -0.4, '[]', '[]', 'ewma-binomial', '2026-11-05T15:00:00+00:00', 'UTC', 0)"
    )
    old.close()
    listed = _listed(cli, db)
    assert listed["banking"]["state"] == "open"
    assert cli("finance", "alerts", "--db", str(db), "--noise", "a1b").exit_code == 0
    assert _listed(cli, db, "--state", "noise")["banking"]["triage"]["mark"] == "noise"


def test_min_history_is_a_whole_number_of_documents_in_json(cli, alerted):
    settings = _listed(cli, alerted)["banking"]["settings"]
    assert settings["min_history"] == 20 and isinstance(settings["min_history"], int)


def test_the_dashboard_shows_each_alerts_state_and_charts_open_alerts_first(cli, alerted):
    from tunesmith_finance.storage import open_store

    ids = {key: a["id"] for key, a in _listed(cli, alerted).items()}
    assert cli("finance", "alerts", "--db", str(alerted), "--noise", ids["CRWN"]).exit_code == 0
    board = demo.Dashboard(model="unused", db=str(alerted))
    board._db, board.status = open_store(alerted), "Ready."
    try:
        view = board.snapshot("ticker", "1h", demo.TOP)
    finally:
        board._db.close()
    states = {row[1]: row[7] for row in view["rows"]}
    assert states == {"CRWN": "noise", "HLXB": "open"}
    assert "Noise, marked by " in view["details"]
    # CRWN's alert is the newest, but noise: the open HLXB comes first in the box and chart.
    assert view["keys"][0] == "HLXB"
