"""The typed record of what a training run resolved and did (``resolved`` in ``run_config.json``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Resolved:
    """What the ``auto``/``None`` settings of a run resolved to, and what the run did.

    Written to ``run_config.json`` as ``resolved`` (by :meth:`to_dict`) and read by the model
    card. A field left ``None`` is left out of the file (the step did not apply), except the
    ones marked ``keep_none``, where ``None`` itself is the answer.
    """

    notes: list[str] = field(default_factory=list)
    threads: int | None = None
    #: The device that trained the model (``cpu``, ``cuda:0``, ``mps``) and its precision
    #: (``fp32``, or mixed ``fp16``/``bf16``), as ``--device``/``--precision`` resolved.
    device: str | None = None
    precision: str | None = None
    #: ``cls``/``mean``/...: the classification head's input (not for NER).
    pooling: str | None = None
    max_length: int | None = None
    max_length_source: str | None = None
    #: The most tokens the saved model reads at prediction, and the held-out data was read at.
    predict_max_length: int | None = None
    epochs: float | None = None
    lr: float | None = None
    epochs_source: str | None = None
    lr_source: str | None = None
    #: One flag per frozen-feature lookup: True when it came from the cache.
    feature_cache_hits: list[bool] | None = None
    #: The linear probe that initialised the head: ``{"l2", "seconds"}``.
    probe: dict[str, Any] | None = None
    head_init: str | None = None
    trainable_parameters: int | None = None
    total_parameters: int | None = None
    feature_cache_seconds: float | None = None
    strategy_note: str | None = None
    feature_cache: bool | None = None
    contrastive: float | None = None
    few_shot: bool | None = None
    few_shot_note: str | None = None
    #: Patience in evaluations; ``None``: no held-out data, so no early stopping.
    early_stopping: int | None = field(default=None, metadata={"keep_none": True})
    train_seconds: float | None = None
    train_loss: float | None = None
    global_steps: int | None = None
    epochs_run: float | None = None
    best_checkpoint_metric: float | None = None
    best_checkpoint_step: int | None = None
    #: ``--average-epochs``: ``{"epochs", "kept", "source", "scores"?}``.
    average: dict[str, Any] | None = None
    #: WiSE-FT: ``{"weight", "source", "scores"?}`` (full fine-tuning only).
    wise_ft: dict[str, Any] | None = None
    #: Nearest-example scores: ``{"weight", "source", "temperature"?, "scores"?, ...}``.
    nearest: dict[str, Any] | None = None
    #: ``--unlabelled``: the self-training record.
    self_training: dict[str, Any] | None = None
    task: str | None = None
    labels: list[str] | None = None
    base_model_name: str | None = None
    base_model_location: str | None = None
    #: SHA-256 of the training file, so a reused run can tell other data under the same path.
    data_sha256: str | None = None
    n_train: int | None = None
    n_eval: int | None = None
    eval_source: str | None = None
    eval_fraction: float | None = None
    n_augmented: int | None = None
    n_label_examples: int | None = None
    #: ``"temperature"`` when a temperature was fitted; ``None`` otherwise.
    calibration: str | None = field(default=None, metadata={"keep_none": True})
    versions: dict[str, str] | None = None
    #: NER only: the tagging scheme of the training file.
    scheme: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``resolved`` object of ``run_config.json``."""
        return {
            f.name: _plain(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None or f.metadata.get("keep_none")
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Resolved:
        """Rebuild from ``to_dict()`` output; keys written by other versions are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in names})


def _plain(value: Any) -> Any:
    """A copy of ``value`` that shares no list or dict with the record."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
