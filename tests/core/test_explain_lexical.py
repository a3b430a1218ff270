"""Explanations of a model trained with ``--lexical W``: the label, probability, word scores and
faithfulness scores are those of the mix ``predict`` gives, not of the transformer alone."""

from __future__ import annotations

import json

import pytest
from lexical_texts import LABELS, TEXTS

TEXT = TEXTS[0]  # "shares plunge on heavy losses"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """(model directory, the label its mix gives TEXT, which the transformer alone does not)."""
    from tunesmith.testing import make_tiny_classifier, overrule_with_lexical

    model = make_tiny_classifier(tmp_path_factory.mktemp("mixed") / "m", LABELS, TEXTS)
    return model, overrule_with_lexical(model, LABELS, TEXTS, TEXT)


def _transformer_alone(loaded, texts, **options):
    from tunesmith.explain.attribute import explain_texts

    return explain_texts(
        loaded.model,
        loaded.tokenizer,
        texts,
        labels=loaded.labels,
        temperature=loaded.temperature,
        **options,
    )


def test_a_lexical_models_explanation_gives_the_label_and_probability_predict_gives(mixed):
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_texts
    from tunesmith.explain.attribute import explain_loaded

    model, other = mixed
    loaded = load_model(model)
    explanation = explain_loaded(loaded, [TEXT], method="occlusion")[0]
    predicted = predict_texts(loaded, [TEXT])[0]
    assert explanation.label == predicted["label"] == other
    assert explanation.probability == pytest.approx(predicted["score"], abs=1e-5)
    assert explanation.target == other
    assert explanation.target_probability == pytest.approx(predicted["score"], abs=1e-5)
    assert explanation.to_dict()["lexical_share"] == 0.9
    # The transformer alone says something else: the mix is what was explained.
    assert _transformer_alone(loaded, [TEXT], method="occlusion")[0].label != other


def test_a_words_score_is_the_shares_of_the_transformers_and_the_regressions_deletion(mixed):
    from tunesmith.engine.loading import load_model
    from tunesmith.explain.attribute import explain_loaded

    model, other = mixed
    loaded = load_model(model)
    lexical = loaded.extra["lexical"]
    target = LABELS.index(other)
    words = TEXT.split()
    explained = explain_loaded(loaded, [TEXT], target=other, method="occlusion")[0]
    alone = _transformer_alone(loaded, [TEXT], target=other, method="occlusion")[0]
    assert [t.word for t in explained.tokens] == words
    full = lexical.probabilities([TEXT])[0, target]
    for j, (mixed_word, alone_word) in enumerate(zip(explained.tokens, alone.tokens, strict=True)):
        without = " ".join(words[:j] + words[j + 1 :])
        deletion = full - lexical.probabilities([without])[0, target]
        expected = 0.1 * alone_word.score + 0.9 * deletion
        assert mixed_word.score == pytest.approx(expected, abs=1e-6), words[j]


def test_a_lexical_models_faithfulness_reads_the_mixed_probability_without_its_top_words(mixed):
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_texts
    from tunesmith.explain.attribute import explain_loaded
    from tunesmith.explain.faithfulness import top_k_count, top_words

    model, other = mixed
    loaded = load_model(model)
    explanation = explain_loaded(loaded, [TEXT], method="occlusion")[0]
    words = [t.word for t in explanation.tokens]
    k = top_k_count(len(words))
    top = top_words([t.score for t in explanation.tokens], k)
    without = " ".join(w for i, w in enumerate(words) if i not in top)
    only = " ".join(words[i] for i in top)
    p_without, p_only = (
        predict_texts(loaded, [text])[0]["probabilities"][other] for text in (without, only)
    )
    assert explanation.k == k
    assert explanation.comprehensiveness == pytest.approx(
        explanation.target_probability - p_without, abs=1e-5
    )
    assert explanation.sufficiency == pytest.approx(
        explanation.target_probability - p_only, abs=1e-5
    )


def test_deleting_a_word_for_the_regression_keeps_its_neighbours_apart_and_later_words():
    from tunesmith.explain.encoding import EncodedText
    from tunesmith.explain.lexical import text_keeping, text_without

    text = "shares plunge, on heavy losses"
    spans = [(0, 6), (7, 13), (13, 14), (15, 17)]  # truncated after "on"
    encoded = EncodedText(text, [], [], spans, [text[s:e] for s, e in spans], truncated=True)
    assert text_without(encoded, [1]).split() == ["shares", ",", "on", "heavy", "losses"]
    assert text_without(encoded, [0, 3]).split() == ["plunge,", "heavy", "losses"]
    assert text_keeping(encoded, [3, 0]) == "shares on"
    # A slow tokenizer's words have no spans: the regression then reads the text unchanged.
    spanless = EncodedText(text, [], [], [(-1, -1)] * 2, ["a", "b"])
    assert text_without(spanless, [0]) == text


def test_cli_explain_of_a_lexical_model_shows_predicts_label(mixed, cli):
    model, other = mixed
    explained = cli("explain", "--model", str(model), "--text", TEXT, "--json")
    predicted = cli("predict", "--model", str(model), "--text", TEXT, "--json")
    assert explained.exit_code == 0, explained.output
    assert predicted.exit_code == 0, predicted.output
    record = json.loads(explained.stdout)
    assert record["label"] == other and record["lexical_share"] == 0.9
    assert json.loads(predicted.stdout)["label"] == other  # one text: one object
    assert "transformer's alone" not in explained.stderr


def test_a_multilabel_explanation_ignores_a_lexical_model(tmp_path):
    from tunesmith.engine.lexical import LexicalModel
    from tunesmith.engine.loading import load_model
    from tunesmith.explain.attribute import explain_texts
    from tunesmith.testing import make_tiny_classifier

    model = make_tiny_classifier(tmp_path / "m", LABELS, TEXTS, multilabel=True)
    loaded = load_model(model)
    lexical = LexicalModel.fit(TEXTS, ["negative"] * 3 + ["positive"] * 3, LABELS, weight=0.9)
    options = {"labels": LABELS, "method": "occlusion", "multilabel": True}
    with_lexical = explain_texts(loaded.model, loaded.tokenizer, [TEXT], lexical=lexical, **options)
    alone = explain_texts(loaded.model, loaded.tokenizer, [TEXT], **options)
    assert with_lexical[0].to_dict() == alone[0].to_dict()
