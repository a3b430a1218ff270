"""Building, saving and reloading tunesmith's models: plain Hugging Face classes plus a pooling flag.

The default checkpoint is a sentence-embedding model trained with mean pooling; its ``[CLS]``
pooler never trained. A classifier on mean-pooled tokens is therefore the better start (see
``benchmarks/accuracy.py``). The model stays e.g. a ``BertForSequenceClassification`` with the
usual weight names; tunesmith only replaces its ``forward`` so that the ``classifier`` reads the
masked mean of the last hidden states instead of the pooler output, and records
``"tunesmith_pooling": "mean"`` in ``config.json``. :func:`load_classifier` honours the flag.

**Portable directories** (:func:`save_classifier`): a saved directory predicts the same wherever
it is loaded, or refuses to load. Plain ``transformers`` cannot compute a mean-pooled head nor
the nearest-example scores (``tunesmith.engine.nearest``), and would silently pool ``[CLS]``
instead; so such a directory's ``config.json`` names a model type transformers does not know
(:func:`marker_type`, e.g. ``tunesmith_mean_pooling__load_with_tunesmith_or_export_to_onnx``)
and keeps the real one under ``tunesmith_base_model_type``: ``AutoConfig``,
``AutoModelFor*`` and ``pipeline`` raise naming it, while :func:`read_config` restores the real
type for tunesmith's loaders. Everything plain transformers does compute exactly (``[CLS]``
pooling, taggers) stays a plain directory. LoRA adapters are merged into the weights on save, so
the directory needs neither peft nor the base model's path on the training machine. Directories
written before this (unmarked, or with an adapter beside the base's config) still load.
"""

from __future__ import annotations

import json
import types
import warnings
from pathlib import Path
from typing import Any

from tunesmith.devices import as_float32
from tunesmith.engine.nearest import NEAREST_ATTR, attach, attached, load_for
from tunesmith.errors import UserInputError
from tunesmith.hf_quiet import quiet_transformers, silence_transformers
from tunesmith.io import atomic_write_json, read_json_object, share_safetensors
from tunesmith.model_dir import (
    ADAPTER_CONFIG_FILE,
    ADAPTER_KEY,
    BASE_MODEL_KEY,
    BASE_TYPE_KEY,
    CONFIG_FILE,
    LEXICAL_KEY,
    NEAREST_KEY,
    POOLING_KEY,
    SENTENCE_POOLING_CONFIG,
    TASK_KEY,
)
from tunesmith.models import base_model_errors, resolve_model

#: The end of every marker model type: what the user should do instead of plain loading.
MARKER_SUFFIX = "__load_with_tunesmith_or_export_to_onnx"
#: Where the mean-pooling forward leaves the pooled embeddings of the last training batch.
POOLED_ATTR = "_tunesmith_pooled"

PROBLEM_TYPES = {
    "classification": "single_label_classification",
    "multilabel": "multi_label_classification",
}


#: Model types whose position ids start after the padding index (``padding_idx + 1``), so that
#: ``max_position_embeddings`` is ``padding_idx + 1`` more than the tokens they can read.
PADDING_OFFSET_TYPES = frozenset(
    {
        "camembert",
        "data2vec-text",
        "ibert",
        "longformer",
        "luke",
        "markuplm",
        "mpnet",
        "roberta",
        "roberta-prelayernorm",
        "xlm-roberta",
        "xlm-roberta-xl",
        "xmod",
    }
)


def usable_positions(config: Any) -> int | None:
    """How many tokens (special ones included) the model's position table can place, or
    ``None`` when the config does not say: ``max_position_embeddings``, less the positions a
    RoBERTa-style model reserves below its first (``pad_token_id + 1``, so 514 reads 512)."""
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int) or isinstance(positions, bool) or positions <= 0:
        return None
    model_type = str(getattr(config, "model_type", "") or "")
    if is_marker(model_type):
        model_type = str(getattr(config, BASE_TYPE_KEY, "") or "")
    if model_type in PADDING_OFFSET_TYPES:
        pad = getattr(config, "pad_token_id", None)
        positions -= (pad if isinstance(pad, int) and pad >= 0 else 1) + 1
    return positions if positions > 0 else None


def cap_tokenizer_length(tokenizer: Any, config: Any) -> Any:
    """Lower ``tokenizer.model_max_length`` to what the model's positions can place, in place.

    Many folders leave the tokenizer's limit unset (transformers then says 10^30) and a
    RoBERTa-style config counts two positions it cannot use, so ``truncation=True`` or a
    limit taken from ``max_position_embeddings`` let a long text index past the position table.
    The capped limit is saved with the tokenizer, so a trained model's folder states it too.
    """
    usable = usable_positions(config)
    current = getattr(tokenizer, "model_max_length", None)
    if usable is not None and (not isinstance(current, int) or current > usable):
        tokenizer.model_max_length = usable
    return tokenizer


