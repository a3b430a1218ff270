from __future__ import annotations

import numpy as np
import pytest

from tunesmith.errors import UserInputError
from tunesmith_finance.scoring import SentimentModel, sentiment_indices


def test_score_is_p_positive_minus_p_negative(tiny_model):
    model = SentimentModel.load(tiny_model)
    texts = [
        "The bank reported a steep drop in quarterly profit.",
        "The fund beat analyst expectations on every line.",
    ]
    probs = model.probabilities(texts)
    scores = model.score(texts)
    for row, score in zip(probs, scores, strict=True):
        assert score.score == pytest.approx(row[2] - row[0])
        assert score.label == ["negative", "neutral", "positive"][int(np.argmax(row))]
        assert score.p_negative + score.p_neutral + score.p_positive == pytest.approx(1.0)


def test_labels_are_found_by_name_in_any_order_and_case():
    assert sentiment_indices(["Positive", "NEGATIVE", "neutral"]) == {
        "negative": 1,
        "neutral": 2,
        "positive": 0,
    }
    assert sentiment_indices(["bullish", "bearish"]) == {
        "negative": 1,
        "neutral": None,
        "positive": 0,
    }


def test_a_model_without_sentiment_labels_is_a_clear_error(tmp_path):
    from tunesmith.testing import make_tiny_classifier

    directory = make_tiny_classifier(tmp_path / "m", ["card_lost", "refund"], ["my card"])
    with pytest.raises(
        UserInputError, match=r"labels \['card_lost', 'refund'\].*missing: negative, positive"
    ):
        SentimentModel.load(directory)


def test_a_loaded_model_shows_its_folder_not_an_object_address(tiny_model):
    assert repr(SentimentModel.load(tiny_model)) == f"SentimentModel({str(tiny_model)!r})"
    assert "quantize='int8'" in repr(SentimentModel.load(tiny_model, quantize="int8"))
