"""``explain`` and ``calibrate`` take ``--device`` as ``predict`` does, through the helpers the
plugins share (``tunesmith.devices.device_option``, ``check_device``).

This machine has no GPU: CUDA is faked where a test needs it present, and the loader is
spied on (it records the device it was asked for, then loads on the CPU).
"""

from __future__ import annotations

import json

import pytest
import torch

from tunesmith.devices import (
    DEVICE_HELP,
    PRECISION_HELP,
    check_device,
    device_option,
    precision_option,
)
from tunesmith.errors import UserInputError
from tunesmith.testing import fake_cuda, make_tiny_classifier

TEXTS = ["my card never arrived", "refund my order please", "hello there", "goodbye moon"]


@pytest.fixture
def classifier(tmp_path):
    return make_tiny_classifier(tmp_path / "model", ["a", "b"], TEXTS)


@pytest.fixture
def held_out(tmp_path):
    path = tmp_path / "held.csv"
    rows = [f"{text},{'ab'[i % 2]}" for i, text in enumerate(TEXTS * 2)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _spy(monkeypatch, module, name: str) -> list[str]:
    """Record the ``device`` each call of ``module.name`` asks for; load on the CPU."""
    asked: list[str] = []
    real = getattr(module, name)

    def spy(*args, device="cpu", **kwargs):
        asked.append(device)
        return real(*args, device="cpu", **kwargs)

    monkeypatch.setattr(module, name, spy)
    return asked


def test_device_and_precision_options_carry_the_core_help():
    assert device_option().default == "auto" and device_option().help == DEVICE_HELP
    noted = device_option("--quantize int8 runs on the CPU.")
    assert noted.help == f"{DEVICE_HELP} --quantize int8 runs on the CPU."
    assert precision_option().default == "fp32" and precision_option().help == PRECISION_HELP


def test_check_device_passes_auto_and_cpu_without_resolving(monkeypatch):
    import tunesmith.devices as devices

    def resolve(*_a, **_k):
        raise AssertionError("auto and cpu need no torch")

    monkeypatch.setattr(devices, "resolve_device", resolve)
    check_device("auto")
    check_device(" CPU ", quantize="int8")
    with pytest.raises(AssertionError):
        check_device("cuda")


def test_check_device_refuses_a_missing_gpu_and_int8_off_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserInputError, match=r"^--device cuda: no CUDA device is available$"):
        check_device("cuda")
    fake_cuda(monkeypatch)
    with pytest.raises(UserInputError, match="--quantize int8 runs on the CPU only"):
        check_device("cuda:0", quantize="int8")


def test_explain_loads_the_model_on_the_device_asked_for(cli, classifier, monkeypatch):
    import tunesmith.engine.ensemble as ensemble

    asked = _spy(monkeypatch, ensemble, "load_ensemble")
    result = cli("explain", "--model", str(classifier), "--text", "hello there", "--json")
    assert result.exit_code == 0, result.output
    fake_cuda(monkeypatch)
    result = cli("explain", "-m", str(classifier), "--text", "hello", "--json", "--device", "cuda")
    assert result.exit_code == 0, result.output
    assert asked == ["auto", "cuda"]  # the default is predict's: auto, the CPU on this machine


def test_calibrate_fits_on_the_device_asked_for(cli, classifier, held_out, monkeypatch):
    import tunesmith.engine.evaluate as evaluate

    asked = _spy(monkeypatch, evaluate, "load_model")
    result = cli("calibrate", "--model", str(classifier), "--data", str(held_out), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["n_examples"] == 8
    fake_cuda(monkeypatch)
    result = cli("calibrate", "-m", str(classifier), "--data", str(held_out), "--device", "cuda:0")
    assert result.exit_code == 0, result.output
    assert asked == ["auto", "cuda:0"]


def test_explain_and_calibrate_refuse_a_missing_gpu_in_one_line(
    cli, classifier, tmp_path, monkeypatch
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    before = sorted(p.name for p in classifier.iterdir())
    missing = str(tmp_path / "not_read.csv")  # refused before the data is read
    for args in (
        ["explain", "--model", str(classifier), "--data", missing, "--device", "cuda"],
        ["calibrate", "--model", str(classifier), "--data", missing, "--device", "cuda"],
    ):
        result = cli(*args)
        assert result.exit_code == 2
        assert result.output.strip() == "Error: --device cuda: no CUDA device is available"
    assert sorted(p.name for p in classifier.iterdir()) == before
