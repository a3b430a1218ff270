"""Score many token sequences in length-sorted, token-bounded batches, without gradients.

Occlusion and the faithfulness scores both ask one question many times: what does the model
say about this text with some words taken out?
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tunesmith.explain.encoding import pad_batch
from tunesmith.explain.model_io import model_device, output_tensor, probabilities, run_model

#: ``score_fn(model_outputs, task_index) -> one scalar per row``.
ScoreFn = Callable[[Any, Any], Any]

DEFAULT_MAX_TOKENS = 8192


def length_batches(lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, each at most ``max_tokens`` padded tokens."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for i in order:
        new_width = max(width, lengths[i])
        if current and new_width * (len(current) + 1) > max_tokens:
            batches.append(current)
            current, new_width = [], lengths[i]
        current.append(i)
        width = new_width
    if current:
        batches.append(current)
    return batches


def score_sequences(
    model: Any,
    sequences: Sequence[Sequence[int]],
    tasks: Sequence[int],
    score_fn: ScoreFn,
    *,
    pad_id: int,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> list[float]:
    """``score_fn`` for every sequence; ``tasks[i]`` tells it which text sequence ``i`` belongs to."""
    import torch

    results = [0.0] * len(sequences)
    device = model_device(model)
    with torch.inference_mode():
        for which in length_batches([len(s) for s in sequences], max_tokens):
            ids, mask = pad_batch([sequences[i] for i in which], pad_id)
            outputs = run_model(model, ids.to(device), mask.to(device))
            values = score_fn(outputs, torch.tensor([tasks[i] for i in which]))
            for i, value in zip(which, values.float().cpu().tolist(), strict=True):
                results[i] = value
    return results


def classifier_score_fn(
    targets: Sequence[int], *, multilabel: bool = False, temperature: Any = None
) -> ScoreFn:
    """The probability of each task's target label (softmax, or sigmoid for multi-label)."""
    import torch

    target_tensor = torch.as_tensor(list(targets), dtype=torch.long)

    def score(outputs: Any, task_index: Any) -> Any:
        logits = output_tensor(outputs)
        probs = probabilities(logits, multilabel=multilabel, temperature=temperature)
        rows = torch.arange(probs.shape[0], device=probs.device)
        return probs[rows, target_tensor[task_index.cpu()].to(probs.device)]

    return score


def classifier_probabilities(
    model: Any,
    sequences: Sequence[Sequence[int]],
    *,
    pad_id: int,
    multilabel: bool = False,
    temperature: Any = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> Any:
    """Every label's probability for every sequence, as a ``(n, labels)`` numpy array."""
    import numpy as np
    import torch

    rows: list[Any] = [None] * len(sequences)
    device = model_device(model)
    with torch.inference_mode():
        for which in length_batches([len(s) for s in sequences], max_tokens):
            ids, mask = pad_batch([sequences[i] for i in which], pad_id)
            logits = output_tensor(run_model(model, ids.to(device), mask.to(device)))
            probs = probabilities(logits.float(), multilabel=multilabel, temperature=temperature)
            for i, row in zip(which, probs.cpu().numpy(), strict=True):
                rows[i] = row
    return np.stack(rows) if rows else np.zeros((0, 0))
