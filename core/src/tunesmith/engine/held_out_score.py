"""The one held-out ``score`` the Trainer selects its best checkpoint by (``compute_metrics``),
and what it measures per task."""

from __future__ import annotations

from typing import Any

from tunesmith.engine.metrics import strict_entity_f1

#: What the held-out ``score`` (:func:`score_metrics`) measures, by task, for the progress line.
SCORE_NAMES = {"classification": "accuracy", "multilabel": "micro F1", "ner": "entity F1"}


def score_metrics(task: str, label_names: list[str]) -> Any:
    """``compute_metrics`` for the Trainer: one ``score`` for best-checkpoint selection.

    Accuracy for single-label, micro-F1 at 0.5 for multi-label, strict entity F1 for NER.
    """

    def compute(prediction: Any) -> dict[str, float]:
        logits = prediction.predictions
        if isinstance(logits, tuple):
            logits = logits[0]
        labels = prediction.label_ids
        if task == "classification":
            return {"score": float((logits.argmax(-1) == labels).mean())}
        if task == "multilabel":
            predicted = logits > 0
            truth = labels > 0.5
            tp = float((predicted & truth).sum())
            denominator = float(predicted.sum() + truth.sum())
            return {"score": 2 * tp / denominator if denominator else 1.0}
        predicted = logits.argmax(-1)
        true_tags, pred_tags = [], []
        for row_pred, row_true in zip(predicted, labels, strict=True):
            keep = row_true != -100
            true_tags.append([label_names[i] for i in row_true[keep]])
            pred_tags.append([label_names[i] for i in row_pred[keep]])
        return {"score": strict_entity_f1(true_tags, pred_tags)}

    return compute
