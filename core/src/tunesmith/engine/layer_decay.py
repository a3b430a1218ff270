"""Optimizer groups with layer-wise learning-rate decay (``--layer-decay``)."""

from __future__ import annotations

import re
from typing import Any

_LAYER = re.compile(r"(?:^|\.)layers?\.(\d+)\.")


def layer_decay_groups(
    named_parameters: Any,
    decaying: set[str],
    *,
    lr: float,
    weight_decay: float,
    decay: float,
) -> list[dict[str, Any]]:
    """Optimizer groups with layer-wise learning-rate decay (``--layer-decay``).

    The head (and anything above the last layer) trains at ``lr``, layer ``i`` of ``n`` at
    ``lr * decay ** (n - i)``, the embeddings at ``lr * decay ** (n + 1)``: the layers nearest
    the input, which hold the most general features, move least. Trainable parameters only;
    ``decaying`` names the ones that take weight decay (``Trainer.get_decay_parameter_names``:
    not biases and norms). A model without numbered ``layer.N`` parameters gets one group at
    ``lr``.
    """
    params = [(name, p) for name, p in named_parameters if p.requires_grad]
    depths: dict[str, int] = {}
    for name, _ in params:
        found = _LAYER.search(name)
        if found:
            depths[name] = int(found.group(1)) + 1
    layers = max(depths.values(), default=0)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, p in params:
        if name in depths:
            depth = depths[name]
        elif layers and "embed" in name:
            depth = 0
        else:
            depth = layers + 1
        decays = name in decaying
        key = (depth, decays)
        if key not in groups:
            groups[key] = {
                "params": [],
                "lr": lr * decay ** (layers + 1 - depth),
                "weight_decay": weight_decay if decays else 0.0,
            }
        groups[key]["params"].append(p)
    return [groups[key] for key in sorted(groups)]
