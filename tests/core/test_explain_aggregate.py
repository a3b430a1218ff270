"""``aggregate_explanations``: the words that drive a label across many texts, with the default
attribution method, for the predicted label or a target label."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

LABELS = ["negative", "positive"]
TEXTS = [
    "the app is great thanks",
    "great card and great app",
    "i love the new app",
    "good help with my account",
    "the refund is terrible",
    "bad app and a broken card",
    "i hate the late delivery",
    "terrible help my money is lost",
]
TRUE = [1, 1, 1, 1, 0, 0, 0, 0]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    from tunesmith.engine.loading import load_model
    from tunesmith.testing import make_tiny_trained_classifier

    directory = make_tiny_trained_classifier(
        tmp_path_factory.mktemp("agg"), LABELS, TEXTS, TRUE, steps=60
    )
    return load_model(directory)


def test_aggregate_with_a_target_explains_that_label_for_every_text(loaded):
    from tunesmith.explain.aggregate import aggregate_explanations

    done: list[float] = []
    top = aggregate_explanations(loaded, TEXTS, target="negative", k=3, progress=done.append)
    assert list(top) == ["negative"]
    words = [w.word for w in top["negative"]]
    assert 0 < len(words) <= 3
    assert set(words) & {"terrible", "bad", "hate", "broken", "lost"}
    assert all(w.total > 0 and w.count >= 1 for w in top["negative"])
    assert sum(done) == pytest.approx(len(TEXTS))


def test_aggregate_without_a_target_groups_words_by_predicted_label(loaded):
    from tunesmith.explain.aggregate import aggregate_explanations

    top = aggregate_explanations(loaded, TEXTS, k=5, progress=lambda _: None)
    assert set(top) == {"negative", "positive"}
    assert set(w.word for w in top["positive"]) & {"great", "love", "good"}


def test_aggregate_refuses_an_unknown_target_and_empty_texts(loaded):
    from tunesmith.errors import UserInputError
    from tunesmith.explain.aggregate import aggregate_explanations

    with pytest.raises(UserInputError, match="unknown target label 'neutral'"):
        aggregate_explanations(loaded, TEXTS, target="neutral")
    with pytest.raises(UserInputError, match="text 3 is empty"):
        aggregate_explanations(loaded, ["good", "bad", " "])
