from __future__ import annotations

import json

import numpy as np
import pytest

LABELS = ["negative", "neutral", "positive"]
TEXTS = ["shares plunge on losses", "results due on thursday", "profit beats estimates"]


def _classifier(directory, steps):
    from tunesmith.testing import make_tiny_trained_classifier

    return make_tiny_trained_classifier(directory, LABELS, TEXTS, [0, 1, 2], steps=steps)


def _ensemble(tmp_path):
    """A first member at ``m`` and a second, trained differently, listed in its manifest."""
    from tunesmith.engine.ensemble import MEMBERS_FILE

    first = _classifier(tmp_path / "m", steps=5)
    second = _classifier(first / "members" / "seed43", steps=30)
    (first / MEMBERS_FILE).write_text(json.dumps({"members": ["members/seed43"]}))
    return first, second


def test_default_epochs_are_six_for_full_fine_tuning_from_2000_texts_else_the_engines():
    from tunesmith_finance.training import default_epochs

    assert default_epochs("full", 9543) == 6.0
    assert default_epochs("full", 2000) == 6.0
    assert default_epochs("full", 1999) is None
    assert default_epochs("head", 9543) is None
    assert default_epochs("lora", 9543) is None


def test_an_ensemble_scores_with_the_mean_of_its_members_calibrated_probabilities(tmp_path):
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_logits, probabilities
    from tunesmith_finance.scoring import SentimentModel

    first, second = _ensemble(tmp_path)
    model = SentimentModel.load(first)
    assert model.size == 2
    each = []
    for where in (first, second):
        loaded = load_model(where)
        each.append(probabilities(loaded, predict_logits(loaded, TEXTS)))
    assert not np.allclose(each[0], each[1])  # the members differ, so the mean is a real test
    np.testing.assert_allclose(model.probabilities(TEXTS), (each[0] + each[1]) / 2, atol=1e-6)
    scores = model.score(TEXTS)
    mean = (each[0] + each[1]) / 2
    assert [s.p_negative for s in scores] == pytest.approx(mean[:, 0].tolist(), abs=1e-6)


def test_a_model_without_a_manifest_is_a_single_model(tiny_model):
    from tunesmith_finance.scoring import SentimentModel

    assert SentimentModel.load(tiny_model).size == 1


def test_an_ensemble_member_with_other_labels_is_refused(tmp_path):
    from tunesmith.engine.ensemble import MEMBERS_FILE
    from tunesmith.errors import UserInputError
    from tunesmith.testing import make_tiny_trained_classifier
    from tunesmith_finance.scoring import SentimentModel

    first = _classifier(tmp_path / "m", steps=1)
    make_tiny_trained_classifier(
        first / "members" / "seed43", ["negative", "positive"], TEXTS[::2], [0, 1], steps=1
    )
    (first / MEMBERS_FILE).write_text(json.dumps({"members": ["members/seed43"]}))
    with pytest.raises(UserInputError, match="labels differ"):
        SentimentModel.load(first)


def test_members_with_topics_is_refused(cli, tmp_path):
    from tunesmith.testing import write_csv

    data = write_csv(tmp_path / "t.csv", [["oil output rises", "energy"], ["bank", "banking"]])
    result = cli("finance", "train", "--data", str(data), "--out", str(tmp_path / "m"),
                 "--topics", "--members", "2")  # fmt: skip
    assert result.exit_code == 2
    assert "--members applies to sentiment models" in result.output


@pytest.mark.slow
def test_train_members_2_writes_two_seeds_and_reuse_trains_nothing_again(cli, tmp_path):
    from tunesmith.engine.ensemble import MEMBERS_FILE, read_members
    from tunesmith.testing import make_tiny_base_model, write_csv
    from tunesmith_finance.scoring import SentimentModel
    from tunesmith_finance.training import SentimentRecipe, train_sentiment

    rows = [[t, label] for t, label in zip(TEXTS, LABELS, strict=True)] * 8
    data = write_csv(tmp_path / "train.csv", rows)
    base = make_tiny_base_model(tmp_path / "base", TEXTS)
    out = tmp_path / "ens"
    result = cli("finance", "train", "--data", str(data), "--out", str(out), "--model", str(base),
                 "--epochs", "1", "--strategy", "head", "--members", "2")  # fmt: skip
    assert result.exit_code == 0, result.output
    (member,) = read_members(out)
    assert member == (out / "members" / "seed43").resolve()
    assert json.loads((member / "run_config.json").read_text())["seed"] == 43
    assert json.loads((out / "run_config.json").read_text())["seed"] == 42
    assert SentimentModel.load(out).size == 2

    logged: list[str] = []
    recipe = SentimentRecipe(strategy="head", epochs=1.0, members=2)
    train_sentiment(data, out, recipe, model=str(base), reuse=True, log=logged.append)
    assert sum("reusing" in line for line in logged) == 2, logged
    assert (out / MEMBERS_FILE).is_file()
