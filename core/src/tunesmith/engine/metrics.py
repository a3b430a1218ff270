"""Evaluation reports: classification, multi-label and entity-level NER metrics, and plots.

Classification metrics are computed with numpy (no scikit-learn import on the hot path).
Expected calibration error uses 15 equal-width confidence bins over the top-label confidence
(multi-label: each label as a binary problem, ECE averaged over labels). NER uses seqeval in
strict mode with the IOB2 scheme; IO tags are first converted to BIO by starting an entity at each
change of type, and an ``I-X`` that follows ``O`` or another type is read as the start of an
entity in gold and predictions alike (what ``predict`` shows and conlleval reads).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.engine.model_dir import CONFUSION_MATRIX_FILE, RELIABILITY_FILE

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
    """Mean negative log-likelihood of the truth (multi-label: mean binary cross-entropy)."""
    probs = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1 - 1e-12)
    y = np.asarray(y)
    if len(y) == 0:
        return float("nan")
    if multilabel:
        return float(-np.mean(y * np.log(probs) + (1 - y) * np.log(1 - probs)))
    return float(-np.mean(np.log(probs[np.arange(len(y)), y])))


def _prf(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> tuple[np.ndarray, ...]:
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return precision, recall, f1


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
    k = len(names)
    if multilabel:
        return _multilabel_report(np.asarray(y_true).astype(int), probs, names)
    y = np.asarray(y_true, dtype=np.int64)
    pred = probs.argmax(axis=1) if len(y) else np.zeros(0, dtype=np.int64)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (y, pred), 1)
    tp = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    precision, recall, f1 = _prf(tp, predicted - tp, support - tp)
    present = (support + predicted) > 0
    total = support.sum()
    return {
        "task": "classification",
        "n_examples": int(len(y)),
        "accuracy": _r(tp.sum() / total) if total else float("nan"),
        "macro_f1": _r(f1[present].mean()) if present.any() else float("nan"),
        "weighted_f1": _r(np.sum(f1 * support) / total) if total else float("nan"),
        "ece": _r(expected_calibration_error(probs, y)),
        "ece_bins": ECE_BINS,
        "nll": _r(nll(probs, y)),
        "per_label": _per_label(names, precision, recall, f1, support),
        "confusion_matrix": {"labels": names, "matrix": matrix.tolist()},
    }


def _multilabel_report(Y: np.ndarray, probs: np.ndarray, names: list[str]) -> dict[str, Any]:  # noqa: N803
    pred = (probs > 0.5).astype(int)
    tp = (pred & Y).sum(axis=0).astype(np.float64)
    fp = (pred & (1 - Y)).sum(axis=0).astype(np.float64)
    fn = ((1 - pred) & Y).sum(axis=0).astype(np.float64)
    support = Y.sum(axis=0).astype(np.float64)
    precision, recall, f1 = _prf(tp, fp, fn)
    micro_p, micro_r, micro_f = _prf(
        np.array([tp.sum()]), np.array([fp.sum()]), np.array([fn.sum()])
    )
    present = (support + pred.sum(axis=0)) > 0
    per_label = _per_label(names, precision, recall, f1, support)
    for j, name in enumerate(names):
        column = np.stack([1 - probs[:, j], probs[:, j]], axis=1)
        per_label[name]["ece"] = _r(expected_calibration_error(column, Y[:, j]))
    subset = float(np.mean(np.all(pred == Y, axis=1))) if len(Y) else float("nan")
    return {
        "task": "multilabel",
        "n_examples": int(len(Y)),
        "accuracy": _r(subset),
        "subset_accuracy": _r(subset),
        "hamming_accuracy": _r(np.mean(pred == Y)) if len(Y) else float("nan"),
        "micro_precision": _r(micro_p[0]),
        "micro_recall": _r(micro_r[0]),
        "micro_f1": _r(micro_f[0]),
        "macro_f1": _r(f1[present].mean()) if present.any() else float("nan"),
        "weighted_f1": _r(np.sum(f1 * support) / support.sum()) if support.sum() else float("nan"),
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


def save_confusion_matrix_png(report: dict[str, Any], path: str | Path) -> Path:
    """Draw the report's confusion matrix (rows normalised to the true label) as a PNG.

    The figure grows with the number of labels and writes counts in the cells only when there
    are few, so 77 labels stay readable.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tunesmith.engine.calibration import save_figure

    cm = report.get("confusion_matrix")
    if not cm:
        raise ValueError("the report has no confusion matrix (multi-label and NER reports do not)")
    labels = list(cm["labels"])
    matrix = np.asarray(cm["matrix"], dtype=np.float64)
    n = len(labels)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.nan_to_num(matrix / matrix.sum(axis=1, keepdims=True))
    side = float(min(40.0, max(6.0, 0.26 * n + 3)))
    font = float(max(6.0, min(10.0, 260.0 / max(n, 1))))
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    image = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(labels, rotation=90, fontsize=font)
    ax.set_yticklabels(labels, fontsize=font)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    colour = "white" if norm[i, j] > 0.5 else "black"
                    ax.text(
                        j,
                        i,
                        str(int(matrix[i, j])),
                        ha="center",
                        va="center",
                        fontsize=font,
                        color=colour,
                    )
    accuracy = report.get("accuracy")
    title = "Confusion matrix (rows: share of each true label)"
    if isinstance(accuracy, float):
        title += f"; accuracy {accuracy:.3f}"
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    fig.tight_layout()
    return save_figure(fig, path)


