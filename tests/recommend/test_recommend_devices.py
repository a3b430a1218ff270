"""``recommend train``, ``eval``, ``search`` and ``add-items`` take ``--device`` (``train``
``--precision`` too, refused unless fp32), passed to the core's encoder loader and pair training.

This machine has no GPU: CUDA is faked where a test needs it present, the encoder loader is
spied on (it records the device asked for, then loads on the CPU), and training is stopped at
the core call once its arguments are recorded.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from tunesmith.errors import UserInputError
from tunesmith.retrieval import Encoder
from tunesmith.testing import fake_cuda

NO_GPU = "Error: --device cuda: no CUDA device is available"


class _Stopped(UserInputError):
    """Raised by a spied core call once it has recorded its arguments."""


def _spy_encoder(monkeypatch, *, stop: bool = False) -> list[str]:
    """``Encoder.load`` records the device it is asked for, then loads on the CPU (or stops)."""
    asked: list[str] = []
    real = Encoder.load

    def spy(model="default", **kwargs):
        asked.append(kwargs.get("device", "cpu"))
        if stop:
            raise _Stopped("stopped at the core call")
        return real(model, **{**kwargs, "device": "cpu"})

    monkeypatch.setattr(Encoder, "load", staticmethod(spy))
    return asked


@pytest.fixture(scope="module")
def model_dir(tiny_model, tmp_path_factory):
    """A model trained on the sample with the tiny encoder, quickly (no fine-tuning)."""
    from typer.testing import CliRunner

    from tunesmith.cli import build_app

    out = tmp_path_factory.mktemp("rec-devices") / "model"
    args = ["recommend", "train", "--sample", "--model", tiny_model, "--no-fine-tune"]
    result = CliRunner().invoke(build_app(), [*args, "--tower-epochs", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_train_encodes_and_fine_tunes_the_items_on_the_device_asked_for(
    cli, tiny_model, tmp_path, monkeypatch
):
    import tunesmith_recommend.two_tower as two_tower

    fake_cuda(monkeypatch)
    asked = _spy_encoder(monkeypatch)
    seen: dict = {}

    def stop(*args, **kwargs):
        seen.update(kwargs)
        raise _Stopped("stopped at the core call")

    monkeypatch.setattr(two_tower, "train_pair_encoder", stop)
    out = tmp_path / "model"
    args = ["recommend", "train", "--sample", "--model", tiny_model, "--out", str(out)]
    result = cli(*args, "--device", "cuda:0")
    assert result.output.strip().endswith("Error: stopped at the core call"), result.output
    assert asked == ["cuda:0"] and seen["device"] == "cuda:0"
    assert not out.exists()


def test_eval_encodes_the_items_on_the_device_asked_for(cli, tiny_model, monkeypatch):
    fake_cuda(monkeypatch)
    asked = _spy_encoder(monkeypatch, stop=True)
    args = ["recommend", "eval", "--sample", "--model", tiny_model, "--no-fine-tune"]
    result = cli(*args, "--device", "cuda")
    assert result.output.strip().endswith("Error: stopped at the core call"), result.output
    assert asked == ["cuda"]


def test_search_and_add_items_load_the_encoder_on_the_device_asked_for(
    cli, model_dir, tmp_path, monkeypatch
):
    fake_cuda(monkeypatch)
    asked = _spy_encoder(monkeypatch)
    result = cli("recommend", "search", "a haunted lake", "-m", str(model_dir), "--device", "cuda")
    assert result.exit_code == 0, result.output
    assert asked == ["cuda"]

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    new = tmp_path / "new.csv"
    new.write_text("item_id,title,description,genres\nn1,Fog,a haunted lake,horror\n")
    asked.clear()
    result = cli(
        "recommend", "add-items", "--items", str(new), "-m", str(copy), "--device", "cuda:0"
    )
    assert result.exit_code == 0, result.output
    assert asked == ["cuda:0"]


def test_without_device_the_encoder_is_asked_for_auto(cli, model_dir, monkeypatch):
    # auto is the CPU on a machine without a GPU: what these commands did before
    asked = _spy_encoder(monkeypatch)
    result = cli("recommend", "search", "a haunted lake", "-m", str(model_dir))
    assert result.exit_code == 0, result.output
    assert asked == ["auto"]


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--items", "missing.csv", "--events", "missing.csv", "--out", "OUT"],
        ["eval", "--items", "missing.csv", "--events", "missing.csv"],
        ["search", "a lake", "-m", "missing-model"],
        ["add-items", "--items", "missing.csv", "-m", "missing-model"],
    ],
)
def test_a_device_the_machine_lacks_is_one_line_before_anything_is_read(
    cli, tmp_path, monkeypatch, command
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.chdir(tmp_path)
    result = cli("recommend", *command, "--device", "cuda")
    assert result.exit_code == 2, result.output
    assert result.output.strip() == NO_GPU
    assert list(tmp_path.iterdir()) == []  # no model directory, no lock


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_train_refuses_mixed_precision_in_one_line(cli, tmp_path, monkeypatch, precision):
    fake_cuda(monkeypatch)
    out = tmp_path / "model"
    result = cli("recommend", "train", "--sample", "--out", str(out), "--precision", precision)
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        f"Error: --precision {precision}: recommend train's encoder pair training and user "
        "tower run in fp32 only; leave --precision out"
    )
    assert not out.exists()


def test_train_names_the_precisions_for_one_that_is_not(cli, tmp_path):
    result = cli(
        "recommend", "train", "--sample", "--out", str(tmp_path / "m"), "--precision", "fp8"
    )
    assert result.exit_code == 2, result.output
    assert result.output.strip() == "Error: --precision fp8: the choices are fp32, fp16, bf16"
