"""Plots of a model's held-out behaviour, as PNG files: the confusion matrix and the
reliability diagram. matplotlib is imported only when a plot is drawn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.engine.metrics import expected_calibration_error, reliability_bins


def save_confusion_matrix_png(report: dict[str, Any], path: str | Path) -> Path:
    """Draw the report's confusion matrix (rows normalised to the true label) as a PNG.

    The figure grows with the number of labels and writes counts in the cells only when there
    are few, so 77 labels stay readable.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def save_reliability_diagram(
    probs: np.ndarray,
    y: np.ndarray,
    path: str | Path,
    *,
    title: str = "Reliability diagram",
    probs_after: np.ndarray | None = None,
    n_bins: int = 15,
) -> Path:
    """Save a reliability diagram PNG; with ``probs_after``, before and after side by side.

    Bars show the accuracy in each of ``n_bins`` equal-width confidence bins, the diagonal is
    perfect calibration, and each panel's title holds its ECE.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("before calibration" if probs_after is not None else "", probs)]
    if probs_after is not None:
        panels.append(("after calibration", probs_after))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5.0), squeeze=False)
    for ax, (name, panel_probs) in zip(axes[0], panels, strict=True):
        bins = reliability_bins(panel_probs, y, n_bins)
        width = 1.0 / n_bins
        centres = bins["edges"][:-1] + width / 2
        filled = bins["count"] > 0
        ax.bar(
            centres[filled],
            bins["accuracy"][filled],
            width=width * 0.95,
            color="#4c72b0",
            edgecolor="#2a4a80",
            label="accuracy",
        )
        # Hatched outline from the accuracy to the mean confidence of the bin: the miscalibration.
        ax.bar(
            centres[filled],
            (bins["confidence"] - bins["accuracy"])[filled],
            bottom=bins["accuracy"][filled],
            width=width * 0.95,
            fill=False,
            edgecolor="#c44e52",
            hatch="//",
            label="gap to mean confidence",
        )
        ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
        ece = expected_calibration_error(panel_probs, y, n_bins=n_bins)
        ax.set_title(f"{name + ', ' if name else ''}ECE {ece:.3f}")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence" if np.asarray(y).ndim == 1 else "predicted probability")
        ax.set_ylabel("accuracy" if np.asarray(y).ndim == 1 else "fraction positive")
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig: Any, path: str | Path) -> Path:
    """Save a matplotlib figure as PNG through a temporary file and a rename."""
    import matplotlib.pyplot as plt

    from tunesmith.io import atomic_open

    try:
        with atomic_open(path, binary=True) as handle:
            fig.savefig(handle, dpi=110, format="png")
    finally:
        plt.close(fig)
    return Path(path)
