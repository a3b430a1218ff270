"""Stage 8, write the model directory: weights, tokenizer, run configuration, metrics, cleaning
report, calibration, int8 ranges, plots and model card, into a temporary sibling renamed into
place at the very end (a failed run never touches an existing directory)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tunesmith.engine.calibration import save_calibration
from tunesmith.engine.int8_ranges import save_int8_ranges
from tunesmith.engine.lexical import store_lexical
from tunesmith.engine.model_card import render_model_card
from tunesmith.engine.modeling import save_classifier
from tunesmith.engine.plots import save_confusion_matrix_png, save_reliability_diagram
from tunesmith.engine.prepare import Log
from tunesmith.engine.stages.state import Training
from tunesmith.engine.workdir import has_resumable_work
from tunesmith.errors import DiskFullError, room_hint
from tunesmith.io import atomic_directory, atomic_write_json, atomic_write_text
from tunesmith.model_dir import (
    CLEANING_REPORT_FILE,
    CONFUSION_MATRIX_FILE,
    METRICS_FILE,
    MODEL_CARD_FILE,
    RELIABILITY_FILE,
    RUN_CONFIG_FILE,
    TENSORBOARD_DIR,
)


def run(state: Training) -> Path:
    """Write ``--out``; returns its path."""
    try:
        return _write(state)
    except DiskFullError as exc:
        work = state.run.work_path
        if not has_resumable_work(work):
            raise
        # The training is in the checkpoints: --resume continues from the last one.
        then = "run the same command with --resume"
        outcome = (
            f"not written (any previous version is unchanged) and the checkpoints in {work} "
            f"are kept: {room_hint(exc.errno, then)}"
        )
        raise DiskFullError(exc.path, exc.errno, outcome=outcome) from exc


def _write(state: Training) -> Path:
    run, prepared, metrics = state.run, state.prepared, state.metrics
    out = run.out_dir
    with atomic_directory(out, force=run.force) as tmp:
        # Merges a LoRA adapter and marks what plain transformers would compute differently.
        save_classifier(state.model, tmp)
        state.tokenizer.save_pretrained(str(tmp))
        atomic_write_json(tmp / RUN_CONFIG_FILE, run.to_dict())
        atomic_write_json(tmp / METRICS_FILE, metrics)
        atomic_write_json(tmp / CLEANING_REPORT_FILE, prepared.cleaning)
        if state.calibration is not None:
            save_calibration(tmp, state.calibration)
        if state.lexical is not None:
            store_lexical(tmp, state.lexical)
        _record_int8_ranges(state, tmp)
        _draw_plots(state, tmp)
        if state.tensorboard_dir is not None and state.tensorboard_dir.is_dir():
            shutil.copytree(state.tensorboard_dir, tmp / TENSORBOARD_DIR)
        atomic_write_text(tmp / MODEL_CARD_FILE, render_model_card(run, metrics, prepared.cleaning))
    return out


def _draw_plots(state: Training, directory: Path) -> None:
    if state.plots is None:
        return
    report = state.metrics.get("report") or {}
    draw_plots(directory, report, state.plots, calibrated=state.calibration is not None,
               log=state.log)  # fmt: skip


def draw_plots(
    directory: Path, report: dict[str, Any], plots: Any, *, calibrated: bool, log: Log
) -> None:
    """The held-out confusion matrix of ``report`` and, for a ``calibrated`` model, the
    reliability diagram of ``plots`` (probabilities before and after the temperature, truth)."""
    try:
        if report.get("confusion_matrix"):
            save_confusion_matrix_png(report, directory / CONFUSION_MATRIX_FILE)
        if calibrated:
            before, after, y = plots
            save_reliability_diagram(
                before,
                y,
                directory / RELIABILITY_FILE,
                title="Reliability (held-out data)",
                probs_after=after,
            )
    except Exception as exc:  # a plot must never cost the user a trained model
        log(f"warning: could not draw the plots ({type(exc).__name__}: {exc})")


def _record_int8_ranges(state: Training, directory: Path) -> None:
    """Write ``int8_ranges.json`` from the saved model run on training texts (for --quantize)."""
    train_rows = state.prepared.train
    texts = train_rows.tokens if state.prepared.task == "ner" else train_rows.texts
    try:
        # From the directory as saved, not the model in memory: load_model merges a LoRA adapter,
        # so the layer names are the ones `load_model(..., quantize="int8")` will look up.
        save_int8_ranges(directory, texts)
    except Exception as exc:  # int8 then quantises per batch; never cost the user a model
        state.log(f"warning: could not record the int8 ranges ({type(exc).__name__}: {exc})")
