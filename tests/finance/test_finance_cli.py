from __future__ import annotations

import json

import pytest

from tunesmith_finance.sample import RULES, STREAM


def test_finance_group_lists_every_command(cli):
    result = cli("finance", "--help")
    assert result.exit_code == 0
    for name in ("train", "score", "ingest", "watch", "trends", "alerts", "replay", "demo"):
        assert name in result.output


def test_train_refuses_data_without_sentiment_labels_before_any_work(cli, tmp_path):
    from tunesmith.testing import write_csv

    data = write_csv(
        tmp_path / "intents.csv", [["lost my card", "card_lost"], ["refund", "refund"]]
    )
    result = cli("finance", "train", "--data", str(data), "--out", str(tmp_path / "m"))
    assert result.exit_code == 2
    assert "Error:" in result.output and "missing: negative, positive" in result.output
    assert not (tmp_path / "m").exists()


def test_score_prints_score_topics_and_tickers_as_json(cli, tiny_model):
    result = cli("finance", "score", "--model", str(tiny_model), "--rules", str(RULES), "--json",
                 "--text", "Helix Bank shares plunge, $CRWN too")  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["score"] == pytest.approx(record["p_positive"] - record["p_negative"], abs=1e-5)
    assert record["topics"] == ["banking"] and record["tickers"] == ["CRWN", "HLXB"]


def test_ingest_trends_and_alerts_end_to_end_on_the_sample_stream(cli, tiny_model, tmp_path):
    db = str(tmp_path / "f.sqlite")
    result = cli("finance", "ingest", str(STREAM), "--model", str(tiny_model), "--db", db,
                 "--rules", str(RULES), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["added"] == 435
    again = cli("finance", "ingest", str(STREAM), "--model", str(tiny_model), "--db", db, "--json")
    assert json.loads(again.stdout)["added"] == 0
    trends = cli("finance", "trends", "--db", db, "--by", "topic", "--bucket", "1d", "--json",
                 "--csv", str(tmp_path / "t.csv"), "--chart", str(tmp_path / "t.png"))  # fmt: skip
    assert trends.exit_code == 0, trends.output
    rows = json.loads(trends.stdout)
    assert sum(r["count"] for r in rows) == 435  # one topic per sample headline
    assert (tmp_path / "t.csv").is_file() and (tmp_path / "t.png").is_file()
    # A detector that fires on any negative window, to prove the sink and storage path.
    alerts = cli("finance", "alerts", "--db", db, "--prior", "0.01", "--min-volume", "1",
                 "--min-lift", "0.0", "--p-value", "0.5", "--no-explain", "--json",
                 "--sink", f"jsonl:{tmp_path / 'a.jsonl'}")  # fmt: skip
    assert alerts.exit_code == 0, alerts.output
    found = json.loads(alerts.stdout)
    sent = (tmp_path / "a.jsonl").read_text().splitlines() if found else []
    assert len(sent) == len(found)
    listed = cli("finance", "alerts", "--db", db, "--list", "--json")
    assert len(json.loads(listed.stdout)) == len(found)


def test_ingest_reads_standard_input(cli, tiny_model, tmp_path):
    lines = "\n".join(
        [
            json.dumps(
                {"id": "s1", "time": "2026-11-02T10:00:00Z", "text": "The bank cut its outlook"}
            ),
            "not json",
        ]
    )
    db = str(tmp_path / "f.sqlite")
    result = cli(
        "finance", "ingest", "-", "--model", str(tiny_model), "--db", db, input=lines + "\n"
    )
    assert result.exit_code == 0, result.output
    assert "1 added" in result.output and "<stdin>:2: skipped" in result.output


def test_trends_on_a_missing_database_is_a_one_line_error(cli, tmp_path):
    result = cli("finance", "trends", "--db", str(tmp_path / "none.sqlite"))
    assert result.exit_code == 2 and "no such database" in result.output


def test_a_bad_naive_zone_is_refused_before_the_model_loads(cli, tmp_path):
    result = cli("finance", "ingest", "-", "--model", str(tmp_path / "nomodel"), "--db",
                 str(tmp_path / "f.sqlite"), "--naive-tz", "Nowhere/Land")  # fmt: skip
    assert result.exit_code == 2 and "Nowhere/Land" in result.output


@pytest.mark.slow
def test_train_fine_tunes_a_sentiment_model_that_score_can_use(cli, tmp_path):
    from tunesmith.testing import make_tiny_base_model, write_csv

    rows = [["shares plunge on losses", "negative"], ["profit beats estimates", "positive"],
            ["results due on thursday", "neutral"]] * 8  # fmt: skip
    data = write_csv(tmp_path / "train.csv", rows)
    base = make_tiny_base_model(tmp_path / "base", [r[0] for r in rows])
    out = tmp_path / "sentiment"
    result = cli("finance", "train", "--data", str(data), "--out", str(out), "--model", str(base),
                 "--epochs", "1", "--strategy", "head", "--head-init", "random")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((out / "run_config.json").read_text())["head_init"] == "random"
    scored = cli("finance", "score", "--model", str(out), "--json", "--text", "shares plunge")
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout.strip().splitlines()[-1])["label"] in {
        "negative",
        "neutral",
        "positive",
    }


def test_a_topic_model_adds_its_topics_at_ingest(cli, tiny_model, tmp_path):
    from tunesmith.testing import make_tiny_trained_classifier

    texts = ["oil output rises", "oil prices drop", "bank deposits fall", "bank lending grows"]
    topics = make_tiny_trained_classifier(
        tmp_path / "topics", ["energy", "banking"], texts, [0, 0, 1, 1]
    )
    stream = tmp_path / "s.jsonl"
    stream.write_text(
        json.dumps({"id": "1", "time": "2026-11-02T10:00:00Z", "text": "oil output rises"}) + "\n"
    )
    db = str(tmp_path / "f.sqlite")
    result = cli("finance", "ingest", str(stream), "--model", str(tiny_model), "--db", db,
                 "--topic-model", str(topics), "--topic-threshold", "0.0")  # fmt: skip
    assert result.exit_code == 0, result.output
    from tunesmith_finance.storage import open_store

    store = open_store(db)
    keys = [r["key"] for r in store.query("SELECT key FROM finance_keys WHERE kind = 'topic'")]
    store.close()
    assert len(keys) == 1 and keys[0] in {"energy", "banking"}  # threshold 0: always one topic
