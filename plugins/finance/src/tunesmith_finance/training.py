"""``finance train``: the core engine's fine-tuning with the finance defaults, and ensembles.

A sentiment model trained with ``members=N`` (N > 1) is N engine runs that differ only in their
seed (which also draws each run's held-out slice, so together the members see all the data). The
first member is an ordinary model directory at ``out`` (every core tool can use it alone); the
others live in ``out/members/seed<S>``, listed in ``out/finance_members.json``, which is written
last, so an interrupted run leaves a usable single model. :class:`~tunesmith_finance.scoring.
SentimentModel` averages the members' calibrated probabilities: scoring costs N times as much.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError

#: The file that makes a model directory an ensemble.
MEMBERS_FILE = "finance_members.json"
#: Where the second and later members live inside the first member's directory.
MEMBERS_DIR = "members"
#: Full fine-tuning epochs for 2,000 or more examples, where the engine would choose 4 (5,000+)
#: or 6. On the finance tweets the held-out score (10 % of train) still rose at epoch 6: 0.8543
#: after 4 epochs, 0.8669 after 6 (docs/finance.md, "Sentiment accuracy").
FULL_EPOCHS = 6.0
FULL_EPOCHS_FROM = 2000


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
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> SentimentRecipe:
        if self.members < 1:
            raise UserInputError(f"--members {self.members} is not valid; expected 1 or more")
        if self.members > 1 and self.strategy.split(":", 1)[0] == "lora":
            # A LoRA adapter directory cannot hold other model directories the engine reads.
            raise UserInputError("--members above 1 is not supported with --strategy lora")
        return self


def default_epochs(strategy: str, n_rows: int) -> float | None:
    """The finance default: :data:`FULL_EPOCHS` for full fine-tuning on enough data, else the
    engine's own choice (``None``)."""
    if strategy == "full" and n_rows >= FULL_EPOCHS_FROM:
        return FULL_EPOCHS
    return None


def member_dirs(out: Path, members: int, seed: int) -> list[tuple[Path, int]]:
    """(directory, seed) of each member: ``out`` first, then ``out/members/seed<S>``."""
    return [(out, seed)] + [
        (out / MEMBERS_DIR / f"seed{seed + k}", seed + k) for k in range(1, members)
    ]


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
    force: bool = False,
    allow_network: bool = False,
    reuse: bool = False,
    n_rows: int | None = None,
    log: Any = None,
) -> Path:
    """Train ``recipe.members`` engine runs into ``out`` (see the module docstring); returns
    ``out``. ``reuse`` keeps members already trained with the same settings on the same data
    (an ensemble whose first members finished). ``n_rows``: the data's size, when known."""
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.prepare import stderr_log
    from tunesmith.engine.train import train
    from tunesmith.io import atomic_write_json

    recipe.validate()
    out = Path(out)
    epochs = recipe.epochs
    if epochs is None:
        if n_rows is None:
            n_rows = _count_rows(data, text_col, label_col)
        epochs = default_epochs(recipe.strategy, n_rows)
    written: list[str] = []
    for n, (where, seed) in enumerate(member_dirs(out, recipe.members, recipe.seed)):
        run = RunConfig(
            data=str(data),
            eval_data=str(eval_data) if eval_data else None,
            out=str(where),
            model=model,
            allow_network=allow_network,
            task=task,
            text_col=text_col,
            label_col=label_col,
            strategy=recipe.strategy,
            epochs=epochs,
            lr=recipe.lr,
            batch_size=recipe.batch_size,
            max_length=recipe.max_length,
            seed=seed,
            # The first member replaces ``out`` as a whole (old members included); later ones
            # are new directories inside it.
            force=force if n == 0 else True,
            **recipe.extra,
        ).validate()
        if reuse and same_run(where, run):
            (log or stderr_log)(f"member {n + 1}: reusing {where} (same settings)")
        else:
            if recipe.members > 1:
                (log or stderr_log)(f"member {n + 1} of {recipe.members} (seed {seed}) ...")
            train(run, log=log or stderr_log)
        if n:
            written.append(str(where.relative_to(out)))
    if written:
        atomic_write_json(
            out / MEMBERS_FILE,
            {
                "members": written,
                "combine": "mean of calibrated probabilities",
                "seed": recipe.seed,
            },
        )
    return out


def read_members(path: str | Path) -> list[Path]:
    """The extra members' directories of the model at ``path`` (empty for a single model)."""
    from tunesmith.io import read_json_object

    path = Path(path)
    manifest = read_json_object(path / MEMBERS_FILE) if (path / MEMBERS_FILE).is_file() else None
    if not manifest:
        return []
    members = manifest.get("members")
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise UserInputError(f"{path / MEMBERS_FILE}: 'members' must be a list of folder names")
    found = []
    for member in members:
        where = (path / member).resolve()
        if path.resolve() not in where.parents or not where.is_dir():
            raise UserInputError(f"{path / MEMBERS_FILE}: member {member!r} is not a folder in it")
        found.append(where)
    return found


#: Settings that must match for ``reuse`` to keep an existing member.
_REUSE_KEYS = (
    "model",
    "text_col",
    "label_col",
    "strategy",
    "epochs",
    "lr",
    "batch_size",
    "max_length",
    "seed",
)


def same_run(where: Path, run: Any) -> bool:
    """True when ``where`` holds a finished model trained with ``run``'s settings on a data file
    with the same content."""
    import hashlib

    from tunesmith.io import read_json_object

    config = (
        read_json_object(where / "run_config.json") if (where / "config.json").is_file() else None
    )
    if not config:
        return False
    mine = run.to_dict()
    if any(config.get(key) != mine.get(key) for key in _REUSE_KEYS):
        return False
    resolved_task = (config.get("resolved") or {}).get("task")
    if run.task != "auto" and resolved_task != run.task:
        return False
    try:
        then = hashlib.sha256(Path(config["data"]).read_bytes()).hexdigest()
    except (OSError, KeyError, TypeError):
        return False
    return then == hashlib.sha256(Path(run.data).read_bytes()).hexdigest()


def _count_rows(data: str | Path, text_col: str, label_col: str) -> int:
    from tunesmith.data.load import load_text_dataset

    return len(load_text_dataset(data, text_col=text_col, label_col=label_col).texts)
