"""finance with the core's lexical model (``finance train --lexical``, 0.3 by default): what
``score`` and the demo show for a model whose mixed probabilities disagree with its
transformer's."""

from __future__ import annotations

import json
import shutil

import pytest

LABELS = ["negative", "neutral", "positive"]
TEXT = "orcana beats estimates again"


@pytest.fixture
def mixed_model(tiny_model, tmp_path):
    """(model directory, the label its mix gives TEXT): a lexical model with a large share that
    disagrees with the transformer on TEXT."""
    from tunesmith.testing import overrule_with_lexical

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    texts = [TEXT, "a quiet day", "the market moves", "orcana beats", "quiet market", "moves"]
    return model, overrule_with_lexical(model, LABELS, texts, TEXT)


@pytest.fixture
def explained_targets(explained_targets):
    """The ``target`` of each ``explain_loaded`` call (the root fixture, watching the module
    finance calls it through)."""
    import tunesmith.explain.attribute as attribute

    return explained_targets(attribute)


def test_score_explain_gives_the_words_of_the_label_it_shows(cli, mixed_model,
                                                            explained_targets):  # fmt: skip
    model, other = mixed_model
    result = cli("finance", "score", "--model", str(model), "--text", TEXT, "--explain", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["label"] == other  # the mix, not the transformer alone
    assert explained_targets == [[other]]


def test_the_demo_highlights_the_words_of_the_label_it_shows(mixed_model, explained_targets):
    from tunesmith_finance.demo import Dashboard
    from tunesmith_finance.scoring import SentimentModel

    model, other = mixed_model
    dashboard = Dashboard(model=str(model))
    dashboard._model = SentimentModel.load(model)  # what the set-up thread loads
    probs, _highlights, note = dashboard.score(TEXT)
    assert max(probs, key=probs.get) == other and f"**{other}**" in note
    assert explained_targets == [other]
