"""An analyst's own topic classifier: trained with `finance train --topics` (one topic or several
per text), loaded only when new documents need topics, and used by ingest, watch and replay."""

from __future__ import annotations

import json

import pytest

TEXTS = ["oil output rises", "oil prices drop", "bank deposits fall", "bank lending grows"]


@pytest.fixture(scope="module")
def topic_model(tmp_path_factory):
    from tunesmith.testing import make_tiny_trained_classifier

    return make_tiny_trained_classifier(
        tmp_path_factory.mktemp("topics"), ["energy", "banking"], TEXTS, [0, 0, 1, 1]
    )


@pytest.fixture
def topic_loads(monkeypatch):
    """The paths ``TopicModel.load`` is asked for from now on (the loads still happen)."""
    from tunesmith_finance.scoring import TopicModel

    asked: list[str] = []
    original = TopicModel.load

    def counted(cls, path, **kwargs):
        asked.append(str(path))
        return original(path, **kwargs)

    monkeypatch.setattr(TopicModel, "load", classmethod(counted))
    return asked


def _stream(path, n=3):
    rows = [
        {"id": f"d{i}", "time": f"2026-11-02T1{i}:00:00Z", "text": TEXTS[i % 4]} for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _topics(db):
    from tunesmith_finance.storage import open_store

    store = open_store(db)
    try:
        return [r["key"] for r in store.query("SELECT key FROM finance_keys WHERE kind = 'topic'")]
    finally:
        store.close()


def test_ingest_run_again_over_stored_rows_loads_no_topic_model(
    cli, tiny_model, topic_model, tmp_path, topic_loads
):
    stream, db = _stream(tmp_path / "s.jsonl"), str(tmp_path / "f.sqlite")
    args = ("finance", "ingest", str(stream), "--model", str(tiny_model), "--db", db,
            "--topic-model", str(topic_model), "--topic-threshold", "0")  # fmt: skip
    first = cli(*args)
    assert first.exit_code == 0, first.output
    assert topic_loads == [str(topic_model)] and len(_topics(db)) == 3
    again = cli(*args)
    assert again.exit_code == 0, again.output
    assert "0 rows read" in again.output
    assert topic_loads == [str(topic_model)]  # nothing new: loaded up front, it cost seconds


def test_watch_takes_a_topic_model_and_a_pass_with_no_new_line_loads_none(
    cli, tiny_model, topic_model, tmp_path, topic_loads
):
    folder = tmp_path / "feed"
    folder.mkdir()
    _stream(folder / "s.jsonl")
    db = str(tmp_path / "f.sqlite")
    args = ("finance", "watch", str(folder), "--model", str(tiny_model), "--db", db, "--once",
            "--topic-model", str(topic_model), "--topic-threshold", "0")  # fmt: skip
    first = cli(*args)
    assert first.exit_code == 0, first.output
    assert len(_topics(db)) == 3 and topic_loads == [str(topic_model)]
    again = cli(*args)
    assert again.exit_code == 0, again.output
    assert topic_loads == [str(topic_model)]


def test_a_missing_topic_model_is_refused_before_any_work(cli, tiny_model, tmp_path):
    stream, db = _stream(tmp_path / "s.jsonl"), tmp_path / "f.sqlite"
    for command in ("ingest", "replay"):
        result = cli("finance", command, str(stream), "--model", str(tiny_model), "--db",
                     str(db), "--topic-model", str(tmp_path / "notopics"))  # fmt: skip
        assert result.exit_code != 0
        assert "--topic-model" in result.output and "notopics does not exist" in result.output
        assert "Traceback" not in result.output and not db.exists()


def test_replay_gives_documents_the_topic_models_topics(cli, tiny_model, topic_model, tmp_path):
    stream, db = _stream(tmp_path / "s.jsonl"), str(tmp_path / "f.sqlite")
    result = cli("finance", "replay", str(stream), "--model", str(tiny_model), "--db", db,
                 "--no-explain", "--topic-model", str(topic_model), "--topic-threshold", "0")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert set(_topics(db)) <= {"energy", "banking"} and len(_topics(db)) == 3


def test_a_multi_label_topic_model_follows_the_topic_threshold(tmp_path):
    from tunesmith.testing import make_tiny_classifier
    from tunesmith_finance.scoring import TopicModel

    path = make_tiny_classifier(tmp_path / "multi", ["energy", "banking", "macro"], TEXTS,
                                multilabel=True)  # fmt: skip
    # Untrained: every probability is near 0.5, so the engine's fixed 0.5 cut gave some labels
    # whatever --topic-threshold said.
    everything = TopicModel.load(path, threshold=0.0).topics(TEXTS[:2])
    assert [sorted(t) for t in everything] == [["banking", "energy", "macro"]] * 2
    assert TopicModel.load(path, threshold=0.99).topics(TEXTS[:2]) == [[], []]


def test_a_tagger_is_refused_as_a_topic_model_in_one_line(tmp_path):
    from tunesmith.errors import UserInputError
    from tunesmith.testing import make_tiny_tagger
    from tunesmith_finance.scoring import TopicModel

    path = make_tiny_tagger(tmp_path / "ner", ["O", "B-ORG", "I-ORG"], TEXTS)
    with pytest.raises(UserInputError, match="topics need a text classifier"):
        TopicModel.load(path)


def _write_csv(path, header, rows):
    import csv

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_train_topics_with_several_topics_per_text_trains_a_multi_label_model(cli, tmp_path):
    from tunesmith.testing import make_tiny_base_model

    texts = [f"{w} {i}" for i in range(12) for w in ("oil output", "bank rates", "oil bank")]
    labels = ["energy", "banking|macro", "energy|banking"] * 12
    data = _write_csv(tmp_path / "topics.csv", ["text", "topic"], zip(texts, labels, strict=True))
    base = make_tiny_base_model(tmp_path / "base", texts)
    out = tmp_path / "topics"
    # Without the flag the separated cell is one label: "banking|macro" a topic of its own.
    result = cli("finance", "train", "--topics", "--data", str(data), "--label-col", "topic",
                 "--label-sep", "|", "--out", str(out), "--model", str(base), "--epochs", "1",
                 "--strategy", "head")  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((out / "run_config.json").read_text())
    assert config["task"] == "multilabel"
    from tunesmith_finance.scoring import TopicModel

    model = TopicModel.load(out, threshold=0.0)
    assert model.loaded.task == "multilabel"
    assert sorted(model.topics(["oil bank"])[0]) == ["banking", "energy", "macro"]


def test_train_names_topics_when_a_sentiment_file_has_several_labels_per_text(cli, tmp_path):
    rows = [{"text": "oil falls", "label": ["negative", "energy"]}] * 3
    data = tmp_path / "s.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = cli("finance", "train", "--data", str(data), "--out", str(tmp_path / "m"))
    assert result.exit_code != 0
    # It pointed to `--task multilabel`, which finance train has not.
    assert "one label per text" in result.output and "--topics" in result.output
    assert "--task" not in result.output
    sep = cli("finance", "train", "--data", str(data), "--out", str(tmp_path / "m"),
              "--label-sep", "|")  # fmt: skip
    assert sep.exit_code != 0 and "--label-sep goes with --topics" in sep.output


def test_train_topics_refuses_a_json_list_in_a_csv_cell_naming_its_row(cli, tmp_path):
    """docs/finance.md offered "a JSON list" for several topics: in a CSV cell that is text, and
    '["energy", "macro"]' trained a topic of that very name."""
    rows = [("oil output", "energy"), ("oil bank", '["energy", "macro"]')] * 3
    data = _write_csv(tmp_path / "topics.csv", ["text", "topic"], rows)
    result = cli("finance", "train", "--topics", "--data", str(data), "--label-col", "topic",
                 "--out", str(tmp_path / "m"))  # fmt: skip
    assert result.exit_code != 0
    assert "topics.csv:3, column 'topic'" in result.output and "--label-sep" in result.output
    assert not (tmp_path / "m").exists()


def test_the_dashboard_shows_a_scored_text_with_the_topic_models_topics(
    tiny_model, topic_model, tmp_path
):
    from tunesmith_finance import demo
    from tunesmith_finance.scoring import SentimentModel

    board = demo.Dashboard(db=str(tmp_path / "f.sqlite"), topic_model=str(topic_model),
                           topic_threshold=0.0)  # fmt: skip
    board._model = SentimentModel.load(tiny_model)
    _probs, _words, note = board.score("oil output rises")
    # It named only the rules' topics, none of those the analyst's documents are stored with.
    assert f"topics.toml and {topic_model.name}" in note
    assert "energy" in note or "banking" in note


def test_the_dashboard_refuses_a_missing_topic_model_before_it_starts(cli, tmp_path):
    result = cli("finance", "demo", "--topic-model", str(tmp_path / "notopics"), "--port", "0")
    assert result.exit_code != 0 and "notopics does not exist" in result.output


def test_rows_without_a_topic_train_none_of_these_instead_of_being_refused(cli, tmp_path):
    """An analyst's labelled news holds much text about none of their topics: left out, a
    single-label model gave every document one of its topics (96 % of off-topic tweets)."""
    from tunesmith.testing import make_tiny_base_model
    from tunesmith_finance.topic_data import NO_TOPIC

    texts = [f"{w} {i}" for i in range(12) for w in ("oil output", "bank rates", "team wins")]
    topics = ["energy", "banking", ""] * 12
    data = _write_csv(tmp_path / "topics.csv", ["text", "topic"], zip(texts, topics, strict=True))
    base = make_tiny_base_model(tmp_path / "base", texts)
    out = tmp_path / "topics"
    result = cli("finance", "train", "--topics", "--data", str(data), "--label-col", "topic",
                 "--out", str(out), "--model", str(base), "--epochs", "1",
                 "--strategy", "head")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "12 row(s) without a topic" in result.output
    labels = json.loads((out / "config.json").read_text())["id2label"].values()
    assert sorted(labels) == sorted(["banking", "energy", NO_TOPIC])
    assert not list(tmp_path.glob("tunesmith-topics-*"))  # the copy is gone


def test_the_none_label_of_a_topic_model_is_never_a_topic(tmp_path):
    from tunesmith.testing import make_tiny_trained_classifier
    from tunesmith_finance.scoring import TopicModel
    from tunesmith_finance.topic_data import NO_TOPIC

    texts = [*TEXTS, "team wins the cup", "rain all week"]
    path = make_tiny_trained_classifier(
        tmp_path / "t", ["banking", "energy", NO_TOPIC], texts, [1, 1, 0, 0, 2, 2], steps=60
    )
    model = TopicModel.load(path, threshold=0.0)
    assert model.topics(["team wins the cup", "oil output rises"]) == [[], ["energy"]]


def test_train_topics_refuses_the_reserved_none_topic_naming_its_row(cli, tmp_path):
    rows = [("oil output", "energy"), ("bank rates", "__none__"), ("rain", "")] * 3
    data = _write_csv(tmp_path / "topics.csv", ["text", "topic"], rows)
    result = cli("finance", "train", "--topics", "--data", str(data), "--label-col", "topic",
                 "--out", str(tmp_path / "m"))  # fmt: skip
    assert result.exit_code != 0
    assert "topics.csv:3, column 'topic'" in result.output and "reserved" in result.output
    misspelt = cli("finance", "train", "--topics", "--data", str(data), "--label-col", "topc",
                   "--out", str(tmp_path / "m"))  # fmt: skip
    assert misspelt.exit_code != 0 and "no row has a topic" in misspelt.output
