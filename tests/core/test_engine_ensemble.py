"""tunesmith.engine.ensemble: seed ensembles are trained member by member, reused when their
settings and data match, listed in a manifest that must stay inside the model directory, and
scored with the mean of their members' calibrated probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tunesmith.engine.ensemble import (
    LEGACY_MEMBERS_FILES,
    MEMBERS_FILE,
    check_members,
    load_ensemble,
    mean_probabilities,
    read_members,
    train_ensemble,
)
from tunesmith.errors import UserInputError

LABELS = ["negative", "neutral", "positive"]
TEXTS = ["shares plunge on losses", "results due on thursday", "profit beats estimates"]


def _classifier(directory, steps, labels=LABELS, texts=TEXTS, targets=(0, 1, 2)):
    from tunesmith.testing import make_tiny_trained_classifier

    return make_tiny_trained_classifier(directory, labels, texts, list(targets), steps=steps)


def _ensemble(tmp_path, manifest=MEMBERS_FILE):
    first = _classifier(tmp_path / "m", steps=5)
    second = _classifier(first / "members" / "seed43", steps=30)
    (first / manifest).write_text(json.dumps({"members": ["members/seed43"]}))
    return first, second


def test_mean_probabilities_is_the_mean_of_the_members_calibrated_probabilities(tmp_path):
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_logits, probabilities

    first, second = _ensemble(tmp_path)
    models = load_ensemble(first)
    assert [m.path for m in models] == [load_model(first).path, load_model(second).path]
    each = [probabilities(m, predict_logits(m, TEXTS)) for m in models]
    assert not np.allclose(each[0], each[1])  # the members differ, so the mean is a real test
    np.testing.assert_allclose(
        mean_probabilities(models, TEXTS), (each[0] + each[1]) / 2, atol=1e-6
    )


def test_a_directory_without_a_manifest_is_an_ensemble_of_one(tmp_path):
    first = _classifier(tmp_path / "m", steps=1)
    assert read_members(first) == [] and len(load_ensemble(first)) == 1


def test_the_older_finance_manifest_is_still_read(tmp_path):
    first, second = _ensemble(tmp_path, manifest=LEGACY_MEMBERS_FILES[0])
    assert read_members(first) == [second.resolve()]


def test_a_manifest_member_outside_the_model_directory_is_refused(tmp_path):
    first = _classifier(tmp_path / "m", steps=1)
    _classifier(tmp_path / "elsewhere", steps=1)
    (first / MEMBERS_FILE).write_text(json.dumps({"members": ["../elsewhere"]}))
    with pytest.raises(UserInputError, match="not a folder in it"):
        read_members(first)
    (first / MEMBERS_FILE).write_text(json.dumps({"members": "members/seed43"}))
    with pytest.raises(UserInputError, match="must be a list of folder names"):
        read_members(first)


def test_members_with_other_labels_are_refused(tmp_path):
    first = _classifier(tmp_path / "m", steps=1)
    _classifier(first / "members" / "seed43", 1, ["negative", "positive"], TEXTS[::2], (0, 1))
    (first / MEMBERS_FILE).write_text(json.dumps({"members": ["members/seed43"]}))
    with pytest.raises(UserInputError, match="labels differ"):
        load_ensemble(first)


def test_sizes_below_one_and_lora_ensembles_are_user_errors():
    check_members(3, "full")
    with pytest.raises(UserInputError, match="--members 0"):
        check_members(0, "full")
    with pytest.raises(UserInputError, match="lora"):
        check_members(2, "lora")


@pytest.mark.slow
def test_train_ensemble_writes_one_seed_per_member_and_reuse_trains_nothing_again(tmp_path):
    from tunesmith.engine.config import RunConfig
    from tunesmith.testing import make_tiny_base_model, write_csv

    rows = [[t, label] for t, label in zip(TEXTS, LABELS, strict=True)] * 8
    data = write_csv(tmp_path / "train.csv", rows)
    base = make_tiny_base_model(tmp_path / "base", TEXTS)
    out = tmp_path / "ens"

    def run():
        return RunConfig(data=str(data), out=str(out), model=str(base), strategy="head",
                         epochs=1.0, seed=42, force=True)  # fmt: skip

    train_ensemble(run(), 2, log=lambda _m: None)
    (member,) = read_members(out)
    assert member == (out / "members" / "seed43").resolve()
    assert json.loads((member / "run_config.json").read_text())["seed"] == 43
    assert json.loads((out / "run_config.json").read_text())["seed"] == 42
    assert len(load_ensemble(out)) == 2

    logged: list[str] = []
    train_ensemble(run(), 2, reuse=True, log=logged.append)
    assert sum("reusing" in line for line in logged) == 2, logged

    # Down to one member, reusing the first: the manifest of the larger ensemble goes.
    train_ensemble(run(), 1, reuse=True, log=logged.append)
    assert not (out / MEMBERS_FILE).exists() and len(load_ensemble(out)) == 1


def test_same_run_compares_every_training_setting_and_reads_missing_ones_as_defaults(tmp_path):
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.ensemble import same_run

    data = tmp_path / "train.csv"
    data.write_text("text,label\nup,positive\ndown,negative\n", encoding="utf-8")
    done = tmp_path / "done"
    done.mkdir()
    (done / "config.json").write_text("{}", encoding="utf-8")

    def run(**changes):
        return RunConfig(data=str(data), out=str(done), epochs=2.0, **changes)

    from tunesmith.io import file_sha256

    stored = run().to_dict()
    stored["resolved"] = {"data_sha256": file_sha256(data)}  # as the prepare stage records it
    (done / "run_config.json").write_text(json.dumps(stored), encoding="utf-8")
    assert same_run(done, run())
    # Where the model goes and how it is logged do not change it ...
    assert same_run(done, run(force=True, tensorboard=True, work_dir=str(tmp_path / "w")))
    # ... nor where it trains; its precision does.
    assert same_run(done, run(device="cpu")) and not same_run(done, run(precision="bf16"))
    # ... every training setting does, not only a listed few.
    assert not same_run(done, run(head_init="random"))
    assert not same_run(done, run(label_smoothing=0.1))
    assert not same_run(done, run(average_epochs=2))
    # A run_config.json older than a setting had that setting's default.
    del stored["layer_decay"]
    (done / "run_config.json").write_text(json.dumps(stored), encoding="utf-8")
    assert same_run(done, run()) and not same_run(done, run(layer_decay=0.8))
    data.write_text("text,label\nup,positive\n", encoding="utf-8")
    assert not same_run(done, run())  # other data under the same path
    del stored["resolved"]["data_sha256"]
    (done / "run_config.json").write_text(json.dumps(stored), encoding="utf-8")
    assert not same_run(done, run())  # trained before the hash was recorded: cannot tell


def _raw_mean(models, texts):
    """The members' uncalibrated softmax probabilities, averaged (computed here, not by the code
    under test)."""
    from tunesmith.engine.predict import predict_logits

    each = []
    for model in models:
        logits = predict_logits(model, texts)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        each.append(exp / exp.sum(axis=1, keepdims=True))
    return sum(each) / len(each), each


def test_predict_on_an_ensemble_directory_gives_the_mean_of_its_members(cli, tmp_path):
    first, _ = _ensemble(tmp_path)
    mean = mean_probabilities(load_ensemble(first), TEXTS)
    args = ["predict", "-m", str(first), "--json"]
    for text in TEXTS:
        args += ["--text", text]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    got = np.asarray([[r["probabilities"][label] for label in LABELS] for r in records])
    np.testing.assert_allclose(got, mean, atol=1e-5)


def test_evaluate_on_an_ensemble_directory_scores_the_mean_of_its_members(cli, tmp_path):
    from tunesmith.engine.metrics import expected_calibration_error

    first, second = _ensemble(tmp_path)
    texts = TEXTS * 2
    data = tmp_path / "eval.csv"
    data.write_text(
        "text,label\n" + "".join(f"{t},{lab}\n" for t, lab in zip(texts, LABELS * 2, strict=True))
    )
    truth = np.asarray([0, 1, 2] * 2)
    raw, each = _raw_mean(load_ensemble(first), texts)
    first_alone = expected_calibration_error(each[0], truth)
    assert abs(first_alone - expected_calibration_error(raw, truth)) > 1e-3  # a real test
    result = cli("evaluate", "-m", str(first), "--data", str(data), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["calibration"]["ece_before"] == pytest.approx(
        expected_calibration_error(raw, truth), abs=1e-5
    )
    assert len(report["ensemble"]["members"]) == 2
    assert report["ensemble"]["members"][1] == str(second.resolve())
