"""Temperature scaling: fitting, honesty (argmax unchanged), ECE falling, the calibrate command."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tunesmith.cli import build_app
from tunesmith.engine.calibration import (
    T_MAX,
    apply_temperature,
    fit_label_temperatures,
    fit_temperature,
    load_calibration,
    save_calibration,
)
from tunesmith.engine.plots import save_reliability_diagram
from tunesmith.errors import DataError
from tunesmith.testing import write_csv

LABELS = ["card", "transfer", "refund"]
KEYWORD_TEXTS = {
    "card": [
        "my card is broken",
        "card lost",
        "where is my new card",
        "the card does not work",
        "I need a new card please",
        "card",
        "my card was stolen",
        "the card is old",
    ],
    "transfer": [
        "transfer money",
        "how do I transfer",
        "the transfer is late",
        "transfer please",
        "a transfer to my bank",
        "transfer",
        "my transfer failed",
        "new transfer",
    ],
    "refund": [
        "refund please",
        "I want a refund",
        "the refund is late",
        "refund my order",
        "where is my refund",
        "refund",
        "a refund for the app",
        "no refund yet",
    ],
}
TEXTS = [t for texts in KEYWORD_TEXTS.values() for t in texts]
TRUE = [LABELS.index(label) for label, texts in KEYWORD_TEXTS.items() for _ in texts]


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_fit_temperature_recovers_the_temperature_that_generated_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, size=(6000, 5))
    p = softmax(logits / 2.5)
    y = np.array([rng.choice(5, p=row) for row in p])
    assert fit_temperature(logits, y) == pytest.approx(2.5, rel=0.08)


def test_fit_temperature_stays_in_bounds_on_degenerate_input():
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=int)) == 1.0
    # Separable, correct data: the NLL keeps falling as T shrinks; that fit is degenerate and
    # sharpening every output to certainty would be wrong, so T stays 1.
    logits = np.array([[5.0, 0.0], [0.0, 5.0]] * 10)
    y = np.array([0, 1] * 10)
    assert fit_temperature(logits, y) == 1.0
    # Always wrong: T grows to the upper bound, probabilities flatten.
    assert fit_temperature(logits, 1 - y) == pytest.approx(T_MAX, rel=1e-3)


def test_label_temperatures_are_fitted_per_label_and_one_for_single_class_columns():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 4, size=(6000, 3))
    Y = (rng.random((6000, 3)) < 1 / (1 + np.exp(-logits / np.array([0.5, 2.0, 1.0])))).astype(int)
    Y[:, 2] = 0  # a label never present in the held-out data
    temps = fit_label_temperatures(logits, Y)
    assert temps[0] == pytest.approx(0.5, rel=0.1)
    assert temps[1] == pytest.approx(2.0, rel=0.1)
    assert temps[2] == 1.0


def test_apply_temperature_divides_all_logits_or_each_column():
    z = np.array([[2.0, 4.0], [6.0, 8.0]])
    np.testing.assert_allclose(apply_temperature(z, 2.0), z / 2)
    np.testing.assert_allclose(apply_temperature(z, [1.0, 4.0]), [[2.0, 1.0], [6.0, 2.0]])
    np.testing.assert_allclose(apply_temperature(z, None), z)


def train_overconfident(directory: Path, scale: float = 20.0) -> Path:
    """A tiny classifier that learned the keywords, its head then multiplied by ``scale``."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tunesmith.testing import make_tiny_classifier

    make_tiny_classifier(directory, LABELS, TEXTS)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForSequenceClassification.from_pretrained(directory)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    target = torch.tensor(TRUE)
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains fastest on one thread
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.eval()  # no dropout: fewer steps
    try:
        for _ in range(80):
            output = model(**batch, labels=target)
            optimizer.zero_grad()
            output.loss.backward()
            optimizer.step()
            if bool((output.logits.argmax(-1) == target).all()) and output.loss.item() < 0.3:
                break
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        model.classifier.weight.mul_(scale)
        model.classifier.bias.mul_(scale)
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def overconfident(tmp_path_factory) -> Path:
    return train_overconfident(tmp_path_factory.mktemp("cal") / "clf")


