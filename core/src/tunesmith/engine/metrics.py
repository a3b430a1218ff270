"""Evaluation reports: classification, multi-label and entity-level NER metrics (pure computation;
plots are in :mod:`tunesmith.engine.plots`, evaluating a saved model in :mod:`tunesmith.engine.evaluate`).

Precision, recall, F1, accuracy, the confusion matrix and log loss come from scikit-learn
(imported when a report is made). Expected calibration error is computed here: scikit-learn has
no top-label ECE for several classes (``calibration_curve`` is for one binary problem and drops
empty bins); it uses 15 equal-width confidence bins over the top-label confidence (multi-label:
each label as a binary problem, ECE averaged over labels). NER uses seqeval in
strict mode with the IOB2 scheme; IO tags are first converted to BIO by starting an entity at each
change of type, and an ``I-X`` that follows ``O`` or another type is read as the start of an
entity in gold and predictions alike (what ``predict`` shows and conlleval reads).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

ECE_BINS = 15


def _r(value: float) -> float:
    return round(float(value), 6) if math.isfinite(value) else float("nan")


def reliability_bins(probs: np.ndarray, y: np.ndarray, n_bins: int = ECE_BINS) -> dict[str, Any]:
    """Per-bin mean confidence, accuracy and count over ``n_bins`` equal-width bins.

    ``y`` 1-D: top-label confidence against correctness. ``y`` 2-D (multi-label): every
    (row, label) pair's probability of the label against its presence.
    """
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y)
    if y.ndim == 2:
        conf, correct = probs.ravel(), y.ravel().astype(np.float64)
    else:
        conf = probs.max(axis=1)
        correct = (probs.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bins are (lo, hi]; a confidence of exactly 0 joins the first bin.
    index = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=conf, minlength=n_bins) / count
        accuracy = np.bincount(index, weights=correct, minlength=n_bins) / count
    return {"edges": edges, "count": count, "confidence": mean_conf, "accuracy": accuracy}


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE: the count-weighted mean |accuracy - confidence| over equal-width confidence bins.

    ``probs`` is ``(n, classes)`` and ``y`` the true class indices (top-label ECE). For a 2-D
    ``y`` (multi-label indicator matrix) this is :func:`multilabel_ece`.
    """
    y = np.asarray(y)
    if y.ndim == 2:
        return multilabel_ece(probs, y, n_bins=n_bins)
    if len(y) == 0:
        return float("nan")
    bins = reliability_bins(probs, y, n_bins)
    filled = bins["count"] > 0
    gaps = np.abs(bins["accuracy"][filled] - bins["confidence"][filled])
    return float(np.sum(gaps * bins["count"][filled]) / len(y))


def multilabel_ece(probs: np.ndarray, Y: np.ndarray, n_bins: int = ECE_BINS) -> float:  # noqa: N803
    """Mean over labels of each label's binary top-label ECE (probabilities ``[1-p, p]``)."""
    probs = np.asarray(probs, dtype=np.float64)
    Y = np.asarray(Y)  # noqa: N806
    if Y.size == 0:
        return float("nan")
    values = [
        expected_calibration_error(
            np.stack([1 - probs[:, j], probs[:, j]], axis=1), Y[:, j].astype(int), n_bins
        )
        for j in range(Y.shape[1])
    ]
    return float(np.mean(values))


def nll(probs: np.ndarray, y: np.ndarray, *, multilabel: bool = False) -> float:
    """Mean negative log-likelihood of the truth (multi-label: mean binary cross-entropy over
    every (row, label) pair): scikit-learn's ``log_loss`` of the probabilities clipped to
    ``[1e-12, 1 - 1e-12]``.

    The clip is tunesmith's (scikit-learn's own is float64's epsilon, 2.2e-16): one confidently
    wrong example costs at most 27.6 rather than 36.0, and the figures stay those of earlier
    ``metrics.json`` files.
    """
    from sklearn.metrics import log_loss

    probs = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1 - 1e-12)
    y = np.asarray(y)
    if len(y) == 0:
        return float("nan")
    if multilabel:  # each (row, label) pair a binary problem with probability p of "present"
        return float(log_loss(y.ravel().astype(np.int64), probs.ravel(), labels=[0, 1]))
    return float(log_loss(y, probs, labels=np.arange(probs.shape[1])))


def _per_label(names: Sequence[str], p: Any, r: Any, f: Any, support: Any) -> dict[str, Any]:
    return {
        name: {
            "precision": _r(p[j]),
            "recall": _r(r[j]),
            "f1": _r(f[j]),
            "support": int(support[j]),
        }
        for j, name in enumerate(names)
    }


