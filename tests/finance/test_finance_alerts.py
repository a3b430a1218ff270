from __future__ import annotations

import json

import pytest
from finance_fakes import KeywordModel

from tunesmith_finance.alerts import AlertOptions, list_alerts, run_alerts
from tunesmith_finance.detector import SurgeDetector
from tunesmith_finance.ingest import Ingester
from tunesmith_finance.replay import replay
from tunesmith_finance.sample import STREAM
from tunesmith_finance.scoring import SentimentModel

SURGE_START = 1793836800 + 13 * 3600  # 2026-11-05T13:00:00Z, see the sample data README
SURGE_END = SURGE_START + 6 * 3600


@pytest.fixture
def sample_db(db, sample_rules):
    Ingester(db, KeywordModel(), sample_rules, warn=lambda _m: None).ingest_file(STREAM)
    return db


def test_the_sample_surge_fires_one_banking_alert_sent_once(sample_db, tmp_path):
    sink = tmp_path / "alerts.jsonl"
    new = run_alerts(sample_db, detector=SurgeDetector(prior=0.2), sinks=[f"jsonl:{sink}"])
    assert [(a["kind"], a["key"]) for a in new] == [("topic", "banking")]
    alert = new[0]
    assert SURGE_START < alert["window_end"] <= SURGE_END
    assert alert["share"] > 0.5 > alert["baseline"]
    events = [json.loads(line) for line in sink.read_text().splitlines()]
    assert [e["kind"] for e in events] == ["finance.alert"]
    assert events[0]["payload"]["id"] == alert["id"] and events[0]["id"] == alert["event_id"]
    from tunesmith.events import list_deliveries

    deliveries = list_deliveries(sample_db)  # the finance database is the outbox
    assert [(d.event.id, d.status) for d in deliveries] == [(alert["event_id"], "delivered")]
    again = run_alerts(sample_db, detector=SurgeDetector(prior=0.2), sinks=[f"jsonl:{sink}"])
    assert again == [] and len(sink.read_text().splitlines()) == 1
    assert [a["id"] for a in list_alerts(sample_db)] == [alert["id"]]


def test_an_alert_carries_explaining_words_and_the_most_negative_examples(sample_db, tiny_model):
    model = SentimentModel.load(tiny_model)
    options = AlertOptions(by="topic", max_explain=5, examples=3)
    alert = run_alerts(sample_db, detector=SurgeDetector(prior=0.2), options=options, model=model)[
        0
    ]
    assert alert["explained"] == 5
    assert alert["words"] and all(w["total"] > 0 for w in alert["words"])
    assert all(w["word"].isalnum() for w in alert["words"])
    scores = [e["score"] for e in alert["examples"]]
    assert len(scores) == 3 and scores == sorted(scores) and scores[0] < 0
    stored = list_alerts(sample_db)[0]
    assert stored["words"] == alert["words"] and stored["examples"] == alert["examples"]


def test_ticker_alerts_group_by_ticker(sample_db):
    new = run_alerts(
        sample_db, detector=SurgeDetector(prior=0.2), options=AlertOptions(by="ticker")
    )
    assert {a["key"] for a in new} <= {"HLXB", "CRWN"} and new


def test_replay_raises_the_alert_at_the_simulated_time_it_would_fire(db, sample_rules):
    lines: list[str] = []
    ingester = Ingester(db, KeywordModel(), sample_rules, warn=lambda _m: None)
    summary = replay(
        ingester, STREAM, detector=SurgeDetector(prior=0.2), explain=False, echo=lines.append
    )
    assert summary == {"documents": 435, "steps": 120, "alerts": 1}
    fired = [i for i, line in enumerate(lines) if "ALERT" in line]
    assert len(fired) == 1
    assert lines[fired[0]].startswith("2026-11-05T1")  # the hour whose end fired it
    assert "banking" in lines[fired[0] + 1]


def test_an_unknown_sink_raises_before_an_alert_is_stored_so_a_rerun_still_sends_it(
    sample_db, tmp_path
):
    from tunesmith.errors import UserInputError

    with pytest.raises(UserInputError, match="unknown event sink 'nope'"):
        run_alerts(sample_db, detector=SurgeDetector(prior=0.2), sinks=["nope:x"])
    assert list_alerts(sample_db) == []
    sink = tmp_path / "alerts.jsonl"
    sent = run_alerts(sample_db, detector=SurgeDetector(prior=0.2), sinks=[f"jsonl:{sink}"])
    assert sent and len(sink.read_text().splitlines()) == len(sent)


