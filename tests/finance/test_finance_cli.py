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


def test_a_failed_first_ingest_leaves_no_empty_database_but_keeps_an_existing_one(
    cli, tiny_model, tmp_path
):
    from tunesmith_finance.storage import open_store

    new = tmp_path / "new.sqlite"
    result = cli("finance", "ingest", "-", "--model", str(tiny_model), "--db", str(new), input="")
    assert result.exit_code == 2 and "empty input" in result.output
    assert list(tmp_path.glob("new.sqlite*")) == []  # an empty file would look like a result
    kept = tmp_path / "kept.sqlite"
    open_store(kept).close()
    result = cli("finance", "ingest", "-", "--model", str(tiny_model), "--db", str(kept), input="")
    assert result.exit_code == 2 and kept.exists()


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
    assert result.exit_code == 2, result.output
    assert "1 added" in result.output and "<stdin>:2: skipped" in result.output


def test_trends_on_a_missing_database_is_a_one_line_error(cli, tmp_path):
    result = cli("finance", "trends", "--db", str(tmp_path / "none.sqlite"))
    assert result.exit_code == 2 and "no such database" in result.output


def test_a_bad_naive_zone_is_refused_before_the_model_loads(cli, tmp_path):
    result = cli("finance", "ingest", "-", "--model", str(tmp_path / "nomodel"), "--db",
                 str(tmp_path / "f.sqlite"), "--naive-tz", "Nowhere/Land")  # fmt: skip
    assert result.exit_code == 2 and "Nowhere/Land" in result.output


@pytest.mark.slow
def test_train_fine_tunes_a_sentiment_model_with_its_lexical_share_that_score_can_use(
    cli, tmp_path
):
    from tunesmith.testing import make_tiny_base_model, write_csv

    rows = [["shares plunge on losses", "negative"], ["profit beats estimates", "positive"],
            ["results due on thursday", "neutral"]] * 8  # fmt: skip
    data = write_csv(tmp_path / "train.csv", rows)
    base = make_tiny_base_model(tmp_path / "base", [r[0] for r in rows])
    out = tmp_path / "sentiment"
    result = cli("finance", "train", "--data", str(data), "--out", str(out), "--model", str(base),
                 "--epochs", "1", "--strategy", "head", "--head-init", "random")  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((out / "run_config.json").read_text())
    assert config["head_init"] == "random"
    # finance train's recipe mixes the core's n-gram model in (0.3, chosen on train: finance.md).
    assert config["lexical"] == 0.3 and (out / "lexical.json").is_file()
    off = tmp_path / "no_lexical"
    result = cli("finance", "train", "--data", str(data), "--out", str(off), "--model", str(base),
                 "--epochs", "1", "--strategy", "head", "--lexical", "0")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((off / "run_config.json").read_text())["lexical"] == 0.0
    assert not (off / "lexical.json").exists()
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


def test_ingest_stores_the_good_rows_and_exits_non_zero_when_rows_are_skipped(
    cli, tiny_model, tmp_path
):
    stream = tmp_path / "s.jsonl"
    good = {"id": "g1", "time": "2026-11-02T10:00:00Z", "text": "The bank cut its outlook"}
    stream.write_text(json.dumps(good) + '\n{"id": "g2", "time": "yesterday", "text": "x"}\n')
    db = str(tmp_path / "f.sqlite")
    result = cli("finance", "ingest", str(stream), "--model", str(tiny_model), "--db", db)
    assert result.exit_code == 2, result.output
    assert (
        "1 added" in result.output
        and f"{stream}:2: skipped: column 'time': unparsable time" in result.output
    )
    assert "Error: 1 row(s) skipped" in result.output
    again = cli("finance", "ingest", str(stream), "--model", str(tiny_model), "--db", db)
    assert again.exit_code == 0, again.output  # resumed after the reported row


def test_a_changed_text_is_warned_once_and_is_not_an_error(cli, tiny_model, tmp_path):
    db = str(tmp_path / "f.sqlite")
    for name, text in (("a", "Helix Bank beats estimates"), ("b", "Helix Bank shares plunge")):
        path = tmp_path / f"{name}.jsonl"
        path.write_text(json.dumps({"id": "c1", "time": "2026-11-02T10:00:00Z", "text": text}))
        result = cli("finance", "ingest", str(path), "--model", str(tiny_model), "--db", db)
        assert result.exit_code == 0, result.output
    assert result.output.count("changed_text (id c1)") == 1
    assert "first stored version is kept" in result.output


