"""An operator's day with the finance plugin: alerts found without a sink, listing by kind,
buckets in a local time zone, proper-noun aliases and keywords, and outputs that are not
overwritten silently."""

from __future__ import annotations

import json

import pytest
from finance_fakes import KeywordModel, doc

from tunesmith_finance.ingest import Ingester


def _filled_db(path, rows):
    from tunesmith_finance.storage import open_store

    store = open_store(path)
    Ingester(store, KeywordModel(), warn=lambda _m: None).ingest_records(rows)
    store.close()
    return path


def test_trends_refuses_to_overwrite_its_csv_or_chart_without_force(cli, tmp_path):
    db = _filled_db(tmp_path / "f.sqlite", [doc(1, "Helix shares plunge", topic="banking")])
    for flag, name in (("--csv", "t.csv"), ("--chart", "t.png")):
        out = tmp_path / name
        out.write_text("keep me")
        result = cli("finance", "trends", "--db", str(db), flag, str(out))
        assert result.exit_code == 2, result.output
        assert result.output.strip().splitlines() == [
            f"Error: {flag} {out} exists already; pass --force to replace it"
        ]
        assert out.read_text() == "keep me"
        result = cli("finance", "trends", "--db", str(db), flag, str(out), "--force")
        assert result.exit_code == 0, result.output
        assert out.read_bytes() != b"keep me"
    same = tmp_path / "both.out"
    result = cli("finance", "trends", "--db", str(db), "--csv", str(same), "--chart", str(same))
    assert result.exit_code == 2 and "--csv and --chart are both" in result.output
    assert not same.exists()


def test_alerts_list_shows_only_the_kind_by_asks_for_and_every_kind_without_it(cli, tmp_path):
    from tunesmith_finance.alerts import AlertOptions, run_alerts
    from tunesmith_finance.detector import SurgeDetector
    from tunesmith_finance.storage import open_store

    rows = [
        doc(i, f"Helix shares plunge {i}", f"2026-11-02T10:{i:02d}:00Z", topic="banking",
            tickers=["HLXB"])
        for i in range(10)
    ]  # fmt: skip
    db = _filled_db(tmp_path / "f.sqlite", rows)
    store = open_store(db)
    detector = SurgeDetector(prior=0.05)
    for by in ("topic", "ticker"):
        assert run_alerts(store, detector=detector, options=AlertOptions(by=by))
    store.close()

    def listed(*args):
        result = cli("finance", "alerts", "--db", str(db), "--list", "--json", *args)
        assert result.exit_code == 0, result.output
        return [(a["kind"], a["key"]) for a in json.loads(result.stdout)]

    assert listed("--by", "ticker") == [("ticker", "HLXB")]
    assert listed("--by", "topic") == [("topic", "banking")]
    assert sorted(listed()) == [("ticker", "HLXB"), ("topic", "banking")]
    result = cli("finance", "alerts", "--db", str(db), "--list", "--by", "all")
    assert result.exit_code == 0 and "no alerts stored by all" in result.output


@pytest.fixture
def surge_db(tmp_path):
    """A database whose topic ``banking`` surges once (ten negative documents in an hour)."""
    rows = [
        doc(i, f"Helix shares plunge {i}", f"2026-11-02T10:{i:02d}:00Z", topic="banking",
            tickers=["HLXB"])
        for i in range(10)
    ]  # fmt: skip
    return _filled_db(tmp_path / "f.sqlite", rows)


