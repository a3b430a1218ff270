"""finance with the core's lexical model (``finance train --lexical``, 0.3 by default): what
``score`` shows for a model whose mixed probabilities disagree with its transformer's."""

from __future__ import annotations

import json
import shutil

import numpy as np

LABELS = ["negative", "neutral", "positive"]
TEXT = "orcana beats estimates again"


def test_score_explain_gives_the_words_of_the_label_it_shows(cli, tiny_model, tmp_path,
                                                            monkeypatch):  # fmt: skip
    import tunesmith.explain.attribute as attribute
    from tunesmith.engine.lexical import LexicalModel
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_logits

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    alone = int(np.argmax(predict_logits(load_model(model), [TEXT])[0]))
    other = LABELS[(alone + 1) % 3]  # a lexical model with a large share that says otherwise
    texts = [TEXT, "a quiet day", "the market moves", "orcana beats", "quiet market", "moves"]
    targets = [other, LABELS[alone], LABELS[alone], other, LABELS[alone], LABELS[alone]]
    LexicalModel.fit(texts * 3, targets * 3, LABELS, weight=0.9).save(model)

    asked: list[object] = []
    explain = attribute.explain_loaded

    def spy(loaded, texts, **options):
        asked.append(options.get("target"))
        return explain(loaded, texts, **options)

    monkeypatch.setattr(attribute, "explain_loaded", spy)
    result = cli("finance", "score", "--model", str(model), "--text", TEXT, "--explain", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["label"] == other  # the mix, not the transformer alone
    assert asked == [[other]]