def sentence_pooling_mode(location: str | Path) -> str | None:
    """The pooling a sentence-transformers checkpoint was trained with (``mean``/``cls``), if any."""
    path = Path(location) / SENTENCE_POOLING_CONFIG
    if not path.is_file():
        return None
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if settings.get("pooling_mode_mean_tokens"):
        return "mean"
    if settings.get("pooling_mode_cls_token"):
        return "cls"
    return None


def supports_mean_pooling(model: Any) -> bool:
    """True when the head is a single linear layer on the hidden size (BERT-style models)."""
    import torch

    classifier = getattr(model, "classifier", None)
    hidden = getattr(model.config, "hidden_size", None)
    return (
        isinstance(classifier, torch.nn.Linear)
        and classifier.in_features == hidden
        and hasattr(model, "dropout")
        and hasattr(model, model.base_model_prefix)
    )


def mean_pool(hidden: Any, attention_mask: Any) -> Any:
    """Masked mean over the sequence: the pooling the sentence-embedding model trained with."""
    if attention_mask is None:
        return hidden.mean(dim=1)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def sequence_loss(
    logits: Any, labels: Any, problem_type: str, weight: Any = None, label_smoothing: float = 0.0
) -> Any:
    """Cross-entropy (single-label) or binary cross-entropy (multi-label), optionally weighted;
    ``label_smoothing`` applies to single-label cross-entropy only."""
    import torch.nn.functional as F

    if problem_type == "multi_label_classification":
        return F.binary_cross_entropy_with_logits(
            logits, labels.to(logits.dtype), pos_weight=weight
        )
    return F.cross_entropy(
        logits.view(-1, logits.shape[-1]),
        labels.view(-1),
        weight=weight,
        label_smoothing=label_smoothing,
    )


def _mean_pooling_forward(
    self: Any,
    input_ids: Any = None,
    attention_mask: Any = None,
    token_type_ids: Any = None,
    position_ids: Any = None,
    inputs_embeds: Any = None,
    labels: Any = None,
    **kwargs: Any,
) -> Any:
    """``forward`` of a sequence classifier whose head reads mean-pooled tokens."""
    from transformers.modeling_outputs import SequenceClassifierOutput

    kwargs.pop("return_dict", None)
    backbone = getattr(self, self.base_model_prefix)
    extra = {k: v for k, v in kwargs.items() if k in ("output_attentions", "output_hidden_states")}
    if token_type_ids is not None:
        extra["token_type_ids"] = token_type_ids
    outputs = backbone(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        inputs_embeds=inputs_embeds,
        return_dict=True,
        **extra,
    )
    pooled = mean_pool(outputs.last_hidden_state, attention_mask)
    # The training loss may add a contrastive term on the pooled embeddings (few-shot); kept
    # outside the module tree and only while training, so nothing leaks into inference.
    self.__dict__[POOLED_ATTR] = pooled if self.training else None
    logits = self.classifier(self.dropout(pooled))
    nearest = self.__dict__.get(NEAREST_ATTR)
    if nearest is not None and not self.training:
        logits = nearest.mix(logits, pooled)
    loss = None
    if labels is not None:
        loss = sequence_loss(logits, labels, self.config.problem_type)
    return SequenceClassifierOutput(
        loss=loss,
        logits=logits,
        hidden_states=getattr(outputs, "hidden_states", None),
        attentions=getattr(outputs, "attentions", None),
    )


def enable_mean_pooling(model: Any) -> Any:
    """Make ``model``'s head read the masked mean of the last hidden states (in place)."""
    if not supports_mean_pooling(model):
        raise ValueError(f"{type(model).__name__} has no linear head that mean pooling can feed")
    model.forward = types.MethodType(_mean_pooling_forward, model)
    model.config.update({POOLING_KEY: "mean"})
    return model


def pooling_of(model: Any) -> str:
    """``mean`` or ``cls``: how a sequence classifier pools (``cls`` for the stock models)."""
    return getattr(model.config, POOLING_KEY, None) or "cls"


def load_base_tokenizer(location: str | Path) -> Any:
    """The tokenizer of the base model at ``location`` (never its own code; see
    :func:`base_model_errors`)."""
    from transformers import AutoTokenizer

    with base_model_errors(location):
        tokenizer = AutoTokenizer.from_pretrained(str(location), trust_remote_code=False)
        return cap_tokenizer_length(tokenizer, read_config(location))