def noisy_rows(seed: int, n: int = 60, right: float = 0.6) -> list[tuple[str, str]]:
    """Texts whose label is the keyword's only ``right`` of the time: confidence must drop."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        i = int(rng.integers(len(TEXTS)))
        label = LABELS[TRUE[i]] if rng.random() < right else LABELS[int(rng.integers(3))]
        rows.append((TEXTS[i], label))
    return rows


def snapshot(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


def test_over_confident_model_has_lower_ece_on_new_data_after_calibration(overconfident, tmp_path):
    from tunesmith.engine.evaluate import calibrate_model, evaluate_model, load_eval_dataset
    from tunesmith.engine.loading import load_model

    model = tmp_path / "model"
    shutil.copytree(overconfident, model)
    fit_file = write_csv(tmp_path / "fit.csv", noisy_rows(seed=1))
    test_file = write_csv(tmp_path / "test.csv", noisy_rows(seed=2))
    result = calibrate_model(model, fit_file)
    assert result["temperature"] > 1.5  # over-confident: the fitted T softens the logits
    assert result["ece_after"] < result["ece_before"]
    loaded = load_model(model)
    report = evaluate_model(loaded, load_eval_dataset(loaded, test_file), data_path=test_file)
    cal = report["calibration"]
    assert cal["ece_before"] > 0.2
    assert cal["ece_after"] < cal["ece_before"] / 2
    assert cal["nll_after"] < cal["nll_before"]


def test_calibration_never_changes_the_predicted_label(overconfident, tmp_path):
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_texts

    model = tmp_path / "model"
    shutil.copytree(overconfident, model)
    save_calibration(model, {"method": "temperature", "temperature": 7.0})
    loaded = load_model(model)
    assert loaded.temperature == 7.0
    texts = [*TEXTS, "hello there", "money for my card transfer"]
    calibrated = predict_texts(loaded, texts)
    raw = predict_texts(loaded, texts, calibrated=False)
    assert [r["label"] for r in calibrated] == [r["label"] for r in raw]
    assert all(
        c["calibrated"] and not r["calibrated"] for c, r in zip(calibrated, raw, strict=True)
    )
    assert np.mean([c["score"] for c in calibrated]) < np.mean([r["score"] for r in raw])


def test_calibrate_command_rewrites_only_calibration_json(overconfident, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(overconfident, model)
    save_calibration(model, {"method": "temperature", "temperature": 1.0})
    before = snapshot(model)
    data = write_csv(tmp_path / "held_out.csv", noisy_rows(seed=3))
    result = CliRunner().invoke(
        build_app(), ["calibrate", "--model", str(model), "--data", str(data), "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["previous_temperature"] == 1.0
    assert {"temperature", "ece_before", "ece_after", "nll_before", "nll_after", "accuracy"} <= set(
        doc
    )
    after = snapshot(model)
    changed = {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
    assert changed == {"calibration.json"}
    assert load_calibration(model)["temperature"] == pytest.approx(doc["temperature"])
    assert not [p for p in model.iterdir() if p.name.startswith(".")]  # no temp file left


def _ensemble_of(first: Path, second: Path, where: Path) -> Path:
    """A seed ensemble's layout: ``first`` at ``where``, ``second`` in members/seed43."""
    shutil.copytree(first, where)
    shutil.copytree(second, where / "members" / "seed43")
    (where / "ensemble.json").write_text(json.dumps({"members": ["members/seed43"]}))
    return where