def test_an_alert_stored_but_never_sent_is_sent_by_the_next_run_under_a_stable_event_id(
    sample_db, tmp_path, monkeypatch
):
    import tunesmith_finance.alerts as alerts

    def outbox_unwritable(*_args, **_kwargs):
        raise OSError("disk full")

    sink = tmp_path / "alerts.jsonl"
    with monkeypatch.context() as patched:
        patched.setattr(alerts, "record", outbox_unwritable)
        (first,) = run_alerts(sample_db, detector=SurgeDetector(prior=0.2), sinks=[f"jsonl:{sink}"])
    assert first["event_id"] is None and not sink.exists()
    again = run_alerts(sample_db, detector=SurgeDetector(prior=0.2), sinks=[f"jsonl:{sink}"])
    assert again == []  # nothing new was detected; the stored alert was sent
    (event,) = [json.loads(line) for line in sink.read_text().splitlines()]
    assert event["payload"]["id"] == first["id"]
    assert event["id"] == alerts.alert_event_id(first["id"])
    (stored,) = list_alerts(sample_db)
    assert stored["event_id"] == event["id"]
    run_alerts(sample_db, detector=SurgeDetector(prior=0.2), sinks=[f"jsonl:{sink}"])
    assert len(sink.read_text().splitlines()) == 1


