"""Weight-space ensembling (WiSE-FT, Wortsman et al., 2022) after full fine-tuning.

The final weights are ``(1 - a) * start + a * fine_tuned``, where ``start`` is the pretrained
encoder with the head fitted by the linear probe. Because LP-FT starts from a good head, the
straight line between the two models stays good, and its middle generalises better than either
end (measured in docs/benchmarks.md, "Engine measurements that used to live in its docstrings").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

#: Weights tried on held-out data; ties go to the larger (closer to plain fine-tuning).
WEIGHT_GRID = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

#: The weight used when there is no held-out data to choose one (few-shot runs), chosen on
#: banking77 training texts outside each draw, never the test split (docs/benchmarks.md, "Few-shot
#: WiSE-FT weight chosen on training texts outside the draw").
FEW_SHOT_WEIGHT = 0.4


def snapshot(model: Any) -> dict[str, Any]:
    """A detached copy of the model's floating-point weights and buffers, by name."""
    return {
        name: value.detach().clone()
        for name, value in model.state_dict().items()
        if value.is_floating_point()
    }


def blend(model: Any, start: dict[str, Any], finetuned: dict[str, Any], weight: float) -> None:
    """Set the model's weights to ``(1 - weight) * start + weight * finetuned`` in place."""
    import torch

    state = model.state_dict()
    with torch.no_grad():
        for name, tuned in finetuned.items():
            if name in start:
                state[name].copy_(torch.lerp(start[name].to(tuned.dtype), tuned, weight))
            else:  # not part of the start (cannot happen for full fine-tuning): keep it
                state[name].copy_(tuned)


def choose_weight(
    score: Callable[[float], float], grid: Iterable[float] = WEIGHT_GRID
) -> tuple[float, dict[float, float]]:
    """The grid weight with the best ``score`` (ties: the larger weight), and every score."""
    scores = {weight: float(score(weight)) for weight in grid}
    best = max(scores, key=lambda weight: (scores[weight], weight))
    return best, scores
