"""Runs under kill -9 and concurrency: one run per output, stale temporary files cleaned, resume
from complete checkpoints only, and the "left checkpoints" message only when there are some."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tunesmith.engine.config import RunConfig
from tunesmith.engine.workdir import (
    WORK_MARKER,
    check_work_dir,
    last_complete_checkpoint,
    open_work_dir,
)
from tunesmith.errors import OutputExistsError
from tunesmith.io import atomic_directory, atomic_write_json, remove_stale_temps
from tunesmith.locks import RunLockedError, lock_path, run_lock

DEAD_PID = 4_194_304 + 17  # above Linux's largest pid_max: never a running process

HOLD_LOCK = """
import sys, time
from tunesmith.locks import run_lock
with run_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def lock_holder(tmp_path):
    """Another process holding the run lock of ``tmp_path / 'model'``, as a running train does."""
    out = tmp_path / "model"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    yield out, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


# --- one run per output --------------------------------------------------------------------------


def test_second_train_into_a_locked_out_is_refused_with_one_line(cli, tmp_path, lock_holder):
    out, proc = lock_holder
    data = tmp_path / "d.csv"
    data.write_text("text,label\na,x\nb,y\n", encoding="utf-8")
    result = cli("train", "--data", str(data), "--out", str(out))
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        f"Error: another tunesmith run (pid {proc.pid}) is writing {out}; wait for it to "
        "finish or choose another --out"
    ]
    assert not out.exists()


def test_lock_of_a_run_killed_with_sigkill_is_taken_by_the_next_run(lock_holder):
    out, proc = lock_holder
    with pytest.raises(RunLockedError), run_lock(out):
        pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert lock_path(out).exists()  # left behind by the kill, but no longer held
    with run_lock(out) as path:
        assert path.read_text().strip() == str(os.getpid())
    assert not lock_path(out).exists()


def test_two_spellings_of_one_output_share_one_lock(tmp_path):
    (tmp_path / "sub").mkdir()
    other_spelling = tmp_path / "sub" / ".." / "model"
    with run_lock(tmp_path / "model"), pytest.raises(RunLockedError), run_lock(other_spelling):
        pass


def test_a_link_to_an_output_and_the_output_share_one_lock(tmp_path):
    # A deployment's `current -> v3`: a run given the link writes v3 (atomic_directory follows
    # it), so a run given v3 must be refused, not write the same folder at the same time.
    (tmp_path / "v3").mkdir()
    (tmp_path / "current").symlink_to(tmp_path / "v3", target_is_directory=True)
    with run_lock(tmp_path / "current"), pytest.raises(RunLockedError), run_lock(tmp_path / "v3"):
        pass


def test_train_holds_the_output_lock_while_it_runs(tmp_path, monkeypatch):
    from tunesmith.engine import train as train_module

    seen = {}

    def fake(run, log):
        seen["locked"] = lock_path(run.out_dir).exists()
        with pytest.raises(RunLockedError), run_lock(run.out_dir):
            pass
        return run.out_dir

    monkeypatch.setattr(train_module, "_train_locked", fake)
    data = tmp_path / "d.csv"
    data.write_text("text,label\na,x\nb,y\n", encoding="utf-8")
    train_module.train(RunConfig(data=str(data), out=str(tmp_path / "model")))
    assert seen == {"locked": True}
    assert not lock_path(tmp_path / "model").exists()


# --- stale temporary files -----------------------------------------------------------------------


