"""The frozen-feature cache: with ``head`` and ``freeze:K`` the frozen bottom runs once.

What the frozen part outputs for each training text (the pooled vector for ``head``, the hidden
states after layer K for ``freeze:K``) is computed once, stored under the cache directory keyed
by a hash of the model files, the exact token ids and the settings, and reused by every epoch
and every later run. Training then runs only the trainable top (:class:`FrozenTop`), whose
modules are the full model's own, so the full model is trained in place and saved as usual.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.devices import model_device
from tunesmith.engine.modeling import mean_pool, pooling_of
from tunesmith.engine.padding import pad_tokens
from tunesmith.engine.strategies import backbone_of, encoder_layers, num_layers
from tunesmith.errors import DiskFullError
from tunesmith.io import atomic_open

CACHE_ENV = "TUNESMITH_CACHE_DIR"
FORMAT_VERSION = 1


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``cache_dir``, else ``$TUNESMITH_CACHE_DIR``, else ``~/.cache/tunesmith``."""
    if cache_dir:
        return Path(cache_dir)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tunesmith"


def model_fingerprint(location: str | os.PathLike[str]) -> str:
    """A hash of a model directory's config and weight files (name, size, modification time)."""
    digest = hashlib.sha256()
    path = Path(location)
    if not path.is_dir():
        digest.update(str(location).encode())
        return digest.hexdigest()[:16]
    for file in sorted(path.iterdir()):
        if file.suffix in (".json", ".safetensors", ".bin", ".txt", ".model") and file.is_file():
            stat = file.stat()
            digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
            if file.suffix == ".json":
                digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def features_key(
    model_fp: str, input_ids: list[list[int]], *, depth: int, pooled: str | None
) -> str:
    """The cache key: model, exact token ids (so data, tokenizer and max length) and settings."""
    digest = hashlib.sha256()
    digest.update(json.dumps([FORMAT_VERSION, model_fp, depth, pooled]).encode())
    for ids in input_ids:
        digest.update(len(ids).to_bytes(4, "little"))
        digest.update(b"".join(int(i).to_bytes(4, "little") for i in ids))
    return digest.hexdigest()[:32]


#: Where :func:`split_supported` keeps its answer on the model (outside the module tree).
_SPLIT_ATTR = "_tunesmith_split_ok"


def split_supported(model: Any) -> bool:
    """Whether running ``embeddings`` and then each layer as ``layer(hidden, mask)`` computes what
    the model's encoder computes, tried once on two short rows (one padded) and remembered.

    BERT, RoBERTa and the like pass; encoders that feed their layers more than that (MPNet's
    relative position bias, DeBERTa's relative embeddings, ELECTRA's projection of smaller
    embeddings) do not, and then run whole: their split features would be wrong, or fail.
    """
    known = model.__dict__.get(_SPLIT_ATTR)
    if known is not None:
        return bool(known)
    ok = False
    if encoder_layers(model) is not None:
        ok = _split_matches(model)
    model.__dict__[_SPLIT_ATTR] = ok
    return ok


def _split_matches(model: Any) -> bool:
    import torch

    config = model.config
    pad = getattr(config, "pad_token_id", None)
    pad = pad if isinstance(pad, int) and pad >= 0 else 0
    vocab = int(getattr(config, "vocab_size", 8) or 8)
    ids = [(pad + 1 + i) % vocab for i in range(5)]
    rows = [
        {"input_ids": ids, "attention_mask": [1] * 5},
        {"input_ids": ids[:3], "attention_mask": [1] * 3},
    ]
    was_training = model.training
    try:
        split = compute_frozen_features(
            model, rows, depth=num_layers(model), pooled=False, pad_id=pad
        )
        batch = pad_tokens(rows, pad)
        model.eval()
        with torch.inference_mode():
            whole = backbone_of(model)(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).last_hidden_state
    except Exception:  # noqa: BLE001 - a layer that refuses the call is an answer too
        return False
    finally:
        model.train(was_training)
    expected = torch.cat([whole[0, :5], whole[1, :3]])
    return split.values.shape == expected.shape and bool(
        torch.allclose(split.values, expected, atol=1e-4, rtol=1e-4)
    )