def test_a_surge_skipped_inside_a_stored_cooldown_does_not_silence_the_next_surge(db):
    from finance_fakes import doc

    def at(day, hour, minute):
        return f"2026-11-0{day}T{hour:02d}:{minute:02d}:00Z"

    ingester = Ingester(db, KeywordModel(), warn=lambda _m: None)
    calm = [doc(i, f"calm note {i}", time=at(1, i // 6, i % 6 * 10)) for i in range(144)]
    calm += [doc(1000 + i, f"calm day {i}", time=at(2, i // 4, i % 4 * 15)) for i in range(96)]
    first = [
        doc(2000 + i, f"shares plunge {i}", time=at(2, 10 + i // 6, i % 6 * 10)) for i in range(12)
    ]
    ingester.ingest_records([{**row, "topic": "x"} for row in calm + first])
    detector = SurgeDetector(prior=0.1)
    (stored,) = run_alerts(db, detector=detector)
    assert stored["window"].endswith("/2026-11-02T11:00:00Z")
    # Late documents move the first surge an hour earlier (inside the stored alert's cool-down),
    # and a second surge starts at 15:00, 6 h after the stored alert.
    late = [doc(3000 + i, f"shares plunge late {i}", time=at(2, 9, i * 10)) for i in range(6)]
    second = [
        doc(4000 + i, f"shares tumble {i}", time=at(2, 15 + i // 12, i % 12 * 5)) for i in range(36)
    ]
    ingester.ingest_records([{**row, "topic": "x"} for row in late + second])
    fired = run_alerts(db, detector=detector)
    assert [a["window"] for a in fired] == ["2026-11-02T14:00:00Z/2026-11-02T17:00:00Z"]


def test_an_ensembles_alert_words_are_those_of_the_mean_that_scored_the_window(
    tiny_model, tmp_path
):
    """An ensemble scores a window with the mean of its members; the alert's words came from
    the first member alone, which may not even call the texts negative."""
    import shutil

    import torch
    from transformers import AutoModelForSequenceClassification

    from tunesmith.explain.aggregate import top_words_by_label
    from tunesmith.explain.attribute import explain_loaded
    from tunesmith_finance.alerts import explain_window

    member_dir = tmp_path / "seed1"
    shutil.copytree(tiny_model, member_dir)
    member = AutoModelForSequenceClassification.from_pretrained(member_dir)
    torch.manual_seed(1)
    with torch.no_grad():
        for param in member.parameters():
            param.add_(torch.randn_like(param) * 0.2)
    member.save_pretrained(member_dir)
    first = SentimentModel.load(tiny_model)
    model = SentimentModel(first.loaded, [SentimentModel.load(member_dir).loaded])
    texts = ["helix bank shares plunge on deposit worries", "orcana misses estimates", "shares"]

    words = explain_window(model, texts, k=5)

    # Directly: each member explained for "negative", word scores averaged, then summed.
    alone = [
        explain_loaded(m, texts, target="negative", warn=None)
        for m in (model.loaded, *model.members)
    ]
    for a, b in zip(*alone, strict=True):
        for x, y in zip(a.tokens, b.tokens, strict=True):
            x.score = (x.score + y.score) / 2
    expected = top_words_by_label(alone[0], k=5)["negative"]
    assert [w["word"] for w in words] == [w.word for w in expected]
    assert [w["total"] for w in words] == [round(w.total, 4) for w in expected]
    assert words != explain_window(first, texts, k=5)  # not the first member's words


def test_an_alert_sent_later_from_the_database_carries_the_payload_it_had_when_found(
    sample_db, sample_rules, tmp_path, monkeypatch
):
    # Sent from the database (pending: found by a run without a sink), the payload had
    # created_at, event_id null and no "explained"; a consumer saw two shapes of one alert.
    import tunesmith_finance.alerts as alerts
    from tunesmith_finance.storage import open_store

    words = [{"word": "plunge", "total": 1.5, "mean": 0.5, "count": 3}]
    monkeypatch.setattr(alerts, "explain_window", lambda _model, texts, k: words)
    options = AlertOptions(tz="Asia/Kolkata")

    def payloads(sink):
        return [json.loads(line)["payload"] for line in sink.read_text().splitlines()]

    now = tmp_path / "now.jsonl"
    run_alerts(sample_db, detector=SurgeDetector(prior=0.2), options=options, model=object(),
               sinks=[f"jsonl:{now}"])  # fmt: skip
    later = tmp_path / "later.jsonl"
    other = open_store(tmp_path / "other.sqlite")
    try:
        Ingester(other, KeywordModel(), sample_rules, warn=lambda _m: None).ingest_file(STREAM)
        (found,) = run_alerts(other, detector=SurgeDetector(prior=0.2), options=options,
                              model=object())  # fmt: skip
        assert found["event_id"] is None  # pending
        assert run_alerts(other, detector=SurgeDetector(prior=0.2), sinks=[f"jsonl:{later}"]) == []
    finally:
        other.close()
    (sent_now,), (sent_later,) = payloads(now), payloads(later)
    assert sent_later == sent_now
    assert list(sent_now) == list(alerts.PAYLOAD_FIELDS)
    assert sent_now["explained"] > 0 and sent_now["words"] == words
    assert sent_now["tz"] == "Asia/Kolkata" and sent_now["window"].endswith("+05:30")


def test_alerts_list_says_which_alerts_were_sent_on_a_database_from_before_pending_alerts(
    cli, sample_db, tmp_path
):
    # Earlier versions stored an event id for an alert found without a sink, with no delivery:
    # `--list --json` showed that id, as if the alert had been sent.
    import tunesmith_finance.alerts as alerts

    (sent,) = run_alerts(sample_db, detector=SurgeDetector(prior=0.2),
                         sinks=[f"jsonl:{tmp_path / 'a.jsonl'}"])  # fmt: skip
    old = {**sent, "id": "old-pending", "key": "tech", "window_end": sent["window_end"] + 1}
    alerts.store_alert(sample_db, old, alerts.alert_event_id("old-pending"))
    path = str(sample_db.path)
    sample_db.close()
    result = cli("finance", "alerts", "--db", path, "--list", "--json")
    assert result.exit_code == 0, result.output
    listed = {a["id"]: (a["sent"], a["event_id"]) for a in json.loads(result.stdout)}
    assert listed == {"old-pending": (False, None), sent["id"]: (True, sent["event_id"])}
    text = cli("finance", "alerts", "--db", path, "--list").stdout.splitlines()
    assert [line.strip() for line in text if "not sent yet" in line] == [
        "not sent yet: the next `finance alerts` or `watch --alerts` with a --sink sends it"
    ]
    assert "tech" in text[0] and "not sent yet" in text[1]  # the pending one is marked