def test_dead_writers_temp_files_are_removed_by_the_next_write(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    dead = model / f".calibration.json.{DEAD_PID}-abcdefgh.tmp"
    live = model / f".calibration.json.{os.getppid()}-abcdefgh.tmp"
    other = model / f".metrics.json.{DEAD_PID}-abcdefgh.tmp"
    for path in (dead, live, other):
        path.write_text("{")
    atomic_write_json(model / "calibration.json", {"temperature": 1.5})
    assert not dead.exists()
    assert live.exists() and other.exists()  # a running writer's, and another file's
    assert [p.name for p in model.iterdir() if p.name.startswith(".calibration")] == [live.name]


def test_dead_writers_temp_folder_is_removed_by_the_next_atomic_directory(tmp_path):
    stale = tmp_path / f".model.{DEAD_PID}-abcdefgh.tmp"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    with atomic_directory(tmp_path / "model") as tmp:
        (tmp / "config.json").write_text("{}")
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_model_moved_aside_by_a_killed_swap_is_put_back_not_deleted(tmp_path):
    aside = tmp_path / f".model.old-{DEAD_PID}"
    aside.mkdir()
    (aside / "config.json").write_text("{}")
    remove_stale_temps(tmp_path / "model")
    assert (tmp_path / "model" / "config.json").exists() and not aside.exists()


def test_train_removes_and_reports_what_killed_runs_left_beside_the_output(tmp_path):
    from tunesmith.engine.workdir import clean_after_killed_runs

    legacy = tmp_path / ".model.k2j4x9q1.tmp"  # named before pids were recorded
    legacy.mkdir()
    unrelated = tmp_path / ".model.csv.k2j4x9q1.tmp"
    unrelated.write_text("not ours")
    lines: list[str] = []
    run = RunConfig(data="d.csv", out=str(tmp_path / "model"))
    with run_lock(run.out_dir):
        clean_after_killed_runs(run, lines.append)
    assert not legacy.exists() and unrelated.exists()
    assert len(lines) == 1 and "removed 1 temporary item" in lines[0]
    lines.clear()
    with run_lock(run.out_dir):
        clean_after_killed_runs(run, lines.append)
    assert lines == []


# --- resume from complete checkpoints only -------------------------------------------------------


def _checkpoint(folder: Path, step: int, *, complete: bool) -> Path:
    import torch
    from safetensors.torch import save_file

    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    if complete:
        save_file({"w": torch.zeros(4)}, str(path / "model.safetensors"))
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path


def _work(tmp_path: Path, **flags) -> RunConfig:
    run = RunConfig(data="d.csv", out=str(tmp_path / "model"), **flags)
    run.work_path.mkdir()
    (run.work_path / WORK_MARKER).write_text(json.dumps({"settings": {}}))
    return run


def test_resume_skips_a_checkpoint_killed_while_being_written(tmp_path):
    pytest.importorskip("torch")
    folder = tmp_path / "checkpoints"
    good = _checkpoint(folder, 2, complete=True)
    half = _checkpoint(folder, 4, complete=False)
    lines: list[str] = []
    assert last_complete_checkpoint(folder, lines.append) == str(good)
    assert not half.exists()
    assert "checkpoint-4 was not completely written" in lines[0]


def test_checkpoint_with_truncated_weights_is_not_complete(tmp_path):
    pytest.importorskip("torch")
    folder = tmp_path / "checkpoints"
    _checkpoint(folder, 2, complete=True)
    cut = _checkpoint(folder, 4, complete=True)
    weights = cut / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-3])
    assert last_complete_checkpoint(folder).endswith("checkpoint-2")


def test_resume_with_only_incomplete_checkpoints_starts_over_and_says_so(tmp_path):
    pytest.importorskip("torch")
    run = _work(tmp_path, resume=True)
    _checkpoint(run.work_path / "checkpoints", 3, complete=False)
    lines: list[str] = []
    assert open_work_dir(run, lines.append) is None
    assert any("no complete checkpoint" in line for line in lines)


def test_interrupted_run_without_a_checkpoint_does_not_claim_it_left_checkpoints(tmp_path):
    pytest.importorskip("torch")
    run = _work(tmp_path)
    _checkpoint(run.work_path / "checkpoints", 1, complete=False)
    check_work_dir(run)  # nothing to resume: no "left checkpoints", no --force needed
    lines: list[str] = []
    assert open_work_dir(run, lines.append) is None
    assert lines == [f"an interrupted run left {run.work_path} without a complete checkpoint; "
                     "starting over"]  # fmt: skip
    assert not (run.work_path / "checkpoints").exists()


def test_interrupted_run_with_a_checkpoint_still_needs_resume_or_force(tmp_path):
    pytest.importorskip("torch")
    run = _work(tmp_path)
    _checkpoint(run.work_path / "checkpoints", 1, complete=True)
    with pytest.raises(OutputExistsError, match="left checkpoints"):
        check_work_dir(run)


def test_interrupt_before_the_first_checkpoint_does_not_promise_a_resume(tmp_path):
    from tunesmith.engine.workdir import interrupted_message

    run = _work(tmp_path)
    assert "nothing to resume" in interrupted_message(run.work_path)
    assert "checkpoints are kept" not in interrupted_message(run.work_path)


def test_interrupt_after_a_checkpoint_says_how_to_resume(tmp_path):
    pytest.importorskip("torch")
    from tunesmith.engine.workdir import interrupted_message

    run = _work(tmp_path)
    _checkpoint(run.work_path / "checkpoints", 1, complete=True)
    assert "--resume" in interrupted_message(run.work_path)


