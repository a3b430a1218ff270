"""Stage 7b, lexical (``--lexical W``): a TF-IDF n-gram logistic regression fitted on the
training texts (:mod:`tunesmith.engine.lexical`); ``metrics.json`` then measures the mixed
probabilities, with the transformer's own figures kept beside them. A held-out split carved from
the training file then joins the regression's data, as it joins the nearest examples (stage 6):
what was measured is the model before, and the saved one has seen every labelled text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tunesmith.engine.distributed import is_main_process
from tunesmith.engine.lexical import LexicalModel
from tunesmith.engine.losses import class_weights as inverse_frequency
from tunesmith.engine.metrics import classification_report
from tunesmith.engine.stages.state import Training
from tunesmith.errors import UserInputError

#: How this stage's notes begin (a refit with another share replaces them).
NOTE_PREFIX = "--lexical"


def not_single_label_note(task: str) -> str:
    """The note of a share asked for a task other than single-label classification."""
    return f"{NOTE_PREFIX} needs single-label data; not used for a {task} task"


def not_used_note(error: Exception) -> str:
    """The note of a regression that could not be fitted (``error`` says why)."""
    return f"{NOTE_PREFIX}: not used ({error})"


def run(state: Training) -> None:
    """Set ``state.lexical`` (``None`` when off or not single-label) and re-measure with it."""
    run, prepared = state.run, state.prepared
    if not run.lexical or not is_main_process():
        return  # under torchrun only the main process writes the model: the others skip it
    if prepared.task != "classification":
        state.note(not_single_label_note(prepared.task))
        return
    state.log(f"fitting the lexical model (share {run.lexical:g}) on {len(prepared.train):,} texts")
    try:
        state.lexical = fit(prepared, run.lexical, class_weights=run.class_weights)
    except UserInputError as exc:
        # After the fine-tuning: keep the trained model rather than lose it to this part.
        state.note(not_used_note(exc))
        state.log(f"the lexical model was not fitted: {exc}")
        return
    if state.metrics.get("report") and state.plots is not None and prepared.held is not None:
        probs_before, probs, y = state.plots
        texts = prepared.held.texts
        lexical_probs = state.lexical.probabilities(texts)  # once, for the report and the plot
        mixed = measure(state.metrics, state.lexical, probs, y, texts, prepared.labels,
                        calibrate=state.calibration is not None,
                        lexical_probs=lexical_probs)  # fmt: skip
        # The reliability diagram: with the share, before calibration (neither temperature)
        # and after (both).
        before = state.lexical.mix(probs_before, texts, calibrated=False,
                                   lexical_probs=lexical_probs)  # fmt: skip
        state.plots = (before, mixed, y)
    state.lexical = join_held_out(state.lexical, prepared, run, state.metrics, state.log)


def join_held_out(
    lexical: LexicalModel, prepared: Any, run: Any, metrics: dict[str, Any], log: Any
) -> LexicalModel:
    """The model to save, once measured: refitted with the held-out split too when that split
    was carved from the training file (not ``--eval``'s), as the nearest examples are."""
    if prepared.held is None or not len(prepared.held) or run.eval_data:
        return lexical
    metrics.setdefault("lexical", {})["held_out_added"] = len(prepared.held)
    log(f"the {len(prepared.held):,} held-out texts joined the lexical model")
    joined = fit(prepared, run.lexical, with_held_out=True, class_weights=run.class_weights)
    joined.temperature = lexical.temperature  # fitted on those texts before they joined
    return joined


def fit(
    prepared: Any,
    weight: float = 0.0,
    *,
    with_held_out: bool = False,
    class_weights: str = "none",
) -> LexicalModel:
    """The lexical model of ``prepared``'s training split (and its held-out split too, with
    ``with_held_out``); ``class_weights="auto"`` weights its loss by label as ``--class-weights
    auto`` weights the transformer's (the same inverse frequencies of the training split)."""
    texts, labels = list(prepared.train.texts), list(prepared.train.first_labels)
    weights = None
    if class_weights == "auto":
        index = {name: i for i, name in enumerate(prepared.labels)}
        ids = [index[label] for label in labels]
        weights = inverse_frequency(ids, len(prepared.labels), "classification")
    if with_held_out:
        texts += prepared.held.texts
        labels += prepared.held.first_labels
    return LexicalModel.fit(texts, labels, prepared.labels, weight, class_weights=weights)


def measure(
    metrics: dict[str, Any],
    lexical: LexicalModel,
    probs: Any,
    y: Any,
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    calibrate: bool = True,
    lexical_probs: Any = None,
) -> Any:
    """Replace ``metrics["report"]`` with the report of the mixed held-out probabilities (the
    transformer's own ``probs`` for ``texts``, truth ``y``) and add a ``lexical`` block with the
    accuracy of each part; returns the mixed probabilities. With ``calibrate`` (the model is
    calibrated) the mix's own temperature is fitted on these texts first. ``lexical_probs``:
    ``lexical``'s probabilities of ``texts``, when the caller has them."""
    if lexical_probs is None:
        lexical_probs = lexical.probabilities(texts)
    if calibrate:
        lexical.fit_temperature(probs, texts, y, lexical_probs=lexical_probs)
    mixed = lexical.mix(probs, texts, lexical_probs=lexical_probs)
    alone = classification_report(y, probs, list(labels))
    metrics["report"] = classification_report(y, mixed, list(labels))
    metrics["lexical"] = {
        "weight": lexical.weight,
        "transformer_accuracy": alone.get("accuracy"),
        "lexical_accuracy": classification_report(y, lexical_probs, list(labels)).get("accuracy"),
        "mixed_accuracy": metrics["report"].get("accuracy"),
        "temperature": lexical.temperature,
    }
    return mixed
