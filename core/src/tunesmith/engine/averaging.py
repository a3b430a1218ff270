"""Averaging the weights of the last epochs (``--average-epochs N``).

The weights at the end of each of the last N epochs are kept (on the CPU) while training runs,
and their mean replaces the trained weights afterwards: a cheap ensemble in weight space along
one run, in the spirit of stochastic weight averaging (Izmailov et al., 2018) and of the
checkpoint averaging of machine translation. With held-out data the mean is kept only when it
scores at least as well there as the weights training ended with (the best checkpoint); without
held-out data it is kept.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from tunesmith.engine.wise import snapshot


def mean_weights(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """The element-wise mean of same-named weights (float32 sums, each weight's own dtype)."""
    if not snapshots:
        raise ValueError("no weights to average")
    out: dict[str, Any] = {}
    for name, first in snapshots[0].items():
        total = first.float().clone()
        for other in snapshots[1:]:
            total += other[name].float()
        out[name] = (total / len(snapshots)).to(first.dtype)
    return out


def load_weights(model: Any, weights: dict[str, Any]) -> None:
    """Copy ``weights`` (by name) into ``model`` in place."""
    import torch

    state = model.state_dict()
    with torch.no_grad():
        for name, value in weights.items():
            state[name].copy_(value.to(device=state[name].device, dtype=state[name].dtype))


def make_epoch_snapshots(keep: int) -> Any:
    """A ``TrainerCallback`` whose ``snapshots`` hold the weights at the end of the last
    ``keep`` epochs (CPU copies, oldest first)."""
    from transformers import TrainerCallback

    class EpochSnapshots(TrainerCallback):
        def __init__(self) -> None:
            self.snapshots: deque[dict[str, Any]] = deque(maxlen=keep)

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            model = kwargs.get("model")
            if model is not None:
                self.snapshots.append({k: v.cpu() for k, v in snapshot(model).items()})

    return EpochSnapshots()
