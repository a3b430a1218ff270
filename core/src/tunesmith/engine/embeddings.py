"""Pooled embeddings of encoded texts as a classifier's head reads them, and the stored nearest
examples built from them (:class:`tunesmith.engine.nearest.NearestExamples`). Runs the model, so
it sits above :mod:`tunesmith.engine.feature_cache`; :mod:`.nearest` itself does not."""

from __future__ import annotations

from typing import Any

from tunesmith.engine.feature_cache import compute_frozen_features, num_layers
from tunesmith.engine.nearest import TEMPERATURE, NearestExamples


def pooled_embeddings(model: Any, encodings: list[dict[str, Any]], *, pad_id: int) -> Any:
    """The pooled embeddings of ``encodings`` as ``model``'s head reads them (not normalised)."""
    features = compute_frozen_features(
        model, encodings, depth=num_layers(model), pooled=True, pad_id=pad_id
    )
    return features.values


def build(model: Any, encodings: list[dict[str, Any]], labels: list[int], *, pad_id: int,
          weight: float, pooled: Any = None) -> NearestExamples:  # fmt: skip
    """Embed the training texts with ``model`` (pooled as its head reads them), or store
    ``pooled`` when the embeddings are already at hand."""
    import torch

    if pooled is None:
        pooled = pooled_embeddings(model, encodings, pad_id=pad_id)
    return NearestExamples(
        pooled,
        torch.as_tensor(labels, dtype=torch.long),
        num_labels=int(model.config.num_labels),
        weight=weight,
        temperature=TEMPERATURE,
    )
