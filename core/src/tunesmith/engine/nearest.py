"""Nearest-example scores mixed into a classifier's probabilities.

After few-shot fine-tuning with the contrastive loss, the pooled sentence space clusters tightly
around the training texts, and "which training text is this closest to" becomes a classifier of
its own that makes different mistakes from the linear head. The saved model keeps the normalised
pooled embeddings of its training texts (``nearest_examples.safetensors``, beside the weights) and
its output becomes::

    p = w * softmax(head logits) + (1 - w) * softmax(s / t)

where ``s[c]`` is the highest cosine similarity to any training text of label ``c``. The model
returns ``log p`` as its logits, so prediction, calibration, evaluation and explanations see one
ordinary differentiable classifier. With held-out data the head's share ``w`` is chosen on it
(1 switches the scores off). Measured on banking77 (few-shot and all data): docs/benchmarks.md,
"Engine measurements that used to live in its docstrings".

A held-out split carved from the training file has done its job once the share, the WiSE-FT
weight and the temperature are chosen and the model is measured on it; its texts then join the
stored examples, so every labelled text the user gave counts (a separate ``--eval`` file stays
out: the user keeps it for measuring).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.model_dir import NEAREST_FILE, NEAREST_KEY

#: Where a model keeps its nearest-example scores: outside the module tree, so that the saved
#: weights stay a plain classifier.
NEAREST_ATTR = "_tunesmith_nearest"
#: The head's share of the mixture without held-out data to choose one (few-shot runs).
FEW_SHOT_WEIGHT = 0.5
TEMPERATURE = 0.05
#: Head shares tried on held-out data, as fine as the WiSE-FT grid; ties go to the larger
#: (closer to the head alone).
WEIGHT_GRID = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
MODES = ("auto", "on", "off")
#: ``auto`` keeps at most this many training texts (memory and per-text cost grow with them).
AUTO_MAX_EXAMPLES = 50_000


class NearestExamples:
    """The training texts' normalised pooled embeddings (``keys``) and their label ids."""

    def __init__(
        self, keys: Any, labels: Any, num_labels: int, weight: float, temperature: float
    ) -> None:
        import torch

        self.keys = torch.nn.functional.normalize(keys.float(), dim=-1)
        self.labels = labels.long()
        self.num_labels = int(num_labels)
        self.weight = float(weight)
        self.temperature = float(temperature)

    def scores(self, pooled: Any) -> Any:
        """Per label, the highest cosine similarity of each pooled row to its training texts."""
        import torch

        keys = self.keys.to(device=pooled.device, dtype=pooled.dtype)
        sims = torch.nn.functional.normalize(pooled, dim=-1) @ keys.T
        index = self.labels.to(pooled.device).expand(sims.shape[0], -1)
        start = torch.full(
            (sims.shape[0], self.num_labels), -1.0, dtype=sims.dtype, device=sims.device
        )
        return start.scatter_reduce(1, index, sims, "amax", include_self=True)

    def mix(self, logits: Any, pooled: Any) -> Any:
        """``log(w * softmax(logits) + (1 - w) * softmax(scores / t))``, computed stably."""
        import math

        import torch

        if self.weight >= 1.0:
            return logits
        head = torch.log_softmax(logits, dim=-1) + math.log(self.weight)
        near = torch.log_softmax(self.scores(pooled) / self.temperature, dim=-1)
        if self.weight <= 0.0:
            return near
        return torch.logaddexp(head, near + math.log1p(-self.weight))

    def accuracy(self, logits: Any, pooled: Any, truth: Any, weight: float) -> float:
        """Accuracy of the mixture at head share ``weight`` (kept as the share afterwards), from
        head ``logits`` and ``pooled`` embeddings already computed: choosing a share needs no
        encoder pass of its own."""
        import torch

        self.weight = float(weight)
        with torch.inference_mode():
            return float((self.mix(logits, pooled).argmax(-1) == truth).float().mean())

    def extend(self, other: NearestExamples) -> None:
        """Remember ``other``'s texts as well (the held-out split once it has been used)."""
        import torch

        self.keys = torch.cat([self.keys, other.keys.to(self.keys.dtype)])
        self.labels = torch.cat([self.labels, other.labels])

    def settings(self) -> dict[str, Any]:
        """What ``config.json`` records under ``tunesmith_nearest``."""
        return {
            "weight": self.weight,
            "temperature": self.temperature,
            "examples": int(self.keys.shape[0]),
            "file": NEAREST_FILE,
        }

    def save(self, directory: Path) -> Path:
        """Write the keys and label ids beside the model's weights."""
        from safetensors.torch import save_file

        path = Path(directory) / NEAREST_FILE
        save_file({"keys": self.keys.contiguous(), "labels": self.labels.contiguous()}, str(path))
        return path


def resolve_mode(
    mode: str,
    *,
    task: str,
    pooling: str | None,
    strategy: str,
    few_shot: bool,
    held_out: bool = False,
    n_train: int = 0,
) -> bool:
    """Whether to keep nearest-example scores: only for single-label full fine-tuning with mean
    pooling; ``auto`` for few-shot data, and for data with a held-out split to choose the
    head's share on (up to ``AUTO_MAX_EXAMPLES`` training texts); ``on`` for any size."""
    possible = task == "classification" and pooling == "mean" and strategy == "full"
    if mode == "off" or not possible:
        return False
    return mode == "on" or few_shot or (held_out and n_train <= AUTO_MAX_EXAMPLES)


def attach(model: Any, nearest: NearestExamples | None) -> None:
    """Make ``model``'s inference logits mix in ``nearest`` (``None`` removes it)."""
    if nearest is None:
        model.__dict__.pop(NEAREST_ATTR, None)
        config = getattr(model, "config", None)
        if config is not None and hasattr(config, NEAREST_KEY):
            delattr(config, NEAREST_KEY)
        return
    model.__dict__[NEAREST_ATTR] = nearest
    model.config.update({NEAREST_KEY: nearest.settings()})


def attached(model: Any) -> NearestExamples | None:
    """The model's nearest-example scores, if it has them."""
    return model.__dict__.get(NEAREST_ATTR)


def load_for(model: Any, directory: Path) -> None:
    """Attach the scores a saved model directory records in its ``config.json``, if any."""
    settings = getattr(model.config, NEAREST_KEY, None)
    if not settings:
        return
    path = Path(directory) / settings.get("file", NEAREST_FILE)
    if not path.is_file():
        raise UserInputError(
            f"{path}: missing; config.json says the model mixes in nearest-example scores"
        )
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    attach(
        model,
        NearestExamples(
            tensors["keys"],
            tensors["labels"],
            num_labels=int(model.config.num_labels),
            weight=float(settings["weight"]),
            temperature=float(settings["temperature"]),
        ),
    )