def classification_report(
    y_true: np.ndarray,
    probs: np.ndarray,
    label_names: Sequence[str],
    multilabel: bool = False,
) -> dict[str, Any]:
    """The evaluation report of a sequence classifier, as a JSON-ready dict.

    Single-label (``y_true`` class indices): ``accuracy``, ``macro_f1`` and ``weighted_f1``
    (macro over the labels present in the truth or the predictions, as scikit-learn does),
    ``per_label``, ``confusion_matrix`` (``labels``, ``matrix`` with true labels as rows), ``ece``
    (15 equal-width bins, top-label confidence) and ``nll``. Multi-label (``y_true`` an indicator
    matrix, a label predicted when its probability is above 0.5): ``subset_accuracy`` (also as
    ``accuracy``), ``micro_f1``, ``macro_f1``, ``weighted_f1``, ``per_label`` (with each label's
    ECE), ``ece`` (mean of the per-label ECEs) and ``nll`` (mean binary cross-entropy).
    """
    probs = np.asarray(probs, dtype=np.float64)
    names = list(label_names)
    if multilabel:
        return _multilabel_report(np.asarray(y_true).astype(int), probs, names)
    y = np.asarray(y_true, dtype=np.int64)
    if len(y) == 0:
        return _empty_report(names)
    from sklearn.metrics import accuracy_score, confusion_matrix

    pred = probs.argmax(axis=1)
    everyone = np.arange(len(names))
    precision, recall, f1, support = _prf(y, pred, everyone)
    # Macro over the labels in the truth or the predictions (what scikit-learn's f1_score does
    # without ``labels``); both means taken here, in the order earlier reports summed them, so
    # a figure that ends in a 5 at the 7th decimal rounds as it did.
    present = np.isin(everyone, np.concatenate([y, pred]))
    return {
        "task": "classification",
        "n_examples": int(len(y)),
        "accuracy": _r(accuracy_score(y, pred)),
        "macro_f1": _r(f1[present].mean()),
        "weighted_f1": _r(np.sum(f1 * support) / support.sum()),
        "ece": _r(expected_calibration_error(probs, y)),
        "ece_bins": ECE_BINS,
        "nll": _r(nll(probs, y)),
        "per_label": _per_label(names, precision, recall, f1, support),
        "confusion_matrix": {
            "labels": names,
            "matrix": confusion_matrix(y, pred, labels=everyone).tolist(),
        },
    }


