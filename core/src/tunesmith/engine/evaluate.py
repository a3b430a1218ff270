"""Evaluating and calibrating a saved model on a data file: read and check the file, predict,
measure (:mod:`tunesmith.engine.metrics`), fit temperatures (:mod:`tunesmith.engine.calibration`)
and draw the plots (:mod:`tunesmith.engine.plots`). ``tunesmith evaluate`` and ``calibrate``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.data.load import load_text_dataset, load_token_dataset, validate_labels_known
from tunesmith.engine.calibration import (
    calibration_probs,
    calibration_summary,
    fit_calibration,
    save_calibration,
)
from tunesmith.engine.loading import load_model
from tunesmith.engine.metrics import (
    ECE_BINS,
    classification_report,
    expected_calibration_error,
    multilabel_ece,
    ner_report,
    nll,
)
from tunesmith.engine.plots import save_confusion_matrix_png, save_reliability_diagram
from tunesmith.engine.predict import (
    MEAN_TEMPERATURE,
    class_probabilities,
    predict_logits,
    predict_tags,
    scheme_of,
)
from tunesmith.errors import DataError, UserInputError
from tunesmith.model_dir import CONFUSION_MATRIX_FILE, RELIABILITY_FILE


def load_eval_dataset(
    loaded: Any,
    data_path: str | Path,
    text_col: str = "text",
    label_col: str = "label",
    label_sep: str | None = None,
) -> Any:
    """Read an evaluation file for ``loaded`` and check every label is one the model knows."""
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
    members: Sequence[Any] = (),
) -> dict[str, Any]:
    """Evaluate ``loaded`` on a validated ``dataset`` (TextDataset or TokenDataset).

    Sequence classifiers: the :func:`classification_report` of the calibrated probabilities
    (raw when the model has no temperature), plus a ``calibration`` block with ECE and NLL
    before and after and the temperature(s). With ``plot_dir``: ``confusion_matrix.png``
    (single-label) and ``reliability.png``. NER: :func:`ner_report`.

    ``members``: a seed ensemble's other members. The report is then that of the mean of every
    member's probabilities, as ``predict`` and the plugins score it, and the calibration block
    gives the mean's ECE and NLL without and with the members' temperatures.
    """
    source = data_path if data_path is not None else getattr(dataset, "source", None)
    if loaded.task == "ner":
        tags, _ = predict_tags(loaded, dataset.tokens, batch_size=batch_size)
        report = ner_report(dataset.tags, tags, scheme=dataset.scheme or scheme_of(loaded))
        report["model"] = str(loaded.path)
        report["data"] = str(source) if source else None
        return report

    y = label_targets(loaded, dataset, source or "", label_col)
    if members:
        return _ensemble_report([loaded, *members], dataset.texts, y, batch_size, plot_dir, source)
    logits = predict_logits(loaded, dataset.texts, batch_size=batch_size)
    multilabel = loaded.task == "multilabel"
    temperature = loaded.temperature
    lexical = loaded.extra.get("lexical")
    lexical_probs = lexical.probabilities(dataset.texts) if lexical is not None else None

    def mixed(probs: np.ndarray) -> np.ndarray:  # with the lexical share, when there is one
        if lexical is None:
            return probs
        return lexical.mix(probs, dataset.texts, lexical_probs=lexical_probs)

    probs = mixed(calibration_probs(logits, temperature, multilabel))
    report = classification_report(y, probs, loaded.labels, multilabel=multilabel)
    calibration: dict[str, Any] = {"applied": temperature is not None}
    if temperature is not None:
        calibration["temperature" if not multilabel else "temperatures"] = temperature
        calibration.update(calibration_summary(logits, y, temperature, multilabel))
    else:
        raw = calibration_summary(logits, y, None, multilabel)
        calibration.update({"ece_before": raw["ece_before"], "nll_before": raw["nll_before"]})
    report["calibration"] = calibration
    if lexical is not None:  # the calibration block is the transformer's; the report the mix's
        report["lexical"] = {"weight": lexical.weight}
    report["model"] = str(loaded.path)
    report["data"] = str(source) if source else None
    if plot_dir is not None:
        # Before and after the temperature, both with the lexical share when there is one.
        raw_probs = mixed(calibration_probs(logits, None, multilabel))
        after = probs if temperature is not None else None
        report["plots"] = _plots(
            report, y, raw_probs, after, plot_dir, loaded.path.name, multilabel
        )
    return report


def _plots(
    report: dict[str, Any],
    y: np.ndarray,
    raw: np.ndarray,
    after: np.ndarray | None,
    plot_dir: str | Path,
    title: str,
    multilabel: bool,
) -> dict[str, str]:
    """The confusion matrix (single-label) and the reliability diagram, raw and ``after``."""
    plot_dir = Path(plot_dir)
    plots: dict[str, str] = {}
    if not multilabel:
        plots["confusion_matrix"] = str(
            save_confusion_matrix_png(report, plot_dir / CONFUSION_MATRIX_FILE)
        )
    plots["reliability_diagram"] = str(
        save_reliability_diagram(
            raw, y, plot_dir / RELIABILITY_FILE, title=f"{title}: reliability", probs_after=after
        )
    )
    return plots


def _ensemble_report(
    models: list[Any],
    texts: list[str],
    y: np.ndarray,
    batch_size: int,
    plot_dir: str | Path | None,
    source: Any,
) -> dict[str, Any]:
    """:func:`evaluate_model`'s report for a seed ensemble: the mean of its members'
    probabilities, calibrated (each member's temperatures, then the mean's own when
    ``calibrate`` fitted one) and raw."""
    first = models[0]
    multilabel = first.task == "multilabel"
    applied = all(m.temperature is not None for m in models)
    # One forward pass per member serves the raw and the calibrated mean.
    logits = [predict_logits(model, texts, batch_size=batch_size) for model in models]
    raw = class_probabilities(models, texts, calibrated=False, logits=logits)
    probs = class_probabilities(models, texts, logits=logits) if applied else raw
    report = classification_report(y, probs, first.labels, multilabel=multilabel)
    ece = multilabel_ece if multilabel else expected_calibration_error
    calibration: dict[str, Any] = {
        "applied": applied,
        "ece_before": round(float(ece(raw, y)), 6),
        "nll_before": round(float(nll(raw, y, multilabel=multilabel)), 6),
    }
    if applied:
        calibration["ece_after"] = round(float(ece(probs, y)), 6)
        calibration["nll_after"] = round(float(nll(probs, y, multilabel=multilabel)), 6)
    mean_temperature = first.extra.get(MEAN_TEMPERATURE)
    if mean_temperature is not None:  # `calibrate`'s, on the mean (in "after" when applied)
        calibration["mean_temperature"] = mean_temperature
    calibration["ece_bins"] = ECE_BINS
    report["calibration"] = calibration
    report["ensemble"] = {"members": [str(m.path) for m in models]}
    report["model"] = str(first.path)
    report["data"] = str(source) if source else None
    if plot_dir is not None:
        title = f"{first.path.name} ({len(models)} members)"
        report["plots"] = _plots(
            report, y, raw, probs if applied else None, plot_dir, title, multilabel
        )
    return report


def calibrate_model(
    model_dir: str | Path,
    data_path: str | Path,
    text_col: str = "text",
    label_col: str = "label",
    *,
    label_sep: str | None = None,
    batch_size: int = 32,
    plot_path: str | Path | None = None,
    device: str = "cpu",
    source: str | None = None,
) -> dict[str, Any]:
    """Refit the temperature(s) of a saved model on the held-out file ``data_path``, its logits
    computed on ``device`` (:func:`tunesmith.devices.resolve_device`). ``source``: how
    ``fitted_on`` names the data (default: the path; the Python API's in-memory data is
    written to a temporary file, which a saved calibration should not name).

    Only ``calibration.json`` is (atomically) rewritten; the weights are not touched. Returns the
    new calibration document plus ``accuracy`` and the previous temperature, if any. With a
    lexical model (``--lexical``) the temperature is the transformer's, and ``accuracy`` and
    ``accuracy_before`` are those of the mixed labels with the new and the previous temperature;
    the mix's own temperature is refitted on the same file and saved in ``lexical.json``.

    A seed ensemble (``ensemble.json``) has every member refitted, as its scoring averages their
    calibrated probabilities, and then the mean of those gets its own temperature(s), fitted on
    the same file (:func:`~tunesmith.engine.calibration.fit_mean_calibration`; in
    ``ensemble.json``, result under ``ensemble``): calibrated members do not make a calibrated
    mean. All are fitted before any is written, so a member that cannot be calibrated leaves
    the ensemble as it was. The members' results are listed under ``members``.
    """
    from tunesmith.engine.ensemble import read_members, save_mean_calibration

    source = source or str(data_path)
    options = {"label_sep": label_sep, "batch_size": batch_size, "device": device, "source": source}
    members = read_members(model_dir)
    fitted = [_fit_model(model_dir, data_path, text_col, label_col,
                         plot_path=plot_path, **options)]  # fmt: skip
    fitted += [_fit_model(where, data_path, text_col, label_col, **options) for where in members]
    mean = _fit_mean(fitted, source) if members else None
    for found in fitted:
        found.commit()
    result = fitted[0].result
    if mean is not None:
        saved = save_mean_calibration(model_dir, mean)
        result["members"] = [found.result for found in fitted[1:]]
        result["ensemble"] = {**mean, "manifest": str(saved)}
    return result


def _fit_mean(fitted: list[_Fitted], source: str) -> dict[str, Any]:
    """The temperature(s) of the mean of the members' probabilities, each member with its new
    temperature (and lexical share), on the data they were fitted on."""
    from tunesmith.engine.calibration import fit_mean_calibration

    models = [found.loaded for found in fitted]
    first = models[0]
    multilabel = first.task == "multilabel"
    for found in fitted:  # as predict will load them once the new files are written
        found.loaded.temperature = found.temperature
    probs = class_probabilities(
        models, fitted[0].texts, logits=[found.logits for found in fitted]
    )  # no mean temperature on these loaded models yet: the members' mean as it stands
    return fit_mean_calibration(probs, fitted[0].y, multilabel=multilabel, source=source)


def fit_model_calibration(
    model_dir: str | Path,
    data_path: str | Path,
    text_col: str = "text",
    label_col: str = "label",
    *,
    label_sep: str | None = None,
    batch_size: int = 32,
    plot_path: str | Path | None = None,
) -> tuple[dict[str, Any], Callable[[], None]]:
    """:func:`calibrate_model` of one model without the writing: the result, and a function
    that writes the fitted files. Several models (a seed ensemble's members) are all fitted
    before any is written, so a member that fails leaves every one as it was."""
    found = _fit_model(
        model_dir,
        data_path,
        text_col,
        label_col,
        label_sep=label_sep,
        batch_size=batch_size,
        plot_path=plot_path,
    )
    return found.result, found.commit


@dataclass
class _Fitted:
    """One model's fit: its result and writer, and what the ensemble's mean is fitted from."""

    result: dict[str, Any]
    commit: Callable[[], None]
    loaded: Any
    temperature: Any
    logits: np.ndarray
    texts: list[str]
    y: np.ndarray


def _fit_model(
    model_dir: str | Path,
    data_path: str | Path,
    text_col: str = "text",
    label_col: str = "label",
    *,
    label_sep: str | None = None,
    batch_size: int = 32,
    plot_path: str | Path | None = None,
    device: str = "cpu",
    source: str | None = None,
) -> _Fitted:
    loaded = load_model(model_dir, device=device)
    if loaded.task == "ner":
        raise UserInputError(
            f"{loaded.path} is a token classifier; calibration applies to sequence classifiers"
        )
    dataset = load_eval_dataset(loaded, data_path, text_col, label_col, label_sep)
    y = label_targets(loaded, dataset, data_path, label_col)
    logits = predict_logits(loaded, dataset.texts, batch_size=batch_size)
    multilabel = loaded.task == "multilabel"
    data = fit_calibration(logits, y, multilabel=multilabel, source=source or str(data_path))
    previous = loaded.temperature
    result = dict(data)
    result["previous_temperature"] = previous
    if multilabel:
        predicted = logits > 0
        result["accuracy"] = round(float(np.mean(np.all(predicted == (y > 0.5), axis=1))), 6)
    else:
        result["accuracy"] = round(float(np.mean(logits.argmax(axis=1) == y)), 6)
    lexical = loaded.extra.get("lexical")
    if lexical is not None:
        # The lexical share is mixed into the calibrated probabilities, so a new temperature
        # can change the labels predict gives: their accuracy with the old and the new one.
        texts = dataset.texts
        lexical_probs = lexical.probabilities(texts)  # once for the three uses below

        def mixed_accuracy(temp: Any) -> float:
            probs = calibration_probs(logits, temp, False)
            mixed = lexical.mix(probs, texts, lexical_probs=lexical_probs)
            return round(float(np.mean(mixed.argmax(axis=1) == y)), 6)

        result["accuracy_before"] = mixed_accuracy(previous)
        result["accuracy"] = mixed_accuracy(data["temperature"])
        # Then the mix's own temperature, on the same file (it moves no label).
        result["lexical_temperature_before"] = lexical.temperature
        probs = calibration_probs(logits, data["temperature"], False)
        result["lexical_temperature"] = lexical.fit_temperature(
            probs, texts, y, lexical_probs=lexical_probs
        )
    result["model"] = str(loaded.path)
    if plot_path is not None:
        probs_before = calibration_probs(logits, None, multilabel)
        probs_after = calibration_probs(
            logits, data.get("temperature", data.get("temperatures")), multilabel
        )
        save_reliability_diagram(
            probs_before,
            y,
            plot_path,
            title=f"{loaded.path.name}: reliability",
            probs_after=probs_after,
        )
        result["reliability_diagram"] = str(plot_path)

    def commit() -> None:
        # After the plot: a plot that cannot be written leaves the calibration as it was.
        if lexical is not None:
            lexical.save(loaded.path)
        save_calibration(loaded.path, data)

    temperature = data.get("temperature", data.get("temperatures"))
    return _Fitted(result, commit, loaded, temperature, logits, list(dataset.texts), y)
