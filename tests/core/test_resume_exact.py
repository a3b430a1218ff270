"""``train --resume`` after a real kill gives the model an uninterrupted run gives, and
``--save-steps`` only adds checkpoints: it changes neither the evaluations nor the model.

The killed runs are ``tunesmith train`` in a process of their own, stopped with SIGKILL right
after a checkpoint in mid-epoch (a plugin callback waits there), as a laptop's closed lid or the
OOM killer stops them. Every run, killed or not, is such a process: forked from a server that has
imported torch and transformers once (their import took most of each run's time), so that no run
shares Python state with another.

Each run trains on one torch thread, so the uninterrupted run a test compares with trains in the
background on the other core while the killed and resumed runs take their turns (the same bits
either way: one thread's reductions do not depend on what else runs).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "core/src/tunesmith/sample_data"
#: 150 rows, 6 labels of 25: not few-shot, so the length-grouped sampler orders the batches.
INTENTS = SAMPLE / "support_intents.csv"
INTENTS_EVAL = SAMPLE / "support_intents_eval.csv"

#: ``tunesmith train`` with a plugin whose callback waits after the checkpoint of step
#: ``$HANG_AT``, having written ``$FLAG``; the test then kills the process. Run with ``exec`` in
#: a forked process, given ``ENV`` (its whole environment), ``ARGV`` and ``OUT``/``ERR`` (files
#: its standard output and error go to).
CHILD = """
import os, sys, time
for fd, name in ((1, OUT), (2, ERR)):
    os.dup2(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
os.environ.clear()
os.environ.update(ENV)
from tunesmith import hookimpl
from tunesmith.plugins import get_plugin_manager

hang = int(os.environ.get("HANG_AT") or 0)

class Hang:
    @hookimpl
    def tunesmith_train_callbacks(self, run):
        from transformers import TrainerCallback

        class Wait(TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                if hang and state.global_step == hang:
                    open(os.environ["FLAG"], "w").close()
                    time.sleep(300)

        return [Wait()]

get_plugin_manager().register(Hang(), name="hang-after-checkpoint")
from tunesmith.cli import build_app
sys.argv = ["tunesmith", *ARGV]
build_app()()
"""

#: What the fork server imports before it forks a run: what ``tunesmith train`` spends its
#: first seconds importing. No tunesmith module: each run imports those afresh.
PRELOAD = ["torch", "transformers", "transformers.trainer", "safetensors.torch", "typer"]


@pytest.fixture(scope="module")
def forks():
    """multiprocessing's fork server, with torch and transformers imported; stopped after,
    with any run a failed test left going."""
    import multiprocessing
    from multiprocessing import forkserver

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    yield context
    for process in multiprocessing.active_children():
        process.kill()
        process.join()
    server = forkserver._forkserver
    if server._forkserver_pid is not None:  # its own exit would tidy torch up for seconds
        os.kill(server._forkserver_pid, signal.SIGKILL)
    server._stop()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from tunesmith.testing import make_tiny_base_model

    root = tmp_path_factory.mktemp("resume_exact")
    texts = [row["text"] for path in (INTENTS, INTENTS_EVAL) for row in csv.DictReader(path.open())]
    return make_tiny_base_model(root / "base", texts)


def _env(tmp_path: Path, out: Path, hang_at: int) -> dict[str, str]:
    return dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        TUNESMITH_THREADS="1",  # one thread: the same reductions, the same bits, in every run
        TUNESMITH_HOME=str(tmp_path / "home"),
        TUNESMITH_CACHE_DIR=str(tmp_path / "cache"),
        HANG_AT=str(hang_at),
        FLAG=str(out) + ".at-checkpoint",
    )


class _Run:
    """A ``tunesmith train`` under way in a process of its own; :meth:`wait` for its end."""

    def __init__(self, process, stderr_path: Path, flag: Path, kill_at: int) -> None:
        self.process, self.stderr_path = process, stderr_path
        self.flag, self.kill_at = flag, kill_at
        self.ended: str | None = None

    def stderr(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path.exists() else ""

    def wait(self) -> str:
        """Its stderr once it has ended (empty when killed); with ``kill_at``, SIGKILL it as
        soon as it waits after that step's checkpoint. Asserts it ended as it should."""
        if self.ended is None:
            self.ended = self._killed() if self.kill_at else self._finished()
        return self.ended

    def _finished(self) -> str:
        self.process.join(timeout=600)
        if self.process.is_alive():  # hung: not left running after the test
            self.process.kill()
        assert self.process.exitcode == 0, self.stderr()
        return self.stderr()

    def _killed(self) -> str:
        deadline = time.monotonic() + 600
        while not self.flag.exists():
            assert self.process.is_alive(), self.stderr()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        self.process.kill()
        self.process.join()
        assert self.process.exitcode == -signal.SIGKILL
        return ""


def _start(forks, tmp_path: Path, base: Path, out: Path, args: list[str], *, kill_at=0) -> _Run:
    """Start ``tunesmith train`` in a process of its own; with ``kill_at``, it waits after the
    checkpoint of that step for :meth:`_Run.wait` to kill it."""
    env = _env(tmp_path, out, kill_at)
    logs = {"OUT": f"{out}.stdout", "ERR": f"{out}.stderr"}
    argv = ["train", "--model", str(base), "--out", str(out), *args]
    process = forks.Process(
        target=exec, args=(CHILD, {"__name__": "__main__", "ENV": env, "ARGV": argv, **logs})
    )
    process.start()
    return _Run(process, Path(logs["ERR"]), Path(env["FLAG"]), kill_at)


def _train(forks, tmp_path: Path, base: Path, out: Path, args: list[str], *, kill_at=0) -> str:
    """Run ``tunesmith train`` in a process of its own; with ``kill_at``, SIGKILL it right after
    the checkpoint of that step. Returns its stderr (empty when killed)."""
    return _start(forks, tmp_path, base, out, args, kill_at=kill_at).wait()


def _weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def _assert_same_model(a: Path, b: Path) -> None:
    import torch

    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-6, atol=1e-6, msg=name)
    ra = json.loads((a / "run_config.json").read_text())["resolved"]
    rb = json.loads((b / "run_config.json").read_text())["resolved"]
    for key in ("global_steps", "epochs_run", "best_checkpoint_step", "average"):
        assert ra.get(key) == rb.get(key), key
    assert rb["train_loss"] == pytest.approx(ra["train_loss"], abs=2e-6)  # the whole run's


def _killed_and_resumed(forks, tmp_path, base, args, kill_at, resume_args=()) -> tuple[Path, str]:
    out = tmp_path / "resumed"
    _train(forks, tmp_path, base, out, args, kill_at=kill_at)
    assert (tmp_path / "resumed.work" / "checkpoints" / f"checkpoint-{kill_at}").is_dir()
    assert not out.exists()
    stderr = _train(forks, tmp_path, base, out, [*args, *resume_args, "--resume"])
    assert f"continuing from {tmp_path / 'resumed.work' / 'checkpoints'}" in stderr
    return out, stderr


# 150 rows at 16 a batch: 10 steps an epoch; step 14 is in the middle of the second epoch.
COMMON = ["--data", str(INTENTS), "--epochs", "3", "--batch-size", "16", "--lr", "0.005"]
#: Without held-out data: the model is the last step's weights.
NO_EVAL = [*COMMON, "--eval-fraction", "0", "--save-steps", "7"]
#: The default recipe with held-out data: early stopping and the best checkpoint.
WITH_EVAL = [*COMMON, "--eval", str(INTENTS_EVAL)]


@pytest.fixture(scope="module")
def uninterrupted(forks, base, tmp_path_factory):
    """The uninterrupted runs the resumed ones are compared with, by name: started in the
    background when first asked for, then waited for (model, stderr)."""
    root = tmp_path_factory.mktemp("uninterrupted")
    made: dict[str, _Run] = {}

    def get(name: str, args: list[str]) -> Callable[[], tuple[Path, str]]:
        """Starts the run (the first time); what it returns waits for it."""
        if name not in made:
            made[name] = _start(forks, root, base, root / name, args)
        return lambda: (root / name, made[name].wait())

    return get


def test_resume_after_a_kill_in_mid_epoch_gives_the_uninterrupted_model(
    forks, tmp_path, base, uninterrupted
):
    """The resumed epoch's batches were drawn anew from another RNG state: another order for
    the rest of the epoch, another model (0.04 apart in the weights) and a different loss."""
    whole = uninterrupted("no-eval", NO_EVAL)
    resumed, _ = _killed_and_resumed(forks, tmp_path, base, NO_EVAL, kill_at=14)
    _assert_same_model(whole()[0], resumed)


def test_resume_after_a_kill_with_held_out_data_chooses_the_same_best_checkpoint(
    forks, tmp_path, base, uninterrupted
):
    """The default recipe with --eval: early stopping and the best checkpoint, resumed in
    mid-epoch before the best one was reached (and compared with a run without --save-steps,
    which only adds checkpoints)."""
    whole = uninterrupted("eval", WITH_EVAL)
    resumed, _ = _killed_and_resumed(
        forks, tmp_path, base, [*WITH_EVAL, "--save-steps", "4"], kill_at=12
    )
    _assert_same_model(whole()[0], resumed)


def test_resume_of_a_few_shot_run_keeps_its_same_label_pair_order(forks, tmp_path, base):
    """Few-shot full fine-tuning pairs same-label examples for the contrastive loss; that
    sampler draws each epoch's order from the RNG too."""
    data = tmp_path / "few.csv"
    counts: dict[str, int] = {}
    with INTENTS.open() as source, data.open("w", newline="") as target:
        writer = csv.writer(target)
        writer.writerow(["text", "label"])
        for row in csv.DictReader(source):
            counts[row["label"]] = counts.get(row["label"], 0) + 1
            if counts[row["label"]] <= 8:
                writer.writerow([row["text"], row["label"]])
    # 48 rows and 6 label names at 8 a batch: 7 steps an epoch; step 10 is mid-epoch.
    args = ["--data", str(data), "--epochs", "3", "--batch-size", "8", "--save-steps", "5"]
    whole = tmp_path / "whole"
    uninterrupted = _start(forks, tmp_path, base, whole, args)
    resumed, _ = _killed_and_resumed(forks, tmp_path, base, args, kill_at=10)
    uninterrupted.wait()
    _assert_same_model(whole, resumed)


def test_resume_averages_the_epochs_the_killed_run_had_ended_too(forks, tmp_path, base):
    """--average-epochs kept its epochs' weights in memory only: the resumed run averaged the
    epochs it ran itself (2 of 3 here), another model."""
    args = [*COMMON, "--eval-fraction", "0", "--save-steps", "7", "--average-epochs", "3"]
    whole = tmp_path / "whole"
    uninterrupted = _start(forks, tmp_path, base, whole, args)
    resumed, _ = _killed_and_resumed(forks, tmp_path, base, args, kill_at=14)
    uninterrupted.wait()
    _assert_same_model(whole, resumed)
    average = json.loads((resumed / "run_config.json").read_text())["resolved"]["average"]
    assert average["epochs"] == 3 and average["kept"]


def test_resume_may_save_checkpoints_at_another_frequency(forks, tmp_path, base, uninterrupted):
    """A laptop user who lost an hour resumes with more frequent checkpoints: not refused,
    and the model is the one the run would have given."""
    whole = uninterrupted("no-eval", NO_EVAL)
    resumed, _ = _killed_and_resumed(
        forks, tmp_path, base, NO_EVAL, kill_at=14, resume_args=["--save-steps", "3"]
    )
    _assert_same_model(whole()[0], resumed)


def test_save_steps_adds_checkpoints_without_changing_evaluations_or_the_model(
    forks, tmp_path, base, uninterrupted
):
    """--save-steps also set the evaluation frequency: 7 steps gave an evaluation every 0.7
    epoch, early stopping counted those, and another checkpoint was chosen as the best."""
    plain_run = uninterrupted("eval", WITH_EVAL)
    saved = tmp_path / "saved"
    saved_log = _train(forks, tmp_path, base, saved, [*WITH_EVAL, "--save-steps", "7"])
    plain, plain_log = plain_run()

    def evaluations(log: str) -> list[str]:
        return [line for line in log.splitlines() if line.startswith("epoch ")]

    assert evaluations(saved_log) == evaluations(plain_log)
    assert [line.split(":")[0] for line in evaluations(plain_log)] == [
        "epoch 1.00", "epoch 2.00", "epoch 3.00"
    ]  # fmt: skip
    _assert_same_model(plain, saved)
