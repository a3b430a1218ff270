"""``finance train``: the core engine's fine-tuning with the finance defaults.

A sentiment model trained with ``members=N`` (N > 1) is the core's seed ensemble
(:mod:`tunesmith.engine.ensemble`): N engine runs that differ only in their seed, the first at
``out``, the others in ``out/members/seed<S>``. :class:`~tunesmith_finance.scoring.
SentimentModel` averages the members' calibrated probabilities: scoring costs N times as much.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.data.load import load_text_dataset
from tunesmith.devices import check_precision, resolve_device
from tunesmith.engine.config import RunConfig
from tunesmith.engine.ensemble import check_members, train_ensemble
from tunesmith.io import check_writable_dir

#: Full fine-tuning epochs for 2,000 or more examples, where the engine would choose 4 (5,000+)
#: or 6. On the finance tweets the held-out score (10 % of train) still rose at epoch 6: 0.8543
#: after 4 epochs, 0.8669 after 6 (docs/finance.md, "Sentiment accuracy").
FULL_EPOCHS = 6.0
FULL_EPOCHS_FROM = 2000
#: The share of the core's n-gram regression in a sentiment model's probabilities (engine
#: ``--lexical``). Chosen on a held-out fifth of the finance tweets' train.csv, models trained on
#: 3,000 of the rest: 0.8386 without, 0.8464 / 0.8512 / 0.8475 at 0.2 / 0.3 / 0.4 (seed 42);
#: seed 43 0.8438 -> 0.8512; two seeds 0.8454 -> 0.8501 (docs/finance.md).
LEXICAL_SHARE = 0.3


@dataclass
class SentimentRecipe:
    """What ``finance train`` passes to the engine; ``None`` lets the engine choose."""

    strategy: str = "full"
    epochs: float | None = None
    lr: float | None = None
    batch_size: int = 16
    max_length: int | None = None
    seed: int = 42
    members: int = 1
    lexical: float = LEXICAL_SHARE
    #: The engine's ``--device`` and ``--precision`` (:mod:`tunesmith.devices`).
    device: str = "auto"
    precision: str = "fp32"
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> SentimentRecipe:
        check_members(self.members, self.strategy)
        return self


def default_epochs(strategy: str, n_rows: int) -> float | None:
    """The finance default: :data:`FULL_EPOCHS` for full fine-tuning on enough data, else the
    engine's own choice (``None``)."""
    if strategy == "full" and n_rows >= FULL_EPOCHS_FROM:
        return FULL_EPOCHS
    return None


def train_sentiment(
    data: str | Path,
    out: str | Path,
    recipe: SentimentRecipe,
    *,
    eval_data: str | Path | None = None,
    model: str = "default",
    text_col: str = "text",
    label_col: str = "label",
    task: str = "classification",
    label_sep: str | None = None,
    force: bool = False,
    allow_network: bool = False,
    reuse: bool = False,
    n_rows: int | None = None,
    log: Any = None,
) -> Path:
    """Train ``recipe.members`` engine runs into ``out`` (see the module docstring); returns
    ``out``. ``reuse`` keeps members already trained with the same settings on the same data
    (an ensemble whose first members finished). ``n_rows``: the data's size, when known.
    ``task`` ``multilabel`` (with ``label_sep`` for a separated cell) trains a topic model with
    several topics per text."""
    settings: dict[str, Any] = {
        "eval_data": eval_data,
        "model": model,
        "text_col": text_col,
        "label_col": label_col,
        "task": task,
        "label_sep": label_sep,
        "force": force,
        "allow_network": allow_network,
    }
    # Counting the rows reads the whole file: an existing --out is refused before that.
    check_sentiment_run(data, out, recipe, reuse=reuse, **settings)
    epochs = recipe.epochs
    if epochs is None:
        if n_rows is None:
            n_rows = _count_rows(data, text_col, label_col, label_sep)
        epochs = default_epochs(recipe.strategy, n_rows)
    run = _engine_run(data, out, recipe, epochs=epochs, **settings)
    return train_ensemble(run, recipe.members, reuse=reuse, log=log)


def check_sentiment_run(
    data: str | Path,
    out: str | Path,
    recipe: SentimentRecipe,
    *,
    reuse: bool = False,
    force: bool = False,
    **settings: Any,
) -> None:
    """Refuse, before any data is read, what :func:`train_sentiment` would refuse only after:
    settings the engine rejects, a missing data file, an existing ``out`` without ``force``
    (unless ``reuse`` may keep what it holds) and a device or precision this machine lacks. ``settings``: the keyword arguments
    of :func:`train_sentiment` from ``eval_data`` to ``allow_network``."""
    recipe.validate()
    if not reuse:
        check_writable_dir(out, force=force)
    # After the --out check, as in the engine: telling the device imports torch, which takes
    # seconds. A GPU this machine lacks is one line, not a late traceback.
    check_precision(recipe.precision, resolve_device(recipe.device))
    _engine_run(data, out, recipe, epochs=recipe.epochs, force=force, **settings)


def _engine_run(
    data: str | Path,
    out: str | Path,
    recipe: SentimentRecipe,
    *,
    epochs: float | None,
    eval_data: str | Path | None = None,
    **settings: Any,
) -> RunConfig:
    """The validated engine run of ``recipe``'s first member (cheap: reads no data)."""
    return RunConfig(
        data=str(data),
        eval_data=str(eval_data) if eval_data else None,
        out=str(out),
        strategy=recipe.strategy,
        epochs=epochs,
        lr=recipe.lr,
        batch_size=recipe.batch_size,
        max_length=recipe.max_length,
        seed=recipe.seed,
        device=recipe.device,
        precision=recipe.precision,
        **settings,
        **{"lexical": recipe.lexical, **recipe.extra},
    ).validate()


def _count_rows(data: str | Path, text_col: str, label_col: str, label_sep: str | None) -> int:
    dataset = load_text_dataset(data, text_col=text_col, label_col=label_col, label_sep=label_sep)
    return len(dataset.texts)
