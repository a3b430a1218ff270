"""Training strategies: ``full``, ``freeze:K``, ``head`` and ``lora``.

Frozen parts run with their dropout switched off, as a feature extractor would, so that training
them through the frozen-feature cache (``feature_cache.py``) and training them directly give the
same result.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.io import read_json_object
from tunesmith.model_dir import CONFIG_FILE, TASK_KEY


@dataclass(frozen=True)
class Strategy:
    """A parsed ``--strategy``: ``kind`` and, for ``freeze``, how many layers ``k``."""

    kind: str
    k: int | None = None

    @property
    def cacheable(self) -> bool:
        """Whether the frozen bottom can be computed once and cached."""
        return self.kind in ("head", "freeze")


def parse_strategy(text: str) -> Strategy:
    """``"freeze:4"`` -> ``Strategy("freeze", 4)``; bad text is a :class:`UserInputError`."""
    kind, _, rest = text.partition(":")
    if kind in ("full", "head", "lora") and not rest:
        return Strategy(kind)
    if kind == "freeze" and rest.isdigit():
        return Strategy("freeze", int(rest))
    raise UserInputError(
        f"--strategy {text!r} is not valid; expected full | freeze:K | head | lora"
    )


#: Where a ``config.json`` keeps the number of transformer layers (BERT, DistilBERT, others).
_LAYER_KEYS = ("num_hidden_layers", "n_layers", "num_layers")


def check_freeze_depth(strategy: str, model_location: str | Path) -> None:
    """Refuse ``freeze:K`` for K above the base model's layer count, read from its
    ``config.json`` before any heavy work (the linear-probe start ran first, and then the
    strategy failed). A directory whose config says no count is checked when the model is built
    (:func:`check_freeze_layers`)."""
    kind, _, rest = strategy.partition(":")
    if kind != "freeze" or not rest.isdigit():
        return
    config = read_json_object(Path(model_location) / CONFIG_FILE) or {}
    total = next((config[k] for k in _LAYER_KEYS if isinstance(config.get(k), int)), None)
    if total is not None:
        _check_depth(int(rest), total)


def check_freeze_layers(model: Any, strategy: Strategy) -> None:
    """:func:`check_freeze_depth` on a built model."""
    if strategy.kind == "freeze":
        _check_depth(strategy.k or 0, num_layers(model))


def _check_depth(k: int, total: int) -> None:
    if k > total:
        raise UserInputError(
            f"--strategy freeze:{k}: the model has only {total} layers; use freeze:1 to "
            f"freeze:{total} (freeze:{total} freezes every layer, as head does)"
        )


def backbone_of(model: Any) -> Any:
    """The encoder inside a task model (``model.bert`` for BERT)."""
    return getattr(model, model.base_model_prefix)


def encoder_layers(model: Any) -> Any | None:
    """The list of transformer layers, when the architecture exposes it the BERT way."""
    backbone = backbone_of(model)
    encoder = getattr(backbone, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if layers is None or not hasattr(backbone, "embeddings"):
        return None
    return layers


def num_layers(model: Any) -> int:
    """How many transformer layers the model has."""
    return int(model.config.num_hidden_layers)


def _freeze(module: Any) -> None:
    import torch

    for param in module.parameters():
        param.requires_grad_(False)
    for sub in module.modules():
        # A frozen feature extractor has no dropout; this also keeps cached features exact.
        if isinstance(sub, torch.nn.Dropout):
            sub.p = 0.0
    # Attention layers read their dropout rate from config-derived attributes, not nn.Dropout.
    for sub in module.modules():
        if hasattr(sub, "attention_dropout") and isinstance(sub.attention_dropout, float):
            sub.attention_dropout = 0.0
        if hasattr(sub, "dropout_prob") and isinstance(sub.dropout_prob, float):
            sub.dropout_prob = 0.0


def head_modules(model: Any) -> list[Any]:
    """The modules that make up the task head (``classifier``, and ``dropout`` before it)."""
    return [getattr(model, name) for name in ("classifier", "score") if hasattr(model, name)]


def apply_strategy(model: Any, strategy: Strategy, *, lora_r: int = 8, lora_alpha: int = 16) -> Any:
    """Freeze what the strategy keeps fixed, or wrap the model with LoRA; returns the model."""
    if strategy.kind == "full":
        return model
    if strategy.kind == "lora":
        return wrap_lora(model, r=lora_r, alpha=lora_alpha)
    backbone = backbone_of(model)
    if strategy.kind == "head":
        _freeze(backbone)
        return model
    k = strategy.k or 0
    total = num_layers(model)
    _check_depth(k, total)
    layers = encoder_layers(model)
    if layers is None:
        raise UserInputError(
            f"--strategy freeze:K needs a BERT-style encoder; {type(model).__name__} is not one"
        )
    _freeze(backbone.embeddings)
    for layer in list(layers)[:k]:
        _freeze(layer)
    if k == total and getattr(backbone, "pooler", None) is not None:
        # Everything below the head is frozen: freeze:N is the same as head.
        _freeze(backbone.pooler)
    return model


#: Attention projections LoRA adapts, by their names in BERT/RoBERTa/ELECTRA/ALBERT
#: (query, key, value), DistilBERT (q_lin, ...), MPNet (q, k, v), DeBERTa-v2 (query_proj, ...)
#: and decoder-style models (q_proj, ...).
LORA_TARGETS = (
    "query", "key", "value", "q_lin", "k_lin", "v_lin", "q", "k", "v",
    "query_proj", "key_proj", "value_proj", "q_proj", "k_proj", "v_proj",
)  # fmt: skip
#: The task model's own head modules, trained fully beside the adapter.
HEAD_PARTS = ("pre_classifier", "pooler", "classifier", "score")


def wrap_lora(model: Any, *, r: int = 8, alpha: int = 16) -> Any:
    """LoRA on the attention projections; the head trains fully and is saved with the adapter."""
    from peft import LoraConfig, TaskType, get_peft_model
    from torch import nn

    task = (
        TaskType.TOKEN_CLS if model.config.to_dict().get(TASK_KEY) == "ner" else (TaskType.SEQ_CLS)
    )
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [n for n in LORA_TARGETS if n in names]
    if not targets:
        raise UserInputError(
            f"--strategy lora: no attention projections found in {type(model).__name__}"
        )
    config = LoraConfig(
        task_type=task,
        r=r,
        lora_alpha=alpha,
        lora_dropout=0.1,
        target_modules=targets,
        # A head in parts (DistilBERT's pre_classifier, DeBERTa's pooler) starts random: all train.
        modules_to_save=[n for n in HEAD_PARTS if isinstance(getattr(model, n, None), nn.Module)],
    )
    with warnings.catch_warnings():
        # peft 0.21 calls a transformers method that transformers 5 marks deprecated.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        return get_peft_model(model, config)


def trainable_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
