"""``support index --device``: the knowledge base is encoded on the device asked for, a device
the machine lacks is refused before anything is read or written, and the device is not part of
what decides that an entry changed (re-indexing on another device encodes nothing new).

This machine has no GPU: CUDA is faked where a test needs it present, and the core's
``Encoder.load`` is spied on (it records the device asked for, then loads on the CPU).
"""

from __future__ import annotations

import json
import shutil

import torch

from tunesmith.retrieval import Encoder
from tunesmith.testing import fake_cuda
from tunesmith_support.sample import sample_paths

NO_GPU = "Error: --device cuda: no CUDA device is available"


def _spy_encoder_load(monkeypatch) -> list[str]:
    """``Encoder.load`` records the device it is asked for and loads on the CPU."""
    asked: list[str] = []
    real = Encoder.load

    def spy(model, **options):
        asked.append(options.get("device", "cpu"))
        return real(model, **{**options, "device": "cpu"})

    monkeypatch.setattr(Encoder, "load", spy)
    return asked


def _index(cli, sources, out, *args):
    return cli("support", "index", "--kb", str(sources), "--out", str(out), "--json", *args)


def test_index_encodes_the_kb_on_the_device_asked_for(cli, tiny_model, tmp_path, monkeypatch):
    fake_cuda(monkeypatch)
    asked = _spy_encoder_load(monkeypatch)
    out = tmp_path / "kb"
    result = _index(
        cli, sample_paths()["kb"], out, "--model", str(tiny_model), "--device", "cuda:0"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["added"] > 0
    assert asked == ["cuda:0"]


def test_index_default_is_auto(cli, tiny_model, tmp_path, monkeypatch):
    asked = _spy_encoder_load(monkeypatch)
    result = _index(cli, sample_paths()["kb"], tmp_path / "kb", "--model", str(tiny_model))
    assert result.exit_code == 0, result.output
    assert asked == ["auto"]


def test_index_refuses_a_missing_gpu_before_reading_or_writing(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    # Neither the sources nor kb.json are read: an unreadable kb.json would be said first.
    out = tmp_path / "kb"
    out.mkdir()
    (out / "kb.json").write_text("{not json", encoding="utf-8")
    result = _index(cli, tmp_path / "not_read", out, "--device", "cuda")
    assert result.exit_code == 2 and result.output.strip() == NO_GPU
    assert sorted(p.name for p in out.iterdir()) == ["kb.json"]  # no lock file, no index
    fresh = tmp_path / "fresh"
    result = _index(cli, tmp_path / "not_read", fresh, "--device", "cuda")
    assert result.exit_code == 2 and result.output.strip() == NO_GPU
    assert not fresh.exists()


def test_reindexing_on_another_device_encodes_only_what_changed(
    cli, kb_copy, tmp_path, monkeypatch
):
    # kb_copy was built on the CPU; the sources it names are re-read from a private copy.
    sources = tmp_path / "sources"
    shutil.copytree(sample_paths()["kb"], sources)
    result = _index(cli, sources, kb_copy, "--device", "cpu")
    assert result.exit_code == 0, result.output
    meta = json.loads((kb_copy / "kb.json").read_text(encoding="utf-8"))
    fake_cuda(monkeypatch)
    asked = _spy_encoder_load(monkeypatch)
    result = _index(cli, sources, kb_copy, "--device", "cuda")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["added"], report["updated"], report["removed"]) == (0, 0, 0)
    assert report["unchanged"] == report["entries"]
    assert asked == []  # nothing to encode: no encoder loaded, on any device
    # One changed answer: that entry alone is encoded, on the GPU asked for.
    faq = sources / "faq.csv"
    text = faq.read_text(encoding="utf-8")
    old, new = "email you a tracking link.", "email you a tracking link within the hour."
    assert text.count(old) == 1
    faq.write_text(text.replace(old, new), encoding="utf-8")
    result = _index(cli, sources, kb_copy, "--device", "cuda")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["added"], report["updated"], report["removed"]) == (0, 1, 0)
    assert asked == ["cuda"]
    after = json.loads((kb_copy / "kb.json").read_text(encoding="utf-8"))
    # The KB records no device: the same KB opens on a CPU-only machine as before.
    assert "device" not in json.dumps(after)
    # Only the time, the index generation the update was written to (kbgenerations), the
    # record of the source files read (sourcerecord) and the keyword index saved for the
    # changed entries (kblexical) move.
    moved = {"updated_at", "index", "source_files", "lexical"}
    assert after["index"] != meta.get("index", "index")
    assert {k: v for k, v in after.items() if k not in moved} == {
        k: v for k, v in meta.items() if k not in moved
    }


def test_train_index_questions_encodes_the_past_questions_on_the_device_asked_for(
    cli, kb_copy, monkeypatch
):
    fake_cuda(monkeypatch)
    asked = _spy_encoder_load(monkeypatch)
    history = str(sample_paths()["history"])
    args = ["support", "train", "--kb", str(kb_copy), "--data", history, "--no-encoder"]
    result = cli(*args, "--index-questions", "--device", "cuda:0")
    assert result.exit_code == 0, result.output
    assert asked and set(asked) == {"cuda:0"}  # the past questions and the calibration alike
