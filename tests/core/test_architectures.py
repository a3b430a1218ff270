"""Models other than the default BERT: RoBERTa, XLM-R, DistilBERT, ALBERT, ELECTRA, DeBERTa-v2
and MPNet folders, built tiny and random in-process with their own kind of tokenizer."""

from __future__ import annotations

import numpy as np
import pytest

from tunesmith.testing import make_tiny_encoder, write_csv

LABELS = ["card", "delivery"]
TEXTS = [
    "i lost my card",
    "my card is broken",
    "where is my order",
    "the delivery is late",
    "please close my card",
    "my order never came",
]
LONG = "my card was lost and the delivery is late " * 40  # about 360 tokens


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Build each folder once for the module: ``folders(kind, name, **options)``."""
    root = tmp_path_factory.mktemp("architectures")
    built: dict[str, object] = {}

    def get(architecture: str, name: str = "base", **options):
        key = f"{architecture}-{name}"
        if key not in built:
            built[key] = make_tiny_encoder(root / key, architecture, TEXTS, **options)
        return built[key]

    return get


@pytest.mark.parametrize("architecture", ["roberta", "xlm-roberta", "mpnet"])
def test_roberta_style_model_without_a_tokenizer_limit_reads_a_long_text(folders, architecture):
    """514-style position tables (here 130 for 128 tokens) with the tokenizer's limit unset:
    predict, explain and the encoder cut the text at 128 tokens instead of indexing past the
    positions (a RuntimeError/IndexError before)."""
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_texts
    from tunesmith.explain.attribute import explain_loaded
    from tunesmith.retrieval import Encoder

    encoder = Encoder.load(folders(architecture))
    assert encoder.max_length == 128
    assert encoder.encode([LONG]).shape == (1, 32)
    loaded = load_model(folders(architecture, "classifier", labels=LABELS))
    assert loaded.max_length == 128
    assert predict_texts(loaded, [LONG])[0]["label"] in LABELS
    (explanation,) = explain_loaded(loaded, [LONG], method="grad-input")
    assert explanation.truncated and explanation.tokens


@pytest.mark.parametrize(
    ("architecture", "splits"),
    [
        ("bert", True),
        ("roberta", True),
        ("mpnet", False),  # its layers need the relative position bias the encoder computes
        ("deberta-v2", False),  # its layers need the relative embeddings
        ("electra", False),  # 16-dimensional embeddings are projected before the layers
    ],
)
def test_frozen_feature_split_is_used_only_where_it_computes_the_encoders_output(
    folders, architecture, splits
):
    from transformers import AutoModelForTokenClassification

    from tunesmith.engine.feature_cache import cache_supported, split_supported

    model = AutoModelForTokenClassification.from_pretrained(folders(architecture), num_labels=3)
    assert split_supported(model) is splits
    assert cache_supported(model, "ner") is splits


@pytest.mark.parametrize("architecture", ["distilbert", "deberta-v2"])
def test_mean_pooled_few_shot_training_runs_on_encoders_that_do_not_split(
    folders, tmp_path, cli, architecture
):
    """Mean pooling (a sentence-transformers folder) and few-shot data store nearest examples,
    whose embeddings the frozen-feature split computed: a TypeError (DistilBERT) and a
    dropout(None) error (DeBERTa-v2) before."""
    base = folders(architecture, "st", sentence_transformers={"pooling": "mean"})
    data = write_csv(tmp_path / "train.csv", [(t, LABELS[0 if "card" in t else 1]) for t in TEXTS])
    out = tmp_path / "model"
    result = cli("train", "--model", str(base), "--data", str(data), "--out", str(out),
                 "--epochs", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert '"tunesmith_pooling": "mean"' in (out / "config.json").read_text()
    assert (out / "nearest_examples.safetensors").is_file()
    result = cli("predict", "--model", str(out), "--text", "i lost my card", "--json")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("architecture", "extra_head"),
    [("distilbert", "pre_classifier"), ("mpnet", None), ("deberta-v2", "pooler")],
)
def test_lora_finds_the_attention_projections_and_trains_the_whole_head(
    folders, architecture, extra_head
):
    """DistilBERT (q_lin), MPNet (q) and DeBERTa-v2 (query_proj) were refused; the parts of a
    head that start random (DistilBERT's pre_classifier, DeBERTa's pooler) train with it."""
    from transformers import AutoModelForSequenceClassification

    from tunesmith.engine.strategies import wrap_lora

    model = AutoModelForSequenceClassification.from_pretrained(folders(architecture), num_labels=2)
    wrapped = wrap_lora(model)
    names = [n for n, p in wrapped.named_parameters() if p.requires_grad]
    assert any("lora_A" in n for n in names)
    if extra_head:
        assert any(f"{extra_head}." in n and "modules_to_save" in n for n in names), names


def test_pooling_mean_on_a_head_that_cannot_take_it_is_one_line(folders, tmp_path, cli):
    data = write_csv(tmp_path / "train.csv", [(t, LABELS[0 if "card" in t else 1]) for t in TEXTS])
    result = cli("train", "--model", str(folders("roberta")), "--data", str(data),
                 "--out", str(tmp_path / "m"), "--pooling", "mean")  # fmt: skip
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith("Error: --pooling mean:")


@pytest.mark.parametrize("architecture", ["roberta", "xlm-roberta", "deberta-v2", "mpnet"])
@pytest.mark.parametrize(("pooling", "normalize"), [("cls", False), ("max", True)])
def test_encoder_pools_like_sentence_transformers(folders, architecture, pooling, normalize):
    from sentence_transformers import SentenceTransformer

    from tunesmith.retrieval import Encoder

    folder = folders(
        architecture,
        f"st-{pooling}",
        sentence_transformers={"pooling": pooling, "normalize": normalize},
    )
    texts = [*TEXTS, LONG]
    ours = Encoder.load(folder).encode(texts)
    theirs = SentenceTransformer(str(folder), device="cpu").encode(texts)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize(
    "architecture",
    ["distilbert", "electra", "albert", "mpnet", "roberta", "xlm-roberta", "deberta-v2"],
)
def test_classifier_predicts_in_int8_explains_and_exports(folders, tmp_path, architecture):
    from tunesmith.engine.export_onnx import export_onnx
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_logits
    from tunesmith.explain.attribute import explain_loaded

    folder = folders(architecture, "classifier", labels=LABELS)
    fp32 = predict_logits(load_model(folder), TEXTS)
    int8 = predict_logits(load_model(folder, quantize="int8"), TEXTS)
    assert fp32.shape == int8.shape == (len(TEXTS), 2)
    assert np.abs(fp32 - int8).max() < 0.1
    (explanation,) = explain_loaded(load_model(folder), ["i lost my card"])
    assert len(explanation.tokens) == 4 and explanation.comprehensiveness is not None
    report = export_onnx(folder, tmp_path / "model.onnx")
    assert max(report["max_difference"].values()) <= 1e-4
