"""Temperature scaling: calibrated probabilities without changing a single prediction.

A fine-tuned classifier's softmax is usually over-confident. Dividing the logits by one fitted
temperature ``T`` (Guo et al., 2017) fixes most of that while keeping the argmax, so accuracy is
unchanged. ``T`` minimises the negative log-likelihood on held-out data. The NLL of
``softmax(beta * z)`` is convex in ``beta = 1/T``, hence unimodal in ``log T``, so a bounded
one-dimensional search on ``log T`` (scipy's ``minimize_scalar(method="bounded")``, Brent's
method) finds the global minimum with no step size to tune and no dependence on a starting
point.

The temperatures live in ``calibration.json`` beside the weights; they are applied by
:func:`tunesmith.engine.predict.probabilities` and so by every command and plugin that loads a
model through the core.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.engine.metrics import expected_calibration_error, multilabel_ece, nll
from tunesmith.io import atomic_write_json, read_json_object
from tunesmith.model_dir import CALIBRATION_FILE

#: Temperatures are searched in [1/20, 20]: wide enough for any sane model, bounded for safety.
T_MIN, T_MAX = 0.05, 20.0


def _bounded_min(func: Callable[[float], float], lo: float, hi: float, tol: float = 1e-5) -> float:
    """Minimise a unimodal ``func`` on ``[lo, hi]`` (scipy's bounded Brent search)."""
    from scipy.optimize import minimize_scalar

    found = minimize_scalar(func, bounds=(lo, hi), method="bounded", options={"xatol": tol})
    best = float(found.x)
    # The ends are candidates too: a minimum at the boundary is reported as the boundary.
    candidates = [(func(best), best), (func(lo), lo), (func(hi), hi)]
    return min(candidates)[1]


def _softmax_nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    scaled = logits / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(scaled).sum(axis=1))
    return float(np.mean(log_norm - scaled[np.arange(len(y)), y]))