def cache_supported(model: Any, task: str) -> bool:
    """Whether the model's frozen bottom can be split off (BERT-style encoders)."""
    if not split_supported(model):
        return False
    if task == "ner":
        return hasattr(model, "classifier")
    if pooling_of(model) == "mean":
        return True
    # [CLS] pooling: only BERT's pooler (dense + tanh) is understood here.
    return getattr(backbone_of(model), "pooler", None) is not None and hasattr(model, "classifier")


@dataclass
class FrozenFeatures:
    """Cached outputs of the frozen part: one pooled vector, or one [length, hidden] block each."""

    values: Any
    offsets: Any | None = None

    def __len__(self) -> int:
        return len(self.values) if self.offsets is None else len(self.offsets) - 1

    def item(self, index: int) -> Any:
        if self.offsets is None:
            return self.values[index]
        return self.values[self.offsets[index] : self.offsets[index + 1]]


def compute_frozen_features(
    model: Any,
    encodings: list[dict[str, list[int]]],
    *,
    depth: int,
    pooled: bool,
    pad_id: int,
    batch_size: int = 64,
) -> FrozenFeatures:
    """Run embeddings and layers ``[:depth]`` (and pooling when ``pooled``) over ``encodings``."""
    import torch
    from transformers.masking_utils import create_bidirectional_mask

    backbone = backbone_of(model)
    layers = list(encoder_layers(model))[:depth]
    mean = pooling_of(model) == "mean"
    device = model_device(model)
    was_training = model.training
    model.eval()
    order = sorted(range(len(encodings)), key=lambda i: len(encodings[i]["input_ids"]))
    results: list[Any] = [None] * len(encodings)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = {
                k: v.to(device) for k, v in pad_tokens([encodings[i] for i in idx], pad_id).items()
            }
            mask2d = batch["attention_mask"]
            hidden = backbone.embeddings(
                input_ids=batch["input_ids"], token_type_ids=batch.get("token_type_ids")
            )
            mask = create_bidirectional_mask(
                config=backbone.config, inputs_embeds=hidden, attention_mask=mask2d
            )
            for layer in layers:
                hidden = layer(hidden, mask)
            # Features are data: kept on the CPU, so a cache file loads on any machine.
            if pooled:
                vectors = mean_pool(hidden, mask2d) if mean else backbone.pooler(hidden)
                vectors = vectors.cpu()
                for row, i in enumerate(idx):
                    results[i] = vectors[row].clone()
            else:
                hidden, mask2d = hidden.cpu(), mask2d.cpu()
                for row, i in enumerate(idx):
                    length = int(mask2d[row].sum())
                    results[i] = hidden[row, :length].clone()
    model.train(was_training)
    if pooled:
        return FrozenFeatures(torch.stack(results))
    lengths = torch.tensor([0] + [r.shape[0] for r in results])
    return FrozenFeatures(torch.cat(results), torch.cumsum(lengths, 0))


def load_or_compute(
    model: Any,
    encodings: list[dict[str, list[int]]],
    *,
    model_fp: str,
    depth: int,
    pooled: bool,
    pad_id: int,
    cache_dir: str | os.PathLike[str] | None,
) -> tuple[FrozenFeatures, bool]:
    """Cached features for ``encodings`` (computed and stored on a miss); (features, was_hit)."""
    import torch

    key = features_key(
        model_fp,
        [e["input_ids"] for e in encodings],
        depth=depth,
        pooled=pooling_of(model) if pooled else None,
    )
    folder = cache_root(cache_dir) / "frozen-features"
    path = folder / f"{key}.pt"
    if path.is_file():
        try:
            saved = torch.load(path, weights_only=True, map_location="cpu")
            return FrozenFeatures(saved["values"], saved.get("offsets")), True
        except Exception:  # a damaged cache file is recomputed, never trusted
            path.unlink(missing_ok=True)
    features = compute_frozen_features(model, encodings, depth=depth, pooled=pooled, pad_id=pad_id)
    try:
        with atomic_open(path, binary=True) as handle:
            torch.save({"values": features.values, "offsets": features.offsets}, handle)
    except DiskFullError:
        pass  # the features are in memory: a cache the disk has no room for costs only time
    return features, False


