"""One database, alerts of several detector settings: a risk analyst's hourly cron (`finance
alerts --bucket 1h`) beside a daily look (`--bucket 1d --window 3`). Each bucket and window is a
look of its own, with its own ids and cool-down; the trends chart and the dashboard say which
bucket found each alert, and the dashboard's chart follows its checks' bucket."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from finance_fakes import KeywordModel, doc

from tunesmith_finance import demo

HOURLY = ["--bucket", "1h"]
DAILY = ["--bucket", "1d", "--window", "3"]
START = datetime(2026, 11, 1, tzinfo=UTC)  # a Sunday, 00:00 UTC


def _stream(per_hour: int = 1, days: int = 10) -> list[dict]:
    """``days`` of banking news, ``per_hour`` an hour, one in five negative; on day 7, 30 more
    negative ones in the hour from 02:00: a surge both the hourly and the daily look see."""
    rows = []
    for i in range(days * 24 * per_hour):
        when = START + timedelta(seconds=i * 3600 / per_hour)
        text = "Helix Bank shares plunge" if i % 5 == 0 else "Helix Bank shares drift"
        rows.append(doc(i, text, time=when.isoformat(), topic="banking"))
    surge = START + timedelta(days=7, hours=2)
    for j in range(30):
        when = surge + timedelta(minutes=2 * j)
        rows.append(doc(10_000 + j, "Helix Bank deposits plunge", time=when.isoformat(), topic="banking"))  # fmt: skip
    return rows


def _database(path, rows) -> None:
    from tunesmith_finance.ingest import Ingester
    from tunesmith_finance.storage import open_store

    store = open_store(path)
    try:
        Ingester(store, KeywordModel(), None, warn=lambda _m: None).ingest_records(rows)
    finally:
        store.close()


def _alerts(cli, db, *flags: str) -> list[dict]:
    result = cli("finance", "alerts", "--db", str(db), *flags, "--prior", "0.2", "--no-explain", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _looks(alerts: list[dict]) -> list[tuple[str, float, int, str]]:
    return sorted((a["key"], a["settings"]["bucket"], a["settings"]["window"], a["id"]) for a in alerts)  # fmt: skip


def test_the_hourly_cron_and_the_daily_look_each_alert_the_surge_whichever_runs_first(
    cli, tmp_path
):
    first, second = tmp_path / "hourly_first.sqlite", tmp_path / "daily_first.sqlite"
    for path in (first, second):
        _database(path, _stream())
    hourly = _alerts(cli, first, *HOURLY)
    daily = _alerts(cli, first, *DAILY)
    # The daily alert ends 22 h after the hourly one, inside the daily look's 3-day cool-down:
    # the hourly alert silenced it (and, run first, the daily one silenced the hourly).
    assert [a["window"] for a in hourly] == ["2026-11-08T00:00:00Z/2026-11-08T03:00:00Z"]
    assert [a["window"] for a in daily] == ["2026-11-06T00:00:00Z/2026-11-09T00:00:00Z"]
    assert _looks(_alerts(cli, second, *DAILY) + _alerts(cli, second, *HOURLY)) == _looks(
        hourly + daily
    )
    # Each look's cool-down still holds across its own runs: nothing new on either.
    assert _alerts(cli, first, *HOURLY) == [] and _alerts(cli, first, *DAILY) == []


def test_two_looks_whose_windows_start_together_are_two_alerts_with_two_ids(cli, tmp_path):
    db = tmp_path / "feed.sqlite"
    _database(db, _stream())
    (hourly,) = _alerts(cli, db, *HOURLY)
    # A day's window from the same midnight: under one id it was dropped without a word.
    (daily,) = _alerts(cli, db, "--bucket", "1d", "--window", "1")
    assert hourly["window_start"] == daily["window_start"]
    assert hourly["id"] != daily["id"]
    listed = cli("finance", "alerts", "--db", str(db), "--list", "--json")
    assert sorted(a["id"] for a in json.loads(listed.stdout)) == sorted([hourly["id"], daily["id"]])


def test_alerts_of_the_default_settings_keep_the_ids_they_had(cli, tmp_path):
    db = tmp_path / "feed.sqlite"
    _database(db, _stream())
    # Tuned thresholds, the default bucket and window: the same look, so the same ids.
    (alert,) = _alerts(cli, db, "--min-lift", "0.2", "--p-value", "0.0001")
    raw = f"ewma-binomial|topic|banking|{alert['window_start']:.0f}"
    assert alert["id"] == hashlib.sha1(raw.encode()).hexdigest()[:16]


def test_an_upgraded_database_sends_no_stored_alert_again_and_its_old_alerts_keep_their_look(
    cli, tmp_path
):
    from tunesmith_finance.storage import open_store

    db, sink = tmp_path / "feed.sqlite", tmp_path / "sent.jsonl"
    _database(db, _stream())
    (daily,) = _alerts(cli, db, *DAILY, "--sink", f"jsonl:{sink}")
    # As the last release stored it: an id without the bucket and window, no settings.
    plain = f"ewma-binomial|topic|banking|{daily['window_start']:.0f}"
    store = open_store(db)
    try:
        store.execute(
            "UPDATE finance_alerts SET id = ?, settings = NULL WHERE id = ?",
            (hashlib.sha1(plain.encode()).hexdigest()[:16], daily["id"]),
        )
    finally:
        store.close()
    # The same daily look after the upgrade: its own alert, not found again...
    assert _alerts(cli, db, *DAILY, "--sink", f"jsonl:{sink}") == []
    # ... even with no cool-down to hold it (the later windows of the surge alert then).
    again = _alerts(cli, db, *DAILY, "--cooldown", "1s", "--sink", f"jsonl:{sink}")
    assert daily["window"] not in [a["window"] for a in again] and len(again) == 2
    assert len(sink.read_text().splitlines()) == 3
    # Told a daily alert by its three days, it does not silence the hourly cron.
    assert [a["window"] for a in _alerts(cli, db, *HOURLY)] == [
        "2026-11-08T00:00:00Z/2026-11-08T03:00:00Z"
    ]


def test_the_trends_chart_says_which_bucket_found_each_alert(cli, tmp_path):
    from tunesmith_finance.alerts import list_alerts
    from tunesmith_finance.storage import open_store
    from tunesmith_finance.trends import plot, trends

    db = tmp_path / "feed.sqlite"
    _database(db, _stream())
    _alerts(cli, db, *HOURLY)
    _alerts(cli, db, *DAILY)
    store = open_store(db)
    try:
        store.execute(  # one stored before the settings were kept
            "INSERT INTO finance_alerts SELECT 'old', kind, key, window_start - 86400, "
            "window_end - 86400, n, negatives, share, baseline, z, p_value, mean_score, words, "
            "examples, detector, created_at, NULL, tz, explained, NULL FROM finance_alerts "
            "LIMIT 1"
        )
        rows, alerts = trends(store, by="topic", bucket="1h"), list_alerts(store)
    finally:
        store.close()
    figure = plot(rows, alerts=alerts, bucket=3600.0)
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    # One red triangle "alert" for all three: the daily surge read as an hourly one.
    assert legend == [
        "banking",
        "alert (1h buckets)",
        "alert (1d buckets)",
        "alert (bucket not recorded)",
    ]
    marks = {line.get_label(): line for line in figure.axes[0].get_lines()}
    assert marks["alert (1h buckets)"].get_markerfacecolor() == "red"
    assert marks["alert (1d buckets)"].get_markerfacecolor() == "none"
    written = cli("finance", "trends", "--db", str(db), "--chart", str(tmp_path / "t.png"))
    assert written.exit_code == 0, written.output


def test_the_dashboards_auto_bucket_is_its_alert_checks_bucket_when_the_data_allow(tmp_path):
    from tunesmith_finance.storage import open_store

    db = tmp_path / "feed.sqlite"
    _database(db, _stream(per_hour=6))  # 18 documents in 3 hours: auto's own pick is 3h
    board = demo.Dashboard(model="unused", db=str(db), detector_settings={"bucket": 86400.0})
    board._db, board.status = open_store(db), "Ready."
    try:
        view = board.snapshot("topic", demo.AUTO, demo.TOP)
        hourly = demo.Dashboard(model="unused", db=str(db))
        hourly._db, hourly.status = board._db, "Ready."
        plain = hourly.snapshot("topic", demo.AUTO, demo.TOP)
    finally:
        board._db.close()
    assert view["bucket"] == "1d"
    assert "Buckets: 1d (auto: the alert checks' bucket" in view["status"]
    # Checks in hourly buckets, whose 240 points a chart does not hold: as before.
    assert plain["bucket"] == "3h"
    assert "Buckets: 3h (auto: the smallest with at least 10" in plain["status"]
    # A bucket the box does not offer: the page's own checks' is among its sizes.
    odd = demo.Dashboard(model="unused", db=str(db), detector_settings={"bucket": 7200.0})
    assert odd.bucket_choices() == ["auto", "1h", "2h", "3h", "6h", "1d", "1w"]
