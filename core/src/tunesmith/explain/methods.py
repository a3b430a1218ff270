"""The built-in attribution methods, ``ig`` and ``occlusion``, behind one small protocol.

A method (``tunesmith.hooktypes.AttributionMethod``) is called as
``method.attribute(model, tokenizer, texts, encoded=..., score_fn=..., pad_id=..., **options)``
and returns one :class:`~tunesmith.explain.types.TokenAttribution` per text, a score per token
of ``encoded[i].input_ids``. ``score_fn(model_outputs, task_index)`` gives the scalar being
explained for each row of a batch (the target label's probability, an entity's tag
probability, ...), so one method serves classifiers and taggers alike. Plugins add methods
through the ``tunesmith_attribution_methods`` hook.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.explain.encoding import EncodedText, baseline_ids
from tunesmith.explain.ig import (
    MIDPOINT_ALPHAS,
    IGTask,
    gradient_times_input,
    integrated_gradients,
)
from tunesmith.explain.model_io import input_embeddings, model_device, run_model
from tunesmith.explain.scoring import DEFAULT_MAX_TOKENS, score_sequences
from tunesmith.explain.types import TokenAttribution
from tunesmith.plugins import collect_dict

#: The method ``explain_texts``, ``tunesmith explain`` and ``aggregate_explanations`` use unless
#: told otherwise (chosen by ``benchmarks/explain_speed.py``; see docs/benchmarks.md).
DEFAULT_METHOD = "ig-midpoint"
#: What one text is explained with, by ``tunesmith explain --text`` and the playground alike:
#: 50-step integrated gradients, precise (a small delta) and under a second; the playground's
#: faithfulness figures are then the ones ``explain --text`` prints for the same text.
SINGLE_TEXT_METHOD = "ig"
#: The integration steps of ``ig`` and ``captum-ig`` unless told otherwise (``--steps``).
DEFAULT_STEPS = 50


class IntegratedGradients:
    """Integrated gradients on the input embeddings, [PAD] baseline, batched over texts and steps."""

    name = "ig"
    description = "integrated gradients at the input embeddings, [PAD] baseline"
    #: Whether ``n_steps`` (``tunesmith explain --steps``) changes the result; the CLI refuses
    #: ``--steps`` for a method without it. A plugin's method without the attribute counts as True.
    uses_steps = True
    #: The path rule (see :mod:`tunesmith.explain.ig`): Captum's global Gauss-Legendre rule.
    rule = "gauss-legendre"

    def attribute(
        self,
        model: Any,
        tokenizer: Any,
        texts: Sequence[str],
        *,
        encoded: Sequence[EncodedText],
        score_fn: Callable[[Any, Any], Any],
        pad_id: int | None = None,
        n_steps: int = 50,
        max_tokens: int | None = None,
        progress: Callable[[int], None] | None = None,
        tolerance: float | None = None,
        input_values: Sequence[float] | None = None,
        **_: Any,
    ) -> list[TokenAttribution]:
        tasks = [IGTask(e.input_ids, [w is not None for w in e.word_ids]) for e in encoded]
        # Progress counts texts: rows done over the rows a text takes (adaptive: about n_steps).
        per_text = len(MIDPOINT_ALPHAS) if self.rule == "midpoint" else n_steps
        return list(
            integrated_gradients(
                model,
                tasks,
                score_fn,
                pad_id=pad_id if pad_id is not None else tokenizer.pad_token_id,
                n_steps=n_steps,
                vocab_size=len(tokenizer),
                max_tokens=max_tokens,
                progress=(lambda rows: progress(rows / per_text)) if progress else None,
                rule=self.rule,
                tolerance=tolerance,
                input_values=input_values,
            )
        )


class AdaptiveIntegratedGradients(IntegratedGradients):
    """Integrated gradients with a per-text composite rule refined until every panel of the
    path adds up (completeness gap at most ``tolerance``); at most ``4 * n_steps`` rows a text.

    Measured on finance tweets: a tenth of the 50-step rule's mean |delta| with fewer rows.
    """

    name = "ig-adaptive"
    description = "integrated gradients, path rule refined per text until each panel adds up"
    rule = "adaptive"


class GradientTimesInput:
    """Gradient x input at the embeddings: ``(x - [PAD]) . grad f(x)`` per token.

    One forward and one backward pass per text, shared across texts in batches.
    """

    name = "grad-input"
    description = "gradient x (input - [PAD] baseline) at the input embeddings, one backward pass"
    uses_steps = False

    def attribute(
        self,
        model: Any,
        tokenizer: Any,
        texts: Sequence[str],
        *,
        encoded: Sequence[EncodedText],
        score_fn: Callable[[Any, Any], Any],
        pad_id: int | None = None,
        max_tokens: int | None = None,
        progress: Callable[[int], None] | None = None,
        **_: Any,
    ) -> list[TokenAttribution]:
        tasks = [IGTask(e.input_ids, [w is not None for w in e.word_ids]) for e in encoded]
        return gradient_times_input(
            model,
            tasks,
            score_fn,
            pad_id=pad_id if pad_id is not None else tokenizer.pad_token_id,
            vocab_size=len(tokenizer),
            max_tokens=max_tokens,
            progress=progress,
        )


class MidpointIntegratedGradients(IntegratedGradients):
    """Integrated gradients from a few points around the path's middle: the mean gradient at
    ``tunesmith.explain.ig.MIDPOINT_ALPHAS`` (0.45 and 0.55) times ``x - [PAD]`` per token.

    Two gradient rows per text instead of 50, batched over texts. Its delta is large (a few
    points cannot integrate a path that turns sharply), but the words it ranks first are the
    ones the prediction rests on: on finance tweets its comprehensiveness and sufficiency
    matched 50-step integrated gradients' (``benchmarks/explain_speed.py``, docs/benchmarks.md).
    The gradient at the input itself (``grad-input``) is far worse there: the explained
    probability is saturated at the input, while the middle of the path is where it changes.
    """

    name = "ig-midpoint"
    description = "integrated gradients from 2 points around the path's middle (fast)"
    rule = "midpoint"
    uses_steps = False  # always the MIDPOINT_ALPHAS


class WordOcclusion:
    """Leave-one-word-out: a word's score is how much the explained score drops without it.

    The drop is shared evenly between the word's pieces, so merging pieces back into words
    gives the drop itself. All occluded variants of all texts run in shared batches.
    """

    name = "occlusion"
    description = "drop in the explained score when each word is removed"
    uses_steps = False

    def attribute(
        self,
        model: Any,
        tokenizer: Any,
        texts: Sequence[str],
        *,
        encoded: Sequence[EncodedText],
        score_fn: Callable[[Any, Any], Any],
        pad_id: int | None = None,
        max_tokens: int | None = None,
        progress: Callable[[int], None] | None = None,
        **_: Any,
    ) -> list[TokenAttribution]:
        pad = pad_id if pad_id is not None else (tokenizer.pad_token_id or 0)
        sequences: list[list[int]] = []
        owners: list[int] = []
        for t, enc in enumerate(encoded):
            sequences.append(list(enc.input_ids))
            owners.append(t)
            for word in range(enc.n_words):
                sequences.append(enc.ids_without([word]))
                owners.append(t)
        scores = score_sequences(
            model,
            sequences,
            owners,
            score_fn,
            pad_id=pad,
            max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
        )
        results = []
        at = 0
        for enc in encoded:
            full = scores[at]
            drops = [full - s for s in scores[at + 1 : at + 1 + enc.n_words]]
            at += 1 + enc.n_words
            pieces = [0] * enc.n_words
            for w in enc.word_ids:
                if w is not None:
                    pieces[w] += 1
            token_scores = [0.0 if w is None else drops[w] / pieces[w] for w in enc.word_ids]
            results.append(TokenAttribution(scores=token_scores, delta=None))
            if progress is not None:
                progress(1)
        return results


class CaptumIntegratedGradients:
    """Captum's own ``LayerIntegratedGradients``, one text per call: the reference for ``ig``.

    Same baseline, path and quadrature as ``ig`` (which matches it within 1e-5, tested), but
    without sharing passes across texts, so slower; useful to check ``ig`` or to compare with
    Captum-based tooling.
    """

    name = "captum-ig"
    description = "Captum LayerIntegratedGradients at the input embeddings, one text at a time"
    uses_steps = True

    def attribute(
        self,
        model: Any,
        tokenizer: Any,
        texts: Sequence[str],
        *,
        encoded: Sequence[EncodedText],
        score_fn: Callable[[Any, Any], Any],
        pad_id: int | None = None,
        n_steps: int = 50,
        progress: Callable[[int], None] | None = None,
        **_: Any,
    ) -> list[TokenAttribution]:
        import torch
        from captum.attr import LayerIntegratedGradients

        pad = pad_id if pad_id is not None else (tokenizer.pad_token_id or 0)
        device = model_device(model)
        layer = input_embeddings(model, len(tokenizer))
        results = []
        for index, enc in enumerate(encoded):

            def forward(ids: Any, mask: Any, _index: int = index) -> Any:
                which = torch.full((ids.shape[0],), _index, dtype=torch.long)
                return score_fn(run_model(model, ids, mask), which)

            ids = torch.tensor([list(enc.input_ids)], device=device)
            base = torch.tensor([baseline_ids(enc, pad)], device=device)
            attributions, delta = LayerIntegratedGradients(forward, layer).attribute(
                ids,
                baselines=base,
                additional_forward_args=(torch.ones_like(ids),),
                n_steps=n_steps,
                return_convergence_delta=True,
            )
            scores = attributions.sum(-1)[0].detach().to("cpu", torch.float64).tolist()
            results.append(TokenAttribution(scores=scores, delta=float(delta.reshape(-1)[0])))
            if progress is not None:
                progress(1)
        return results


def builtin_methods() -> dict[str, Any]:
    """The core's attribution methods by name (registered through the plugin hook)."""
    return {
        "ig": IntegratedGradients(),
        "ig-adaptive": AdaptiveIntegratedGradients(),
        "ig-midpoint": MidpointIntegratedGradients(),
        "occlusion": WordOcclusion(),
        "grad-input": GradientTimesInput(),
        "captum-ig": CaptumIntegratedGradients(),
    }


def available_methods() -> dict[str, Any]:
    """Every attribution method the installed plugins offer, built-ins included."""
    methods: dict[str, Any] = collect_dict("tunesmith_attribution_methods")
    if not methods:  # the plugin manager was built without the built-ins (some tests do)
        methods = builtin_methods()
    return methods


def get_method(name: str) -> Any:
    """The attribution method called ``name``, or a clear error listing the known ones."""
    methods = available_methods()
    if name not in methods:
        raise UserInputError(
            f"unknown attribution method {name!r}; available: {', '.join(sorted(methods))}"
        )
    return methods[name]
