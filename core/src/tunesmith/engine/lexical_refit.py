"""A new ``--lexical`` share for a model trained before, without training the transformer again:
the n-gram regression is refitted on the same training split (seconds, not a fine-tuning run),
and ``metrics.json``, ``run_config.json`` and the model card are brought up to date.

Seed ensembles (:func:`tunesmith.engine.ensemble.train_ensemble` with ``reuse``) use it for a
member that differs from the asked run only in ``lexical``, so that the share can be chosen on
held-out data at the cost of the regressions alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunesmith.engine.calibration import calibration_probs
from tunesmith.engine.config import RunConfig
from tunesmith.engine.lexical import LEXICAL_ARRAYS, LEXICAL_FILE, store_lexical
from tunesmith.engine.loading import load_model
from tunesmith.engine.metrics import classification_report
from tunesmith.engine.model_card import render_model_card
from tunesmith.engine.predict import predict_logits
from tunesmith.engine.prepare import Log, prepare_data, stderr_log, targets
from tunesmith.engine.stages import lexical as lexical_stage
from tunesmith.engine.stages.write import draw_plots
from tunesmith.errors import UserInputError
from tunesmith.io import atomic_write_json, atomic_write_text, read_json_object
from tunesmith.locks import writing_into
from tunesmith.model_dir import (
    CLEANING_REPORT_FILE,
    CONFIG_FILE,
    CONFUSION_MATRIX_FILE,
    METRICS_FILE,
    MODEL_CARD_FILE,
    RELIABILITY_FILE,
    RUN_CONFIG_FILE,
)
from tunesmith.models import resolve_model

#: What a refit rewrites in the model directory.
REWRITTEN = [LEXICAL_FILE, LEXICAL_ARRAYS, CONFIG_FILE, METRICS_FILE, CONFUSION_MATRIX_FILE,
             RELIABILITY_FILE, MODEL_CARD_FILE, RUN_CONFIG_FILE]  # fmt: skip


def refit_lexical(model_dir: str | Path, run: RunConfig, *, log: Log = stderr_log) -> None:
    """Give the trained model in ``model_dir`` the lexical part ``run.lexical`` asks for (none
    for 0), fitted on the training split ``run`` draws from its data, as training would.

    Holds the directory's run lock, as ``tunesmith calibrate`` does: not while a training run
    replaces it or another refit or calibration writes it."""
    with writing_into(model_dir, REWRITTEN, flag="--out"):
        _refit(Path(model_dir), run, log)


def _refit(model_dir: Path, run: RunConfig, log: Log) -> None:
    stored = RunConfig.from_dict(read_json_object(model_dir / RUN_CONFIG_FILE) or {})
    prepared = prepare_data(
        run, model_location=resolve_model(run.model).location, log=lambda _m: None
    )
    trained = stored.resolved.labels
    if trained and sorted(trained) == sorted(prepared.labels):
        # The regression's columns follow the transformer's outputs, in the order it was
        # trained with: whole-number labels were once ordered as text ("10" before "2").
        prepared.labels = list(trained)
    metrics = read_json_object(model_dir / METRICS_FILE) or {}
    before = metrics.pop("lexical", None) or {}
    single = prepared.task == "classification"
    # The notes training left about the lexical part describe the old share, not this one.
    notes = [n for n in stored.resolved.notes if not n.startswith(lexical_stage.NOTE_PREFIX)]
    lexical = None
    if run.lexical and not single:
        notes.append(lexical_stage.not_single_label_note(prepared.task))
    elif run.lexical:
        try:
            lexical = lexical_stage.fit(prepared, run.lexical, class_weights=run.class_weights)
        except UserInputError as exc:  # as in training: the transformer stays, without it
            notes.append(lexical_stage.not_used_note(exc))
            log(f"{model_dir}: the lexical model was not fitted: {exc}")
    stored.resolved.notes = notes
    held = prepared.held
    measurable = held is not None and not _held_in_memory(stored)
    if single and metrics.get("report") and not measurable:
        _report_not_measured(metrics, before, run.lexical if lexical is not None else 0.0)
    plots = None
    if single and metrics.get("report") and measurable:
        loaded = load_model(model_dir)
        loaded.extra.pop("lexical", None)  # the transformer's own probabilities
        logits = predict_logits(loaded, held.texts)
        raw = calibration_probs(logits, None, False)
        probs = calibration_probs(logits, loaded.temperature, False)
        y = targets(prepared.task, held, prepared.labels)
        if lexical is not None:
            lexical_probs = lexical.probabilities(held.texts)  # once, for the report and the plot
            mixed = lexical_stage.measure(
                metrics, lexical, probs, y, held.texts, prepared.labels,
                calibrate=loaded.temperature is not None, lexical_probs=lexical_probs,
            )  # fmt: skip
            before = lexical.mix(raw, held.texts, calibrated=False, lexical_probs=lexical_probs)
            plots = (before, mixed, y), loaded.temperature is not None
        else:
            metrics["report"] = classification_report(y, probs, prepared.labels)
            plots = (raw, probs, y), loaded.temperature is not None
    if lexical is not None:
        lexical = lexical_stage.join_held_out(lexical, prepared, run, metrics, lambda _m: None)
    # Files change only from here, after the fitting (seconds to a minute): a refit stopped
    # before leaves the old lexical files, which the old run configuration describes. That is
    # written last, so a refit stopped in between still reads as the old share and the next
    # --reuse with the new one refits again.
    store_lexical(model_dir, lexical)
    if lexical is not None:
        log(f"{model_dir}: lexical model refitted (share {run.lexical:g}), transformer kept")
    atomic_write_json(model_dir / METRICS_FILE, metrics)
    if plots is not None:  # the plots of the report measured again
        draw_plots(model_dir, metrics["report"], plots[0], calibrated=plots[1], log=log)
    stored.lexical = run.lexical
    cleaning = read_json_object(model_dir / CLEANING_REPORT_FILE)
    atomic_write_text(model_dir / MODEL_CARD_FILE, render_model_card(stored, metrics, cleaning))
    atomic_write_json(model_dir / RUN_CONFIG_FILE, stored.to_dict())


def _report_not_measured(metrics: dict[str, Any], before: dict[str, Any], share: float) -> None:
    """Record in ``metrics["lexical"]`` that the held-out report was not measured again: it
    describes the model with the share it was measured with (``report_share``), which may not be
    ``share``, the one the directory now holds."""
    if "report_share" in before:
        report_share = float(before["report_share"])
    else:  # measured by training (a mixed report) or without a lexical model
        report_share = float(before.get("weight", 0.0)) if "mixed_accuracy" in before else 0.0
    if report_share == share:
        if share:
            kept = {k: v for k, v in before.items() if k not in ("report_share", "note")}
            metrics["lexical"] = {**kept, "weight": share}
        return
    metrics["lexical"] = {
        "weight": share,
        "report_share": report_share,
        "note": (
            f"the held-out report was measured with lexical share {report_share:g}, not "
            f"{share:g}: those texts joined the nearest examples, so they cannot measure the "
            "refitted model"
        ),
    }


def _held_in_memory(stored: RunConfig) -> bool:
    """True when the held-out texts joined the model's nearest examples after it was measured:
    measuring them again would score texts the model remembers."""
    return bool((stored.resolved.nearest or {}).get("held_out_added"))