def test_a_missing_or_empty_input_is_one_error_line_before_the_model_loads(cli, tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    missing, empty = tmp_path / "none.jsonl", tmp_path / "empty.jsonl"
    expected = {
        missing: f"Error: {missing}: no such file",
        empty: f"Error: {empty}: empty file; no documents",
    }
    for command in ("ingest", "replay"):
        for path, line in expected.items():
            result = cli("finance", command, str(path), "--model", str(tmp_path / "nomodel"),
                         "--db", str(tmp_path / "f.sqlite"))  # fmt: skip
            assert result.exit_code == 2, result.output
            assert result.output.strip().splitlines() == [line]


def test_ingest_of_a_csv_without_a_text_column_names_file_row_and_column(cli, tiny_model, tmp_path):
    path = tmp_path / "notext.csv"
    path.write_text("id,time,body\n1,2026-11-02T10:00:00Z,Helix Bank falls\n")
    result = cli("finance", "ingest", str(path), "--model", str(tiny_model), "--db",
                 str(tmp_path / "f.sqlite"))  # fmt: skip
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"Error: {path}:1, column 'text': no such column (nor headline, title); "
        "the columns are: id, time, body"
    ]


def test_replay_names_the_step_flag_in_its_error(cli, tmp_path):
    stream = tmp_path / "s.jsonl"
    stream.write_text(json.dumps({"id": "1", "time": "2026-11-02T10:00:00Z", "text": "x"}) + "\n")
    result = cli("finance", "replay", str(stream), "--model", str(tmp_path / "m"), "--db",
                 str(tmp_path / "f.sqlite"), "--step", "0")  # fmt: skip
    assert result.exit_code == 2 and "Error: --step '0'" in result.output


def test_alerts_with_a_missing_model_directory_is_an_error_not_a_silent_note(cli, tmp_path):
    from tunesmith_finance.storage import open_store

    open_store(tmp_path / "f.sqlite").close()
    result = cli("finance", "alerts", "--db", str(tmp_path / "f.sqlite"), "--model",
                 str(tmp_path / "nomodel"))  # fmt: skip
    assert result.exit_code == 2 and "nomodel does not exist" in result.output


def test_an_unknown_sink_is_refused_before_any_alert_is_stored(cli, tmp_path):
    from finance_fakes import KeywordModel

    from tunesmith_finance.ingest import Ingester
    from tunesmith_finance.rules import load_rules
    from tunesmith_finance.storage import open_store

    db = tmp_path / "f.sqlite"
    store = open_store(db)
    Ingester(store, KeywordModel(), load_rules(RULES), warn=lambda _m: None).ingest_file(STREAM)
    store.close()
    bad = cli("finance", "alerts", "--db", str(db), "--no-explain", "--sink", "nope:x")
    assert bad.exit_code == 2 and "unknown event sink 'nope'" in bad.output
    sink = tmp_path / "a.jsonl"
    good = cli("finance", "alerts", "--db", str(db), "--no-explain", "--json",
               "--sink", f"jsonl:{sink}")  # fmt: skip
    assert good.exit_code == 0, good.output
    assert len(json.loads(good.stdout)) == len(sink.read_text().splitlines()) >= 1


def test_watch_refuses_a_sink_without_alerts(cli, tmp_path):
    result = cli("finance", "watch", str(tmp_path), "--model", str(tmp_path / "m"), "--db",
                 str(tmp_path / "f.sqlite"), "--sink", "stdout")  # fmt: skip
    assert result.exit_code == 2 and "--sink sends alerts: add --alerts" in result.output


def test_watch_alerts_use_the_detector_flags_of_finance_alerts(cli, tiny_model, tmp_path):
    import shutil

    from tunesmith_finance.alerts import list_alerts
    from tunesmith_finance.storage import open_store

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(STREAM, folder / "stream.jsonl")
    db = tmp_path / "f.sqlite"
    sink = tmp_path / "a.jsonl"
    # A detector that fires on any negative window, grouped by ticker: both differ from the
    # defaults, which watch --alerts used whatever was asked.
    result = cli("finance", "watch", str(folder), "--model", str(tiny_model), "--db", str(db),
                 "--rules", str(RULES), "--once", "--alerts", "--sink", f"jsonl:{sink}",
                 "--by", "ticker", "--prior", "0.01", "--min-volume", "1", "--min-lift", "0.0",
                 "--p-value", "0.5")  # fmt: skip
    assert result.exit_code == 0, result.output
    store = open_store(db)
    try:
        stored = list_alerts(store)
    finally:
        store.close()
    assert stored and {a["kind"] for a in stored} == {"ticker"}
    assert len(sink.read_text().splitlines()) == len(stored)


def test_watch_refuses_a_bad_detector_setting_before_reading_anything(cli, tmp_path):
    result = cli("finance", "watch", str(tmp_path), "--model", str(tmp_path / "m"), "--db",
                 str(tmp_path / "f.sqlite"), "--alerts", "--window", "0")  # fmt: skip
    assert result.exit_code == 2 and "--window must be at least 1" in result.output
    assert not (tmp_path / "f.sqlite").exists()


