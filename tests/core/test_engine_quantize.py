"""int8 quantisation for CPU serving: the oneDNN and fbgemm kernels, and how one is chosen."""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import numpy as np
import pytest

from tunesmith.engine import int8_ranges, quantize
from tunesmith.testing import make_tiny_trained_classifier

LABELS = ["card", "transfer", "refund"]
TEXTS = [
    "my card is broken",
    "where is my new card please help",
    "transfer money to my account",
    "the transfer is late and I want to know why it has not arrived",
    "refund please",
    "I want a refund for my order",
]
TARGETS = [0, 0, 1, 1, 2, 2]

needs_onednn = pytest.mark.skipif(
    not quantize.onednn_int8_available(), reason="this torch build has no oneDNN int8 linear"
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_trained_classifier(
        tmp_path_factory.mktemp("quantize") / "clf", LABELS, TEXTS, TARGETS
    )


@pytest.fixture(scope="module")
def model_and_batch(model_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return model, tokenizer(TEXTS, padding=True, return_tensors="pt")


def logits(model, batch) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return model(**batch).logits.float().numpy()


@pytest.mark.parametrize("kernel", [pytest.param("onednn", marks=needs_onednn), "fbgemm"])
def test_int8_kernel_keeps_logits_close_to_fp32_and_leaves_the_original_alone(
    model_and_batch, kernel
):
    model, batch = model_and_batch
    reference = logits(model, batch)
    quantized = quantize.quantize_int8(model, kernel)
    got = logits(quantized, batch)
    spread = np.abs(reference).max()
    assert np.abs(got - reference).max() < 0.1 * spread
    assert (got.argmax(1) == reference.argmax(1)).all()
    assert type(model.classifier).__name__ == "Linear"


@needs_onednn
def test_onednn_runs_the_intermediate_gelu_inside_the_int8_product(model_and_batch):
    import torch

    model, _ = model_and_batch
    quantized = quantize.quantize_int8(model, "onednn")
    block = quantized.bert.encoder.layer[0].intermediate
    assert block.dense.post_op == "gelu"
    assert isinstance(block.intermediate_act_fn, torch.nn.Identity)
    # The fused product equals the plain int8 product followed by the exact GELU.
    plain = quantize._onednn_linear_class()(
        model.bert.encoder.layer[0].intermediate.dense, quantize._LastQuantized()
    )
    x = torch.randn(3, 5, model.config.hidden_size)
    with torch.inference_mode():
        expected = torch.nn.functional.gelu(plain(x))
        assert torch.allclose(block.dense(x), expected, atol=1e-4)


@needs_onednn
def test_query_key_and_value_quantise_their_shared_input_once(model_and_batch, monkeypatch):
    model, batch = model_and_batch
    quantized = quantize.quantize_int8(model, "onednn")
    calls = {"reused": 0, "quantised": 0}
    original = quantize._quantize_activation

    def counting(x, last, bounds=None):
        calls["reused" if last.source is x else "quantised"] += 1
        return original(x, last, bounds)

    monkeypatch.setattr(quantize, "_quantize_activation", counting)
    logits(quantized, batch)
    layers = model.config.num_hidden_layers
    assert calls["reused"] == 2 * layers  # key and value reuse the query's quantised input


@needs_onednn
def test_onednn_model_gives_the_same_answers_from_parallel_threads(model_and_batch):
    model, batch = model_and_batch
    quantized = quantize.quantize_int8(model, "onednn")
    alone = [logits(quantized, {k: v[i : i + 1] for k, v in batch.items()}) for i in range(6)]
    together: dict[int, np.ndarray] = {}

    def run(i: int) -> None:
        for _ in range(20):
            together[i] = logits(quantized, {k: v[i : i + 1] for k, v in batch.items()})

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in range(6):
        np.testing.assert_allclose(together[i], alone[i], atol=1e-6)


@needs_onednn
def test_a_copied_onednn_model_predicts_the_same(model_and_batch):
    model, batch = model_and_batch
    quantized = quantize.quantize_int8(model, "onednn")
    np.testing.assert_allclose(
        logits(copy.deepcopy(quantized), batch), logits(quantized, batch), atol=1e-6
    )


def test_kernel_follows_the_cpu_unless_asked_or_overridden(monkeypatch):
    monkeypatch.delenv("TUNESMITH_INT8_KERNEL", raising=False)
    monkeypatch.setattr(quantize, "onednn_int8_available", lambda: True)
    monkeypatch.setattr(quantize, "_cpu_flags", lambda: "flags : avx512f amx_int8 amx_tile")
    assert quantize.choose_kernel() == "onednn"
    monkeypatch.setattr(quantize, "_cpu_flags", lambda: "flags : avx2 avx512_vnni")
    assert quantize.choose_kernel() == "fbgemm"
    assert quantize.choose_kernel("onednn") == "onednn"
    monkeypatch.setenv("TUNESMITH_INT8_KERNEL", "onednn")
    assert quantize.choose_kernel() == "onednn"
    monkeypatch.setattr(quantize, "onednn_int8_available", lambda: False)
    assert quantize.choose_kernel() == "fbgemm"  # a build without oneDNN falls back
    monkeypatch.setenv("TUNESMITH_INT8_KERNEL", "tpu")
    with pytest.raises(ValueError, match="unknown int8 kernel 'tpu'"):
        quantize.choose_kernel()


def test_onednn_is_not_offered_on_a_cpu_without_vnni(monkeypatch):
    # Without VNNI, 8-bit activations times int8 weights can saturate 16-bit partial sums.
    monkeypatch.setattr(quantize, "_has_vnni", lambda: False)
    quantize.onednn_int8_available.cache_clear()
    try:
        assert quantize.onednn_int8_available() is False
    finally:
        quantize.onednn_int8_available.cache_clear()


@pytest.mark.parametrize(
    "kernel, vnni",
    [pytest.param("onednn", True, marks=needs_onednn), ("fbgemm", True), ("fbgemm", False)],
)
def test_recorded_ranges_give_a_text_the_same_int8_logits_alone_as_in_any_batch(
    model_dir, tmp_path, monkeypatch, kernel, vnni
):
    import shutil

    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_logits
    from tunesmith.io import atomic_write_json

    monkeypatch.setenv("TUNESMITH_INT8_KERNEL", kernel)
    if not vnni:  # 7-bit activations, as on CPUs whose int8 sums could overflow
        monkeypatch.setattr(quantize, "_has_vnni", lambda: False)
    recorded_dir = tmp_path / "recorded"
    shutil.copytree(model_dir, recorded_dir)
    recorded = int8_ranges.record_int8_ranges(load_model(recorded_dir), TEXTS)
    atomic_write_json(recorded_dir / quantize.RANGES_FILE, recorded)
    assert recorded["texts"] == len(TEXTS)

    def alone_and_batched(directory):
        loaded = load_model(directory, quantize="int8")
        alone = np.stack([predict_logits(loaded, [t])[0] for t in TEXTS])
        return alone, predict_logits(loaded, TEXTS, batch_size=len(TEXTS))

    alone, batched = alone_and_batched(recorded_dir)
    np.testing.assert_allclose(alone, batched, atol=1e-5)
    # Without the file each batch is quantised by its own range, so the batch shows through.
    alone, batched = alone_and_batched(model_dir)
    assert np.abs(alone - batched).max() > 1e-4


def test_activation_ranges_are_the_mean_over_calls_of_each_calls_min_and_max():
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    inputs = [torch.tensor([[-1.0, 3.0]]), torch.tensor([[-3.0, 1.0], [0.0, 0.0]])]

    def run():
        with torch.inference_mode():
            for x in inputs:
                model(x)

    ranges = int8_ranges.measure_activation_ranges(model, run)
    assert set(ranges) == {"0", "2"}
    assert ranges["0"] == [-2.0, 2.0]
    assert ranges["2"][0] >= 0.0  # after the ReLU
    assert not model[0]._forward_hooks  # the hooks are gone afterwards


@pytest.mark.parametrize(
    "content, needle",
    [
        ("[1, 2]", "expected a JSON object"),
        ('{"ranges": [1, 2]}', "an object of layer names"),
        ('{"ranges": {"classifier": [2.0, 1.0]}}', "'classifier' must be [low, high]"),
        ('{"ranges": {"classifier": ["a", 1.0]}}', "'classifier' must be [low, high]"),
    ],
)
def test_a_malformed_int8_ranges_file_is_an_error_naming_the_file(
    model_dir, tmp_path, content, needle
):
    import shutil

    from tunesmith.engine.loading import load_model
    from tunesmith.errors import DataError

    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / quantize.RANGES_FILE).write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_model(broken, quantize="int8")
    assert needle in str(caught.value) and quantize.RANGES_FILE in str(caught.value)
    load_model(broken)  # fp32 does not read the file


def test_int8_ranges_command_records_the_ranges_of_a_model_trained_elsewhere(model_dir, tmp_path):
    import shutil

    import torch
    from typer.testing import CliRunner

    from tunesmith.cli import build_app
    from tunesmith.engine.loading import load_model
    from tunesmith.testing import write_csv

    model = tmp_path / "model"
    shutil.copytree(model_dir, model)
    data = write_csv(
        tmp_path / "texts.csv", [(t, LABELS[y]) for t, y in zip(TEXTS, TARGETS, strict=True)]
    )
    result = CliRunner().invoke(
        build_app(), ["int8-ranges", "--model", str(model), "--data", str(data)]
    )
    assert result.exit_code == 0, result.output
    linears = {
        n for n, m in load_model(model).model.named_modules() if isinstance(m, torch.nn.Linear)
    }
    assert result.stdout.startswith(
        f"recorded the int8 ranges of {len(linears)} linear layers from 6"
    )
    assert set(quantize.read_int8_ranges(model)) == linears
    assert not [p for p in model.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_int8_ranges_command_records_every_member_of_a_seed_ensemble(model_dir, tmp_path):
    # Only the first member got ranges: predict --quantize int8, which averages every member,
    # quantised the others per batch, so the ensemble's answer moved with the batch.
    import json
    import shutil

    from typer.testing import CliRunner

    from tunesmith.cli import build_app
    from tunesmith.testing import write_csv

    model = tmp_path / "ensemble"
    shutil.copytree(model_dir, model)
    shutil.copytree(model_dir, model / "members" / "seed43")
    (model / "ensemble.json").write_text(json.dumps({"members": ["members/seed43"]}))
    data = write_csv(tmp_path / "texts.csv", [(t, "x") for t in TEXTS])
    args = ["int8-ranges", "--model", str(model), "--data", str(data)]
    result = CliRunner().invoke(build_app(), [*args, "--json"])
    assert result.exit_code == 0, result.output
    member = model / "members" / "seed43"
    assert quantize.read_int8_ranges(member) == quantize.read_int8_ranges(model) != {}
    (entry,) = json.loads(result.stdout)["members"]
    assert Path(entry["model"]) == member.resolve() and entry["texts"] == len(TEXTS)


def test_int8_ranges_command_with_a_missing_text_column_is_one_error_line(model_dir, tmp_path):
    from typer.testing import CliRunner

    from tunesmith.cli import build_app
    from tunesmith.testing import write_csv

    data = write_csv(tmp_path / "texts.csv", [("hello", "card")])
    result = CliRunner().invoke(
        build_app(),
        ["int8-ranges", "--model", str(model_dir), "--data", str(data), "--text-col", "body"],
    )
    assert result.exit_code == 2
    assert "texts.csv" in result.stderr and "body" in result.stderr
    assert not (model_dir / quantize.RANGES_FILE).exists()