def _binary_nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    # log(1 + exp(-z)) for positives, log(1 + exp(z)) for negatives, computed stably.
    signed = np.where(y > 0.5, z, -z)
    return float(np.mean(np.logaddexp(0.0, -signed)))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising the NLL of ``softmax(logits / T)`` for the true labels ``y``.

    Returns 1.0 when there is nothing to fit (no rows, or a single class in the logits), and
    when the optimum lies at the lower bound of the search: held-out data that the model separates
    perfectly pushes T towards 0 (every prediction sharpened to certainty), which says nothing
    about new data, so the raw probabilities are kept rather than made over-confident.
    """
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if logits.ndim != 2 or len(logits) != len(y):
        raise ValueError("logits must be (n, classes) and y must have n entries")
    if len(y) == 0 or logits.shape[1] < 2:
        return 1.0
    log_t = _bounded_min(
        lambda s: _softmax_nll(logits, y, math.exp(s)), math.log(T_MIN), math.log(T_MAX)
    )
    return _unless_at_bound(float(math.exp(log_t)))


def _unless_at_bound(temperature: float) -> float:
    """``temperature``, or 1.0 when the search ran into the lower bound (a degenerate fit).

    The upper bound is kept: a model no better than chance on held-out data should say so.
    """
    return 1.0 if temperature <= T_MIN * 1.01 else temperature


def fit_label_temperatures(logits: np.ndarray, Y: np.ndarray) -> list[float]:  # noqa: N803
    """One temperature per label for a multi-label model, each minimising that label's NLL.

    Why per-label temperature rather than per-label Platt scaling (``sigmoid(a*z + b)``):
    a temperature keeps the sign of every logit, so the 0.5 decision threshold, and hence every
    predicted label set, stays exactly as trained (calibration never changes predictions), and
    with one parameter per label it does not over-fit labels that have few positives in the
    held-out data, where Platt's bias term would. A label whose held-out column has only one
    class keeps T = 1.0, since its NLL would push T to an extreme.
    """
    logits = np.asarray(logits, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)  # noqa: N806
    if logits.shape != Y.shape or logits.ndim != 2:
        raise ValueError("logits and Y must both be (n, labels)")
    temperatures = []
    for j in range(logits.shape[1]):
        column, target = logits[:, j], Y[:, j]
        if len(target) == 0 or target.min() == target.max():
            temperatures.append(1.0)
            continue
        log_t = _bounded_min(
            lambda s, z=column, t=target: _binary_nll(z, t, math.exp(s)),
            math.log(T_MIN),
            math.log(T_MAX),
        )
        temperatures.append(_unless_at_bound(float(math.exp(log_t))))
    return temperatures


def apply_temperature(logits: np.ndarray, temperature: float | Sequence[float] | None) -> Any:
    """Divide ``logits`` by one temperature, or column-wise by one per label. ``None``: as is."""
    logits = np.asarray(logits, dtype=np.float64)
    if temperature is None:
        return logits
    if isinstance(temperature, (int, float)):
        return logits / float(temperature)
    temps = np.asarray(list(temperature), dtype=np.float64)
    if temps.shape[0] != logits.shape[-1]:
        raise ValueError(f"{len(temps)} temperatures for {logits.shape[-1]} labels")
    return logits / temps


def save_calibration(model_dir: str | Path, data: dict[str, Any]) -> Path:
    """Write ``calibration.json`` beside the weights, atomically (the weights are not touched)."""
    return atomic_write_json(Path(model_dir) / CALIBRATION_FILE, data)


def load_calibration(model_dir: str | Path) -> dict[str, Any] | None:
    """The ``calibration.json`` of ``model_dir``, or ``None`` when the model was not calibrated."""
    return read_json_object(Path(model_dir) / CALIBRATION_FILE)


def calibration_summary(
    logits: np.ndarray, y: np.ndarray, temperature: float | list[float] | None, multilabel: bool
) -> dict[str, Any]:
    """ECE and NLL of ``logits`` before (T = 1) and after dividing by ``temperature``."""
    raw = calibration_probs(logits, None, multilabel)
    after = calibration_probs(logits, temperature, multilabel)
    ece = multilabel_ece if multilabel else expected_calibration_error
    return {
        "ece_before": round(float(ece(raw, y)), 6),
        "ece_after": round(float(ece(after, y)), 6),
        "nll_before": round(float(nll(raw, y, multilabel=multilabel)), 6),
        "nll_after": round(float(nll(after, y, multilabel=multilabel)), 6),
        "ece_bins": 15,
    }


def fit_calibration(
    logits: np.ndarray, y: np.ndarray, *, multilabel: bool, source: str | None = None
) -> dict[str, Any]:
    """Fit temperature(s) on held-out ``logits`` and return the ``calibration.json`` document."""
    from datetime import UTC, datetime

    if multilabel:
        temps: float | list[float] = fit_label_temperatures(logits, y)
        data: dict[str, Any] = {"method": "per_label_temperature", "temperatures": temps}
    else:
        temps = fit_temperature(logits, y)
        data = {"method": "temperature", "temperature": temps}
    data.update(calibration_summary(logits, y, temps, multilabel))
    data["n_examples"] = int(len(y))
    data["fitted_on"] = source
    data["fitted_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return data


def calibration_probs(
    logits: np.ndarray, temperature: float | list[float] | None, multilabel: bool
) -> np.ndarray:
    """Probabilities from ``logits`` after ``temperature`` (softmax, or sigmoid for multi-label)."""
    values = apply_temperature(logits, temperature)
    if multilabel:
        return 1.0 / (1.0 + np.exp(-np.clip(values, -60, 60)))
    from scipy.special import softmax

    return softmax(values, axis=1)


#: Probabilities are clipped here before their log: a 0 would be an infinite logit.
_PROB_FLOOR = 1e-12


def probability_logits(probs: np.ndarray, multilabel: bool) -> np.ndarray:
    """Logits that give ``probs`` back through :func:`calibration_probs` at T = 1: their log
    (softmax), or their log-odds (sigmoid, multi-label)."""
    probs = np.clip(np.asarray(probs, dtype=np.float64), _PROB_FLOOR, 1.0 - _PROB_FLOOR)
    if multilabel:
        return np.log(probs) - np.log1p(-probs)
    return np.log(probs)


def fit_mean_calibration(
    probs: np.ndarray, y: np.ndarray, *, multilabel: bool, source: str | None = None
) -> dict[str, Any]:
    """The temperature(s) of a seed ensemble's mean: fitted, as :func:`fit_calibration`, on the
    logits of ``probs`` (the mean of the members' calibrated probabilities on held-out data).

    Each member's own temperature calibrates that member; their mean is not calibrated by them
    (members that disagree average to under-confidence), so the mean gets its own, which keeps
    the ranking of every row (the argmax, and each label's side of 0.5) as a temperature does.
    """
    data = fit_calibration(
        probability_logits(probs, multilabel), y, multilabel=multilabel, source=source
    )
    data["applies_to"] = "the mean of the members' calibrated probabilities"
    return data


def temper_mean(
    probs: np.ndarray, temperature: float | Sequence[float] | None, multilabel: bool
) -> np.ndarray:
    """``probs`` (an ensemble's mean) after its own temperature(s); as is for ``None``."""
    if temperature is None:
        return np.asarray(probs)
    return calibration_probs(probability_logits(probs, multilabel), temperature, multilabel)
