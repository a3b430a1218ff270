"""Averaging the weights of the last epochs (``--average-epochs N``).

The weights at the end of each of the last N epochs are kept (on the CPU) while training runs,
and their mean replaces the trained weights afterwards: a cheap ensemble in weight space along
one run, in the spirit of stochastic weight averaging (Izmailov et al., 2018) and of the
checkpoint averaging of machine translation. With held-out data the mean is kept only when it
scores at least as well there as the weights training ended with (the best checkpoint); without
held-out data it is kept.
"""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path
from typing import Any

from tunesmith.engine.wise import snapshot
from tunesmith.io import atomic_open

_SNAPSHOT = re.compile(r"^epoch-(\d+)\.safetensors$")


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


def make_epoch_snapshots(
    keep: int, folder: Path | None = None, resumed_step: int | None = None
) -> Any:
    """A ``TrainerCallback`` whose ``snapshots`` hold the weights at the end of the last
    ``keep`` epochs (CPU copies, oldest first).

    ``folder``: each snapshot is also written there (``epoch-<step>.safetensors``), and a run
    resumed from the checkpoint of step ``resumed_step`` starts with the ones written up to that
    step, so that it averages the epochs the interrupted run had ended too.
    """
    from transformers import TrainerCallback

    def written() -> list[tuple[int, Path]]:
        if folder is None or not folder.is_dir():
            return []
        found = (
            (int(m.group(1)), path)
            for path in folder.iterdir()
            if (m := _SNAPSHOT.match(path.name))
        )
        return sorted(found)

    class EpochSnapshots(TrainerCallback):
        def __init__(self) -> None:
            self.snapshots: deque[dict[str, Any]] = deque(maxlen=keep)
            if resumed_step is not None:
                from safetensors.torch import load_file

                for step, path in written():
                    if step <= resumed_step:  # later ones: the interrupted run's lost steps
                        self.snapshots.append(load_file(path))

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            model = kwargs.get("model")
            if model is None:
                return
            weights = {k: v.cpu().contiguous() for k, v in snapshot(model).items()}
            self.snapshots.append(weights)
            if folder is not None and state.is_world_process_zero:
                from safetensors.torch import save

                folder.mkdir(parents=True, exist_ok=True)
                # Before the epoch's checkpoint: every checkpoint finds its epochs' weights.
                with atomic_open(
                    folder / f"epoch-{state.global_step}.safetensors", binary=True
                ) as out:
                    out.write(save(weights))

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            # Only once a checkpoint is whole may the snapshots it no longer needs go: a kill
            # while it is written resumes from the one before, which needs the older ones.
            kept = [item for item in written() if item[0] <= state.global_step][-keep:]
            for step, path in written():
                if step <= state.global_step and (step, path) not in kept:
                    path.unlink(missing_ok=True)

    return EpochSnapshots()