def test_an_alert_found_without_a_sink_is_sent_once_by_the_next_run_that_has_one(
    surge_db, tmp_path
):
    from tunesmith.events import list_deliveries
    from tunesmith_finance.alerts import list_alerts, run_alerts
    from tunesmith_finance.detector import SurgeDetector
    from tunesmith_finance.storage import open_store

    store = open_store(surge_db)
    detector = SurgeDetector(prior=0.05)
    (found,) = run_alerts(store, detector=detector)  # `finance alerts` without --sink
    assert found["event_id"] is None
    assert run_alerts(store, detector=detector) == []  # nothing new, still nothing to send
    sink = tmp_path / "alerts.jsonl"
    # A `finance watch --alerts --sink` beside it later: it finds nothing new, but sends it.
    assert run_alerts(store, detector=detector, sinks=[f"jsonl:{sink}"]) == []
    (event,) = [json.loads(line) for line in sink.read_text().splitlines()]
    assert event["payload"]["id"] == found["id"]
    (stored,) = list_alerts(store)
    assert stored["event_id"] == event["id"]
    assert [d.status for d in list_deliveries(store)] == ["delivered"]
    other = tmp_path / "other.jsonl"
    run_alerts(store, detector=detector, sinks=[f"jsonl:{sink}", f"jsonl:{other}"])
    assert len(sink.read_text().splitlines()) == 1 and not other.exists()  # sent once only
    store.close()


def test_an_alert_recorded_with_an_event_without_deliveries_is_still_sent(surge_db, tmp_path):
    """Databases of earlier versions hold such alerts: found without a sink, each recorded
    with an event that had no delivery, which no later run sent."""
    from tunesmith.events import emit
    from tunesmith_finance.alerts import alert_event, list_alerts, run_alerts
    from tunesmith_finance.detector import SurgeDetector
    from tunesmith_finance.storage import open_store

    store = open_store(surge_db)
    detector = SurgeDetector(prior=0.05)
    (found,) = run_alerts(store, detector=detector)
    event = alert_event(found)
    emit(event, [], outbox=store)  # what an alert run without a sink used to do
    store.execute("UPDATE finance_alerts SET event_id = ? WHERE id = ?", (event.id, found["id"]))
    sink = tmp_path / "alerts.jsonl"
    run_alerts(store, detector=detector, sinks=[f"jsonl:{sink}"])
    assert [json.loads(line)["id"] for line in sink.read_text().splitlines()] == [event.id]
    assert list_alerts(store)[0]["event_id"] == event.id
    store.close()


def test_alerts_without_a_sink_say_the_alerts_wait_for_a_run_with_one(cli, surge_db, tmp_path):
    args = ("finance", "alerts", "--db", str(surge_db), "--prior", "0.05", "--no-explain")
    first = cli(*args)
    assert first.exit_code == 0, first.output
    assert "1 alert(s) stored and not sent (no --sink)" in first.output
    sink = tmp_path / "a.jsonl"
    second = cli(*args, "--sink", f"jsonl:{sink}")
    assert second.exit_code == 0, second.output
    assert "sent 1 alert(s) stored earlier and not sent yet" in second.output
    assert len(sink.read_text().splitlines()) == 1


def test_two_runs_that_both_saw_an_alert_pending_send_it_once(surge_db, tmp_path):
    from tunesmith_finance.alerts import deliver_alert, pending_alerts, run_alerts
    from tunesmith_finance.detector import SurgeDetector
    from tunesmith_finance.storage import open_store

    store = open_store(surge_db)
    run_alerts(store, detector=SurgeDetector(prior=0.05))
    beside = open_store(surge_db)  # a second process on the same database
    (seen_by_both,) = pending_alerts(store)
    assert len(pending_alerts(beside)) == 1
    sink = tmp_path / "alerts.jsonl"
    assert deliver_alert(beside, dict(seen_by_both), [f"jsonl:{sink}"])
    assert not deliver_alert(store, dict(seen_by_both), [f"jsonl:{sink}"])
    assert len(sink.read_text().splitlines()) == 1
    assert pending_alerts(store) == []
    beside.close()
    store.close()


