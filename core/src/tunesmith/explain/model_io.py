"""Model plumbing shared by the attribution methods, kept free of architecture names.

Attributions are taken at the input-embedding layer, found through
``get_input_embeddings()`` (which PEFT wrappers and custom pooling heads forward) or, failing
that, the embedding table whose size matches the vocabulary. The model is always called as
``model(input_ids=..., attention_mask=...)``, so custom heads work as long as they take those.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from tunesmith.errors import UserInputError


def input_embeddings(model: Any, vocab_size: int | None = None) -> Any:
    """The token-embedding module of ``model`` (unwrapping PEFT and custom heads)."""
    import torch

    getter = getattr(model, "get_input_embeddings", None)
    if callable(getter):
        with contextlib.suppress(NotImplementedError, AttributeError):
            module = getter()
            if isinstance(module, torch.nn.Embedding):
                return module
    candidates = [m for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    if vocab_size is not None:
        sized = [m for m in candidates if m.num_embeddings >= vocab_size]
        candidates = sized or candidates
    if not candidates:
        raise UserInputError("cannot find the model's token-embedding layer to attribute to")
    return max(candidates, key=lambda m: m.num_embeddings)


def model_device(model: Any) -> Any:
    import torch

    for param in model.parameters():
        return param.device
    return torch.device("cpu")


def output_tensor(outputs: Any) -> Any:
    """``logits`` of a task head, ``last_hidden_state`` of a bare encoder, else the first item."""
    for name in ("logits", "last_hidden_state"):
        value = getattr(outputs, name, None)
        if value is not None:
            return value
    if isinstance(outputs, dict):
        return next(iter(outputs.values()))
    return outputs[0]


def run_model(model: Any, ids: Any, mask: Any) -> Any:
    """Call the model the one way every supported head accepts."""
    return model(input_ids=ids, attention_mask=mask)


def is_multilabel(model: Any) -> bool:
    config = getattr(model, "config", None)
    return getattr(config, "problem_type", None) == "multi_label_classification"


def label_names(model: Any, labels: Sequence[str] | None) -> list[str]:
    """The label names: given ones, else the model's ``id2label``."""
    if labels:
        return [str(label) for label in labels]
    config = getattr(model, "config", None)
    id2label = getattr(config, "id2label", None) or {}
    return [str(id2label[i]) for i in sorted(id2label, key=int)]


def probabilities(logits: Any, *, multilabel: bool, temperature: Any = None) -> Any:
    """Class probabilities from logits, with the model's calibration temperature if it has one.

    ``temperature`` is a float, or one float per label for multi-label models.
    """
    import torch

    if temperature is not None:
        temp = torch.as_tensor(temperature, dtype=logits.dtype, device=logits.device)
        logits = logits / temp
    if multilabel:
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=-1)


@contextlib.contextmanager
def frozen_parameters(model: Any) -> Iterator[None]:
    """Turn off parameter gradients while attributing: autograd then keeps less, and runs faster."""
    saved = [(p, p.requires_grad) for p in model.parameters()]
    was_training = bool(getattr(model, "training", False))
    try:
        for param, _ in saved:
            param.requires_grad_(False)
        model.eval()
        yield
    finally:
        for param, flag in saved:
            param.requires_grad_(flag)
        if was_training:
            model.train()


@contextlib.contextmanager
def replaced_embeddings(module: Any, holder: dict[str, Any]) -> Iterator[None]:
    """While active, the embedding layer outputs ``holder["value"]`` instead of its lookup.

    This is how a path point (baseline + alpha * (input - baseline)) enters any model that
    only takes ``input_ids``, the same way Captum's layer attribution does it.
    """

    def hook(_module: Any, _inputs: Any, output: Any) -> Any:
        value = holder.get("value")
        if value is None:
            return output
        if value.shape != output.shape:
            raise RuntimeError(
                f"embedding replacement has shape {tuple(value.shape)}, expected "
                f"{tuple(output.shape)}"
            )
        return value

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