def build_classifier(
    location: str | Path,
    *,
    task: str,
    labels: list[str],
    pooling: str = "auto",
    base_name: str | None = None,
) -> Any:
    """A fresh classifier (``task`` classification/multilabel) or tagger (``ner``) on a base model.

    ``pooling`` ``auto`` means mean pooling when the base is a mean-pooling sentence-embedding
    checkpoint and its head allows it, else the model's own ``[CLS]`` head.
    """
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    silence_transformers()
    mapping = {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
    }
    if task != "ner":
        mapping["problem_type"] = PROBLEM_TYPES[task]
    auto_cls = (
        AutoModelForTokenClassification if task == "ner" else AutoModelForSequenceClassification
    )
    marked = read_marked_config(location)
    with base_model_errors(location):
        if marked is not None:
            # A tunesmith directory as the base: transformers cannot read its marked config.json.
            marked.update(mapping)
            model = auto_cls.from_pretrained(str(location), config=marked, trust_remote_code=False)
        else:
            model = auto_cls.from_pretrained(str(location), trust_remote_code=False, **mapping)
    # Trained in float32 whatever the base was saved in: --precision mixes in half precision
    # where the device can, and half-precision weights would lose small updates.
    as_float32(model)
    attach(model, None)  # a trained base's nearest-example settings do not belong to this model
    model.config.update({TASK_KEY: task, BASE_MODEL_KEY: base_name or str(location)})
    if task != "ner":
        if pooling == "auto":
            wanted = sentence_pooling_mode(location) == "mean"
            pooling = "mean" if wanted and supports_mean_pooling(model) else "cls"
        if pooling == "mean":
            if not supports_mean_pooling(model):
                raise UserInputError(
                    f"--pooling mean: {type(model).__name__}'s head is not one linear layer on "
                    "the hidden size, so mean-pooled tokens cannot feed it; use --pooling cls "
                    "(or auto)"
                )
            enable_mean_pooling(model)
        else:
            model.config.update({POOLING_KEY: "cls"})
    return model


def plain_transformers_gaps(config: dict[str, Any]) -> list[str]:
    """What plain ``transformers`` would leave out of a saved model's predictions, read from its
    ``config.json`` dict: ``mean_pooling`` (the standard head reads the ``[CLS]`` pooler) and
    ``nearest_examples`` (scores mixed into the probabilities) and ``lexical_ngrams`` (the
    ``--lexical`` model's share). Empty: the standard classes compute exactly what tunesmith
    computes."""
    gaps = []
    if config.get(POOLING_KEY) == "mean":
        gaps.append("mean_pooling")
    nearest = config.get(NEAREST_KEY) or {}
    if isinstance(nearest, dict) and float(nearest.get("weight", 1.0)) < 1.0:
        gaps.append("nearest_examples")
    if float(config.get(LEXICAL_KEY) or 0.0) > 0.0:
        gaps.append("lexical_ngrams")
    return gaps


def marker_type(gaps: list[str]) -> str:
    """The ``model_type`` that makes plain transformers refuse a directory, naming why and what
    to do, e.g. ``tunesmith_mean_pooling__load_with_tunesmith_or_export_to_onnx``."""
    return "tunesmith_" + "_and_".join(gaps) + MARKER_SUFFIX


def is_marker(model_type: Any) -> bool:
    """True for a model type written by :func:`marker_type`."""
    return isinstance(model_type, str) and model_type.endswith(MARKER_SUFFIX)


def mark_directory(directory: str | Path, changes: dict[str, Any] | None = None) -> list[str]:
    """Set ``config.json``'s ``model_type`` to a marker when plain transformers would predict
    differently from tunesmith (the real type kept under ``tunesmith_base_model_type``), or back
    to the real type when it would not. ``changes`` are applied to ``config.json`` first, in the
    same write (a ``None`` value removes its key). Returns the gaps (empty: a plain directory)."""
    path = Path(directory) / CONFIG_FILE
    original = read_json_object(path) or {}
    config = dict(original)
    for key, value in (changes or {}).items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    current = config.get("model_type")
    real = config.get(BASE_TYPE_KEY) if is_marker(current) else current
    gaps = plain_transformers_gaps(config)
    config.pop(BASE_TYPE_KEY, None)
    if gaps:
        config["model_type"] = marker_type(gaps)
        config[BASE_TYPE_KEY] = real
    else:
        config["model_type"] = real
    if config != original:
        atomic_write_json(path, config)
    return gaps


