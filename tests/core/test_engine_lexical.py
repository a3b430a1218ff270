"""tunesmith.engine.lexical: the n-gram regression beside a classifier (``--lexical W``) is
fitted on the training texts, stored without pickles, reloaded to the same probabilities, and
mixed with its share into everything that scores texts: predict, evaluate and ensembles."""

from __future__ import annotations

import json

import numpy as np
import pytest
from lexical_texts import LABELS, TARGETS, TEXTS

from tunesmith.engine.lexical import (
    LEXICAL_ARRAYS,
    LEXICAL_FILE,
    LexicalModel,
    mix,
    with_temperature,
)
from tunesmith.errors import ModelNotFoundError, UserInputError


def _tiny_training(tmp_path, rows=None):
    """(training file, tiny base model): ``rows`` or the six texts six times each."""
    from tunesmith.testing import make_tiny_base_model, write_csv

    rows = rows or [[t, label] for t, label in zip(TEXTS, TARGETS, strict=True)] * 6
    return write_csv(tmp_path / "train.csv", rows), make_tiny_base_model(tmp_path / "base", TEXTS)


def test_lexical_probabilities_follow_the_words_of_each_label_and_sum_to_one():
    model = LexicalModel.fit(TEXTS * 3, TARGETS * 3, LABELS, weight=0.3)
    probs = model.probabilities(["losses plunge", "record profit beats", "conference on thursday"])
    assert probs.shape == (3, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert list(probs.argmax(axis=1)) == [0, 2, 1]


def test_a_label_the_regression_never_saw_gets_zero_probability():
    labels = [*LABELS, "unused"]
    probs = LexicalModel.fit(TEXTS, TARGETS, labels, weight=0.5).probabilities(TEXTS)
    assert probs.shape == (6, 4) and np.all(probs[:, 3] == 0)


def test_a_two_label_regression_gives_both_columns():
    model = LexicalModel.fit(TEXTS[:2] + TEXTS[4:], TARGETS[:2] + TARGETS[4:], LABELS, 0.2)
    probs = model.probabilities(["plunge losses", "record revenue jump"])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert probs[0, 0] > probs[0, 2] and probs[1, 2] > probs[1, 0] and np.all(probs[:, 1] == 0)


def test_saved_lexical_model_reloads_to_the_same_probabilities_without_pickles(tmp_path):
    model = LexicalModel.fit(TEXTS, TARGETS, LABELS, weight=0.25)
    model.save(tmp_path)
    spec = json.loads((tmp_path / LEXICAL_FILE).read_text())
    assert spec["weight"] == 0.25 and spec["labels"] == LABELS
    with np.load(tmp_path / LEXICAL_ARRAYS, allow_pickle=False) as arrays:
        assert set(arrays.files) == {"word_idf", "char_idf", "coef", "intercept"}
    again = LexicalModel.load(tmp_path)
    probe = ["new losses reported", "guidance due thursday", "an unseen sentence"]
    np.testing.assert_allclose(again.probabilities(probe), model.probabilities(probe), atol=1e-5)


def test_a_directory_without_a_lexical_model_loads_none_and_a_broken_one_is_a_clear_error(
    tmp_path,
):
    assert LexicalModel.load(tmp_path) is None
    LexicalModel.fit(TEXTS, TARGETS, LABELS, weight=0.25).save(tmp_path)
    (tmp_path / LEXICAL_ARRAYS).write_bytes(b"not an npz file")
    with pytest.raises(ModelNotFoundError, match=r"lexical\.json: the lexical part"):
        LexicalModel.load(tmp_path)


def test_mix_is_a_linear_pool_with_the_given_share():
    a = np.array([[0.8, 0.2]])
    b = np.array([[0.0, 1.0]])
    np.testing.assert_allclose(mix(a, b, 0.25), [[0.6, 0.4]])
    np.testing.assert_allclose(mix(a, b, 0.0), a)


def test_lexical_share_outside_zero_to_one_is_a_user_error(tmp_path):
    from tunesmith.engine.config import RunConfig

    with pytest.raises(UserInputError, match="--lexical"):
        RunConfig(data="x.csv", lexical=1.0).validate()
    with pytest.raises(UserInputError, match="--lexical"):
        RunConfig(data="x.csv", lexical=-0.1).validate()


@pytest.mark.slow
def test_training_with_lexical_stores_it_and_predict_evaluate_and_ensembles_mix_it_in(
    tmp_path, one_torch_thread
):
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.ensemble import load_ensemble, mean_probabilities
    from tunesmith.engine.evaluate import evaluate_model, load_eval_dataset
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_logits, predict_texts, probabilities
    from tunesmith.engine.train import train

    data, base = _tiny_training(tmp_path)
    out = tmp_path / "model"
    run = RunConfig(data=str(data), eval_data=str(data), out=str(out), model=str(base),
                    strategy="head", epochs=1.0, seed=42, lexical=0.4)  # fmt: skip
    train(run, log=lambda _m: None)

    assert (out / LEXICAL_FILE).is_file() and (out / LEXICAL_ARRAYS).is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["lexical"]["weight"] == 0.4
    assert metrics["report"]["accuracy"] == metrics["lexical"]["mixed_accuracy"]
    assert "Lexical model" in (out / "README.md").read_text()

    loaded = load_model(out)
    lexical = loaded.extra["lexical"]
    alone = probabilities(loaded, predict_logits(loaded, TEXTS))
    # The linear pool, then the mix's own temperature (fitted on the held-out data).
    want = with_temperature(0.6 * alone + 0.4 * lexical.probabilities(TEXTS), lexical.temperature)
    got = np.array([[r["probabilities"][label] for label in LABELS] for r in predict_texts(
        loaded, TEXTS)])  # fmt: skip
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(mean_probabilities(load_ensemble(out), TEXTS), want, atol=1e-6)

    report = evaluate_model(loaded, load_eval_dataset(loaded, data))
    truth = [LABELS.index(t) for t in TARGETS] * 6
    assert report["accuracy"] == pytest.approx(
        float(np.mean(np.tile(want, (6, 1)).argmax(axis=1) == truth)), abs=1e-9
    )


@pytest.mark.slow
def test_reusing_a_model_with_only_a_new_lexical_share_refits_it_without_training_again(
    tmp_path, one_torch_thread
):
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.ensemble import train_ensemble
    from tunesmith.engine.loading import load_model

    data, base = _tiny_training(tmp_path)
    out = tmp_path / "model"

    def run(share):
        return RunConfig(data=str(data), eval_data=str(data), out=str(out), model=str(base),
                         strategy="head", epochs=1.0, seed=42, force=True, lexical=share)  # fmt: skip

    train_ensemble(run(0.0), 1, log=lambda _m: None)
    weights = (out / "model.safetensors").stat().st_mtime_ns
    assert not (out / LEXICAL_FILE).exists()

    logged: list[str] = []
    train_ensemble(run(0.4), 1, reuse=True, log=logged.append)
    assert any("new --lexical share" in line for line in logged), logged
    assert (out / "model.safetensors").stat().st_mtime_ns == weights  # not trained again
    assert load_model(out).extra["lexical"].weight == 0.4
    assert json.loads((out / "run_config.json").read_text())["lexical"] == 0.4
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["lexical"]["weight"] == 0.4
    assert metrics["report"]["accuracy"] == metrics["lexical"]["mixed_accuracy"]
    assert "Lexical model" in (out / "README.md").read_text()

    logged.clear()
    train_ensemble(run(0.4), 1, reuse=True, log=logged.append)
    assert any("(same settings)" in line for line in logged), logged

    train_ensemble(run(0.0), 1, reuse=True, log=lambda _m: None)
    assert not (out / LEXICAL_FILE).exists() and "lexical" not in load_model(out).extra
    assert "lexical" not in json.loads((out / "metrics.json").read_text())


@pytest.mark.slow
def test_held_out_texts_carved_from_the_training_file_join_the_lexical_model_after_measuring(
    tmp_path, one_torch_thread
):
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.train import train

    # Each row has its own word, so the saved vocabulary shows which rows the model saw.
    rows = [[f"{TEXTS[i % 6]} row{i}", TARGETS[i % 6]] for i in range(180)]
    data, base = _tiny_training(tmp_path, rows)
    out = tmp_path / "model"
    run = RunConfig(data=str(data), out=str(out), model=str(base), strategy="head",
                    epochs=1.0, seed=42, lexical=0.3)  # fmt: skip
    train(run, log=lambda _m: None)

    metrics = json.loads((out / "metrics.json").read_text())
    held = metrics["lexical"]["held_out_added"]
    assert held == run.resolved.n_eval > 0
    assert metrics["report"]["accuracy"] == metrics["lexical"]["mixed_accuracy"]
    vocabulary = load_model(out).extra["lexical"].word.vocabulary_
    assert all(f"row{i}" in vocabulary for i in range(180))

    # A refit for a new share (a reused ensemble member) joins them the same way.
    from tunesmith.engine.ensemble import train_ensemble

    run = RunConfig(data=str(data), out=str(out), model=str(base), strategy="head",
                    epochs=1.0, seed=42, lexical=0.5, force=True)  # fmt: skip
    train_ensemble(run, 1, reuse=True, log=lambda _m: None)
    refitted = load_model(out).extra["lexical"]
    assert refitted.weight == 0.5 and all(
        f"row{i}" in refitted.word.vocabulary_ for i in range(180)
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["lexical"]["held_out_added"] == held and metrics["lexical"]["weight"] == 0.5


def test_texts_without_word_n_grams_fit_on_characters_alone_and_reload():
    texts, labels = ["1 2", "3 4", "1 2", "3 4"], ["p", "n", "p", "n"]  # one-character words
    model = LexicalModel.fit(texts, labels, ["p", "n"], weight=0.3)
    assert model.word is None and model.char is not None
    assert model.probabilities(["1 2"])[0, 0] > 0.5


def test_texts_without_any_term_or_with_one_label_are_a_clear_error():
    with pytest.raises(UserInputError, match="no word or character n-gram"):
        LexicalModel.fit(["", " "], ["p", "n"], ["p", "n"], weight=0.3)
    with pytest.raises(UserInputError, match="at least two labels"):
        LexicalModel.fit(["a good day", "a fine day"], ["p", "p"], ["p", "n"], weight=0.3)


def test_the_mix_gets_its_own_temperature_that_moves_no_label_and_lowers_held_out_nll(tmp_path):
    from tunesmith.engine.metrics import nll

    model = LexicalModel.fit(TEXTS * 3, TARGETS * 3, LABELS, weight=0.4)
    # An over-confident transformer, wrong on a third of the texts.
    y = np.array([LABELS.index(t) for t in TARGETS] * 3)
    wrong = (y + 1) % 3
    probs = np.full((len(y), 3), 0.005)
    probs[np.arange(len(y)), np.where(np.arange(len(y)) % 3 == 0, wrong, y)] = 0.99
    texts = TEXTS * 3
    plain = model.mix(probs, texts, calibrated=False)
    assert model.temperature == 1.0 and np.allclose(model.mix(probs, texts), plain)
    fitted = model.fit_temperature(probs, texts, y)
    assert fitted != 1.0
    calibrated = model.mix(probs, texts)
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    assert (calibrated.argmax(axis=1) == plain.argmax(axis=1)).all()
    assert nll(calibrated, y) < nll(plain, y)
    model.save(tmp_path)
    assert LexicalModel.load(tmp_path).temperature == pytest.approx(fitted)


@pytest.mark.slow
def test_a_lexical_model_marks_its_directory_so_plain_transformers_refuse_it_until_removed(
    tmp_path, one_torch_thread
):
    from transformers import AutoModelForSequenceClassification

    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.ensemble import train_ensemble
    from tunesmith.engine.loading import load_model

    data, base = _tiny_training(tmp_path)
    out = tmp_path / "model"

    def run(share):  # the model's own [CLS] head: plain transformers reads it
        return RunConfig(data=str(data), eval_data=str(data), out=str(out), model=str(base),
                         strategy="head", pooling="cls", epochs=1.0, seed=42, force=True,
                         lexical=share)  # fmt: skip

    train_ensemble(run(0.3), 1, log=lambda _m: None)
    config = json.loads((out / "config.json").read_text())
    assert config["tunesmith_lexical"] == 0.3 and "lexical_ngrams" in config["model_type"]
    with pytest.raises((ValueError, KeyError)):  # it would predict without the share
        AutoModelForSequenceClassification.from_pretrained(str(out))
    assert load_model(out).extra["lexical"].weight == 0.3

    train_ensemble(run(0.0), 1, reuse=True, log=lambda _m: None)  # refitted without it
    config = json.loads((out / "config.json").read_text())
    assert "tunesmith_lexical" not in config and config["model_type"] == "bert"
    AutoModelForSequenceClassification.from_pretrained(str(out))  # a plain directory again


def test_scores_from_the_used_columns_equal_the_full_product_also_with_no_known_n_gram():
    from scipy.sparse import hstack

    model = LexicalModel.fit(TEXTS * 3, TARGETS * 3, LABELS, weight=0.3)
    probe = ["shares plunge", "", "zzz qqq", "record revenue on thursday"]
    features = hstack([model.word.transform(probe), model.char.transform(probe)]).tocsr()
    scores = features.toarray() @ model.coef.T.astype(np.float64) + model.intercept
    expected = np.exp(scores - scores.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.probabilities(probe)[:, model.classes], expected, atol=1e-6)


def test_class_weights_auto_weights_the_regressions_loss_by_label_as_the_transformers():
    from types import SimpleNamespace

    from tunesmith.engine.stages.lexical import fit

    # Nine "neutral" texts for each "negative" one, with a word both share: unweighted, a text
    # of only that word reads neutral; balanced, the rare label gains weight.
    texts = [f"market update {i}" for i in range(18)] + ["market slump", "market slump again"]
    labels = ["neutral"] * 18 + ["negative"] * 2
    split = SimpleNamespace(texts=texts, first_labels=labels)
    prepared = SimpleNamespace(train=split, held=None, labels=["negative", "neutral"])
    plain = fit(prepared, 0.3).probabilities(["market"])[0, 0]
    balanced = fit(prepared, 0.3, class_weights="auto").probabilities(["market"])[0, 0]
    assert balanced > 2 * plain  # 0.06 -> 0.14 when written


def _bert_like_spans(text):
    """Word spans as a BERT pre-tokenizer splits: runs of letters/digits, each other
    non-space character alone."""
    import re

    return [(m.start(), m.end()) for m in re.finditer(r"[^\W_]+|[^\s\w]|_", text)]


def test_deletion_probabilities_equal_scoring_each_text_with_the_word_deleted():
    from tunesmith.engine.lexical import LexicalModel

    texts = [
        "$AAPL cuts to Sell , shares plunge on heavy losses",
        "profit beats estimates -- shares   jump\ton record revenue!",
        "a b c profit",  # one-letter words hold no word token: windows reach the ends
        "results_due on thursday (company to present) at conference",
        "İstanbul ΟΔΟΣ shares fall; ΟΔΟΣ Σ stock",  # lower() changes length / final sigma
        "jump",
        "- - profit - -",
    ]
    model = LexicalModel.fit(TEXTS * 2, TARGETS * 2, LABELS, weight=0.3)
    spans = [_bert_like_spans(t) for t in texts]
    got = model.deletion_probabilities(texts, spans)
    for text, text_spans, probs in zip(texts, spans, got, strict=True):
        variants = [text[:s] + " " + text[e:] for s, e in text_spans]
        np.testing.assert_allclose(probs, model.probabilities(variants), atol=1e-9, err_msg=text)


def test_deletion_probabilities_of_a_text_without_spans_are_empty():
    from tunesmith.engine.lexical import LexicalModel

    model = LexicalModel.fit(TEXTS, TARGETS, LABELS, weight=0.3)
    got = model.deletion_probabilities(["shares plunge", "profit"], [[], [(0, 6)]])
    assert got[0].shape == (0, 3) and got[1].shape == (1, 3)
