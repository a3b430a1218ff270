"""Augmenters make new, labelled, seeded examples; augment_dataset picks them by name and caches."""

from __future__ import annotations

import random

import pytest

from tunesmith import hookimpl
from tunesmith.data.augment import (
    EmbeddingNeighbours,
    TokenEdits,
    augment_dataset,
    builtin_augmenters,
)
from tunesmith.data.records import TextDataset
from tunesmith.errors import UserInputError
from tunesmith.hooktypes import Augmenter
from tunesmith.plugins import get_plugin_manager
from tunesmith.testing import make_tiny_base_model

TEXTS = [
    "my card was stolen yesterday evening",
    "please refund the payment for my broken order",
    "the delivery is late again this week",
    "how can i reset my password quickly",
    "hello",
]
LABELS = [["card_lost"], ["refund"], ["delivery"], ["password"], ["greeting"]]


def data() -> TextDataset:
    return TextDataset(list(TEXTS), [list(x) for x in LABELS], sorted(x[0] for x in LABELS))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return make_tiny_base_model(tmp_path_factory.mktemp("tiny"), TEXTS)


def test_builtin_augmenters_keep_the_protocol():
    augmenters = builtin_augmenters()
    assert {a.name for a in augmenters} == {"token_edits", "embedding_neighbours"}
    assert all(isinstance(a, Augmenter) for a in augmenters)


def test_embedding_neighbours_load_their_model_only_on_first_use(tmp_path):
    augmenter = EmbeddingNeighbours(tmp_path / "no-such-model")  # constructing loads nothing
    with pytest.raises(UserInputError):
        augmenter.augment(["my card was stolen"], [["card_lost"]], random.Random(0))


def test_embedding_neighbours_refuse_a_model_folder_naming_its_own_code(custom_code_model):
    directory, ran = custom_code_model
    augmenter = EmbeddingNeighbours(directory)
    with pytest.raises(UserInputError, match="could not be loaded as a base model.*custom code"):
        augmenter.augment(["my card was stolen"], [["card_lost"]], random.Random(0))
    assert not ran.exists()


def test_the_neighbour_augmenter_is_shared_per_model_so_its_cache_survives_hook_calls(tiny_model):
    first = next(a for a in builtin_augmenters() if a.name == "embedding_neighbours")
    again = next(a for a in builtin_augmenters() if a.name == "embedding_neighbours")
    assert first is again
    assert first.for_model(tiny_model) is first.for_model(tiny_model)
    assert first.for_model(tiny_model) is not first


def test_token_edits_return_only_new_texts_of_long_enough_inputs_with_their_labels():
    texts, labels = TokenEdits().augment(TEXTS, LABELS, random.Random(0))
    assert len(texts) == len(labels) == 4  # "hello" is too short to edit
    assert not set(texts) & set(TEXTS)
    for text, label in zip(texts, labels, strict=True):
        original = TEXTS[LABELS.index(label)]
        assert set(text.split()) <= set(original.split())


def test_token_edits_are_deterministic_for_a_seed():
    first = TokenEdits().augment(TEXTS, LABELS, random.Random(7))
    again = TokenEdits().augment(TEXTS, LABELS, random.Random(7))
    other = TokenEdits().augment(TEXTS, LABELS, random.Random(8))
    assert first == again and first != other


def test_embedding_neighbours_replace_words_with_model_vocabulary_words(tiny_model):
    augmenter = EmbeddingNeighbours(tiny_model, min_similarity=-1.0)
    texts, labels = augmenter.augment(TEXTS, LABELS, random.Random(0))
    assert texts and len(texts) == len(labels)
    from transformers import AutoTokenizer

    vocab = set(AutoTokenizer.from_pretrained(tiny_model).get_vocab())
    for text, label in zip(texts, labels, strict=True):
        original = TEXTS[LABELS.index(label)].split()
        new = text.split()
        assert len(new) == len(original) and new != original
        assert all(w in vocab and not w.startswith("[") for w in new)
    assert "my" not in augmenter._cache  # stop-words are never looked up


def test_embedding_neighbours_exclude_specials_stop_words_and_the_word_itself(tiny_model):
    augmenter = EmbeddingNeighbours(tiny_model, min_similarity=-1.0, top_k=50)
    found = augmenter.neighbours("card")
    assert found and "card" not in found
    assert not {"[CLS]", "[SEP]", "[PAD]", "the", "my"} & set(found)
    assert augmenter.neighbours("card") is found  # cached per word


def test_augment_dataset_appends_generated_rows_deterministically(tmp_path):
    base = data()
    first = augment_dataset(base, ["token_edits"], seed=3)
    again = augment_dataset(base, ["token_edits"], seed=3)
    assert first.texts == again.texts
    assert first.texts[: len(base)] == base.texts
    assert len(first) > len(base) and first.rows[len(base) :] == [0] * (len(first) - len(base))
    assert len(base) == 5  # the input is not changed


def test_augment_dataset_with_copies_makes_more_distinct_examples():
    one = augment_dataset(data(), ["token_edits"], seed=0, copies=1)
    three = augment_dataset(data(), ["token_edits"], seed=0, copies=3)
    assert len(three) > len(one)
    assert len(set(three.texts)) == len(three.texts)


def test_augment_dataset_cache_is_written_and_reused(tmp_path, tiny_model, monkeypatch):
    base = data()
    first = augment_dataset(
        base, ["token_edits", "embedding_neighbours"], seed=1, cache_dir=tmp_path, model=tiny_model
    )
    files = list(tmp_path.glob("augment-*.jsonl"))
    assert len(files) == 1

    def fail(*args, **kwargs):
        raise AssertionError("recomputed instead of reading the cache")

    monkeypatch.setattr(TokenEdits, "augment", fail)
    monkeypatch.setattr(EmbeddingNeighbours, "augment", fail)
    again = augment_dataset(
        base, ["token_edits", "embedding_neighbours"], seed=1, cache_dir=tmp_path, model=tiny_model
    )
    assert again.texts == first.texts and again.labels == first.labels


def test_augment_dataset_cache_key_changes_with_the_seed(tmp_path):
    augment_dataset(data(), ["token_edits"], seed=1, cache_dir=tmp_path)
    augment_dataset(data(), ["token_edits"], seed=2, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("augment-*.jsonl"))) == 2


def test_unknown_augmenter_lists_the_known_ones():
    with pytest.raises(UserInputError) as info:
        augment_dataset(data(), ["backtranslate"], seed=0)
    assert "unknown augmenter 'backtranslate'" in str(info.value)
    assert "embedding_neighbours, token_edits" in str(info.value)


class ShoutPlugin:
    class Shout:
        name = "shout"

        def augment(self, texts, labels, rng):
            return [t.upper() + "!" for t in texts], list(labels)

    @hookimpl
    def tunesmith_augmenters(self):
        return [self.Shout()]


@pytest.fixture
def shout_plugin():
    pm = get_plugin_manager()
    pm.register(ShoutPlugin(), name="test-shout-augmenter")
    yield
    pm.unregister(name="test-shout-augmenter")


def test_a_plugin_augmenter_is_found_by_name(shout_plugin):
    result = augment_dataset(data(), ["shout"], seed=0)
    assert "HELLO!" in result.texts
    assert result.labels[result.texts.index("HELLO!")] == ["greeting"]
