"""Pooled embeddings of encoded texts as a classifier's head reads them, and the stored nearest
examples built from them (:class:`tunesmith.engine.nearest.NearestExamples`). Runs the model, so
it sits above :mod:`tunesmith.engine.feature_cache`; :mod:`.nearest` itself does not."""

from __future__ import annotations

from typing import Any

from tunesmith.devices import model_device
from tunesmith.engine.feature_cache import compute_frozen_features, num_layers, split_supported
from tunesmith.engine.modeling import mean_pool, pooling_of
from tunesmith.engine.nearest import TEMPERATURE, NearestExamples
from tunesmith.engine.padding import pad_tokens
from tunesmith.engine.strategies import backbone_of


def pooled_embeddings(model: Any, encodings: list[dict[str, Any]], *, pad_id: int) -> Any:
    """The pooled embeddings of ``encodings`` as ``model``'s head reads them (not normalised),
    on the CPU wherever the model runs (the probe and the nearest examples work there)."""
    if split_supported(model):
        features = compute_frozen_features(
            model, encodings, depth=num_layers(model), pooled=True, pad_id=pad_id
        )
        return features.values
    return _pooled_whole(model, encodings, pad_id=pad_id)


def head_logits(model: Any, pooled: Any) -> Any:
    """``model``'s classification head on CPU ``pooled`` embeddings, as CPU logits: after a
    GPU run the head is still on the GPU."""
    head = model.classifier
    return head(pooled.to(next(head.parameters()).device)).cpu()


def _pooled_whole(
    model: Any, encodings: list[dict[str, Any]], *, pad_id: int, batch_size: int = 64
) -> Any:
    """:func:`pooled_embeddings` for an encoder that cannot be split layer by layer (DistilBERT,
    MPNet, DeBERTa): the whole backbone runs, then the head's pooling."""
    import inspect

    import torch

    backbone = backbone_of(model)
    accepted = inspect.signature(backbone.forward).parameters
    mean = pooling_of(model) == "mean"
    pooler = getattr(backbone, "pooler", None)
    order = sorted(range(len(encodings)), key=lambda i: len(encodings[i]["input_ids"]))
    results: list[Any] = [None] * len(encodings)
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = pad_tokens([encodings[i] for i in idx], pad_id)
                inputs = {k: v.to(device) for k, v in batch.items() if k in accepted}
                hidden = backbone(**inputs).last_hidden_state
                if mean:
                    vectors = mean_pool(hidden, inputs["attention_mask"])
                else:
                    vectors = pooler(hidden) if pooler is not None else hidden[:, 0]
                vectors = vectors.cpu()
                for row, i in enumerate(idx):
                    results[i] = vectors[row].clone()
    finally:
        model.train(was_training)
    return torch.stack(results)


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
