"""``finance train`` takes ``--device`` and ``--precision`` (the engine's), and ``score``,
``ingest`` and ``watch`` take ``--device`` (int8 stays on the CPU).

This machine has no GPU: CUDA is faked where a test needs it present, the loader is spied on
(it records the device asked for, then loads on the CPU), and training is stopped at the core
call once its run is recorded.
"""

from __future__ import annotations

import json

import pytest
import torch
from finance_fakes import spy_loader

from tunesmith.errors import UserInputError
from tunesmith.testing import fake_cuda
from tunesmith_finance.sample import TRAIN

NO_GPU = "Error: --device cuda: no CUDA device is available"


def _stop_training(monkeypatch) -> list:
    """``train_ensemble`` records the run it is given and stops there."""
    import tunesmith_finance.training as training

    runs: list = []

    def stop(run, members, **_kwargs):
        runs.append(run)
        raise UserInputError("stopped at the core call")

    monkeypatch.setattr(training, "train_ensemble", stop)
    return runs


@pytest.mark.parametrize("topics", [False, True])
def test_train_passes_device_and_precision_to_the_engine(cli, tmp_path, monkeypatch, topics):
    fake_cuda(monkeypatch)
    runs = _stop_training(monkeypatch)
    args = ["finance", "train", "--data", str(TRAIN), "--out", str(tmp_path / "m")]
    args += ["--device", "cuda:0", "--precision", "bf16"] + (["--topics"] if topics else [])
    result = cli(*args)
    assert result.output.strip().endswith("Error: stopped at the core call"), result.output
    assert (runs[0].device, runs[0].precision) == ("cuda:0", "bf16")


def test_train_default_is_the_engines_auto_in_fp32(cli, tmp_path, monkeypatch):
    runs = _stop_training(monkeypatch)
    result = cli("finance", "train", "--data", str(TRAIN), "--out", str(tmp_path / "m"))
    assert result.output.strip().endswith("Error: stopped at the core call"), result.output
    assert (runs[0].device, runs[0].precision) == ("auto", "fp32")


def test_train_refuses_a_missing_gpu_or_precision_before_reading_the_data(
    cli, tmp_path, monkeypatch
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    unread = str(tmp_path / "not_read.csv")
    out = tmp_path / "m"
    result = cli("finance", "train", "--data", unread, "--out", str(out), "--device", "cuda")
    assert result.exit_code == 2 and result.output.strip() == NO_GPU
    result = cli("finance", "train", "--data", unread, "--out", str(out), "--precision", "fp16")
    assert result.exit_code == 2 and "--precision fp16 needs a CUDA or MPS device" in result.output
    assert not out.exists()


def test_score_loads_the_model_on_the_device_asked_for(cli, tiny_model, monkeypatch):
    asked = spy_loader(monkeypatch)
    result = cli(
        "finance", "score", "--model", str(tiny_model), "--text", "shares plunge", "--json"
    )
    assert result.exit_code == 0, result.output
    fake_cuda(monkeypatch)
    args = ["finance", "score", "--model", str(tiny_model), "--text", "shares plunge"]
    result = cli(*args, "--json", "--explain", "--device", "cuda")
    assert result.exit_code == 0, result.output
    assert "words" in json.loads(result.output.splitlines()[-1])
    assert asked == ["auto", "cuda"]


def test_ingest_loads_its_models_on_the_device_asked_for(cli, tiny_model, tmp_path, monkeypatch):
    import tunesmith_finance.scoring as scoring

    feed = tmp_path / "feed.jsonl"
    feed.write_text(
        '{"id": "1", "time": "2024-01-02T10:00:00Z", "text": "helix bank shares plunge"}\n',
        encoding="utf-8",
    )
    asked = spy_loader(monkeypatch)
    topic_asked: list[str] = []
    real = scoring.load_model

    def topic_spy(path, *, device="cpu", **kwargs):
        topic_asked.append(device)
        return real(path, device="cpu", **kwargs)

    monkeypatch.setattr(scoring, "load_model", topic_spy)
    fake_cuda(monkeypatch)
    db = tmp_path / "f.sqlite"
    args = ["finance", "ingest", str(feed), "--model", str(tiny_model), "--db", str(db)]
    result = cli(*args, "--topic-model", str(tiny_model), "--device", "cuda:0", "--json")
    assert result.exit_code == 0, result.output
    assert asked == ["cuda:0"] and topic_asked == ["cuda:0"]


@pytest.mark.parametrize("command", ["score", "ingest", "watch"])
def test_serving_commands_refuse_a_missing_gpu_before_reading(
    cli, tiny_model, tmp_path, monkeypatch, command
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    db = tmp_path / "f.sqlite"
    unread = str(tmp_path / "not_read.jsonl")
    args = {
        "score": ["--data", unread],
        "ingest": [unread, "--db", str(db)],
        "watch": [str(tmp_path), "--db", str(db), "--once"],
    }[command]
    result = cli("finance", command, *args, "--model", str(tiny_model), "--device", "cuda")
    assert result.exit_code == 2 and result.output.strip() == NO_GPU
    assert not db.exists()


def test_int8_with_a_gpu_is_refused_and_auto_keeps_it_on_the_cpu(cli, tiny_model, monkeypatch):
    fake_cuda(monkeypatch)
    args = ["finance", "score", "--model", str(tiny_model), "--text", "shares plunge"]
    result = cli(*args, "--quantize", "int8", "--device", "cuda")
    assert result.exit_code == 2
    assert "--quantize int8 runs on the CPU only" in result.output
    result = cli(*args, "--quantize", "int8", "--json")  # auto: int8 runs on the CPU
    assert result.exit_code == 0, result.output
