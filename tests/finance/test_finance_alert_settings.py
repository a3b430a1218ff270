"""The detector settings an alert was found with are stored with it, so that a stored alert is
read back exactly: `alerts --json`, `--list`, its event and the dashboard say which bucket,
window and thresholds found it. Alerts stored before keep working."""

from __future__ import annotations

import json

from finance_fakes import store_sample_stream

from tunesmith_finance import demo

TUNED = ["--bucket", "6h", "--window", "2", "--min-lift", "0.1", "--p-value", "0.01"]
SETTINGS = {
    "bucket": 21600.0, "window": 2, "half_life": 518400.0, "min_volume": 8, "min_lift": 0.1,
    "p_value": 0.01, "cooldown": 43200.0, "prior": 0.2, "prior_weight": 10.0,
    "min_history": 0.0,  # the analyst's --prior stands for each key's past
}  # fmt: skip


def test_an_alert_stores_the_settings_it_was_found_with_and_alerts_json_shows_them(cli, tmp_path):
    db, sink = tmp_path / "feed.sqlite", tmp_path / "alerts.jsonl"
    store_sample_stream(db)
    found = cli("finance", "alerts", "--db", str(db), *TUNED, "--prior", "0.2", "--no-explain",
                "--json", "--sink", f"jsonl:{sink}")  # fmt: skip
    assert found.exit_code == 0, found.output
    (pharma,) = [a for a in json.loads(found.stdout) if a["key"] == "pharma"]
    # A 6h alert and an hourly one of the same surge were told apart by their windows alone.
    assert pharma["settings"] == SETTINGS
    listed = cli("finance", "alerts", "--db", str(db), "--list", "--json")
    assert [a["settings"] for a in json.loads(listed.stdout)] == [SETTINGS] * len(
        json.loads(found.stdout)
    )
    events = [json.loads(line)["payload"] for line in sink.read_text().splitlines()]
    assert all(e["settings"] == SETTINGS for e in events)
    text = cli("finance", "alerts", "--db", str(db), "--list", "--by", "topic").stdout
    assert (
        "    found with --bucket 6h --window 2 --half-life 6d --min-volume 8 --min-lift 0.1 "
        "--p-value 0.01 --cooldown 12h --prior 0.2 --min-history 0\n" in text
    )


def test_alerts_stored_before_the_settings_were_kept_still_list_and_say_so(cli, tmp_path):
    from tunesmith.store import Store
    from tunesmith_finance.storage import MIGRATIONS, NAMESPACE

    db = tmp_path / "old.sqlite"
    old = Store.open(db, namespace=NAMESPACE, migrations=MIGRATIONS[:4])  # the last release
    old.execute(
        "INSERT INTO finance_alerts (id, kind, key, window_start, window_end, n, negatives, "
        "share, baseline, z, p_value, mean_score, words, examples, detector, created_at, tz, "
        "explained) VALUES ('a1', 'topic', 'banking', 0, 10800, 16, 10, 0.625, 0.16, 5.0, "
        "1e-5, -0.4, '[]', '[]', 'ewma-binomial', '2026-11-05T15:00:00+00:00', 'UTC', 0)"
    )
    old.close()
    listed = cli("finance", "alerts", "--db", str(db), "--list", "--json")
    assert listed.exit_code == 0, listed.output
    assert [(a["id"], a["settings"]) for a in json.loads(listed.stdout)] == [("a1", None)]
    text = cli("finance", "alerts", "--db", str(db), "--list").stdout
    assert "found with: not recorded (an older alert)" in text
    alert = json.loads(listed.stdout)[0]
    assert "settings not recorded" in demo._alert_markdown(alert)
    assert demo._bucket_of(alert) == ""


def test_the_dashboard_shows_the_bucket_each_stored_alert_was_found_with(cli, tmp_path):
    from tunesmith_finance.storage import open_store

    db = tmp_path / "feed.sqlite"
    store_sample_stream(db)
    for flags in ([], TUNED):  # the hourly defaults, then a look in 6h buckets, on one database
        result = cli("finance", "alerts", "--db", str(db), *flags, "--no-explain")
        assert result.exit_code == 0, result.output
    board = demo.Dashboard(model="unused", db=str(db))
    board._db, board.status = open_store(db), "Ready."
    try:
        view = board.snapshot("topic", "1h", demo.TOP)
    finally:
        board._db.close()
    # The 6h look alerts the banking surge too: the hourly alert's cool-down is its own look's.
    assert sorted((row[1], row[6]) for row in view["rows"]) == [
        ("banking", "1h"),
        ("banking", "6h"),
        ("pharma", "6h"),
    ]
    assert "Found with `--bucket 6h --window 2" in view["details"]
    assert "Found with `--bucket 1h --window 3" in view["details"]