def read_marked_config(location: str | Path) -> Any | None:
    """The transformers config of a local directory whose ``config.json`` names a marker type,
    with its real type restored; ``None`` for anything else (a hub id, a plain directory)."""
    path = Path(location) / CONFIG_FILE
    if not path.is_file():
        return None

    raw = read_json_object(path) or {}
    if not is_marker(raw.get("model_type")):
        return None
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    real = raw.get(BASE_TYPE_KEY)
    if not isinstance(real, str) or real not in CONFIG_MAPPING:
        raise ValueError(
            f"{path} names the base model type {real!r}, which this transformers does not know"
        )
    settings = {k: v for k, v in raw.items() if k != "model_type"}
    return CONFIG_MAPPING[real].from_dict(settings)


def read_config(path: str | Path) -> Any:
    """A saved directory's transformers config: a marked one's real type restored
    (:func:`read_marked_config`), any other read by ``AutoConfig`` (never remote code)."""
    from transformers import AutoConfig

    marked = read_marked_config(path)
    if marked is not None:
        return marked
    return AutoConfig.from_pretrained(str(path), trust_remote_code=False)


def merged_copy(model: Any) -> Any:
    """A copy of a PEFT (LoRA) model with the adapter folded into the base weights; ``model``
    itself is left as it is."""
    import copy

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        merged = copy.deepcopy(model).merge_and_unload()
    merged.config.update({ADAPTER_KEY: "lora-merged"})
    return merged


def save_classifier(model: Any, directory: str | Path) -> list[str]:
    """Save ``model``'s weights and ``config.json`` (and its nearest examples) into ``directory``
    so that it predicts the same wherever it is loaded: a LoRA adapter is merged into the
    weights, and a model plain transformers would compute differently is marked
    (:func:`mark_directory`). Returns the gaps marked (empty: a plain Hugging Face directory)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "peft_config"):
        model = merged_copy(model)
    memory = attached(model)
    if memory is not None:
        memory.save(directory)
    # transformers draws a "Writing model shards" bar when its bars are on: another thread's
    # load (the demos) may have put them back on since the run silenced them.
    with quiet_transformers():
        model.save_pretrained(str(directory))
    share_safetensors(directory)
    return mark_directory(directory)


def is_adapter_dir(path: str | Path) -> bool:
    """True for a directory holding a PEFT adapter rather than full weights."""
    return (Path(path) / ADAPTER_CONFIG_FILE).is_file()


def load_classifier(path: str | Path) -> Any:
    """Load a model directory written by ``tunesmith train`` (or any plain HF classifier).

    Honours ``tunesmith_pooling``, a marked ``model_type`` (:func:`read_config`) and the
    nearest-example scores, and rebuilds LoRA adapters saved unmerged (before adapters were
    merged on save) on their base model. Returns the model in eval mode; for such an adapter
    directory it is a ``peft.PeftModel``.
    """
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    silence_transformers()
    path = Path(path)
    config = read_config(path)
    task = getattr(config, TASK_KEY, None)
    arch = " ".join(getattr(config, "architectures", None) or [])
    token_level = task == "ner" or (task is None and "TokenClassification" in arch)
    auto_cls = (
        AutoModelForTokenClassification if token_level else AutoModelForSequenceClassification
    )
    if is_adapter_dir(path):
        from peft import PeftModel

        adapter = json.loads((path / ADAPTER_CONFIG_FILE).read_text(encoding="utf-8"))
        base = getattr(config, BASE_MODEL_KEY, None) or adapter["base_model_name_or_path"]
        # The saved config is the base's own plus the label names and tunesmith's keys.
        model = auto_cls.from_pretrained(
            resolve_model(base).location, config=config, trust_remote_code=False
        )
        if not token_level and getattr(config, POOLING_KEY, None) == "mean":
            enable_mean_pooling(model)
        with warnings.catch_warnings():
            # peft 0.21 calls a transformers method that transformers 5 marks deprecated.
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
            model = PeftModel.from_pretrained(model, str(path))
    else:
        model = auto_cls.from_pretrained(str(path), config=config, trust_remote_code=False)
        if not token_level and getattr(config, POOLING_KEY, None) == "mean":
            enable_mean_pooling(model)
            load_for(model, path)
    model.eval()
    return model


def last_pooled(model: Any) -> Any | None:
    """The pooled embeddings of the last training forward pass, through PEFT/DDP wrappers."""
    seen = 0
    while model is not None and seen < 5:
        pooled = model.__dict__.get(POOLED_ATTR)
        if pooled is not None:
            return pooled
        inner = getattr(model, "module", None)  # DistributedDataParallel
        if inner is None and hasattr(model, "get_base_model"):
            inner = model.get_base_model()
        model, seen = inner, seen + 1
    return None


def set_head_weights(model: Any, weight: Any, bias: Any) -> None:
    """Copy a linear probe's coefficients into the classifier head."""
    import torch

    head = model.classifier
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(weight, dtype=head.weight.dtype))
        head.bias.copy_(torch.as_tensor(bias, dtype=head.bias.dtype))