def test_trends_refuses_a_folder_as_output_and_a_key_with_by_all(cli, tmp_path):
    from tunesmith_finance.storage import open_store

    db = tmp_path / "f.sqlite"
    open_store(db).close()
    for flag in ("--csv", "--chart"):
        result = cli("finance", "trends", "--db", str(db), flag, str(tmp_path))
        assert result.exit_code == 2, result.output
        assert result.output.strip().splitlines() == [
            f"Error: {flag} {tmp_path} is a folder; give the path of a file to write"
        ]
    result = cli("finance", "trends", "--db", str(db), "--by", "all", "--key", "banking")
    assert result.exit_code == 2 and "--key picks a topic or ticker" in result.output


def test_alerts_refuses_a_bad_by_in_one_line_before_loading_a_model(cli, tmp_path):
    from tunesmith_finance.storage import open_store

    db = tmp_path / "f.sqlite"
    open_store(db).close()
    result = cli("finance", "alerts", "--db", str(db), "--by", "sector")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: --by 'sector': expected one of topic, ticker, all"
    ]


def test_watch_of_a_missing_folder_is_refused_before_a_database_is_created(cli, tmp_path):
    result = cli("finance", "watch", str(tmp_path / "nowhere"), "--model", str(tmp_path / "m"),
                 "--db", str(tmp_path / "f.sqlite"), "--once")  # fmt: skip
    assert result.exit_code == 2 and "nowhere: no such folder" in result.output
    assert not (tmp_path / "f.sqlite").exists()


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["trends", "--db", "f.sqlite", "--top", "0"], "--top"),  # [:0] drew a chart of nothing
        (["alerts", "--db", "f.sqlite", "--max-explain", "-1"], "--max-explain"),  # [:-1]
        (["alerts", "--db", "f.sqlite", "--prior", "2"], "--prior"),
        (["replay", "s.jsonl", "--model", "m", "--db", "f.sqlite", "--prior", "-0.1"], "--prior"),
        (["replay", "s.jsonl", "--model", "m", "--db", "f.sqlite", "--speed", "-1"], "--speed"),
        (
            ["ingest", "s.jsonl", "--model", "m", "--db", "f.sqlite", "--topic-threshold", "3"],
            "--topic-threshold",
        ),  # fmt: skip
        (
            ["ingest", "s.jsonl", "--model", "m", "--db", "f.sqlite", "--timeout", "-1"],
            "--timeout",
        ),  # fmt: skip
    ],
)
def test_a_number_out_of_range_is_refused_naming_its_flag(cli, args, flag):
    result = cli("finance", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: Invalid value for '{flag}'"), result.stderr


def test_ingest_with_a_bad_batch_size_leaves_no_database_behind(cli, tiny_model, tmp_path):
    db = tmp_path / "f.sqlite"
    result = cli("finance", "ingest", str(STREAM), "--model", str(tiny_model), "--db", str(db),
                 "--batch-size", "0")  # fmt: skip
    assert result.exit_code == 2 and "--batch-size" in result.stderr
    assert not db.exists()


def test_score_takes_its_file_as_data_and_its_model_as_m_like_the_core_commands(
    cli, tiny_model, tmp_path
):
    from tunesmith.testing import write_csv

    data = write_csv(tmp_path / "t.csv", [["Helix Bank shares plunge"]], header=("text",))
    result = cli("finance", "score", "-m", str(tiny_model), "--data", str(data), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["text"] == "Helix Bank shares plunge"


def test_alerts_refuses_a_stdout_sink_with_json_before_any_work(cli, tmp_path):
    # Each alert event's JSON line came before the JSON list on stdout: no longer one document.
    db = tmp_path / "none.sqlite"
    result = cli("finance", "alerts", "--db", str(db), "--sink", "stdout", "--json")
    assert result.exit_code == 2
    assert "--sink stdout cannot be combined with --json" in result.output
    assert not db.exists()


def test_ingest_json_points_skipped_rows_to_the_report_not_above(cli, tiny_model, tmp_path):
    # With --json the skipped rows are in the report on stdout; nothing is "listed above".
    stream = tmp_path / "s.jsonl"
    good = {"id": "g1", "time": "2026-11-02T10:00:00Z", "text": "The bank cut its outlook"}
    stream.write_text(json.dumps(good) + '\n{"id": "g2", "time": "yesterday", "text": "x"}\n')
    db = str(tmp_path / "f.sqlite")
    result = cli("finance", "ingest", str(stream), "-m", str(tiny_model), "--db", db, "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["issues"][0]["line"] == 2
    assert "listed in the JSON report's issues" in result.stderr


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--min-volume", "-1", "--min-volume must be at least 1 document"),
        ("--min-lift", "-1", "--min-lift must be a share from 0 below 1"),
        ("--p-value", "2", "--p-value must be between 0 and 1"),
    ],
)
def test_alert_settings_out_of_range_are_refused_naming_the_flag(
    cli, tmp_path, flag, value, message
):
    from tunesmith_finance.storage import open_store

    db = tmp_path / "f.sqlite"
    open_store(db).close()
    result = cli("finance", "alerts", "--db", str(db), flag, value)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
