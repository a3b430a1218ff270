"""The dashboard's first check at a million documents: each key's hourly counts are read in the
order of the store's hour index (no sort of every key row into hours), and are the counts the
grouping of every row gives, bucket for bucket, in any zone."""

from __future__ import annotations

import random

import pytest
from test_finance_dashboard_scale import CLOCK_CHANGE, GROUPS, _docs, _exact, _store

from tunesmith_finance.documents import resolve_zone
from tunesmith_finance.trends import HOUR, bucket_counts


def _statements(db, monkeypatch) -> list[str]:
    """The SQL ``db.query`` runs from now on (plans are asked for separately)."""
    seen: list[str] = []
    real = db.query

    def query(sql, *args, **kwargs):
        seen.append(sql)
        return real(sql, *args, **kwargs)

    monkeypatch.setattr(db, "query", query)
    return seen


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Europe/London", "Asia/Kolkata"])
def test_hourly_key_counts_equal_the_grouping_of_every_row_across_a_clock_change(db, tz):
    rng = random.Random(21)
    zone = resolve_zone(tz, "--tz")
    # Two weeks around 1 November 2026, when New York's clocks went back (a repeated hour)
    times = [CLOCK_CHANGE + (rng.random() - 0.5) * 14 * 86400 for _ in range(3000)]
    times += [CLOCK_CHANGE - 1800.0, CLOCK_CHANGE + 1800.0, 1_793_000_000.0]  # and on the hour
    _store(db, _docs(rng, "doc", times))
    for kind in GROUPS:
        fast = bucket_counts(db, by=kind, bucket=HOUR, zone=zone)
        # A `since` before every document: the same counts through the grouping of every row
        every_row = bucket_counts(db, by=kind, bucket=HOUR, zone=zone, since=0.0)
        assert _exact(fast) == _exact(every_row)
        assert [t for *_, t in fast] == pytest.approx([t for *_, t in every_row], abs=1e-9)


def test_first_check_reads_hourly_key_counts_from_the_hour_index_without_sorting(db, monkeypatch):
    rng = random.Random(22)
    _store(db, _docs(rng, "doc", [CLOCK_CHANGE + rng.random() * 86400 for _ in range(200)]))
    seen = _statements(db, monkeypatch)
    for kind in GROUPS:
        bucket_counts(db, by=kind, bucket=HOUR)
    monkeypatch.undo()
    keyed = [sql for sql in seen if "FROM finance_keys" in sql]
    assert len(keyed) == 2
    for sql in keyed:
        plan = " ".join(row[3] for row in db.query("EXPLAIN QUERY PLAN " + sql, ["ticker"]))
        # Sorting 1.5 million key rows into hours was most of the first check (3.4 s)
        assert "COVERING INDEX finance_keys_hour" in plan and "TEMP B-TREE" not in plan, plan
