"""Follow-ups of a review of the engine and the data readers, each found by using them as a user
would: whole-number labels ordered as text, a ``;``-separated CSV, missing-value spellings,
``predict --data -``, the progress line's loss, ``freeze:K`` checks, LoRA flags without LoRA,
swapped text and label columns, and peft imported on every model load."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest

from tunesmith.errors import DataError, UserInputError
from tunesmith.testing import write_csv

WORDS = ["card", "refund", "late", "login", "app", "order", "price", "money"]


def _error_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("Error:")]


# -- 1. whole-number labels are ordered by number ---------------------------------------------


def test_whole_number_labels_are_ordered_by_number_and_other_labels_by_text():
    from tunesmith.data.records import sort_labels

    assert sort_labels([str(i) for i in range(12)][::-1]) == [str(i) for i in range(12)]
    assert sort_labels(["-1", "1", "0"]) == ["-1", "0", "1"]
    # One name that is not a whole number: the whole set is ordered as text.
    assert sort_labels(["10", "2", "b"]) == ["10", "2", "b"]
    assert sort_labels(["LABEL_10", "LABEL_2"]) == ["LABEL_10", "LABEL_2"]


def test_a_file_with_classlabel_numbers_gives_the_label_names_in_numeric_order(tmp_path):
    from tunesmith.data.load import load_text_dataset

    rows = [[f"{WORDS[i % 8]} text {i}", str(i)] for i in range(12)] * 2
    data = load_text_dataset(write_csv(tmp_path / "train.csv", rows))
    assert data.label_names == [str(i) for i in range(12)]
    # --clean and added examples keep the order.
    from tunesmith.data.cleaning import apply_safe_fixes

    assert apply_safe_fixes(data)[0].label_names == [str(i) for i in range(12)]
    assert data.extended(["x"], [["3"]]).label_names == [str(i) for i in range(12)]
    # The cleaning report's counts list equal counts in the same order.
    assert list(data.label_counts()) == [str(i) for i in range(12)]


def test_a_trained_model_with_numeric_labels_has_output_index_i_for_class_i(
    tmp_path, one_torch_thread
):
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.train import train
    from tunesmith.testing import make_tiny_base_model

    rows = [[f"{word} {i} please", str(i)] for i in range(12) for word in WORDS[:3]]
    data = write_csv(tmp_path / "train.csv", rows)
    base = make_tiny_base_model(tmp_path / "base", [t for t, _ in rows])
    out = tmp_path / "model"
    train(RunConfig(data=str(data), out=str(out), model=str(base), strategy="head",
                    epochs=1.0, eval_fraction=0.0, nearest="off"),
          log=lambda _m: None)  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    # An ONNX or raw-transformers user reads argmax index i as class i.
    assert config["id2label"] == {str(i): str(i) for i in range(12)}


def test_a_model_trained_with_numbers_ordered_as_text_still_predicts_and_evaluates_right(
    tmp_path,
):
    from tunesmith.data.load import load_text_dataset
    from tunesmith.engine.evaluate import evaluate_model
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_texts
    from tunesmith.testing import make_tiny_trained_classifier

    old_order = ["1", "10", "2"]  # how such a model was trained before
    texts = ["card please", "refund please", "late order"]
    model_dir = make_tiny_trained_classifier(tmp_path / "old", old_order, texts, [0, 1, 2])
    loaded = load_model(model_dir)
    assert [r["label"] for r in predict_texts(loaded, texts)] == old_order
    data = load_text_dataset(write_csv(tmp_path / "e.csv", zip(texts, old_order, strict=True)))
    assert data.label_names == ["1", "2", "10"]  # the file's order now differs from the model's
    assert evaluate_model(loaded, data)["accuracy"] == 1.0


def _member(where: Path, run, labels: list[str]) -> None:
    from tunesmith.io import file_sha256

    where.mkdir(parents=True)
    (where / "config.json").write_text("{}")
    stored = run.to_dict()
    stored["resolved"] = {"task": "classification", "labels": labels,
                          "data_sha256": file_sha256(run.data)}  # fmt: skip
    (where / "run_config.json").write_text(json.dumps(stored))


def test_an_ensemble_does_not_reuse_a_member_trained_with_numbers_ordered_as_text(tmp_path):
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.ensemble import same_run

    data = write_csv(tmp_path / "train.csv", [["a", "1"], ["b", "2"], ["c", "10"]])
    run = RunConfig(data=str(data), out=str(tmp_path / "m"))
    _member(tmp_path / "old", run, ["1", "10", "2"])
    _member(tmp_path / "new", run, ["1", "2", "10"])
    # A member trained now orders them by number: the old one would not share its labels.
    assert not same_run(tmp_path / "old", run)
    assert same_run(tmp_path / "new", run)


def test_ensemble_members_with_labels_in_another_order_are_refused_saying_so(tmp_path):
    from tunesmith.engine.ensemble import MEMBERS_FILE, load_ensemble
    from tunesmith.testing import make_tiny_classifier

    first = make_tiny_classifier(tmp_path / "m", ["1", "10", "2"], WORDS)
    make_tiny_classifier(first / "members" / "seed43", ["1", "2", "10"], WORDS)
    (first / MEMBERS_FILE).write_text(json.dumps({"members": ["members/seed43"]}))
    with pytest.raises(UserInputError, match="in another order .* train the ensemble again"):
        load_ensemble(first)


def test_a_lexical_refit_follows_the_label_order_the_model_was_trained_with(
    tmp_path, one_torch_thread, monkeypatch
):
    import dataclasses

    from tunesmith.data import load
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.lexical import LexicalModel
    from tunesmith.engine.lexical_refit import refit_lexical
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.train import train
    from tunesmith.testing import make_tiny_base_model

    rows = [[f"{word} {i} please", str(i)] for i in (1, 2, 10) for word in WORDS]
    data = write_csv(tmp_path / "train.csv", rows)
    base = make_tiny_base_model(tmp_path / "base", [t for t, _ in rows])
    out = tmp_path / "model"
    run = RunConfig(data=str(data), out=str(out), model=str(base), strategy="head", epochs=1.0,
                    eval_fraction=0.0, nearest="off", lexical=0.3)  # fmt: skip
    with monkeypatch.context() as old_version:  # labels ordered as text, as before
        old_version.setattr(load, "sort_labels", lambda names: sorted(set(names)))
        train(run, log=lambda _m: None)
    assert load_model(out).labels == ["1", "10", "2"]
    refit_lexical(out, dataclasses.replace(run, lexical=0.5), log=lambda _m: None)
    assert LexicalModel.load(out).labels == ["1", "10", "2"]


# -- 2. a ';'-separated CSV -----------------------------------------------------------------


def test_a_semicolon_separated_csv_is_read_when_its_header_shows_it(tmp_path):
    from tunesmith.data.load import load_text_dataset

    path = tmp_path / "excel.csv"
    path.write_text('text;label\nhello, world;a\n"one; two";b\n', encoding="utf-8")
    data = load_text_dataset(path)
    assert data.texts == ["hello, world", "one; two"] and data.labels == [["a"], ["b"]]


def test_a_csv_header_mixing_semicolons_and_commas_says_what_to_do(tmp_path):
    from tunesmith.data.load import load_text_dataset

    path = tmp_path / "mixed.csv"
    path.write_text("text;label,source\nhello;a,web\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_text_dataset(path)
    message = str(info.value)
    assert "there is no column 'text'" in message
    assert "looks ';'-separated" in message and "save it with one separator" in message


def test_a_comma_separated_tsv_says_to_rename_it(tmp_path):
    from tunesmith.data.load import read_texts

    path = tmp_path / "texts.tsv"
    path.write_text("text,label\nhello,a\n", encoding="utf-8")
    with pytest.raises(DataError, match="looks comma-separated.*rename it to .csv"):
        read_texts(path)


# -- 3. missing values as pandas reads them ---------------------------------------------------


@pytest.mark.parametrize("cell", ["NA", "null", "NULL", "N/A", "NaN", "None", "#N/A", "<NA>"])
def test_every_pandas_missing_value_spelling_is_a_missing_text(tmp_path, cell):
    from tunesmith.data.load import read_texts

    path = write_csv(tmp_path / "t.csv", [["fine"], [cell]], header=("text",))
    said = re.escape(f":3, column 'text': missing value written as '{cell}' where a text")
    with pytest.raises(DataError, match=said):
        read_texts(path)


def test_a_label_or_text_none_in_lower_case_is_text_as_pandas_reads_it(tmp_path):
    from tunesmith.data.load import load_text_dataset

    path = write_csv(tmp_path / "t.csv", [["none", "none"], ["some", "x"]])
    assert load_text_dataset(path).texts == ["none", "some"]


# -- 4. predict --data - reads standard input ---------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from tunesmith.testing import make_tiny_classifier

    return make_tiny_classifier(tmp_path_factory.mktemp("m") / "model", ["a", "b"], WORDS)


def test_predict_reads_one_text_a_line_from_standard_input(cli, tiny_model):
    result = cli("predict", "--model", str(tiny_model), "--data", "-", "--json",
                 input="late order\n\nmy card\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [r["text"] for r in lines] == ["late order", "my card"]


def test_predict_reads_jsonl_or_csv_from_standard_input_with_format(cli, tiny_model):
    jsonl = '{"body": "late order"}\n{"body": "my card"}\n'
    result = cli("predict", "--model", str(tiny_model), "--data", "-", "--format", "jsonl",
                 "--text-col", "body", "--json", input=jsonl)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.count('"label"') == 2
    result = cli("predict", "--model", str(tiny_model), "--data", "-", "--format", "csv",
                 input="text\nlate order\n\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    bad = cli("predict", "--model", str(tiny_model), "--data", "-", "--format", "jsonl",
              input='{"text": "ok"}\nnot json\n')  # fmt: skip
    assert bad.exit_code == 2 and _error_lines(bad)[0].startswith("Error: <stdin>:2: invalid JSON")


def test_predict_format_without_standard_input_and_empty_input_are_refused(cli, tiny_model):
    data = write_csv(Path(tiny_model).parent / "t.csv", [["x"]], header=("text",))
    result = cli("predict", "--model", str(tiny_model), "--data", str(data), "--format", "csv")
    assert result.exit_code == 2 and "--format goes with --data -" in result.output
    result = cli("predict", "--model", str(tiny_model), "--data", "-", input="\n \n")
    assert _error_lines(result) == ["Error: <stdin>: standard input has no texts"]


def test_evaluate_data_dash_says_standard_input_is_not_read(cli, tiny_model):
    result = cli("evaluate", "--model", str(tiny_model), "--data", "-", input="x\n")
    assert result.exit_code == 2
    assert _error_lines(result) == [
        "Error: <stdin>: '-' (standard input) is not read here; give a data file"
    ]


# -- 5. the progress line says which loss -----------------------------------------------------


def test_the_progress_line_calls_the_evaluation_loss_held_out_and_shows_the_train_loss(
    capsys,
):
    from types import SimpleNamespace

    from tunesmith.engine.progress import make_progress_callback

    callback = make_progress_callback(False, "classification")
    state = SimpleNamespace(epoch=1.0, is_world_process_zero=True)
    callback.on_log(None, state, None, logs={"loss": 0.75, "learning_rate": 1e-4})
    callback.on_evaluate(None, state, None, metrics={"eval_loss": 0.5, "eval_score": 0.9})
    callback.on_evaluate(None, state, None, metrics={"eval_loss": 0.4, "eval_score": 0.95})
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "epoch 1.00: train loss 0.7500, held-out loss 0.5000, held-out accuracy 0.9000",
        "epoch 1.00: held-out loss 0.4000, held-out accuracy 0.9500",  # no stale train loss
    ]


# -- 6. freeze:K checked up front -------------------------------------------------------------


def test_freeze_deeper_than_the_model_is_refused_before_the_data_and_the_probe(
    tmp_path, monkeypatch
):
    from tunesmith.engine import prepare as prepare_module
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.stages import prepare as prepare_stage
    from tunesmith.engine.train import train
    from tunesmith.testing import make_tiny_base_model

    data = write_csv(tmp_path / "train.csv", [["late order", "a"], ["my card", "b"]] * 4)
    base = make_tiny_base_model(tmp_path / "base", WORDS)

    def heavy(*_args, **_kwargs):
        raise AssertionError("the data was prepared before the strategy was checked")

    monkeypatch.setattr(prepare_stage, "prepare_data", heavy)
    monkeypatch.setattr(prepare_module, "prepare_data", heavy)
    run = RunConfig(data=str(data), out=str(tmp_path / "m"), model=str(base), strategy="freeze:99")
    with pytest.raises(UserInputError, match="freeze:99: the model has only 2 layers"):
        train(run, log=lambda _m: None)


def test_freeze_0_is_refused_pointing_to_full():
    from tunesmith.engine.config import RunConfig

    with pytest.raises(UserInputError, match="freeze:0 freezes no layer; use --strategy full"):
        RunConfig(data="x.csv", strategy="freeze:0").validate()


def test_a_built_model_with_fewer_layers_than_freeze_k_is_refused(tmp_path):
    from transformers import AutoModelForSequenceClassification

    from tunesmith.engine.strategies import check_freeze_layers, parse_strategy
    from tunesmith.testing import make_tiny_classifier

    model = AutoModelForSequenceClassification.from_pretrained(
        make_tiny_classifier(tmp_path / "m", ["a", "b"], WORDS)
    )
    check_freeze_layers(model, parse_strategy("freeze:2"))
    with pytest.raises(UserInputError, match="only 2 layers"):
        check_freeze_layers(model, parse_strategy("freeze:3"))


# -- 7. LoRA flags without LoRA ---------------------------------------------------------------


def test_lora_flags_without_strategy_lora_are_refused(cli, tmp_path):
    data = write_csv(tmp_path / "train.csv", [["late order", "a"], ["my card", "b"]] * 4)
    result = cli("train", "--data", str(data), "--out", str(tmp_path / "m"), "--lora-r", "4")
    assert result.exit_code == 2, result.output
    assert _error_lines(result) == [
        "Error: --lora-r goes with --strategy lora, not --strategy full"
    ]
    assert not (tmp_path / "m").exists()


def test_run_config_refuses_lora_settings_with_another_strategy_and_keeps_them_with_lora():
    from tunesmith.engine.config import RunConfig

    with pytest.raises(UserInputError, match="go with --strategy lora, not head"):
        RunConfig(data="x.csv", strategy="head", lora_alpha=32).validate()
    assert RunConfig(data="x.csv", strategy="lora", lora_r=4).lora_r == 4


# -- 8. swapped --text-col and --label-col ----------------------------------------------------


def test_swapped_text_and_label_columns_are_refused_before_training(tmp_path):
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.prepare import prepare_data

    classes = ["positive", "negative", "neutral"]
    rows = [[f"tweet number {i} about {WORDS[i % 8]}", classes[i % 3]] for i in range(300)]
    data = write_csv(tmp_path / "tweets.csv", rows)
    run = RunConfig(data=str(data), text_col="label", label_col="text")
    with pytest.raises(DataError) as info:
        prepare_data(run, log=lambda _m: None)
    assert str(info.value) == (
        f"{data}, column 'text': 300 distinct labels but only 3 distinct texts (column 'label'): "
        "are --text-col and --label-col the wrong way round? A label is the class of its row's "
        "text"
    )
    # The right way round trains as before.
    prepare_data(RunConfig(data=str(data)), log=lambda _m: None)


# -- 9. load_model without importing peft ------------------------------------------------------


def test_loading_a_plain_model_does_not_import_peft(tmp_path, monkeypatch):
    from tunesmith.engine.loading import load_model
    from tunesmith.testing import make_tiny_classifier

    model_dir = make_tiny_classifier(tmp_path / "m", ["a", "b"], WORDS)
    # None in sys.modules makes `import peft` fail: the load must not need it.
    monkeypatch.setitem(sys.modules, "peft", None)
    assert load_model(model_dir).labels == ["a", "b"]


def test_read_stdin_refuses_input_past_the_file_limit(monkeypatch):
    from tunesmith.data import readers

    monkeypatch.setattr(readers, "MAX_FILE_BYTES", 10)
    with pytest.raises(DataError, match="<stdin>: standard input is larger than"):
        readers.read_stdin("lines", stream=io.BytesIO(b"x" * 11))
