"""Evaluation metrics against hand-computed cases, plots, and the ``evaluate`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tunesmith.cli import build_app
from tunesmith.engine.metrics import (
    classification_report,
    expected_calibration_error,
    ner_report,
    to_strict_bio,
)
from tunesmith.engine.plots import save_confusion_matrix_png
from tunesmith.testing import write_csv

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_classification_report_matches_a_hand_computed_case():
    # true: a a b c ; predicted: a b b a
    y = np.array([0, 0, 1, 2])
    probs = np.array([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.5, 0.3, 0.2]])
    report = classification_report(y, probs, ["a", "b", "c"])
    assert report["accuracy"] == pytest.approx(0.5)
    # a: P 1/2 R 1/2 F 1/2; b: P 1/2 R 1 F 2/3; c: 0.
    assert report["per_label"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert report["per_label"]["b"]["f1"] == pytest.approx(2 / 3, abs=1e-6)
    assert report["per_label"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert report["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0) / 3, abs=1e-6)
    assert report["weighted_f1"] == pytest.approx((2 * 0.5 + 2 / 3) / 4, abs=1e-6)
    assert report["confusion_matrix"] == {
        "labels": ["a", "b", "c"],
        "matrix": [[1, 1, 0], [0, 1, 0], [1, 0, 0]],
    }
    expected_nll = -np.mean(np.log([0.8, 0.3, 0.7, 0.2]))  # p(true label)
    assert report["nll"] == pytest.approx(expected_nll, abs=1e-6)


def test_ece_is_the_weighted_gap_between_confidence_and_accuracy():
    # Two texts at confidence 0.9, one right one wrong: |0.5 - 0.9| = 0.4.
    probs = np.array([[0.9, 0.1], [0.9, 0.1]])
    assert expected_calibration_error(probs, np.array([0, 1])) == pytest.approx(0.4)
    # Perfectly calibrated bins give zero.
    probs = np.array([[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]])
    assert expected_calibration_error(probs, np.array([0, 1, 0])) == pytest.approx(0.0)


def test_ece_uses_fifteen_equal_width_bins():
    # 0.60 and 0.65 fall in different bins of width 1/15 (0.600-0.667 vs. 0.533-0.600).
    probs = np.array([[0.60, 0.40], [0.65, 0.35]])
    y = np.array([0, 1])
    # Separate bins: |1 - 0.60| / 2 + |0 - 0.65| / 2 = 0.525; one bin would give 0.125.
    assert expected_calibration_error(probs, y) == pytest.approx(0.525)
    assert expected_calibration_error(probs, y, n_bins=1) == pytest.approx(0.125)


def test_multilabel_report_has_subset_accuracy_micro_macro_and_per_label_ece():
    Y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    probs = np.array([[0.9, 0.2, 0.8], [0.1, 0.7, 0.6], [0.8, 0.4, 0.1]])
    report = classification_report(Y, probs, ["x", "y", "z"], multilabel=True)
    # rows: exact, one extra z, y missed -> subset accuracy 1/3
    assert report["subset_accuracy"] == pytest.approx(1 / 3, abs=1e-6)
    # x: tp 2; y: tp 1, fn 1; z: tp 1, fp 1 -> micro precision 4/5, recall 4/5
    assert report["micro_f1"] == pytest.approx(0.8, abs=1e-6)
    assert report["per_label"]["y"]["recall"] == pytest.approx(0.5)
    assert report["per_label"]["z"]["precision"] == pytest.approx(0.5)
    assert "ece" in report["per_label"]["x"]
    per_label_ece = np.mean([report["per_label"][k]["ece"] for k in "xyz"])
    assert report["ece"] == pytest.approx(per_label_ece, abs=1e-5)
    assert "confusion_matrix" not in report


def test_ner_report_per_type_matches_a_hand_computed_case():
    gold = [["B-PER", "I-PER", "O", "B-ORG"], ["B-LOC", "O", "B-PER"]]
    # ORG predicted as LOC (a type error), and LOC one word too long (a boundary error).
    pred = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "I-LOC", "B-PER"]]
    report = ner_report(gold, pred)
    # PER: 2 gold, 2 right -> 1/1/1. ORG: 1 gold, 0 predicted. LOC: 1 gold, 2 predicted, 0 right.
    assert report["per_type"]["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert report["per_type"]["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert report["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    # micro: 2 right of 4 predicted and 4 gold.
    assert report["micro"]["precision"] == pytest.approx(0.5)
    assert report["micro"]["recall"] == pytest.approx(0.5)
    assert report["f1"] == pytest.approx(0.5)
    assert report["macro"]["f1"] == pytest.approx(1 / 3, abs=1e-6)


def test_io_tags_start_an_entity_at_each_change_of_type():
    assert to_strict_bio(["I-PER", "I-PER", "I-ORG", "O", "I-ORG"]) == [
        "B-PER",
        "I-PER",
        "B-ORG",
        "O",
        "B-ORG",
    ]
    gold = [["I-PER", "I-PER", "I-ORG"]]
    report = ner_report(gold, [["I-PER", "I-ORG", "I-ORG"]], scheme="IO")
    assert report["scheme"] == "IO"
    assert report["per_type"]["PER"]["recall"] == 0.0  # PER span is one word short
    assert report["per_type"]["ORG"]["support"] == 1
    assert report["per_type"]["ORG"]["precision"] == 0.0  # ORG span starts a word early


def test_ner_report_with_no_entities_anywhere_is_all_zero():
    report = ner_report([["O", "O"]], [["O", "O"]])
    assert report["f1"] == 0.0
    assert report["per_type"] == {}
    assert report["token_accuracy"] == 1.0


def test_confusion_matrix_png_is_written_for_77_labels(tmp_path):
    labels = [f"intent_number_{i}" for i in range(77)]
    rng = np.random.default_rng(0)
    y = rng.integers(0, 77, 400)
    probs = rng.dirichlet(np.ones(77), 400)
    report = classification_report(y, probs, labels)
    path = save_confusion_matrix_png(report, tmp_path / "plots" / "cm.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    from PIL import Image

    width, height = Image.open(path).size
    assert width > 1500 and height > 1500  # big enough for 77 readable tick labels
    assert not list((tmp_path / "plots").glob(".*"))  # no temporary file left behind


# --- the evaluate command -------------------------------------------------------------------

LABELS = ["card", "transfer", "refund"]
TEXTS = [
    "my card is broken",
    "transfer money",
    "refund please",
    "the card is late",
    "how do I transfer",
    "I want a refund",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from tunesmith.testing import make_tiny_classifier

    return make_tiny_classifier(tmp_path_factory.mktemp("m") / "clf", LABELS, TEXTS)


def eval_rows() -> list[tuple[str, str]]:
    return [(t, LABELS[i % 3]) for i, t in enumerate(TEXTS)]


def test_evaluate_json_has_the_report_keys_and_writes_plots(model_dir, tmp_path):
    data = write_csv(tmp_path / "eval.csv", eval_rows())
    plots = tmp_path / "plots"
    result = CliRunner().invoke(
        build_app(),
        [
            "evaluate",
            "--model",
            str(model_dir),
            "--data",
            str(data),
            "--json",
            "--plot",
            str(plots),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for key in (
        "accuracy",
        "macro_f1",
        "weighted_f1",
        "per_label",
        "confusion_matrix",
        "ece",
        "nll",
        "calibration",
    ):
        assert key in report
    assert set(report["per_label"]) == set(LABELS)
    assert report["n_examples"] == len(TEXTS)
    assert report["calibration"]["applied"] is False
    assert (plots / "confusion_matrix.png").read_bytes()[:8] == PNG_MAGIC
    assert (plots / "reliability.png").read_bytes()[:8] == PNG_MAGIC


def test_evaluate_with_a_temperature_reports_ece_and_nll_before_and_after(model_dir, tmp_path):
    import shutil

    from tunesmith.engine.calibration import save_calibration

    calibrated = tmp_path / "calibrated"
    shutil.copytree(model_dir, calibrated)
    save_calibration(calibrated, {"method": "temperature", "temperature": 0.5})
    data = write_csv(tmp_path / "eval.csv", eval_rows())
    result = CliRunner().invoke(
        build_app(), ["evaluate", "--model", str(calibrated), "--data", str(data), "--json"]
    )
    assert result.exit_code == 0, result.output
    cal = json.loads(result.stdout)["calibration"]
    assert cal["applied"] is True and cal["temperature"] == 0.5
    for key in ("ece_before", "ece_after", "nll_before", "nll_after"):
        assert isinstance(cal[key], float)
    assert cal["nll_before"] != cal["nll_after"]


def test_evaluate_table_shows_accuracy_and_per_label_rows(model_dir, tmp_path):
    data = write_csv(tmp_path / "eval.csv", eval_rows())
    result = CliRunner().invoke(
        build_app(), ["evaluate", "--model", str(model_dir), "--data", str(data)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("accuracy ")
    assert any(line.startswith("refund ") for line in result.stdout.splitlines())


def test_unknown_eval_label_is_one_error_naming_file_row_column_and_label(model_dir, tmp_path):
    rows = eval_rows()
    rows[3] = ("what is my balance", "balance")
    data = write_csv(tmp_path / "eval.csv", rows)
    result = CliRunner().invoke(
        build_app(), ["evaluate", "--model", str(model_dir), "--data", str(data)]
    )
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert "\n" not in message
    assert message.startswith(f"Error: {data}:5, column 'label'")
    assert "'balance'" in message


def test_evaluate_ner_model_reports_strict_entity_scores_per_type(tmp_path):
    from tunesmith.testing import make_tiny_tagger

    tags = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG"]
    tagger = make_tiny_tagger(tmp_path / "tagger", tags, ["John Smith works at Acme"])
    conll = tmp_path / "eval.conll"
    conll.write_text(
        "John\tB-PER\nSmith\tI-PER\nworks\tO\nat\tO\nAcme\tB-ORG\n\nAcme\tB-ORG\nhired\tO\n"
        "John\tB-PER\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        build_app(), ["evaluate", "--model", str(tagger), "--data", str(conll), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["task"] == "ner" and report["mode"] == "strict"
    assert report["per_type"]["PER"]["support"] == 2
    assert report["per_type"]["ORG"]["support"] == 2
    assert {"precision", "recall", "f1"} <= set(report["micro"])


def test_checkpoint_selection_scores_ner_by_the_strict_f1_of_metrics_json():
    from tunesmith.engine.held_out_score import score_metrics
    from tunesmith.engine.metrics import strict_entity_f1

    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-LOC", "I-LOC", "O"]]
    pred = [["B-PER", "O", "O", "I-LOC"], ["O", "B-LOC", "I-LOC", "B-PER"]]
    strict = strict_entity_f1(true, pred)
    assert round(strict, 6) == ner_report(true, pred)["f1"] and 0 < strict < 1
    index = {tag: i for i, tag in enumerate(labels)}
    logits = np.full((2, 4, len(labels)), -5.0)
    for s, row in enumerate(pred):
        for t, tag in enumerate(row):
            logits[s, t, index[tag]] = 5.0
    truth = np.array([[index[t] for t in row] for row in true])

    class Prediction:
        predictions, label_ids = logits, truth

    assert score_metrics("ner", labels)(Prediction())["score"] == strict