def _frozen_top_class() -> Any:
    from torch import nn

    class FrozenTop(nn.Module):
        """The trainable top of a model whose bottom is cached: layers ``[depth:]`` and the head.

        Its modules are the full model's own, so training it trains the full model in place.
        """

        def __init__(self, model: Any, *, depth: int, pooled: bool, task: str) -> None:
            super().__init__()
            self.config = model.config
            self.task = task
            self.pooled = pooled
            self.mean = pooling_of(model) == "mean"
            backbone = backbone_of(model)
            self.layers = nn.ModuleList([] if pooled else list(encoder_layers(model))[depth:])
            needs_pooler = task != "ner" and not pooled and not self.mean
            self.pooler = backbone.pooler if needs_pooler else None
            self.dropout = model.dropout
            self.classifier = model.classifier
            self._backbone_config = backbone.config
            # The whole model, for callbacks that want to run it on text; kept out of the
            # module tree so that checkpoints hold only the trainable top.
            self.__dict__["full_model"] = model

        def forward(
            self,
            features: Any = None,
            hidden: Any = None,
            attention_mask: Any = None,
            labels: Any = None,
        ) -> Any:
            from transformers.masking_utils import create_bidirectional_mask
            from transformers.modeling_outputs import SequenceClassifierOutput

            if self.pooled:
                logits = self.classifier(self.dropout(features))
                return SequenceClassifierOutput(logits=logits)
            if len(self.layers):
                mask = create_bidirectional_mask(
                    config=self._backbone_config,
                    inputs_embeds=hidden,
                    attention_mask=attention_mask,
                )
                for layer in self.layers:
                    hidden = layer(hidden, mask)
            if self.task == "ner":
                logits = self.classifier(self.dropout(hidden))
            else:
                vector = mean_pool(hidden, attention_mask) if self.mean else self.pooler(hidden)
                logits = self.classifier(self.dropout(vector))
            return SequenceClassifierOutput(logits=logits)

    return FrozenTop


def frozen_top(model: Any, *, depth: int, pooled: bool, task: str) -> Any:
    """Build the trainable top module for a cached bottom of ``depth`` layers."""
    return _frozen_top_class()(model, depth=depth, pooled=pooled, task=task)


def cache_plan(model: Any, task: str, kind: str, k: int | None) -> tuple[int, bool]:
    """(depth, pooled) of the cached part for strategy ``kind``: ``head`` caches everything."""
    total = num_layers(model)
    if kind == "head" or (kind == "freeze" and (k or 0) >= total):
        return total, task != "ner"
    return int(k or 0), False


class FeatureDataset:
    """Cached features with labels, for the Trainer; ``lengths`` feed length-grouped batches."""

    def __init__(self, features: FrozenFeatures, labels: list[Any], lengths: list[int]) -> None:
        self.features = features
        self.labels = labels
        self.lengths = lengths

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"x": self.features.item(index), "labels": self.labels[index]}


class FeatureCollator:
    """Stacks pooled vectors, or pads hidden-state blocks and builds their attention mask."""

    def __init__(self, *, pooled: bool, task: str) -> None:
        self.pooled = pooled
        self.task = task

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        labels = _collate_labels([b["labels"] for b in batch], self.task)
        if self.pooled:
            return {"features": torch.stack([b["x"] for b in batch]), "labels": labels}
        width = max(b["x"].shape[0] for b in batch)
        dim = batch[0]["x"].shape[1]
        hidden = torch.zeros(len(batch), width, dim, dtype=batch[0]["x"].dtype)
        mask = torch.zeros(len(batch), width, dtype=torch.long)
        for row, b in enumerate(batch):
            n = b["x"].shape[0]
            hidden[row, :n] = b["x"]
            mask[row, :n] = 1
        if self.task == "ner":
            labels = _pad_tags([b["labels"] for b in batch], width)
        return {"hidden": hidden, "attention_mask": mask, "labels": labels}


def _collate_labels(labels: list[Any], task: str) -> Any:
    import torch

    if task == "multilabel":
        return torch.tensor(labels, dtype=torch.float32)
    if task == "ner":
        return None
    return torch.tensor(labels, dtype=torch.long)


def _pad_tags(tags: list[list[int]], width: int) -> Any:
    import torch

    return torch.tensor([t + [-100] * (width - len(t)) for t in tags], dtype=torch.long)