def test_a_capitalised_alias_or_keyword_is_a_name_not_a_word_in_any_case(tmp_path):
    from tunesmith_finance.rules import load_rules

    path = tmp_path / "rules.toml"
    path.write_text(
        "[tickers.AAPL]\naliases = ['Apple']\n[tickers.GOOG]\naliases = ['alphabet']\n"
        "[tickers.GOOGL]\naliases = ['ALPHABET']\n"
        "[topics.macro]\nkeywords = ['Fed', 'inflation']\n"
    )
    rules = load_rules(path)
    assert rules.tickers("Grandma's apple pie recipe") == []
    assert rules.tickers("Apple shares slide") == ["AAPL"]
    assert rules.tickers("APPLE SHARES SLIDE") == ["AAPL"]  # an all-caps wire headline
    assert rules.tickers("aPPLE shares") == []
    assert rules.tickers("learn the alphabet") == ["GOOG"]  # lower case: any case
    assert rules.tickers("ALPHABET beats estimates") == ["GOOGL", "GOOG"]
    assert rules.assign("Traders fed up with the wait").topics == []
    assert rules.assign("The Fed holds rates").topics == ["macro"]
    assert rules.assign("FED HOLDS RATES").topics == ["macro"]
    assert rules.assign("INFLATION cools").topics == ["macro"]


def test_a_daily_bucket_with_tz_is_a_local_day_and_every_output_names_the_zone(cli, tmp_path):
    import csv

    rows = [
        doc(1, "Helix shares plunge", "2026-11-05T02:00:00Z"),  # 4 November, 21:00 in New York
        doc(2, "Helix files report", "2026-11-05T15:00:00Z"),  # 5 November, 10:00 in New York
        # 1 November 2026 is the day New York leaves summer time: a local day of 25 hours.
        doc(3, "Orcana falls", "2026-11-01T04:30:00Z"),  # 00:30 EDT
        doc(4, "Orcana files report", "2026-11-02T04:30:00Z"),  # 23:30 EST, the same day
    ]
    db = _filled_db(tmp_path / "f.sqlite", rows)
    base = ("finance", "trends", "--db", str(db), "--by", "all", "--bucket", "1d")
    utc = json.loads(cli(*base, "--json").stdout)
    assert [(r["bucket_start"], r["count"], r["tz"]) for r in utc] == [
        ("2026-11-01T00:00:00Z", 1, "UTC"),
        ("2026-11-02T00:00:00Z", 1, "UTC"),
        ("2026-11-05T00:00:00Z", 2, "UTC"),
    ]
    out = tmp_path / "t.csv"
    result = cli(*base, "--tz", "America/New_York", "--json", "--csv", str(out))
    assert result.exit_code == 0, result.output
    local = [(r["bucket_start"], r["count"], r["tz"]) for r in json.loads(result.stdout)]
    assert local == [
        ("2026-11-01T00:00:00-04:00", 2, "America/New_York"),
        ("2026-11-04T00:00:00-05:00", 1, "America/New_York"),
        ("2026-11-05T00:00:00-05:00", 1, "America/New_York"),
    ]
    with out.open(encoding="utf-8") as handle:
        written = list(csv.DictReader(handle))
    assert [(r["bucket_start"], r["tz"]) for r in written] == [(b, z) for b, _n, z in local]
    table = cli(*base, "--tz", "America/New_York")
    assert "bucket (America/New_York)" in table.output.splitlines()[0]
    # A --since without a zone is read in --tz: from New York's midnight of 5 November.
    since = cli(*base, "--tz", "America/New_York", "--since", "2026-11-05", "--json")
    assert [r["count"] for r in json.loads(since.stdout)] == [1]


def test_an_hour_repeated_when_summer_time_ends_is_one_local_bucket(db):
    from zoneinfo import ZoneInfo

    from tunesmith_finance.trends import trends, wall_to_utc

    london = ZoneInfo("Europe/London")  # summer time ends on 25 October 2026 at 01:00 UTC
    Ingester(db, KeywordModel(), warn=lambda _m: None).ingest_records(
        [doc(1, "a", "2026-10-25T00:30:00Z"), doc(2, "b", "2026-10-25T01:30:00Z")]
    )
    rows = trends(db, by="all", bucket="1h", zone=london)
    assert [(r.bucket_start, r.count) for r in rows] == [("2026-10-25T01:00:00+01:00", 2)]
    # In spring the clocks skip 01:00-02:00 (29 March 2026, 01:00 UTC): a bucket starting in
    # the skipped time starts at the skip.
    from datetime import datetime

    wall = datetime(2026, 3, 29, 1, 15).replace(tzinfo=ZoneInfo("UTC")).timestamp()
    assert (
        wall_to_utc(wall, london) == datetime.fromisoformat("2026-03-29T01:00:00+00:00").timestamp()
    )


