"""``support train``, ``calibrate``, ``eval``, ``ask``, ``chat`` and ``serve`` take ``--device``
(and ``train`` ``--precision``), passed to the core's loaders and trainers.

This machine has no GPU: CUDA is faked where a test needs it present, the encoder loader is
spied on (it records the device asked for, then loads on the CPU), and training is stopped at
the core call once its arguments are recorded.
"""

from __future__ import annotations

import json

import pytest
import torch

from tunesmith.errors import UserInputError
from tunesmith.testing import fake_cuda
from tunesmith_support.sample import sample_paths

NO_GPU = "Error: --device cuda: no CUDA device is available"


class _Stopped(UserInputError):
    """Raised by a spied trainer once it has recorded its arguments."""


def _spy_encoder(monkeypatch, module) -> list[str]:
    """``module.load_encoder`` records the device it is asked for and loads on the CPU."""
    asked: list[str] = []
    real = module.load_encoder

    def spy(kb_dir, model=None, *, device="cpu", **kwargs):
        asked.append(device)
        return real(kb_dir, model, device="cpu", **kwargs)

    monkeypatch.setattr(module, "load_encoder", spy)
    return asked


def _stop_at(monkeypatch, name: str) -> dict:
    """``tunesmith_support.learning.<name>`` records its arguments and stops the training."""
    import tunesmith_support.learning as learning

    seen: dict = {}

    def stop(*args, **kwargs):
        seen.update(kwargs, args=args)
        raise _Stopped("stopped at the core call")

    monkeypatch.setattr(learning, name, stop)
    return seen


def test_train_passes_the_device_to_the_pair_training(cli, kb_copy, monkeypatch):
    import tunesmith_support.learning as learning

    fake_cuda(monkeypatch)
    asked = _spy_encoder(monkeypatch, learning)
    seen = _stop_at(monkeypatch, "train_pair_encoder")
    history = str(sample_paths()["history"])
    result = cli("support", "train", "--kb", str(kb_copy), "--data", history, "--device", "cuda:0")
    assert result.output.strip().endswith("Error: stopped at the core call")
    assert asked == ["cuda:0"] and seen["device"] == "cuda:0"


def test_train_passes_device_and_precision_to_the_classifier(cli, kb_copy, monkeypatch):
    import tunesmith_support.learning as learning

    fake_cuda(monkeypatch)
    _spy_encoder(monkeypatch, learning)
    seen = _stop_at(monkeypatch, "train_ensemble")
    args = ["support", "train", "--kb", str(kb_copy), "--data", str(sample_paths()["history"])]
    args += ["--no-encoder", "--classifier", "--device", "cuda", "--precision", "fp16"]
    result = cli(*args)
    assert result.output.strip().endswith("Error: stopped at the core call")
    run = seen["args"][0]
    assert (run.device, run.precision) == ("cuda", "fp16")


def test_train_default_is_auto_and_trains_on_this_cpu(cli, kb_copy, monkeypatch):
    import tunesmith_support.learning as learning

    asked = _spy_encoder(monkeypatch, learning)
    seen = _stop_at(monkeypatch, "train_pair_encoder")
    result = cli("support", "train", "--kb", str(kb_copy), "--data", str(sample_paths()["history"]))
    assert result.output.strip().endswith("Error: stopped at the core call")
    assert asked == ["auto"] and seen["device"] == "auto"


def test_train_refuses_a_missing_gpu_or_precision_before_reading_the_questions(
    cli, kb_copy, tmp_path, monkeypatch
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    meta = (kb_copy / "kb.json").read_text(encoding="utf-8")
    unread = str(tmp_path / "not_read.csv")
    result = cli("support", "train", "--kb", str(kb_copy), "--data", unread, "--device", "cuda")
    assert result.exit_code == 2 and result.output.strip() == NO_GPU
    result = cli("support", "train", "--kb", str(kb_copy), "--data", unread, "--precision", "fp16")
    assert result.exit_code == 2
    assert "--precision fp16 needs a CUDA or MPS device" in result.output
    # The pair training has no mixed precision: bf16 (which the CPU runs) needs --classifier.
    result = cli("support", "train", "--kb", str(kb_copy), "--data", unread, "--precision", "bf16")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "Error: --precision bf16 applies to the intent classifier (--classifier); the "
        "encoder's pair training runs in fp32"
    )
    assert (kb_copy / "kb.json").read_text(encoding="utf-8") == meta


@pytest.mark.parametrize(
    "command",
    [
        ["calibrate", "--data", "NOT_READ"],
        ["eval", "--data", "NOT_READ"],
        ["ask", "where is my order"],
        ["chat"],
        ["serve"],
    ],
)
def test_commands_refuse_a_missing_gpu_in_one_line(cli, kb_copy, monkeypatch, command):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = cli("support", *command, "--kb", str(kb_copy), "--device", "cuda")
    assert result.exit_code == 2 and result.output.strip() == NO_GPU
    assert not (kb_copy / "conversations.sqlite").exists()


def test_ask_and_eval_load_the_kb_on_the_device_asked_for(cli, kb_copy, monkeypatch):
    import tunesmith_support.answer as answer

    fake_cuda(monkeypatch)
    asked = _spy_encoder(monkeypatch, answer)
    result = cli("support", "ask", "--kb", str(kb_copy), "shipping cost", "--json")
    assert result.exit_code == 0, result.output
    result = cli("support", "ask", "--kb", str(kb_copy), "refund", "--device", "cuda:0")
    assert result.exit_code == 0, result.output
    questions = str(sample_paths()["questions"])
    result = cli("support", "eval", "--kb", str(kb_copy), "--data", questions, "--device", "cuda")
    assert result.exit_code == 0, result.output
    assert asked == ["auto", "cuda:0", "cuda"]


def test_calibrate_scores_on_the_device_asked_for(cli, kb_copy, monkeypatch):
    import tunesmith_support.learning as learning

    fake_cuda(monkeypatch)
    asked = _spy_encoder(monkeypatch, learning)
    history = str(sample_paths()["history"])
    args = ["support", "calibrate", "--kb", str(kb_copy), "--data", history]
    result = cli(*args, "--target-precision", "0.5", "--json", "--device", "cuda")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["target_precision"] == 0.5
    assert asked == ["cuda"]