# --- evaluating a loaded model on a data file -------------------------------------------------


def load_eval_dataset(
    loaded: Any,
    data_path: str | Path,
    text_col: str = "text",
    label_col: str = "label",
    label_sep: str | None = None,
) -> Any:
    """Read an evaluation file for ``loaded`` and check every label is one the model knows."""
    from tunesmith.data.load import load_text_dataset, load_token_dataset, validate_labels_known

    if loaded.task == "ner":
        dataset = load_token_dataset(data_path)
        validate_labels_known(dataset, loaded.labels, data_path)
        return dataset
    if loaded.task == "multilabel" and label_sep is None:
        label_sep = (loaded.run_config or {}).get("label_sep")
    dataset = load_text_dataset(
        data_path, text_col=text_col, label_col=label_col, label_sep=label_sep
    )
    validate_labels_known(dataset, loaded.labels, data_path, label_col=label_col)
    return dataset


def label_targets(loaded: Any, dataset: Any, data_path: str | Path, label_col: str) -> np.ndarray:
    """Class indices (single-label) or an indicator matrix (multi-label) for ``dataset``."""
    from tunesmith.errors import DataError

    index = {label: i for i, label in enumerate(loaded.labels)}
    if loaded.task == "multilabel":
        Y = np.zeros((len(dataset), len(loaded.labels)), dtype=np.int64)  # noqa: N806
        for i, labels in enumerate(dataset.labels):
            for label in labels:
                Y[i, index[label]] = 1
        return Y
    for labels, row in zip(dataset.labels, dataset.rows, strict=True):
        if len(labels) != 1:
            raise DataError(
                f"{len(labels)} labels on one row, but the model is single-label",
                path=data_path,
                row=row,
                column=label_col,
            )
    return np.array([index[labels[0]] for labels in dataset.labels], dtype=np.int64)


def evaluate_model(
    loaded: Any,
    dataset: Any,
    *,
    batch_size: int = 32,
    plot_dir: str | Path | None = None,
    data_path: str | Path | None = None,
    label_col: str = "label",
) -> dict[str, Any]:
    """Evaluate ``loaded`` on a validated ``dataset`` (TextDataset or TokenDataset).

    Sequence classifiers: the :func:`classification_report` of the calibrated probabilities
    (raw when the model has no temperature), plus a ``calibration`` block with ECE and NLL
    before and after and the temperature(s). With ``plot_dir``: ``confusion_matrix.png``
    (single-label) and ``reliability.png``. NER: :func:`ner_report`.
    """
    from tunesmith.engine.predict import predict_logits, predict_tags, scheme_of

    source = data_path if data_path is not None else getattr(dataset, "source", None)
    if loaded.task == "ner":
        tags, _ = predict_tags(loaded, dataset.tokens, batch_size=batch_size)
        report = ner_report(dataset.tags, tags, scheme=dataset.scheme or scheme_of(loaded))
        report["model"] = str(loaded.path)
        report["data"] = str(source) if source else None
        return report

    from tunesmith.engine.calibration import calibration_probs, calibration_summary

    y = label_targets(loaded, dataset, source or "", label_col)
    logits = predict_logits(loaded, dataset.texts, batch_size=batch_size)
    multilabel = loaded.task == "multilabel"
    temperature = loaded.temperature
    probs = calibration_probs(logits, temperature, multilabel)
    report = classification_report(y, probs, loaded.labels, multilabel=multilabel)
    calibration: dict[str, Any] = {"applied": temperature is not None}
    if temperature is not None:
        calibration["temperature" if not multilabel else "temperatures"] = temperature
        calibration.update(calibration_summary(logits, y, temperature, multilabel))
    else:
        raw = calibration_summary(logits, y, None, multilabel)
        calibration.update({"ece_before": raw["ece_before"], "nll_before": raw["nll_before"]})
    report["calibration"] = calibration
    report["model"] = str(loaded.path)
    report["data"] = str(source) if source else None
    if plot_dir is not None:
        from tunesmith.engine.calibration import save_reliability_diagram

        plot_dir = Path(plot_dir)
        plots: dict[str, str] = {}
        if not multilabel:
            plots["confusion_matrix"] = str(
                save_confusion_matrix_png(report, plot_dir / CONFUSION_MATRIX_FILE)
            )
        raw_probs = calibration_probs(logits, None, multilabel)
        plots["reliability_diagram"] = str(
            save_reliability_diagram(
                raw_probs,
                y,
                plot_dir / RELIABILITY_FILE,
                title=f"{loaded.path.name}: reliability",
                probs_after=probs if temperature is not None else None,
            )
        )
        report["plots"] = plots
    return report
