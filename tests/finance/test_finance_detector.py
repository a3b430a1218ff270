from __future__ import annotations

import pytest

from tunesmith_finance.detector import SurgeDetector, ThresholdDetector, binomial_sf


def test_binomial_tail_matches_scipy():
    from scipy.stats import binom

    for k, n, p in [(0, 5, 0.2), (3, 10, 0.2), (9, 12, 0.15), (40, 200, 0.1), (7, 7, 0.5)]:
        assert binomial_sf(k, n, p) == pytest.approx(binom.sf(k - 1, n, p), rel=1e-9, abs=1e-15)


def steady(hours: int, n: int = 10, k: int = 2) -> list[tuple[int, int, int, float]]:
    return [(h, n, k, 0.0) for h in range(hours)]


def test_a_surge_is_found_where_it_starts_and_a_flat_series_is_quiet():
    detector = SurgeDetector(prior=0.2)
    assert detector.detect("t", steady(100)) == []
    series = steady(100)
    series[60:64] = [(h, 10, 8, -6.0) for h in range(60, 64)]
    found = detector.detect("t", series)
    assert len(found) == 1
    # The first surging hour is diluted by two normal ones in the 3-hour window; the second fires.
    assert found[0].window_end == 62 * 3600
    assert found[0].baseline == pytest.approx(0.2, abs=0.01)


def test_the_cooldown_silences_a_lasting_surge():
    series = steady(100)
    series[40:60] = [(h, 10, 9, 0.0) for h in range(40, 60)]
    fired = SurgeDetector(prior=0.2, cooldown=6 * 3600).detect("t", series)
    gaps = [b.window_end - a.window_end for a, b in zip(fired, fired[1:], strict=False)]
    assert fired and all(g >= 6 * 3600 for g in gaps)
    assert len(SurgeDetector(prior=0.2, cooldown=100 * 3600).detect("t", series)) == 1


def test_too_few_documents_never_alert():
    series = [(h, 1, 1 if h == 50 else 0, 0.0) for h in range(100)]
    assert SurgeDetector(min_volume=8).detect("t", series) == []


def test_the_fixed_threshold_rule_fires_on_share_alone():
    series = steady(30, n=10, k=6)  # always 60 % negative
    assert len(ThresholdDetector(threshold=0.5, cooldown=0).detect("t", series)) == 30
    assert SurgeDetector(prior=0.6).detect("t", series) == []