def test_alerts_and_replay_with_tz_cut_their_windows_on_the_local_clock(surge_db, tmp_path):
    from finance_fakes import write_jsonl

    from tunesmith_finance.alerts import AlertOptions, list_alerts, run_alerts
    from tunesmith_finance.detector import SurgeDetector
    from tunesmith_finance.replay import replay
    from tunesmith_finance.storage import open_store

    store = open_store(surge_db)
    options = AlertOptions(tz="Asia/Kolkata")  # UTC+05:30: local hours start at half past
    (alert,) = run_alerts(store, detector=SurgeDetector(prior=0.05), options=options)
    # The surge is at 10:00-10:09 UTC, 15:30-15:39 in Kolkata: the 15:00 local hour ends it.
    assert alert["window"] == "2026-11-02T13:00:00+05:30/2026-11-02T16:00:00+05:30"
    assert alert["tz"] == "Asia/Kolkata"
    (stored,) = list_alerts(store)
    assert (stored["window"], stored["tz"]) == (alert["window"], "Asia/Kolkata")
    (shown,) = list_alerts(store, tz="UTC")
    assert shown["window"] == "2026-11-02T07:30:00Z/2026-11-02T10:30:00Z"
    store.close()

    stream = write_jsonl(
        tmp_path / "s.jsonl",
        [doc(i, f"shares plunge {i}", f"2026-11-02T10:{i:02d}:00Z", topic="x") for i in range(10)],
    )
    lines: list[str] = []
    replay_db = open_store(tmp_path / "r.sqlite")
    summary = replay(
        Ingester(replay_db, KeywordModel(), warn=lambda _m: None),
        stream,
        detector=SurgeDetector(prior=0.05),
        options=options,
        explain=False,
        echo=lines.append,
    )
    replay_db.close()
    assert summary["steps"] == 1 and summary["alerts"] == 1
    assert lines[0].startswith("2026-11-02T15:00:00+05:30  +10")
    assert "2026-11-02T13:00:00+05:30/2026-11-02T16:00:00+05:30" in lines[1]


@pytest.mark.parametrize("command", ["trends", "alerts", "watch", "replay"])
def test_an_unknown_tz_is_one_error_line_before_any_work(cli, tmp_path, command):
    from tunesmith_finance.sample import STREAM

    db = _filled_db(tmp_path / "f.sqlite", [doc(1)])
    args = {
        "trends": ["--db", str(db)],
        "alerts": ["--db", str(db)],
        "watch": [str(tmp_path), "--model", str(tmp_path / "none"), "--db", str(db), "--alerts"],
        "replay": [str(STREAM), "--model", str(tmp_path / "none"), "--db", str(db)],
    }[command]
    result = cli("finance", command, *args, "--tz", "Mars/Olympus")
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        "Error: --tz 'Mars/Olympus' is not a known time zone (e.g. UTC, Europe/London)"
    ]


def test_a_zone_folder_name_is_one_error_not_a_traceback(cli, tmp_path):
    db = _filled_db(tmp_path / "f.sqlite", [doc(1)])
    result = cli("finance", "trends", "--db", str(db), "--tz", "America")
    assert result.exit_code == 2, result.output
    assert "--tz 'America' is not a known time zone" in result.output
    from tunesmith.errors import UserInputError
    from tunesmith_finance.documents import resolve_zone

    with pytest.raises(UserInputError, match="--naive-tz 'Europe' is not a known time zone"):
        resolve_zone("Europe")
