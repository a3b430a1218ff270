"""Alerts on a young database with daily buckets: the baseline leans on the prior until a key has
history of its own, remembers weeks rather than two days, and one surge alerts once."""

from __future__ import annotations

import json

from finance_fakes import KeywordModel, doc

DAY = 86400.0
#: The analyst topic's first six days of the finance tweets (2,388 of valid.csv over 20 days):
#: (day, documents, negatives). The database's negative share was 6.3 %.
ANALYST = [(0, 9, 0, 0.0), (1, 3, 0, 0.0), (2, 10, 2, 0.0), (3, 5, 1, 0.0), (4, 1, 0, 0.0)]


def _steady(days: range, n: int, negatives: int) -> list[tuple[int, int, int, float]]:
    return [(d, n, negatives, 0.0) for d in days]


def test_a_young_keys_first_quiet_days_do_not_become_its_baseline_with_daily_buckets():
    from tunesmith_finance.detector import SurgeDetector

    # Before: the prior faded with the 24 h half-life, 0 of 12 on the first two days made the
    # baseline (floored at 1 %), and 3 of 18 (17 %) alerted twice.
    detector = SurgeDetector(bucket=DAY, prior=0.063)
    assert detector.detect("analyst", ANALYST) == []


def test_a_young_key_with_an_explicit_half_life_still_leans_on_the_prior():
    from tunesmith_finance.detector import SurgeDetector

    # The prior's ten documents do not fade, whatever the half-life: after three quiet days of
    # five documents the baseline is 5 %, not the 1 % floor, and 3 of 16 (19 %) is no surge.
    detector = SurgeDetector(bucket=DAY, half_life=DAY, prior=0.1)
    series = _steady(range(3), 5, 0) + [(3, 5, 1, 0.0), (4, 6, 1, 0.0), (5, 5, 1, 0.0)]
    assert detector.detect("k", series) == []


def test_an_analysts_prior_is_the_baseline_of_the_first_daily_bucket():
    from tunesmith_finance.detector import SurgeDetector

    # Tested from a key's first bucket only when asked (min_history 0): see the test below.
    detector = SurgeDetector(bucket=DAY, prior=0.05, min_history=0)
    (first,) = detector.detect("banking", [(0, 10, 10, -8.0)])
    assert first.baseline == 0.05 and first.window_end == DAY


def test_the_default_half_life_is_24_buckets_so_a_daily_baseline_remembers_weeks():
    from tunesmith_finance.detector import SurgeDetector

    assert SurgeDetector().half_life == 24 * 3600  # hourly buckets: as before
    assert SurgeDetector(bucket=DAY).half_life == 24 * DAY
    # Two weeks at 20 % negative, a two-day lull, then three days at 30 %: the lull is not the
    # baseline (with a 24 h half-life it was: 5 %, and 30 % alerted).
    series = _steady(range(14), 20, 4) + _steady(range(14, 16), 20, 0)
    series += _steady(range(16, 19), 20, 6)
    assert SurgeDetector(bucket=DAY, prior=0.2).detect("k", series) == []


def test_one_surge_alerts_once_with_daily_buckets():
    from tunesmith_finance.detector import SurgeDetector

    detector = SurgeDetector(bucket=DAY, prior=0.1)
    assert detector.cooldown == 3 * DAY  # the window's length
    assert SurgeDetector().cooldown == 6 * 3600  # hourly: at least 6 h, as before
    series = _steady(range(10), 20, 2) + [(10, 20, 16, 0.0)] + _steady(range(11, 14), 20, 2)
    # Before (6 h cool-down), the windows ending on days 10, 11 and 12 each alerted the same
    # sixteen documents.
    (alert,) = detector.detect("k", series)
    assert alert.window_end == 11 * DAY


def test_finance_alerts_with_daily_buckets_on_a_young_database_raises_no_false_alert(cli, tmp_path):
    from tunesmith_finance.ingest import Ingester
    from tunesmith_finance.storage import open_store

    rows, i = [], 0
    for day, n, negatives, _ in ANALYST:
        for j in range(n):
            text = "Helix shares plunge" if j < negatives else "Helix shares drift"
            rows.append(doc(i, f"{text} {i}", f"2026-11-{day + 2:02d}T{j + 8:02d}:00:00Z",
                            topic="analyst"))  # fmt: skip
            i += 1
    # Other documents give the database its 6 % negative share, as on the tweets.
    rows += [doc(1000 + j, f"Markets drift {j}", "2026-11-02T07:00:00Z") for j in range(30)]
    store = open_store(tmp_path / "f.sqlite")
    Ingester(store, KeywordModel(), warn=lambda _m: None).ingest_records(rows)
    store.close()
    result = cli("finance", "alerts", "--db", str(tmp_path / "f.sqlite"), "--bucket", "1d",
                 "--no-explain", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []


def test_a_thin_key_negative_all_along_does_not_alert_on_its_first_days():
    from tunesmith_finance.detector import SurgeDetector

    # A ticker with four documents a day, three of them negative from its first day, on a
    # database at 15 % negatives: its first windows alerted against the prior (9 of 12, then
    # 11 of 12 ...), one of hundreds of such tickers on a desk's first daily check.
    series = _steady(range(30), 4, 3)
    series[1] = (1, 4, 4, 0.0)
    series[2] = (2, 4, 4, 0.0)
    # the database's share as the prior (no --prior): the key must first have its own past
    detector = SurgeDetector(bucket=DAY, prior=0.15, min_history=None)
    assert detector.min_history == 20  # twice the prior's ten documents
    assert detector.detect("FXC", series) == []
    assert len(SurgeDetector(bucket=DAY, prior=0.15, min_history=0).detect("FXC", series)) == 1


def test_a_thin_keys_burst_after_its_first_days_still_alerts():
    from tunesmith_finance.detector import SurgeDetector

    # One document a day (none negative) for three weeks, then twelve negative in three hours.
    series = [(24 * d + 10, 1, 0, 0.0) for d in range(21)] + [(520, 4, 4, 0.0)]
    series += [(521, 4, 4, 0.0), (522, 4, 4, 0.0)]
    (alert,) = SurgeDetector(prior=0.15).detect("TINY", series)
    assert alert.negatives >= 8 and alert.window_end <= 523 * 3600