def test_two_trains_into_one_out_started_together_the_second_is_refused(tmp_path):
    """The reproduction from the issue, with real processes (both used to print "saved"). The
    run that holds the lock is killed once the other is refused: finishing it proves nothing
    more and costs a minute on a busy machine."""
    pytest.importorskip("torch")
    from tunesmith.testing import make_tiny_base_model, write_csv

    rows = [(f"{w} card lost", "card") for w in "abcdef"] + [
        (f"{w} refund please", "refund") for w in "abcdef"
    ]
    base = make_tiny_base_model(tmp_path / "base", [t for t, _ in rows])
    data = write_csv(tmp_path / "d.csv", rows)
    out = tmp_path / "model"
    command = [
        str(Path(sys.executable).parent / "tunesmith"), "train", "--data", str(data),
        "--model", str(base), "--out", str(out), "--strategy", "head", "--epochs", "50",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TUNESMITH_THREADS": "1"}
    procs = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 240
        while all(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.1)
        done = next(p for p in procs if p.poll() is not None)
        running = next(p for p in procs if p is not done)
        _, refused = done.communicate()
        assert done.returncode == 2, refused
        assert f"another tunesmith run (pid {running.pid}) is writing {out}" in refused
        assert running.poll() is None  # the other one is still training, alone
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()
    with run_lock(out):  # the killed run's lock is free again
        pass


def test_calibrate_is_refused_while_another_run_writes_the_model(cli, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    data = tmp_path / "d.csv"
    data.write_text("text,label\na,x\n", encoding="utf-8")
    with run_lock(model):
        result = cli("calibrate", "--model", str(model), "--data", str(data))
    assert result.exit_code == 2, result.output
    assert f"is writing {model}; wait for it to finish or choose another --model" in result.stderr


def test_calibrate_removes_what_a_killed_calibrate_left_and_says_so(cli, tmp_path):
    pytest.importorskip("torch")
    from tunesmith.testing import make_tiny_classifier

    model = make_tiny_classifier(tmp_path / "model", ["a", "b"], ["x y", "z w"])
    legacy = model / ".calibration.json.k2j4x9q1.tmp"  # named before pids were recorded
    legacy.write_text("{")
    data = tmp_path / "d.csv"
    data.write_text("text,label\nx y,a\nz w,b\nx w,a\n", encoding="utf-8")
    result = cli("calibrate", "--model", str(model), "--data", str(data))
    assert result.exit_code == 0, result.output
    assert "removed 1 temporary file(s) a stopped run left" in result.stderr
    assert not legacy.exists() and (model / "calibration.json").exists()


def test_int8_ranges_is_refused_while_another_run_writes_the_model(cli, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    data = tmp_path / "d.csv"
    data.write_text("text\na\n", encoding="utf-8")
    with run_lock(model):
        result = cli("int8-ranges", "--model", str(model), "--data", str(data))
    assert result.exit_code == 2, result.output
    assert "another tunesmith run (pid" in result.stderr


def test_model_commands_on_a_missing_directory_create_nothing(cli, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("text,label\na,x\n", encoding="utf-8")
    result = cli("calibrate", "--model", str(tmp_path / "no" / "model"), "--data", str(data))
    assert result.exit_code == 2
    assert not (tmp_path / "no").exists()


def test_an_out_that_cannot_be_created_is_one_error_line(cli, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("text,label\na,x\nb,y\n", encoding="utf-8")
    result = cli("train", "--data", str(data), "--out", "/proc/no-such-folder/model")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        "Error: --out /proc/no-such-folder/model: cannot create its folder "
        "(No such file or directory)"
    )


def test_a_garbled_work_marker_is_one_error_line_on_resume(tmp_path):
    from tunesmith.errors import DataError

    run = _work(tmp_path, resume=True)
    (run.work_path / WORK_MARKER).write_text("{" * 5 + "oops")
    with pytest.raises(DataError, match=r"tunesmith-work\.json: not valid JSON"):
        check_work_dir(run)


KILLED_IN_THE_WORK_FOLDER = """
import os, shutil, sys
from tunesmith.engine import workdir
from tunesmith.engine.config import RunConfig

def die(path, *args, **kwargs):
    if sys.argv[3] == "removing":  # the marker goes first, then the process is killed
        for marker in __import__("pathlib").Path(path).rglob(workdir.WORK_MARKER):
            marker.unlink()
    os.kill(os.getpid(), 9)

if sys.argv[3] == "removing":
    shutil.rmtree = die
else:
    workdir.atomic_write_json = die
workdir.open_work_dir(RunConfig(data=sys.argv[1], out=sys.argv[2], force=True), print)
"""


@pytest.mark.parametrize("moment", ["removing", "creating"])
def test_a_run_killed_while_it_replaces_its_work_folder_leaves_no_folder_without_marker(
    tmp_path, moment
):
    """``train --force`` removes the interrupted run's work folder and makes a new one; killed
    in between, the folder was left without its marker, and every later run, even with
    --force, was refused: "exists and is not a tunesmith work directory"."""
    data = tmp_path / "d.csv"
    data.write_text("text,label\na,x\nb,y\n", encoding="utf-8")
    run = _work(tmp_path, force=True)
    (run.work_path / "checkpoints" / "checkpoint-1").mkdir(parents=True)
    run.data = str(data)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_IN_THE_WORK_FOLDER, str(data), str(run.out_dir), moment],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not run.work_path.exists() or (run.work_path / WORK_MARKER).is_file()
    check_work_dir(run)  # the next run is not refused
    lines: list[str] = []
    with run_lock(run.out_dir):
        from tunesmith.engine.workdir import clean_after_killed_runs

        clean_after_killed_runs(run, lines.append)
        assert open_work_dir(run, lines.append) is None
    assert (run.work_path / WORK_MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "model.work"]
