"""tunesmith.retrieval.Encoder: pooling and normalisation follow the model; equal to
sentence-transformers; length-sorted batches give vectors in input order."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tunesmith.errors import UserInputError
from tunesmith.retrieval.encoder import Encoder, token_batches
from tunesmith.testing import make_tiny_base_model, make_tiny_classifier

TEXTS = [
    "my card is broken",
    "where is my new card please help",
    "transfer money to my account",
    "the transfer is late and i want to know why it has not arrived yet",
    "refund please",
    "i want a refund for my order and my money back",
    "hello",
    "how do i open a new bank account with a loan",
]


def save_sentence_transformer(base_dir, out_dir, pooling="mean", normalize=True):
    """A sentence-transformers directory over the tiny base model, built in-process."""
    from sentence_transformers import SentenceTransformer, models

    transformer = models.Transformer(str(base_dir))
    modules = [transformer, models.Pooling(32, pooling_mode=pooling)]
    if normalize:
        modules.append(models.Normalize())
    SentenceTransformer(modules=modules).save(str(out_dir))
    return out_dir


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return make_tiny_base_model(tmp_path_factory.mktemp("enc") / "base", TEXTS)


@pytest.fixture(scope="module")
def st_dir(base_dir, tmp_path_factory):
    return save_sentence_transformer(base_dir, tmp_path_factory.mktemp("enc") / "st")


def test_mean_pooled_normalised_vectors_equal_sentence_transformers(st_dir):
    from sentence_transformers import SentenceTransformer

    expected = SentenceTransformer(str(st_dir)).encode(TEXTS, batch_size=3)
    encoder = Encoder.load(st_dir)
    got = encoder.encode(TEXTS, batch_size=3)
    assert encoder.pooling == ("mean",) and encoder.normalize
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), 32) == (len(TEXTS), encoder.dim)
    assert np.abs(got - expected).max() < 1e-5
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("pooling", ["cls", "max", ("cls", "mean")])
def test_pooling_without_normalize_module_follows_the_directory(base_dir, tmp_path, pooling):
    from sentence_transformers import SentenceTransformer

    st_dir = save_sentence_transformer(base_dir, tmp_path / "st", pooling=pooling, normalize=False)
    expected = SentenceTransformer(str(st_dir)).encode(TEXTS, batch_size=4)
    encoder = Encoder.load(st_dir)
    got = encoder.encode(TEXTS, batch_size=4)
    assert not encoder.normalize
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-5


def test_vectors_come_back_in_input_order_whatever_the_batching(st_dir):
    encoder = Encoder.load(st_dir)
    batched = encoder.encode(TEXTS, batch_size=3)
    one_by_one = np.stack([encoder.encode(text)[0] for text in TEXTS])
    assert np.abs(batched - one_by_one).max() < 1e-5


def test_empty_input_gives_zero_rows_of_the_model_dimension(st_dir):
    assert Encoder.load(st_dir).encode([]).shape == (0, 32)


def test_long_texts_are_truncated_to_max_length(st_dir):
    encoder = Encoder.load(st_dir, max_length=8)
    long = " ".join(["card"] * 500)
    cut = " ".join(["card"] * 6)  # [CLS] + 6 words + [SEP] = 8 tokens
    got = encoder.encode([long, cut])
    assert np.abs(got[0] - got[1]).max() < 1e-6


def test_plain_encoder_directory_is_mean_pooled_and_normalised(base_dir, st_dir):
    plain = Encoder.load(base_dir).encode(TEXTS)
    assert np.abs(plain - Encoder.load(st_dir).encode(TEXTS)).max() < 1e-5


def test_classifier_directory_embeds_with_its_encoder_and_pooling(tmp_path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    clf_dir = make_tiny_classifier(tmp_path / "clf", ["a", "b"], TEXTS)
    encoder = Encoder.load(clf_dir)
    assert encoder.pooling == ("cls",)  # a stock classifier reads the [CLS] token
    got = encoder.encode(TEXTS[:2])
    tokenizer = AutoTokenizer.from_pretrained(clf_dir)
    bert = AutoModel.from_pretrained(clf_dir).eval()
    with torch.inference_mode():
        cls = bert(**tokenizer(TEXTS[:2], padding=True, return_tensors="pt")).last_hidden_state[
            :, 0
        ]
    expected = torch.nn.functional.normalize(cls, dim=1).numpy()
    assert np.abs(got - expected).max() < 1e-5


def test_int8_vectors_stay_close_to_fp32(st_dir):
    fp32 = Encoder.load(st_dir).encode(TEXTS)
    encoder = Encoder.load(st_dir, quantize="int8")
    int8 = encoder.encode(TEXTS)
    assert encoder.quantized
    cosines = (fp32 * int8).sum(axis=1)
    assert cosines.min() > 0.98


def test_unknown_quantisation_and_non_string_texts_are_user_errors(st_dir):
    with pytest.raises(UserInputError, match="int4"):
        Encoder.load(st_dir, quantize="int4")
    with pytest.raises(UserInputError, match="text 1 is int"):
        Encoder.load(st_dir).encode(["fine", 3])


def test_progress_bar_is_drawn_when_asked_and_silent_otherwise(st_dir, capsys):
    encoder = Encoder.load(st_dir)
    encoder.encode(TEXTS, progress=False)
    assert "encoding" not in capsys.readouterr().err
    encoder.encode(TEXTS, progress=True)
    assert "encoding" in capsys.readouterr().err


def test_token_batches_sort_by_length_and_respect_both_caps():
    lengths = [5, 300, 10, 7, 300, 300, 2]
    batches = token_batches(lengths, batch_size=2)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    widths = [lengths[b[0]] for b in batches]
    assert widths == sorted(widths, reverse=True)
    assert all(len(b) <= 2 for b in batches)
    # 2 x 128 tokens of budget: a 300-token text goes alone.
    assert [len(b) for b in batches[:3]] == [1, 1, 1]


def test_importing_the_package_loads_no_torch():
    code = (
        "import sys, tunesmith.retrieval as r; "
        "assert 'torch' not in sys.modules and 'faiss' not in sys.modules; "
        "assert 'Encoder' in dir(r)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_parallel_streams_give_the_same_vectors_in_input_order(st_dir):
    encoder = Encoder.load(st_dir)
    one = encoder.encode(TEXTS, batch_size=2, streams=1)
    assert np.abs(encoder.encode(TEXTS, batch_size=2, streams=3) - one).max() < 1e-6
    assert np.abs(encoder.encode(TEXTS[::-1], batch_size=2, streams=2)[::-1] - one).max() < 1e-6


def test_token_ids_lower_case_the_texts_when_the_model_says_do_lower_case(st_dir):
    import dataclasses

    encoder = Encoder.load(str(st_dir))
    seen: list[list[str]] = []

    class Spy:  # the real tokenizer, recording what it is given
        def __init__(self, real):
            self.real = real

        def __call__(self, texts, **kwargs):
            seen.append(list(texts))
            return self.real(texts, **kwargs)

        def __getattr__(self, name):
            return getattr(self.real, name)

    encoder.tokenizer = Spy(encoder.tokenizer)
    encoder.token_ids(["Reset My PASSWORD"])
    encoder.layout = dataclasses.replace(encoder.layout, lowercase=True)
    encoder.token_ids(["Reset My PASSWORD"])
    encoder.encode(["Card LOST"])
    assert seen == [["Reset My PASSWORD"], ["reset my password"], ["card lost"]]
