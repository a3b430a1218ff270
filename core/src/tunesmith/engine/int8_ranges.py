"""Recording int8 activation ranges: each linear layer's input range while the fp32 model reads
training texts, written to ``int8_ranges.json`` for :func:`tunesmith.engine.quantize.quantize_int8`
(the kernels live there; this module runs the model, so it sits above loading and predict)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from typing import Any

from tunesmith.engine.loading import load_model
from tunesmith.engine.predict import predict_logits, predict_word_logits
from tunesmith.errors import UserInputError
from tunesmith.io import atomic_write_json
from tunesmith.model_dir import INT8_RANGES_FILE

#: Texts sampled from the training data to record the ranges, and the batch size used. The
#: range kept is the mean over batches of each batch's minimum and maximum: what per-batch
#: quantisation sees in a typical batch of 32, rather than the rare extreme of one batch.
RANGE_TEXTS = 512
RANGE_BATCH = 32


def measure_activation_ranges(model: Any, run: Callable[[], object]) -> dict[str, list[float]]:
    """Each ``nn.Linear``'s input range while ``run()`` drives ``model``: the mean over calls of
    each call's minimum and maximum, keyed by the layer's name in ``model.named_modules()``."""
    import torch

    seen: dict[str, list[tuple[float, float]]] = {}
    handles = []

    def hook(name: str) -> Callable[..., None]:
        def record(_module: Any, inputs: tuple, _output: Any) -> None:
            low, high = torch.aminmax(inputs[0].detach().float())
            seen.setdefault(name, []).append((float(low), float(high)))

        return record

    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            handles.append(module.register_forward_hook(hook(name)))
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return {
        name: [
            sum(low for low, _ in calls) / len(calls),
            sum(high for _, high in calls) / len(calls),
        ]
        for name, calls in seen.items()
    }


def record_int8_ranges(
    loaded: Any, texts: Sequence[str] | Sequence[Sequence[str]], *, seed: int = 0
) -> dict[str, Any]:
    """The contents of ``int8_ranges.json`` for the fp32 model ``loaded`` (a ``LoadedModel``).

    ``texts`` are training texts (word lists for a tagger); up to ``RANGE_TEXTS`` of them, drawn
    with ``seed``, run through the model in length-sorted batches of ``RANGE_BATCH``.
    """
    sample = list(texts)
    if len(sample) > RANGE_TEXTS:
        sample = random.Random(seed).sample(sample, RANGE_TEXTS)
    predict = predict_word_logits if loaded.task == "ner" else predict_logits
    ranges = measure_activation_ranges(
        # One stream: the same batches in the same order whatever the machine.
        loaded.model,
        lambda: predict(loaded, sample, batch_size=RANGE_BATCH, streams=1),
    )
    return {
        "statistic": f"mean over batches of {RANGE_BATCH} texts of each input's min and max",
        "texts": len(sample),
        "ranges": ranges,
    }


def save_int8_ranges(
    model_dir: str | os.PathLike, texts: Sequence[str] | Sequence[Sequence[str]], *, seed: int = 0
) -> dict[str, Any]:
    """Record the ranges of the fp32 model in ``model_dir`` on ``texts`` and write them, atomically,
    as its ``int8_ranges.json``; returns the document. A tagger's texts may be plain strings
    (split on spaces into words) or word lists."""
    if not texts:
        raise UserInputError("no texts to record the int8 ranges from")
    loaded = load_model(model_dir)
    if loaded.task == "ner":
        texts = [text.split() if isinstance(text, str) else list(text) for text in texts]
    recorded = record_int8_ranges(loaded, texts, seed=seed)
    atomic_write_json(loaded.path / INT8_RANGES_FILE, recorded)
    return recorded
