"""``tunesmith train`` under ``torchrun``: two CPU processes (gloo) train one model together.

The same command runs in both processes; they share the gradient steps (so the run takes the
steps of one process with twice the batch), only the main process writes the model directory and
prints, and the directory predicts what a one-process run with the same global batch predicts.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SUBJECTS = ["i", "we", "my wife", "my son", "the user", "a friend"]
INTENTS = {
    "card_lost": ["lost my card", "cannot find my card", "had my card stolen"],
    "refund": ["want a refund", "need my money back", "ask for a refund now"],
    "delivery": ["order is late", "delivery never came", "order did not arrive"],
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    from tunesmith.testing import make_tiny_base_model, write_csv

    root = tmp_path_factory.mktemp("distributed")
    rows = [(f"{s} {p}", label) for label, ps in INTENTS.items() for p in ps for s in SUBJECTS[:4]]
    held = [(f"{s} {p}", label) for label, ps in INTENTS.items() for p in ps for s in SUBJECTS[4:]]
    return {
        "root": root,
        "base": make_tiny_base_model(root / "base", [t for t, _ in rows]),
        "train": write_csv(root / "train.csv", rows),
        "eval": write_csv(root / "eval.csv", held),
    }


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """The in-process run on one thread, as each torchrun process is (OMP_NUM_THREADS=1)."""


def _args(files: dict[str, Path], out: Path, batch_size: int) -> list[str]:
    return [
        "train", "--data", str(files["train"]), "--eval", str(files["eval"]),
        "--model", str(files["base"]), "--out", str(out), "--pooling", "mean",
        "--epochs", "2", "--lr", "0.01", "--batch-size", str(batch_size),
    ]  # fmt: skip


def _predictions(model_dir: Path, texts: list[str]) -> list[str]:
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_texts

    return [r["label"] for r in predict_texts(load_model(model_dir), texts)]


def test_torchrun_with_two_gloo_processes_writes_one_model_that_predicts_like_one_process(
    cli, files
):
    bin_dir = Path(sys.executable).parent
    out = files["root"] / "two"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TUNESMITH_THREADS="1", OMP_NUM_THREADS="1")
    # Two processes with 4 texts each per step: the global batch of one process with 8.
    launched = subprocess.run(
        [str(bin_dir / "torchrun"), "--standalone", "--nproc-per-node", "2", "--no-python",
         str(bin_dir / "tunesmith"), *_args(files, out, batch_size=4)],
        capture_output=True, text=True, env=env, timeout=240,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stdout[-3000:] + launched.stderr[-5000:]

    # One process wrote and reported: one "saved" line, one training line, nothing left beside.
    assert launched.stdout.count("saved ") == 1, launched.stdout
    assert launched.stderr.count("training classification model") == 1, launched.stderr[-3000:]
    leftovers = sorted(p.name for p in out.parent.iterdir() if p.name.startswith((".two", "two")))
    assert leftovers == ["two"]
    for name in ("model.safetensors", "config.json", "metrics.json", "README.md"):
        assert (out / name).is_file(), name

    # The processes shared their steps: 39 examples (36 + 3 label names) at 2 x 4 a step take
    # 5 steps an epoch, as one process at 8 does; two processes training alone would take 10.
    resolved = json.loads((out / "run_config.json").read_text())["resolved"]
    single = files["root"] / "one"
    result = cli(*_args(files, single, batch_size=8))
    assert result.exit_code == 0, result.output
    one = json.loads((single / "run_config.json").read_text())["resolved"]
    assert resolved["global_steps"] == one["global_steps"] == 10

    # Not bit for bit (the two runs group the texts into batches differently), but the same
    # prediction for every training and held-out text.
    texts = [r["text"] for f in ("train", "eval") for r in csv.DictReader(files[f].open())]
    assert _predictions(out, texts) == _predictions(single, texts)
    metrics = json.loads((out / "metrics.json").read_text())["report"]
    assert metrics["n_examples"] == 18 and metrics["accuracy"] >= 0.9
