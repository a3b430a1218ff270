"""``aggregate_explanations``: the words that drive a label across many texts, with the default
attribution method, for the predicted label or a target label."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

LABELS = ["negative", "positive"]
WEIGHTS = {"good": 2.0, "great": 3.0, "bad": -2.0, "awful": -3.0}
TEXTS = [
    "good movie",
    "great film great movie",
    "bad movie",
    "awful film",
    "good film bad bad",
    "awful movie bad",
]


class BagOfWords(torch.nn.Module):
    """p(positive) = sigmoid(sum of the words' weights): the answer is known by hand."""

    def __init__(self, tokenizer, weights: dict[str, float]) -> None:
        super().__init__()
        self.embeddings = torch.nn.Embedding(len(tokenizer), 1)
        with torch.no_grad():
            self.embeddings.weight.zero_()
            for word, weight in weights.items():
                self.embeddings.weight[tokenizer.convert_tokens_to_ids(word)] = weight
        self.config = SimpleNamespace(
            id2label=dict(enumerate(LABELS)), problem_type=None, max_position_embeddings=64
        )

    def get_input_embeddings(self):
        return self.embeddings

    def forward(self, input_ids=None, attention_mask=None):
        total = (self.embeddings(input_ids)[..., 0] * attention_mask).sum(-1)
        return SimpleNamespace(logits=torch.stack([-total / 2, total / 2], dim=-1))


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A ``LoadedModel``-shaped bag-of-words classifier."""
    from tunesmith.testing import make_tiny_tokenizer

    tokenizer = make_tiny_tokenizer(
        tmp_path_factory.mktemp("bow"), [" ".join(WEIGHTS) + " movie film"]
    )
    return SimpleNamespace(
        model=BagOfWords(tokenizer, WEIGHTS),
        tokenizer=tokenizer,
        task="classification",
        labels=LABELS,
        temperature=None,
        max_length=64,
    )


def test_aggregate_with_a_target_explains_that_label_for_every_text(loaded):
    from tunesmith.explain.aggregate import aggregate_explanations

    done: list[float] = []
    top = aggregate_explanations(loaded, TEXTS, target="negative", k=3, progress=done.append)
    assert list(top) == ["negative"]
    # Every text is explained for "negative", positive ones too: only the negative words push
    # towards it; "bad" occurs four times, so its total leads.
    assert [w.word for w in top["negative"]] == ["bad", "awful"]
    assert [w.count for w in top["negative"]] == [4, 2]
    assert sum(done) == pytest.approx(len(TEXTS))


def test_aggregate_without_a_target_groups_words_by_predicted_label(loaded):
    from tunesmith.explain.aggregate import aggregate_explanations

    top = aggregate_explanations(loaded, TEXTS, k=5, progress=lambda _: None)
    assert set(top) == {"negative", "positive"}
    assert {w.word for w in top["positive"]} == {"great", "good"}
    assert {w.word for w in top["negative"]} == {"bad", "awful"}


def test_aggregate_uses_the_default_method(loaded, monkeypatch):
    import tunesmith.explain.aggregate as aggregate
    from tunesmith.explain.aggregate import aggregate_explanations
    from tunesmith.explain.methods import DEFAULT_METHOD

    seen: list[str] = []
    original = aggregate.explain_loaded

    def spy(model, texts, **options):
        seen.append(options["method"])
        return original(model, texts, **options)

    monkeypatch.setattr(aggregate, "explain_loaded", spy)  # the name aggregate calls
    aggregate_explanations(loaded, TEXTS, progress=lambda _: None)
    assert seen and set(seen) == {DEFAULT_METHOD}


def test_aggregate_refuses_an_unknown_target_and_empty_texts(loaded):
    from tunesmith.errors import UserInputError
    from tunesmith.explain.aggregate import aggregate_explanations

    with pytest.raises(UserInputError, match="unknown target label 'neutral'"):
        aggregate_explanations(loaded, TEXTS, target="neutral")
    with pytest.raises(UserInputError, match="text 3 is empty"):
        aggregate_explanations(loaded, ["good", "bad", " "])
