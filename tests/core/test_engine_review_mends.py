"""Mends from a review of the core engine commands, each found by using them as a user would:
``train --force`` deleting what it should not, private weights, a plain ``.txt`` of texts cut
to first words, two ``Error:`` lines on Ctrl-C, explain's output checks, pair training's
unchecked settings and ``predict --no-calibrate`` on a lexical model."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from lexical_texts import LABELS, TARGETS, TEXTS

from tunesmith.errors import DataError


def _error_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("Error:")]


@pytest.fixture
def training_csv(tmp_path):
    from tunesmith.testing import write_csv

    rows = [[t, label] for t, label in zip(TEXTS, TARGETS, strict=True)] * 6
    (tmp_path / "data").mkdir()
    return write_csv(tmp_path / "data" / "train.csv", rows)


# -- train --force: only a model directory is replaced --------------------------------------


def test_train_force_refuses_an_out_folder_holding_the_data_and_deletes_nothing(
    cli, tmp_path, training_csv
):
    folder = training_csv.parent
    (folder / "notes.txt").write_text("mine")
    result = cli("train", "--data", str(training_csv), "--out", str(folder), "--force")
    assert result.exit_code == 2, result.output
    assert len(_error_lines(result)) == 1
    assert "--data" in result.output and "holds" in result.output
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "train.csv"]


def test_train_force_refuses_to_replace_a_file_with_a_model_folder(cli, tmp_path, training_csv):
    target = tmp_path / "keep.csv"
    target.write_text("text,label\nprecious,a\n")
    result = cli("train", "--data", str(training_csv), "--out", str(target), "--force")
    assert result.exit_code == 2, result.output
    assert _error_lines(result) == [
        f"Error: --out {target} is a file; a model is written as a folder, so give a folder path"
    ]
    assert target.read_text() == "text,label\nprecious,a\n"


def test_pair_training_force_refuses_to_replace_a_file(cli, tmp_path):
    from tunesmith.testing import write_csv

    pairs = write_csv(tmp_path / "pairs.csv", [["q", "a"]] * 4, header=("question", "answer"))
    target = tmp_path / "keep.txt"
    target.write_text("mine")
    result = cli("train", "--task", "pairs", "--data", str(pairs), "--text-col", "question",
                 "--pair-col", "answer", "--out", str(target), "--force")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "is a file" in result.output and target.read_text() == "mine"


@pytest.mark.parametrize(
    ("flag", "value", "said"),
    [("--max-length", "2", "--max-length 2 is not valid"), ("--lr", "5", "--lr 5.0 is not valid")],
)
def test_pair_training_refuses_the_settings_other_train_tasks_refuse(cli, tmp_path, flag, value,
                                                                     said):  # fmt: skip
    from tunesmith.testing import write_csv

    pairs = write_csv(tmp_path / "pairs.csv", [["q", "a"]] * 4, header=("question", "answer"))
    out = tmp_path / "encoder"
    result = cli("train", "--task", "pairs", "--data", str(pairs), "--text-col", "question",
                 "--pair-col", "answer", "--out", str(out), flag, value)  # fmt: skip
    assert result.exit_code == 2, result.output
    assert said in result.output and not out.exists()


# -- the weights are as readable as every other file of the model ---------------------------


def test_saved_weights_get_the_same_permissions_as_the_other_model_files(
    tmp_path, one_torch_thread, training_csv
):
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.train import train
    from tunesmith.testing import make_tiny_base_model

    base = make_tiny_base_model(tmp_path / "base", TEXTS)
    out = tmp_path / "model"
    old = os.umask(0o022)
    try:
        train(RunConfig(data=str(training_csv), out=str(out), model=str(base), strategy="head",
                        epochs=1.0), log=lambda _m: None)  # fmt: skip
    finally:
        os.umask(old)
    weights = stat.S_IMODE((out / "model.safetensors").stat().st_mode)
    assert weights == stat.S_IMODE((out / "config.json").stat().st_mode) == 0o644


# -- .txt files are CoNLL token files: never a text cut to its first word -------------------


def test_a_plain_text_file_is_refused_by_predict_instead_of_labelled_by_first_words(tmp_path):
    from tunesmith.data.load import read_texts

    path = tmp_path / "texts.txt"
    path.write_text("hello there\n\nlost card\n")
    with pytest.raises(DataError) as caught:
        read_texts(path)
    assert caught.value.row == 1 and caught.value.column == "tag"
    assert "'there' is not a tag" in str(caught.value)


def test_a_token_file_still_gives_its_sentences_to_predict(tmp_path):
    from tunesmith.data.load import read_texts

    tagged = tmp_path / "tagged.conll"
    tagged.write_text("Maria\tB-PER\nsmiles\tO\n\nBoston\tB-LOC\n")
    untagged = tmp_path / "untagged.txt"
    untagged.write_text("Maria\nsmiles\n\nBoston\n")
    assert read_texts(tagged) == ["Maria smiles", "Boston"]
    assert read_texts(untagged) == ["Maria smiles", "Boston"]


def test_task_auto_trains_a_txt_token_file_as_ner_like_a_conll_file(tmp_path):
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.prepare import _is_token_task

    for name in ("tags.txt", "tags.conll"):
        path = tmp_path / name
        path.write_text("Maria\tB-PER\nsmiles\tO\n")
        assert _is_token_task(RunConfig(data=str(path)))
    table = tmp_path / "table.csv"
    table.write_text("text,label\na,b\n")
    assert not _is_token_task(RunConfig(data=str(table)))


def test_a_token_file_where_a_table_is_needed_says_so_not_its_inner_fields(tmp_path):
    from tunesmith.data.load import load_text_dataset

    path = tmp_path / "tags.conll"
    path.write_text("Maria\tB-PER\nsmiles\tO\n")
    with pytest.raises(DataError) as caught:
        load_text_dataset(path)
    message = str(caught.value)
    assert "CoNLL token files" in message and "token_rows" not in message


# -- Ctrl-C during train: one Error: line ---------------------------------------------------


def test_ctrl_c_during_train_is_one_error_line_with_exit_130(cli, monkeypatch, training_csv):
    import tunesmith.engine.train as engine_train
    from tunesmith.engine.train import TrainingInterrupted

    def interrupted(run, **_options):
        raise TrainingInterrupted("training interrupted; checkpoints are kept in x.work")

    monkeypatch.setattr(engine_train, "train", interrupted)
    result = cli("train", "--data", str(training_csv), "--out", str(training_csv.parent / "m"))
    assert result.exit_code == 130, result.output
    assert _error_lines(result) == ["Error: interrupted (Ctrl-C)"]
    assert "checkpoints are kept in x.work" in result.output


# -- explain: output paths checked as the docs say ------------------------------------------


@pytest.fixture
def tiny_model(tmp_path):
    from tunesmith.testing import make_tiny_classifier

    return make_tiny_classifier(tmp_path / "model", LABELS, TEXTS)


def test_explain_html_that_is_a_folder_is_refused_as_a_folder_not_as_needing_force(
    cli, tmp_path, tiny_model
):
    folder = tmp_path / "pages"
    folder.mkdir()
    result = cli("explain", "--model", str(tiny_model), "--text", "profit beats", "--html",
                 str(folder))  # fmt: skip
    assert result.exit_code == 2, result.output
    assert _error_lines(result) == [
        f"Error: --html {folder} is a folder; give the path of a file to write"
    ]


def test_explain_refuses_one_file_for_both_out_and_html(cli, tmp_path, tiny_model):
    from tunesmith.testing import write_csv

    data = write_csv(tmp_path / "texts.csv", [[t] for t in TEXTS[:2]], header=("text",))
    target = tmp_path / "explained.jsonl"
    result = cli("explain", "--model", str(tiny_model), "--data", str(data), "--out",
                 str(target), "--html", str(target))  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "--out and --html are both" in result.output and not target.exists()


# -- predict --no-calibrate on a lexical model ----------------------------------------------


def test_predict_no_calibrate_leaves_out_the_lexical_mix_temperature_too(
    tmp_path, one_torch_thread, training_csv
):
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.lexical import mix
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_logits, predict_texts, probabilities
    from tunesmith.engine.train import train
    from tunesmith.testing import make_tiny_base_model

    base = make_tiny_base_model(tmp_path / "base", TEXTS)
    out = tmp_path / "model"
    train(RunConfig(data=str(training_csv), eval_data=str(training_csv), out=str(out),
                    model=str(base), strategy="head", epochs=1.0, lexical=0.4),
          log=lambda _m: None)  # fmt: skip
    loaded = load_model(out)
    lexical = loaded.extra["lexical"]
    lexical.temperature = 2.5  # as a held-out fit may give; the raw mix must not depend on it
    raw = probabilities(loaded, predict_logits(loaded, TEXTS), calibrated=False)
    want = mix(raw, lexical.probabilities(TEXTS), 0.4)
    results = predict_texts(loaded, TEXTS, calibrated=False)
    got = np.array([[r["probabilities"][label] for label in LABELS] for r in results])
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert not any(r["calibrated"] for r in results)


def test_train_force_refuses_a_folder_that_holds_no_model_and_deletes_nothing(cli, tmp_path):
    from tunesmith.testing import write_csv

    data = write_csv(tmp_path / "train.csv", [["a b", "x"], ["c d", "y"]] * 4)
    documents = tmp_path / "Documents"
    documents.mkdir()
    (documents / "thesis.docx").write_text("years of work")
    result = cli("train", "--data", str(data), "--out", str(documents), "--force")
    assert result.exit_code == 2, result.output
    assert "holds no model (thesis.docx)" in result.output
    assert (documents / "thesis.docx").read_text() == "years of work"
