"""Devices and precision: --device and --precision resolved in one place (tunesmith.devices),
half-precision models served on a CPU, int8 kept on the CPU, and the Trainer told which device.

This machine has no GPU: CUDA and MPS are monkeypatched where a test needs them present.
"""

from __future__ import annotations

import pickle

import pytest
import torch

from tunesmith.devices import as_float32, check_precision, resolve_device
from tunesmith.errors import UserInputError
from tunesmith.testing import fake_cuda, make_tiny_base_model, make_tiny_classifier

TEXTS = ["my card never arrived", "refund my order please", "hello there", "goodbye moon"]


def _no_mps(monkeypatch) -> None:
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def half_classifier(tmp_path):
    """A classifier saved in float16, as `model.half().save_pretrained()` on a GPU leaves it."""
    from transformers import AutoModelForSequenceClassification

    directory = make_tiny_classifier(tmp_path / "half", ["a", "b"], TEXTS)
    model = AutoModelForSequenceClassification.from_pretrained(directory)
    model.half().save_pretrained(directory)
    return directory


def test_device_that_is_not_there_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _no_mps(monkeypatch)
    with pytest.raises(UserInputError, match=r"^--device cuda: no CUDA device is available$"):
        resolve_device("cuda")
    with pytest.raises(UserInputError, match=r"^--device mps: no Apple MPS device is available$"):
        resolve_device("mps")
    with pytest.raises(UserInputError, match=r"--device gpu: not a device; the choices are"):
        resolve_device("gpu")
    assert resolve_device("auto") == "cpu"


def test_device_picks_the_gpu_asked_for_and_names_the_ones_there(monkeypatch):
    fake_cuda(monkeypatch, count=2)
    assert resolve_device("auto") == "cuda:0"
    assert resolve_device("cuda") == "cuda:0"
    assert resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(UserInputError, match=r"cuda:2: this machine has 2 CUDA devices"):
        resolve_device("cuda:2")


def test_auto_prefers_mps_over_the_cpu_on_an_apple_laptop(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == "mps"


def test_int8_stays_on_the_cpu_and_refuses_a_gpu(monkeypatch):
    fake_cuda(monkeypatch, count=1)
    assert resolve_device("auto", quantize="int8") == "cpu"
    with pytest.raises(UserInputError, match="--quantize int8 runs on the CPU only"):
        resolve_device("cuda", quantize="int8")


def test_quantize_int8_refuses_a_model_that_is_not_on_the_cpu():
    from tunesmith.engine.quantize import quantize_int8

    model = torch.nn.Sequential(torch.nn.Linear(4, 2)).to("meta")
    with pytest.raises(UserInputError, match="int8 quantisation runs on the CPU only"):
        quantize_int8(model)


def test_mixed_precision_the_device_cannot_run_is_refused(monkeypatch):
    with pytest.raises(UserInputError, match="fp16 needs a CUDA or MPS device"):
        check_precision("fp16", "cpu")
    assert check_precision("bf16", "cpu") == "bf16"  # torch's CPU autocast runs bf16
    fake_cuda(monkeypatch, count=1, bf16=False)
    with pytest.raises(UserInputError, match="cuda:0 does not support bf16; give --precision fp16"):
        check_precision("bf16", "cuda:0")
    assert check_precision("fp16", "cuda:0") == "fp16"


def test_half_precision_model_predicts_and_quantises_on_a_cpu(half_classifier):
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_logits

    plain = load_model(half_classifier)
    assert next(plain.model.parameters()).dtype == torch.float32
    quantized = load_model(half_classifier, quantize="int8")  # int8 kernels refused Half
    assert predict_logits(quantized, ["my card never arrived"]).shape == (1, 2)


def test_half_precision_encoder_quantises_on_a_cpu(tmp_path):
    from transformers import AutoModel

    from tunesmith.retrieval.encoder import Encoder

    directory = make_tiny_base_model(tmp_path / "base", TEXTS)
    AutoModel.from_pretrained(directory).half().save_pretrained(directory)
    encoder = Encoder.load(directory, quantize="int8")
    assert encoder.encode(["hello there"]).shape == (1, encoder.dim)


def test_as_float32_leaves_integer_buffers_alone():
    model = torch.nn.Embedding(3, 2).half()
    model.register_buffer("ids", torch.arange(3))
    as_float32(model)
    assert model.weight.dtype == torch.float32 and model.ids.dtype == torch.long


def test_predict_and_train_refuse_a_missing_gpu_in_one_line(cli, half_classifier, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = cli("predict", "--model", str(half_classifier), "--text", "hi", "--device", "cuda")
    assert result.exit_code == 2
    assert result.output.strip() == "Error: --device cuda: no CUDA device is available"
    result = cli(
        "evaluate", "--model", str(half_classifier), "--data", "x.csv", "--device", "cuda:1"
    )
    assert result.exit_code == 2 and "no CUDA device is available" in result.output


def test_training_arguments_follow_the_resolved_device(monkeypatch):
    from tunesmith.engine.placement import device_settings

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    # A CPU run on a GPU machine: no pinned memory, and the Trainer told to stay on the CPU.
    assert device_settings("cpu", "bf16") == {
        "dataloader_pin_memory": False, "use_cpu": True, "fp16": False, "bf16": True,
    }  # fmt: skip
    assert device_settings("cuda:1", "fp16") == {
        "dataloader_pin_memory": True, "use_cpu": False, "fp16": True, "bf16": False,
    }  # fmt: skip


def test_training_arguments_pickle_into_a_checkpoint(tmp_path):
    from tunesmith.engine.placement import training_arguments_class

    args = training_arguments_class("cpu")(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    again = pickle.loads(pickle.dumps(args))  # the Trainer writes training_args.bin so
    assert type(again).__name__ == "OneDeviceArguments" and str(again.device) == "cpu"


def test_run_config_checks_the_precision_and_records_device_and_precision(tmp_path):
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.resolved import Resolved

    data = tmp_path / "d.csv"
    data.write_text("text,label\nhi,a\n", encoding="utf-8")
    with pytest.raises(UserInputError, match="--precision 'fp8' is not valid"):
        RunConfig(data=str(data), out=str(tmp_path / "out"), precision="fp8").validate()
    recorded = Resolved(device="cuda:0", precision="bf16").to_dict()
    assert recorded["device"] == "cuda:0" and recorded["precision"] == "bf16"