def test_calibrate_command_refits_every_member_of_a_seed_ensemble(overconfident, tmp_path):
    """Ensemble scoring averages the members' calibrated probabilities: all are refitted."""
    model = _ensemble_of(overconfident, overconfident, tmp_path / "ensemble")
    member = model / "members" / "seed43"
    for where in (model, member):
        save_calibration(where, {"method": "temperature", "temperature": 1.0})
    data = write_csv(tmp_path / "held_out.csv", noisy_rows(seed=3))
    args = ["calibrate", "--model", str(model), "--data", str(data)]
    result = CliRunner().invoke(build_app(), [*args, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["temperature"] > 1.5 and len(doc["members"]) == 1
    assert load_calibration(member)["temperature"] == pytest.approx(
        doc["members"][0]["temperature"]
    )
    assert load_calibration(member)["temperature"] > 1.5
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    assert "ensemble member" in result.stdout and str(member) in result.stdout


def test_calibrating_an_ensemble_calibrates_the_mean_it_scores_with(overconfident, tmp_path):
    """Each member got its own temperature, but scoring averages them: a sure member and an
    unsure one average to an under-confident mean, which no member's temperature corrects.
    The mean now gets its own temperature on the same data, and predictions apply it."""
    from tunesmith.engine.ensemble import load_ensemble
    from tunesmith.engine.evaluate import calibrate_model, evaluate_model, load_eval_dataset
    from tunesmith.engine.predict import predict_texts
    from tunesmith.testing import make_tiny_classifier

    unsure = make_tiny_classifier(tmp_path / "unsure", LABELS, TEXTS)  # an untrained head
    model = _ensemble_of(overconfident, unsure, tmp_path / "ensemble")
    data = write_csv(tmp_path / "held_out.csv", noisy_rows(seed=3, n=90, right=0.9))
    result = calibrate_model(model, data)
    mean = result["ensemble"]
    assert mean["temperature"] < 1  # the mean of the calibrated members was under-confident
    assert mean["ece_after"] < mean["ece_before"] / 2 and mean["nll_after"] < mean["nll_before"]
    manifest = json.loads((model / "ensemble.json").read_text(encoding="utf-8"))
    assert manifest["members"] == ["members/seed43"]
    assert manifest["calibration"]["temperature"] == pytest.approx(mean["temperature"])
    # As scored: the calibrated mean of the loaded ensemble is the one fitted, on that data.
    loaded, *members = load_ensemble(model)
    dataset = load_eval_dataset(loaded, data)
    report = evaluate_model(loaded, dataset, data_path=data, members=members)
    assert report["calibration"]["ece_after"] == pytest.approx(mean["ece_after"], abs=1e-6)
    assert report["calibration"]["ece_before"] > report["calibration"]["ece_after"]
    # A temperature on the mean keeps every predicted label.
    tempered = predict_texts(loaded, TEXTS, members=members)
    raw_mean = predict_texts(loaded, TEXTS, members=members, calibrated=False)
    assert [r["label"] for r in tempered] == [r["label"] for r in raw_mean]
    # Alone, the first member keeps its own temperature only.
    from tunesmith.engine.loading import load_model

    assert predict_texts(loaded, TEXTS[:3]) == predict_texts(load_model(model), TEXTS[:3])


def test_calibrate_writes_no_member_of_an_ensemble_when_one_cannot_be_calibrated(
    overconfident, tmp_path
):
    from tunesmith.testing import make_tiny_classifier

    other = make_tiny_classifier(tmp_path / "other", ["card", "transfer", "loan"], TEXTS)
    model = _ensemble_of(overconfident, other, tmp_path / "ensemble")
    save_calibration(model, {"method": "temperature", "temperature": 1.0})
    before = snapshot(model)
    data = write_csv(tmp_path / "held_out.csv", noisy_rows(seed=3))
    result = CliRunner().invoke(
        build_app(), ["calibrate", "--model", str(model), "--data", str(data)]
    )
    assert result.exit_code == 2 and "refund" in result.stderr
    assert snapshot(model) == before
    assert not (model / "members" / "seed43" / "calibration.json").exists()


def test_calibrate_says_an_onnx_export_in_the_model_directory_has_the_old_temperature(
    overconfident, tmp_path
):
    """The exported graph holds the temperature; a refit one would silently not reach it."""
    model = tmp_path / "model"
    shutil.copytree(overconfident, model)
    (model / "model.onnx").write_bytes(b"exported before")
    data = write_csv(tmp_path / "held_out.csv", noisy_rows(seed=3))
    result = CliRunner().invoke(
        build_app(), ["calibrate", "--model", str(model), "--data", str(data)]
    )
    assert result.exit_code == 0, result.output
    assert f"{model / 'model.onnx'} holds the previous calibration" in result.stderr
    assert f"tunesmith export --model {model} --force" in result.stderr
    assert (model / "model.onnx").read_bytes() == b"exported before"


def test_calibrate_command_prints_before_and_after_and_writes_a_diagram(overconfident, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(overconfident, model)
    data = write_csv(tmp_path / "held_out.csv", noisy_rows(seed=4))
    plot = tmp_path / "reliability.png"
    result = CliRunner().invoke(
        build_app(),
        ["calibrate", "--model", str(model), "--data", str(data), "--plot", str(plot)],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("temperature ")
    assert "ECE " in result.stdout and "->" in result.stdout
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_calibrate_multilabel_model_fits_one_temperature_per_label(tmp_path):
    from tunesmith.engine.evaluate import calibrate_model
    from tunesmith.engine.loading import load_model
    from tunesmith.testing import make_tiny_classifier

    model = make_tiny_classifier(tmp_path / "ml", LABELS, TEXTS, multilabel=True)
    rows = [(t, "card|refund" if i % 2 else LABELS[TRUE[i]]) for i, t in enumerate(TEXTS)]
    data = write_csv(tmp_path / "ml.csv", rows)
    result = calibrate_model(model, data, label_sep="|")
    assert result["method"] == "per_label_temperature"
    assert len(result["temperatures"]) == 3
    assert load_model(model).temperature == result["temperatures"]


def test_calibrate_rejects_a_token_classifier(tmp_path):
    from tunesmith.testing import make_tiny_tagger

    tagger = make_tiny_tagger(tmp_path / "tagger", ["O", "B-PER", "I-PER"], ["John"])
    data = write_csv(tmp_path / "d.csv", [("John", "O")])
    result = CliRunner().invoke(
        build_app(), ["calibrate", "--model", str(tagger), "--data", str(data)]
    )
    assert result.exit_code == 2
    assert "token classifier" in result.stderr


def test_malformed_calibration_file_is_a_clear_error(overconfident, tmp_path):
    from tunesmith.engine.loading import load_model

    model = tmp_path / "model"
    shutil.copytree(overconfident, model)
    (model / "calibration.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="calibration.json: not valid JSON"):
        load_model(model)


def test_reliability_diagram_draws_before_and_after_panels(tmp_path):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 5, size=(300, 4))
    y = rng.integers(0, 4, 300)
    small = save_reliability_diagram(softmax(logits), y, tmp_path / "one.png")
    both = save_reliability_diagram(
        softmax(logits), y, tmp_path / "two.png", probs_after=softmax(logits / 10)
    )
    from PIL import Image

    assert Image.open(both).size[0] > 1.5 * Image.open(small).size[0]


def test_perfectly_separated_held_out_data_keeps_temperature_one():
    import numpy as np

    from tunesmith.engine.calibration import fit_label_temperatures, fit_temperature

    logits = np.array([[4.0, 0.0], [0.0, 4.0], [5.0, 1.0], [1.0, 6.0]])
    y = np.array([0, 1, 0, 1])
    # Without the guard the NLL would drive T to its lower bound and every output to 1.0.
    assert fit_temperature(logits, y) == 1.0
    assert fit_label_temperatures(logits[:, :1] - 2, (y[:, None] == 0).astype(float)) == [1.0]


def test_a_multilabel_ensemble_mean_gets_a_temperature_per_label_that_keeps_each_label():
    from tunesmith.engine.calibration import fit_mean_calibration, temper_mean

    rng = np.random.default_rng(4)
    z = rng.normal(0, 3, size=(3000, 2))
    Y = (rng.random((3000, 2)) < 1 / (1 + np.exp(-z))).astype(int)
    under = 1 / (1 + np.exp(-z / np.array([3.0, 1.0])))  # label 0's mean is under-confident
    fitted = fit_mean_calibration(under, Y, multilabel=True)
    assert fitted["temperatures"][0] == pytest.approx(1 / 3, rel=0.1)
    assert fitted["temperatures"][1] == pytest.approx(1.0, rel=0.1)
    assert fitted["ece_after"] < fitted["ece_before"]
    tempered = temper_mean(under, fitted["temperatures"], True)
    assert ((tempered > 0.5) == (under > 0.5)).all()


def test_a_kept_temperature_of_one_says_why_instead_of_looking_like_a_no_op():
    from tunesmith.commands.calibrate import _fitted

    assert "separates it perfectly" in _fitted({"temperature": 1.0})
    assert _fitted({"temperature": 0.8123}) == "temperature 0.8123"
