"""A quarter of data: weekly buckets (Monday to Monday on the --tz clock) in trends, alerts,
replay and the dashboard, whose "auto" gives every charted key enough documents per bucket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tunesmith_finance import demo


def _ingest(db, records):
    from finance_fakes import KeywordModel

    from tunesmith_finance.ingest import Ingester
    from tunesmith_finance.rules import load_rules
    from tunesmith_finance.sample import RULES

    Ingester(db, KeywordModel(), load_rules(RULES), warn=lambda _m: None).ingest_records(records)


def _doc(i: int, when: datetime, text: str = "Helix Bank shares drift") -> dict[str, str]:
    return {"id": f"w{i}", "time": when.isoformat(), "text": text}


def test_week_buckets_start_on_monday_on_the_tz_clock(db):
    from tunesmith_finance.trends import parse_duration, trends

    assert parse_duration("1w") == 7 * 86400
    sunday_night = datetime(2026, 11, 1, 23, 30, tzinfo=UTC)  # Sunday in UTC and New York
    monday = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)  # still Sunday 22:00 in New York
    _ingest(db, [_doc(1, sunday_night), _doc(2, monday)])
    # Counted from 1970-01-01, a 7d bucket ran Thursday to Wednesday: one bucket for both.
    utc = trends(db, by="all", bucket="1w")
    assert [(r.bucket_start, r.count) for r in utc] == [
        ("2026-10-26T00:00:00Z", 1),
        ("2026-11-02T00:00:00Z", 1),
    ]
    new_york = trends(db, by="all", bucket="1w", zone=ZoneInfo("America/New_York"))
    assert [(r.bucket_start, r.count) for r in new_york] == [("2026-10-26T00:00:00-04:00", 2)]
    assert [r.bucket_start for r in trends(db, by="all", bucket="2w")] == ["2026-10-26T00:00:00Z"]


def _quarter(weeks: int = 13, surge_week: int | None = None) -> list[dict[str, str]]:
    """Three documents a day on topic banking from Monday 3 August 2026; one negative in five,
    all negative in ``surge_week``."""
    start = datetime(2026, 8, 3, 1, tzinfo=UTC)
    rows = []
    for i in range(weeks * 7 * 3):
        when = start + timedelta(hours=8 * i)
        week = i // 21
        bad = week == surge_week or i % 5 == 0
        rows.append(_doc(i, when, "Helix Bank shares plunge" if bad else "Helix Bank shares drift"))
    return rows


def test_alerts_with_week_buckets_have_windows_from_monday_to_monday(db):
    from tunesmith_finance.alerts import AlertOptions, run_alerts
    from tunesmith_finance.detector import SurgeDetector
    from tunesmith_finance.trends import parse_duration

    _ingest(db, _quarter(surge_week=10))
    week = parse_duration("1w")
    found = run_alerts(
        db,
        detector=SurgeDetector(bucket=week, window=1, half_life=4 * week, cooldown=week),
        options=AlertOptions(by="topic", tz="Europe/Berlin"),
    )
    (alert,) = [a for a in found if a["key"] == "banking"]
    # The surge's week, 12 to 19 October, Berlin's Mondays (UTC+2).
    assert alert["window"] == "2026-10-12T00:00:00+02:00/2026-10-19T00:00:00+02:00"
    assert alert["n"] == 21 and alert["negatives"] == 21


def test_replay_steps_a_week_at_a_time_from_monday(db, tmp_path):
    import json

    from finance_fakes import KeywordModel

    from tunesmith_finance.detector import SurgeDetector
    from tunesmith_finance.ingest import Ingester
    from tunesmith_finance.replay import replay
    from tunesmith_finance.trends import parse_duration

    stream = tmp_path / "q.jsonl"
    stream.write_text("".join(json.dumps(r) + "\n" for r in _quarter(weeks=2)))
    lines: list[str] = []
    replay(
        Ingester(db, KeywordModel(), warn=lambda _m: None),
        stream,
        detector=SurgeDetector(bucket=parse_duration("1w")),
        explain=False,
        echo=lines.append,
    )
    assert [line.split()[0] for line in lines] == ["2026-08-03T00:00:00Z", "2026-08-10T00:00:00Z"]


def _board(db, records):
    _ingest(db, records)
    board = demo.Dashboard(model="unused", db="unused")
    board._db, board.status = db, "Ready."
    return board


def test_a_quarter_with_a_few_documents_a_day_per_key_gets_weekly_buckets(db):
    board = _board(db, _quarter())
    # Counting buckets alone gave 1d: three documents a point, a share in steps of a third.
    view = board.snapshot("topic", demo.AUTO, demo.TOP)
    assert view["bucket"] == "1w" and "Buckets: 1w (auto" in view["status"]
    (line,) = [x for x in view["figure"].axes[0].lines if x.get_label() == "banking"]
    assert {d.weekday() for d in line.get_xdata()} == {0}  # every point a Monday
    assert "1w" in demo.BUCKETS  # and in the page's box


def test_auto_picks_the_size_that_the_charted_keys_need_not_every_key():
    from tunesmith_finance.trends import TrendRow

    def rows_for(size: str) -> list[TrendRow]:
        # A busy key with 12 documents an hour and a quiet one with 1 an hour.
        per_hour = {"busy": 12, "quiet": 1}
        hours = {"1h": 1, "3h": 3, "6h": 6, "1d": 24, "1w": 168}[size]
        return [
            TrendRow(k, "", float(i), n * hours, 0, 0.0, 0.0, 1.0, 0.0)
            for k, n in per_hour.items()
            for i in range(30 * 24 // hours)
        ]

    span = 10 * 86400  # 1h would be 240 buckets, more than the chart can show
    assert demo.auto_bucket(span, rows_for, ["busy"])[0] == "3h"
    assert demo.auto_bucket(span, rows_for, ["busy", "quiet"])[0] == "1d"
    # Five days: a week would be one point, so the largest size that leaves eight buckets.
    size, _rows, enough = demo.auto_bucket(5 * 86400, rows_for, ["quiet"])
    assert size == "6h" and not enough
