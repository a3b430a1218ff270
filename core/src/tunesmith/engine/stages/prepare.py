"""Stage 1, prepare: the base model found, the data loaded, checked, cleaned, split and augmented,
the work directory opened. Nothing heavy is imported yet, so every mistake costs a second."""

from __future__ import annotations

from importlib import metadata

from tunesmith.data.excel import data_file
from tunesmith.engine.prepare import prepare_data
from tunesmith.engine.stages.state import Training
from tunesmith.engine.strategies import check_freeze_depth
from tunesmith.engine.workdir import open_work_dir, resumed_label_order
from tunesmith.io import file_sha256
from tunesmith.models import resolve_model


def run(state: Training) -> None:
    """Fill ``state.prepared``, the base model's location and name, and ``resume_from``."""
    run = state.run
    base = resolve_model(run.model)
    check_freeze_depth(run.strategy, base.location)  # before the data, the probe and the fit
    state.prepared = prepare_data(run, model_location=base.location, log=state.log)
    state.base_location = base.location
    # A hub model is recorded by its id, not the download folder on this machine.
    state.base_name = base.location if base.is_local and run.model != "default" else run.model
    prepared, resolved = state.prepared, state.resolved
    resolved.data_sha256 = file_sha256(data_file(run.data))  # book.xlsx#Sheet: the book
    # Before anything is encoded with them: a resumed run's checkpoints fix the order.
    prepared.labels = resumed_label_order(run, prepared.labels, state.log)
    state.resume_from = open_work_dir(run, state.log, prepared.labels)
    resolved.notes = list(prepared.notes)
    resolved.task, resolved.labels = prepared.task, prepared.labels
    resolved.base_model_name, resolved.base_model_location = base.display_name, base.location
    resolved.n_train = len(prepared.train)
    resolved.n_eval = len(prepared.held) if prepared.held is not None else 0
    resolved.eval_source, resolved.eval_fraction = prepared.eval_source, prepared.eval_fraction
    resolved.n_augmented, resolved.n_label_examples = (
        prepared.n_augmented,
        prepared.n_label_examples,
    )
    resolved.few_shot = prepared.few_shot
    resolved.calibration = "temperature" if (run.calibrate and prepared.task != "ner") else None
    resolved.versions = _versions()
    if prepared.task == "ner":
        resolved.scheme = prepared.train.scheme


def _versions() -> dict[str, str]:
    found = {}
    for name in ("tunesmith", "torch", "transformers", "peft"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found