def _prf(y: np.ndarray, pred: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-label precision, recall, F1 and support (scikit-learn; 0 where undefined)."""
    from sklearn.metrics import precision_recall_fscore_support

    return precision_recall_fscore_support(y, pred, labels=labels, average=None, zero_division=0)


def _empty_report(names: list[str]) -> dict[str, Any]:
    """The report of no examples: every figure undefined, every count zero."""
    k = len(names)
    zero = np.zeros(k)
    return {
        "task": "classification",
        "n_examples": 0,
        "accuracy": float("nan"),
        "macro_f1": float("nan"),
        "weighted_f1": float("nan"),
        "ece": float("nan"),
        "ece_bins": ECE_BINS,
        "nll": float("nan"),
        "per_label": _per_label(names, zero, zero, zero, zero),
        "confusion_matrix": {"labels": names, "matrix": np.zeros((k, k), dtype=int).tolist()},
    }


def _multilabel_report(Y: np.ndarray, probs: np.ndarray, names: list[str]) -> dict[str, Any]:  # noqa: N803
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    nan = float("nan")
    pred = (probs > 0.5).astype(int)
    everyone = np.arange(len(names))
    if len(Y):
        precision, recall, f1, support = _prf(Y, pred, everyone)
    else:
        precision = recall = f1 = support = np.zeros(len(names))
    # Macro over the labels present in the truth or the predictions, as for single-label data
    # (scikit-learn's multi-label macro average counts absent labels as F1 0).
    present = (Y.sum(axis=0) + pred.sum(axis=0)) > 0
    per_label = _per_label(names, precision, recall, f1, support)
    for j, name in enumerate(names):
        column = np.stack([1 - probs[:, j], probs[:, j]], axis=1)
        per_label[name]["ece"] = _r(expected_calibration_error(column, Y[:, j]))
    if len(Y):
        micro_p, micro_r, micro_f, _ = precision_recall_fscore_support(
            Y, pred, average="micro", zero_division=0
        )
        subset = float(accuracy_score(Y, pred))  # exact match of each row's label set
    else:
        micro_p = micro_r = micro_f = 0.0
        subset = nan
    total = support.sum()
    return {
        "task": "multilabel",
        "n_examples": int(len(Y)),
        "accuracy": _r(subset),
        "subset_accuracy": _r(subset),
        "hamming_accuracy": _r(np.mean(pred == Y)) if len(Y) else nan,
        "micro_precision": _r(micro_p),
        "micro_recall": _r(micro_r),
        "micro_f1": _r(micro_f),
        "macro_f1": _r(f1[present].mean()) if present.any() else nan,
        "weighted_f1": _r(np.sum(f1 * support) / total) if total else nan,
        "ece": _r(multilabel_ece(probs, Y)),
        "ece_bins": ECE_BINS,
        "nll": _r(nll(probs, Y, multilabel=True)),
        "per_label": per_label,
    }


def to_strict_bio(tags: Sequence[str]) -> list[str]:
    """Well-formed BIO from BIO or IO tags: an ``I-X`` not continuing an ``X`` becomes ``B-X``.

    For IO data this starts an entity at each change of type (IO cannot mark two adjacent
    entities of one type, so they stay one entity).
    """
    out: list[str] = []
    previous = "O"
    for tag in tags:
        kind = tag[2:] if tag[:2] in ("B-", "I-") else None
        if kind is None:
            out.append("O")
        elif tag.startswith("I-") and previous[2:] != kind:
            out.append("B-" + kind)
        else:
            out.append(tag)
        previous = out[-1]
    return out


def strict_entity_f1(true_tags: list[list[str]], pred_tags: list[list[str]]) -> float:
    """The micro entity F1 of :func:`ner_report` (strict, IOB2, unrounded): what training's
    best-checkpoint selection maximises, so it picks by the figure ``metrics.json`` reports."""
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    gold = [to_strict_bio(s) for s in true_tags]
    pred = [to_strict_bio(s) for s in pred_tags]
    if not any(t != "O" for s in gold + pred for t in s):
        return 0.0  # no entity on either side: what ner_report reports
    return float(f1_score(gold, pred, mode="strict", scheme=IOB2, zero_division=0))


def ner_report(
    true_tags: list[list[str]], pred_tags: list[list[str]], scheme: str = "BIO"
) -> dict[str, Any]:
    """Strict entity-level precision, recall, F1 and support per entity type, plus micro and
    macro averages (seqeval, ``mode="strict"``, IOB2), like the CoNLL evaluation script.

    An entity counts only when type and both boundaries match. ``scheme="IO"`` tags are first
    converted to BIO by starting an entity at each change of type.
    """
    from seqeval.metrics import classification_report as seqeval_report
    from seqeval.scheme import IOB2

    if len(true_tags) != len(pred_tags):
        raise ValueError("true_tags and pred_tags must hold the same number of sentences")
    gold = [to_strict_bio(s) for s in true_tags]
    pred = [to_strict_bio(s) for s in pred_tags]
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} true tags but {len(p)} predicted")
    types = sorted({t[2:] for s in gold + pred for t in s if t != "O"})
    tokens = sum(len(s) for s in gold)
    correct = sum(
        a == b for g, p in zip(gold, pred, strict=True) for a, b in zip(g, p, strict=True)
    )
    report: dict[str, Any] = {
        "task": "ner",
        "scheme": scheme.upper(),
        "mode": "strict",
        "n_sentences": len(gold),
        "token_accuracy": _r(correct / tokens) if tokens else float("nan"),
    }
    if not types:
        zero = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
        report.update({"per_type": {}, "micro": zero, "macro": dict(zero)})
        report.update({"precision": 0.0, "recall": 0.0, "f1": 0.0})
        return report
    raw = seqeval_report(gold, pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)

    def block(entry: dict[str, Any]) -> dict[str, Any]:
        return {
            "precision": _r(entry["precision"]),
            "recall": _r(entry["recall"]),
            "f1": _r(entry["f1-score"]),
            "support": int(entry["support"]),
        }

    per_type = {
        t: block(raw[t]) if t in raw else {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
        for t in types
    }
    micro = block(raw["micro avg"])
    report.update(
        {
            "precision": micro["precision"],
            "recall": micro["recall"],
            "f1": micro["f1"],
            "micro": micro,
            "macro": block(raw["macro avg"]),
            "per_type": per_type,
        }
    )
    return report
