"""Stage 7, calibrate: a temperature fitted on the held-out logits, and the metrics of
``metrics.json`` measured with it (entity F1 for NER, which has no temperature)."""

from __future__ import annotations

from typing import Any

from tunesmith.engine.calibration import calibration_probs, fit_calibration
from tunesmith.engine.metrics import classification_report, ner_report
from tunesmith.engine.prepare import targets
from tunesmith.engine.stages.state import Training

NO_HELD_OUT_NOTE = "No held-out data (few-shot run without --eval): nothing was measured."


def run(state: Training) -> None:
    """Fill ``state.metrics``, ``state.calibration`` (or ``None``) and the plots' data."""
    import numpy as np

    run, prepared = state.run, state.prepared
    metrics: dict[str, Any] = {"eval_source": prepared.eval_source}
    state.metrics = metrics
    if state.held_logits is None:
        metrics["report"] = None
        metrics["note"] = NO_HELD_OUT_NOTE
        return
    logits = np.asarray(state.held_logits, dtype=np.float64)
    task, labels = prepared.task, prepared.labels
    if task == "ner":
        pred_tags = []
        for i, firsts in enumerate(state.held_firsts or []):
            row = logits[i]
            pred_tags.append([labels[int(row[p].argmax())] if p >= 0 else "O" for p in firsts])
        metrics["report"] = ner_report(prepared.held.tags, pred_tags, scheme=prepared.train.scheme)
        truncated = sum(1 for firsts in state.held_firsts or [] for p in firsts if p < 0)
        if truncated:
            metrics["truncated_words"] = truncated
        return
    multilabel = task == "multilabel"
    y = np.asarray(targets(task, prepared.held, labels))
    temperature = None
    if run.calibrate:
        state.calibration = fit_calibration(
            logits, y, multilabel=multilabel, source=prepared.eval_source
        )
        temperature = state.calibration.get("temperature", state.calibration.get("temperatures"))
        metrics["calibration"] = {
            k: v for k, v in state.calibration.items() if k not in ("fitted_at",)
        }
        metrics["calibration"]["note"] = (
            "fitted and measured on the same held-out data; `tunesmith evaluate` on another "
            "file gives an unbiased ECE"
        )
    probs_before = calibration_probs(logits, None, multilabel)
    probs = calibration_probs(logits, temperature, multilabel)
    metrics["report"] = classification_report(y, probs, labels, multilabel=multilabel)
    state.plots = (probs_before, probs, y)
