"""Triage from a notebook: `Monitor` lists the alerts by state, acknowledges, marks noise,
reopens, mutes and reports the noise as `finance alerts --ack ... --json` does; a limit with a
state gives that many alerts of the state; every time of a mark or a mute is written as the
rest of finance's JSON writes UTC, with a Z."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from finance_fakes import store_sample_stream

from tunesmith.errors import UserInputError

UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def monitor(tmp_path):
    """The sample stream stored, its alerts (banking by topic, HLXB and CRWN by ticker)
    found and unsent."""
    import tunesmith_finance as finance

    db = tmp_path / "feed.sqlite"
    store_sample_stream(db)
    monitor = finance.Monitor(db)
    for by in ("topic", "ticker"):
        monitor.alerts(by=by, explain=False)
    return monitor


def _ids(monitor) -> dict[str, str]:
    return {a["key"]: a["id"] for a in monitor.stored_alerts()}


def test_stored_alerts_gives_every_state_by_default_and_filters_by_state(monitor):
    ids = _ids(monitor)
    assert set(ids) == {"banking", "HLXB", "CRWN"}
    marked = monitor.ack(ids["banking"][:6], who="ana", note="earnings miss, known")
    assert [(a["id"], a["state"]) for a in marked] == [(ids["banking"], "acknowledged")]
    assert marked[0]["triage"]["by"] == "ana"
    assert marked[0]["triage"]["note"] == "earnings miss, known"
    monitor.noise([ids["HLXB"], ids["CRWN"]])
    # Every alert by default, each with its state: code written before the triage sees all.
    assert {a["key"]: a["state"] for a in monitor.stored_alerts()} == {
        "banking": "acknowledged",
        "HLXB": "noise",
        "CRWN": "noise",
    }
    assert [a["key"] for a in monitor.stored_alerts(state="acknowledged")] == ["banking"]
    assert monitor.stored_alerts(state="open") == []
    assert monitor.reopen(ids["HLXB"])[0]["state"] == "open"
    assert [a["key"] for a in monitor.stored_alerts(state="open", by="ticker")] == ["HLXB"]


def test_a_limit_with_a_state_gives_the_newest_alerts_of_that_state(monitor):
    from tunesmith_finance.alerts import list_alerts
    from tunesmith_finance.commands.checks import open_existing_db

    newest = monitor.stored_alerts()[0]
    monitor.noise(newest["id"])
    # The newest alert is noise: limited before the filter, "the newest open one" was none.
    (first_open,) = monitor.stored_alerts(state="open", limit=1)
    assert first_open["id"] == monitor.stored_alerts()[1]["id"]
    store = open_existing_db(monitor.db)
    try:
        assert [a["id"] for a in list_alerts(store, state="noise", limit=2)] == [newest["id"]]
        assert len(list_alerts(store, state="open", limit=5)) == 2
    finally:
        store.close()


def test_mute_unmute_and_mutes_from_python_as_the_command_does(monitor):
    made = monitor.mute("$TSLA", "2d", who="ana", note="earnings week")
    assert (made["kind"], made["key"], made["who"], made["replaced"]) == (
        "ticker",
        "TSLA",
        "ana",
        None,
    )
    assert made["until"] - made["start"] == pytest.approx(2 * 86400)
    again = monitor.mute("tsla", timedelta(hours=6), by="ticker")
    assert again["replaced"]["id"] == made["id"]  # the earlier mute ended, and said
    assert [(m["key"], m["id"]) for m in monitor.mutes()] == [("TSLA", again["id"])]
    assert monitor.mutes(by="topic") == []
    ended = monitor.unmute("$TSLA")
    assert ended["id"] == again["id"] and monitor.mutes() == []


def test_the_noise_report_from_python(monitor):
    ids = _ids(monitor)
    monitor.noise(ids["CRWN"])
    monitor.ack(ids["banking"])
    report = monitor.noise_report()
    assert (report["overall"]["alerts"], report["overall"]["noise"]) == (3, 1)
    assert report["overall"]["noise_share"] == 0.5
    assert monitor.noise_report(since="2026-11-06")["overall"]["alerts"] == 0
    assert {k["kind"] for k in monitor.noise_report(by="ticker")["keys"]} == {"ticker"}


def test_triage_mistakes_are_one_line_naming_the_python_keywords(monitor):
    banking = _ids(monitor)["banking"]
    monitor.ack(banking)
    cases = {
        lambda: monitor.ack(banking): f"alert {banking} is acknowledged already",
        lambda: monitor.ack([]): "ids: give an alert id",
        lambda: monitor.ack(7): "ids: give an alert id",
        lambda: monitor.reopen("0000dead"): "Monitor.stored_alerts() lists them",
        lambda: monitor.mute("$TSLA", "2x"): "duration '2x': expected a duration",
        lambda: monitor.mute("$TSLA", timedelta(0)): "duration must be positive",
        lambda: monitor.mute("nothing", "1d"): "say by='topic' or by='ticker'",
        lambda: monitor.unmute("$TSLA"): "Monitor.mutes() lists them",
        lambda: monitor.stored_alerts(state="closed"): "state 'closed': expected one of open",
        lambda: monitor.stored_alerts(limit=0): "limit must be a whole number",
        lambda: monitor.ack(banking[:4], note="x" * 2001): "note: 2001 characters",
    }
    for call, said in cases.items():
        with pytest.raises(UserInputError) as raised:
            call()
        assert said in str(raised.value)
        assert "\n" not in str(raised.value) and "--" not in str(raised.value).split("`")[0]


def test_marks_and_mutes_write_their_times_alike_in_utc_with_a_z(monitor, cli):
    import json

    from tunesmith_finance.commands.checks import open_existing_db

    ids = _ids(monitor)
    acked = monitor.ack(ids["banking"])[0]["triage"]["at"]
    mute = monitor.mute("$HLXB", "1h")
    assert UTC_Z.match(acked) and UTC_Z.match(mute["from"]), (acked, mute["from"])
    # A mark stored before (written +00:00) reads as the new ones.
    store = open_existing_db(monitor.db)
    try:
        store.execute(
            "INSERT INTO finance_alert_marks (alert_id, mark, who, at) "
            "VALUES (?, 'noise', 'bo', '2026-11-05T15:00:00+00:00')",
            (ids["CRWN"],),
        )
    finally:
        store.close()
    listed = cli("finance", "alerts", "--db", str(monitor.db), "--list", "--state", "noise",
                 "--json")  # fmt: skip
    assert json.loads(listed.stdout)[0]["triage"]["at"] == "2026-11-05T15:00:00Z"
