"""finance with the core's lexical model (``finance train --lexical``, 0.3 by default): what
``score`` and the demo show for a model whose mixed probabilities disagree with its
transformer's."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

LABELS = ["negative", "neutral", "positive"]
TEXT = "orcana beats estimates again"


@pytest.fixture
def mixed_model(tiny_model, tmp_path):
    """(model directory, the label its mix gives TEXT): a lexical model with a large share that
    disagrees with the transformer on TEXT."""
    from tunesmith.engine.lexical import LexicalModel
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_logits

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    alone = int(np.argmax(predict_logits(load_model(model), [TEXT])[0]))
    other = LABELS[(alone + 1) % 3]
    texts = [TEXT, "a quiet day", "the market moves", "orcana beats", "quiet market", "moves"]
    targets = [other, LABELS[alone], LABELS[alone], other, LABELS[alone], LABELS[alone]]
    LexicalModel.fit(texts * 3, targets * 3, LABELS, weight=0.9).save(model)
    return model, other


@pytest.fixture
def explained_targets(monkeypatch):
    """The ``target`` of each ``explain_loaded`` call."""
    import tunesmith.explain.attribute as attribute

    asked: list[object] = []
    explain = attribute.explain_loaded

    def spy(loaded, texts, **options):
        asked.append(options.get("target"))
        return explain(loaded, texts, **options)

    monkeypatch.setattr(attribute, "explain_loaded", spy)
    return asked


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
