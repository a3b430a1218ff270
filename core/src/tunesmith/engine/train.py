"""``train(run)``: data file in, fine-tuned, measured, documented model directory out.

Order matters for the user: every cheap check (flags, output directory, model name, the data
files) runs before torch is imported, so a mistake costs a second, not a training run. The model
directory is written to a temporary sibling and renamed into place at the very end, so a failed
or interrupted run never touches an existing directory. Checkpoints live in a work directory
(``<out>.work``) that ``--resume`` continues from and a finished run removes.

The work itself is a sequence of stages (:mod:`tunesmith.engine.stages`); :func:`_train_locked`
reads as that sequence.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

from tunesmith.devices import check_precision, resolve_device
from tunesmith.engine.config import RunConfig
from tunesmith.engine.distributed import barrier, is_main_process
from tunesmith.engine.prepare import Log, stderr_log
from tunesmith.engine.resolved import Resolved
from tunesmith.engine.stages import (
    average,
    calibrate,
    encode,
    fit,
    head,
    lexical,
    measure,
    nearest,
    prepare,
    self_training,
    wise_ft,
    write,
)
from tunesmith.engine.stages.fit import TrainingInterrupted
from tunesmith.engine.stages.state import Training
from tunesmith.engine.workdir import check_work_dir, clean_after_killed_runs
from tunesmith.io import check_writable_dir, remove_tree
from tunesmith.locks import run_lock
from tunesmith.models import allow_network

__all__ = ["TrainingInterrupted", "headline", "train"]


def train(run: RunConfig, *, log: Log = stderr_log) -> Path:
    """Train a model as ``run`` says and write its directory; returns the directory's path.

    Raises :class:`~tunesmith.errors.UserInputError` (bad flags, data, model name, an existing
    output, or another run writing the same output) before any heavy work, and
    :class:`TrainingInterrupted` on Ctrl-C. ``run.resolved`` holds what the run resolved.
    """
    run.validate()
    if not is_main_process():
        # Under torchrun / accelerate launch the main process holds the lock, writes and
        # prints; this one trains alongside it and stays quiet.
        return _train_locked(run, _quiet)
    with contextlib.ExitStack() as held:
        # One run per output (and work folder): a second one is refused, not interleaved.
        held.enter_context(run_lock(run.out_dir))
        if run.work_dir:
            held.enter_context(run_lock(run.work_path, flag="--work-dir"))
        clean_after_killed_runs(run, log)
        return _train_locked(run, log)


def _quiet(message: str) -> None:
    """The log of the processes that are not the main one."""


def _train_locked(run: RunConfig, log: Log) -> Path:
    """:func:`train` with the output's lock held: the checks, then the stages in order."""
    run.validate()
    check_writable_dir(run.out_dir, force=run.force)
    if is_main_process():  # the others could see its work folder half made; it checks for all
        check_work_dir(run)
    allow_network(run.allow_network)
    run.resolved = Resolved()
    # Before the data is read: a device this machine lacks is one line, not a late traceback.
    run.resolved.device = resolve_device(run.device)
    run.resolved.precision = check_precision(run.precision, run.resolved.device)
    state = Training(run=run, log=log, resolved=run.resolved)
    prepare.run(state)
    encode.run(state)
    head.run(state)
    fit.run(state)
    average.run(state)
    wise_ft.run(state)
    nearest.run(state)
    self_training.run(state)
    measure.run(state)
    calibrate.run(state)
    lexical.run(state)
    if not is_main_process():
        barrier()  # until the main process has written the model directory
        return run.out_dir
    out = write.run(state)
    remove_tree(run.work_path)  # renamed aside first: a kill never leaves half of it
    barrier()
    return out


def headline(metrics: dict[str, Any]) -> str:
    """One line for the terminal: the metric a user looks at first."""
    report = metrics.get("report") or {}
    if not report:
        # A few-shot run (fewer than 20 examples per label, median) keeps every example for
        # training; say how to get a measure instead of leaving the user with none.
        return (
            "no held-out data, so nothing was measured (a few-shot run trains on every "
            "example; --eval FILE or --eval-fraction 0.1 measures one)"
        )
    if report.get("task") == "ner":
        return f"entity F1 {report.get('f1', math.nan):.4f}"
    parts = [f"accuracy {report.get('accuracy', math.nan):.4f}"]
    if "macro_f1" in report:
        parts.append(f"macro F1 {report['macro_f1']:.4f}")
    if "ece" in report:
        parts.append(f"ECE {report['ece']:.4f}")
    return ", ".join(parts)
