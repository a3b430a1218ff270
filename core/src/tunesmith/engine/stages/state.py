"""What the training stages share: the run's working state (:class:`Training`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.engine import feature_cache as fc
from tunesmith.engine.config import RunConfig
from tunesmith.engine.prepare import Log, PreparedData
from tunesmith.engine.resolved import Resolved


@dataclass
class Training:
    """The working state one training run passes from stage to stage.

    Each stage reads what the stages before it left here and adds its own part; see
    :mod:`tunesmith.engine.stages` for the order.
    """

    run: RunConfig
    log: Log
    base_location: str = ""
    #: How the base model is recorded: a hub id, not the download folder on this machine.
    base_name: str = ""
    resume_from: str | None = None
    resolved: Resolved = field(default_factory=Resolved)
    # prepare
    prepared: PreparedData | None = None
    # encode
    tokenizer: Any = None
    model: Any = None
    strategy: Any = None
    max_length: int = 0
    pad_id: int = 0
    train_y: list[Any] = field(default_factory=list)
    held_y: list[Any] | None = None
    train_ds: Any = None
    held_ds: Any = None
    held_firsts: list[list[int]] | None = None
    model_fingerprint: str = ""
    use_cache: bool = False
    # head
    pooled_train: Any = None
    #: The weights WiSE-FT blends back towards (``None`` when it does not apply).
    wise_start: dict[str, Any] | None = None
    # fit
    trainer: Any = None
    held_set: Any = None
    has_eval: bool = False
    tensorboard_dir: Path | None = None
    #: ``--average-epochs``: the weights at the end of the last epochs (CPU copies).
    epoch_snapshots: list[dict[str, Any]] | None = None
    # post-fit
    #: The final model's pooled training embeddings (nearest examples and self-training).
    train_pooled: Any = None
    held_examples: Any = None
    # measure / calibrate
    held_logits: Any = None
    metrics: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    plots: Any = None
    # lexical
    #: The n-gram regression mixed into the probabilities (``--lexical``), or ``None``.
    lexical: Any = None

    def note(self, text: str) -> None:
        """A note for the model card and ``run_config.json``."""
        self.resolved.notes.append(text)

    def features_for(self, items: list[dict[str, Any]], depth: int, pooled: bool) -> Any:
        """The frozen bottom's output for ``items`` (cached on disk across runs)."""
        features, hit = fc.load_or_compute(
            self.model,
            items,
            model_fp=self.model_fingerprint,
            depth=depth,
            pooled=pooled,
            pad_id=self.pad_id,
            cache_dir=self.run.cache_dir,
        )
        if self.resolved.feature_cache_hits is None:
            self.resolved.feature_cache_hits = []
        self.resolved.feature_cache_hits.append(hit)
        return features
