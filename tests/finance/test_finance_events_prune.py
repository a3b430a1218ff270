"""`tunesmith events prune` on a finance database (its own outbox): the alerts whose events it
removed stay sent; the next `finance alerts` does not take them for never-sent ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from finance_fakes import KeywordModel

from tunesmith.events import list_deliveries, prune
from tunesmith.events.ages import stamp
from tunesmith_finance import alerts
from tunesmith_finance.detector import SurgeDetector
from tunesmith_finance.ingest import Ingester
from tunesmith_finance.sample import STREAM


def test_alerts_whose_events_a_prune_removed_are_not_sent_again(db, sample_rules, tmp_path):
    Ingester(db, KeywordModel(), sample_rules, warn=lambda _m: None).ingest_file(STREAM)
    sink = tmp_path / "alerts.jsonl"
    (alert,) = alerts.run_alerts(db, detector=SurgeDetector(prior=0.2), sinks=[f"jsonl:{sink}"])
    # As if found, sent and delivered 60 days ago.
    old = stamp(datetime.now(UTC) - timedelta(days=60))
    db.execute("UPDATE finance_alerts SET created_at = ?", (old[:19] + "+00:00",))
    db.execute("UPDATE outbox_events SET created_at = ?", (old,))
    db.execute("UPDATE outbox_deliveries SET delivered_at = ?", (old,))

    report = prune(db, stamp(datetime.now(UTC) - timedelta(days=30)))
    assert report.events == 1 and list_deliveries(db) == []
    alerts._checked.discard(db)  # the next `finance alerts`, a new process
    again = alerts.run_alerts(db, detector=SurgeDetector(prior=0.2), sinks=[f"jsonl:{sink}"])

    assert again == [] and len(sink.read_text().splitlines()) == 1
    (stored,) = alerts.list_alerts(db)
    assert stored["event_id"] == alert["event_id"] and stored["sent"]
