"""``RunConfig``: every setting of a training run, validated before any heavy work.

The model directory keeps it as ``run_config.json`` (``to_dict()``), with the values that
``auto`` settings resolved to under ``resolved``. Light module: no torch, no transformers.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.data.excel import data_file
from tunesmith.devices import PRECISIONS
from tunesmith.engine.checks import MAX_SEED as MAX_SEED  # re-exported: its old home
from tunesmith.engine.checks import RULES, check_settings, invalid
from tunesmith.engine.checks import check_seed as check_seed
from tunesmith.engine.resolved import Resolved
from tunesmith.engine.self_training import ROUNDS as PSEUDO_ROUNDS
from tunesmith.engine.self_training import THRESHOLD as PSEUDO_THRESHOLD
from tunesmith.errors import UserInputError
from tunesmith.io import check_output_folder
from tunesmith.model_dir import CONFIG_FILE, RUN_CONFIG_FILE

TASKS = ("auto", "classification", "multilabel", "ner")
POOLINGS = ("auto", "mean", "cls")
HEAD_INITS = ("auto", "probe", "random")
CLASS_WEIGHTS = ("none", "auto")
LABEL_EXAMPLES = ("auto", "on", "off")
NEAREST = ("auto", "on", "off")
#: The one error for ``--unlabelled`` on data it cannot self-train on.
UNLABELLED_NEEDS_SINGLE_LABEL = "--unlabelled: self-training needs single-label classification data"
_STRATEGY_RE = re.compile(r"^(full|head|lora|freeze:(\d+))$")
#: ``--lora-r`` and ``--lora-alpha`` when not given.
LORA_DEFAULTS = (8, 16)


def _inside(path: Path, folder: Path) -> bool:
    """True when ``path`` is ``folder`` or lies anywhere under it (links resolved)."""
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def check_model_output(
    out: str | Path, *, force: bool, inputs: tuple[tuple[str | None, str], ...] = ()
) -> Path:
    """Refuse, before any work, an ``--out`` that a model directory must not replace.

    A file (``--force`` would swap the user's file for a folder), a folder under a file, and,
    with ``--force``, a folder that holds one of ``inputs`` (``(path, flag)``: the training data
    would go with it) or that holds files but no model (no ``config.json`` or
    ``run_config.json``: ``--out ~/Documents --force`` would delete it all). Without ``--force``
    an existing ``out`` is refused later, by the writer.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserInputError(
            f"--out {out} is a file; a model is written as a folder, so give a folder path"
        )
    check_output_folder(out, "--out")
    if not (force and out.is_dir()):
        return out
    for path, flag in inputs:
        if path is not None and _inside(Path(path), out):
            raise UserInputError(
                f"--out {out} holds {flag} {path}; --force would delete it with the folder: "
                "write the model to another folder"
            )
    if not any((out / name).is_file() for name in (CONFIG_FILE, RUN_CONFIG_FILE)):
        others = sorted(p.name for p in out.iterdir())
        if others:  # ~/Documents given as --out: --force would delete all of it
            shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            raise UserInputError(
                f"--out {out} is a folder that holds no model ({shown}); --force replaces only "
                "a model folder: give a new or empty folder"
            )
    return out


@dataclass
class RunConfig:
    """The settings of one ``tunesmith train`` run; ``None`` means "choose from the data"."""

    data: str
    eval_data: str | None = None
    out: str | None = None
    model: str = "default"
    allow_network: bool = False
    task: str = "auto"
    text_col: str = "text"
    label_col: str = "label"
    label_sep: str | None = None
    strategy: str = "full"
    epochs: float | None = None
    lr: float | None = None
    batch_size: int = 16
    max_length: int | None = None
    seed: int = 42
    class_weights: str = "none"
    early_stopping: int | None = None
    eval_fraction: float | None = None
    calibrate: bool = True
    clean: bool = False
    augment: list[str] = field(default_factory=list)
    #: Add each label's name as a training example: ``auto`` for few-shot single-label data
    #: whose label names read as words, ``on``, or ``off``.
    label_examples: str = "auto"
    resume: bool = False
    save_steps: int | None = None
    tensorboard: bool = False
    data_license: str | None = None
    force: bool = False
    pooling: str = "auto"
    head_init: str = "auto"
    feature_cache: bool = True
    cache_dir: str | None = None
    work_dir: str | None = None
    #: Weight of a supervised contrastive loss on the pooled embeddings; None: 1 for few-shot
    #: single-label data with a mean-pooling head, else 0.
    contrastive: float | None = None
    #: Weight-space ensemble (WiSE-FT) of the fine-tuned weights with the starting point
    #: (pretrained encoder + probed head): 1 keeps the fine-tuned weights, 0 the start.
    #: None: chosen on the held-out data, or 0.4 for few-shot runs without any.
    wise_ft: float | None = None
    #: Mix nearest-training-example scores into the saved model's probabilities: ``auto`` for
    #: few-shot single-label full fine-tuning with mean pooling, ``on``, or ``off``.
    nearest: str = "auto"
    #: A file of unlabelled texts (``text_col``) for self-training after fine-tuning: its
    #: confident predictions join the stored examples and the head is refitted with them.
    unlabelled: str | None = None
    #: Lowest predicted probability that makes an unlabelled text a pseudo-labelled example.
    pseudo_threshold: float = PSEUDO_THRESHOLD
    #: Self-training rounds (each predicts again with the refitted head).
    pseudo_rounds: int = PSEUDO_ROUNDS
    #: Label smoothing of the cross-entropy (single-label and NER; multi-label ignores it):
    #: the target keeps 1 - s and spreads s over every label. 0 is off.
    label_smoothing: float = 0.0
    #: Layer-wise learning-rate decay: layer i of n trains at lr * d ** (n - i), the head at lr
    #: (1: off, every layer at lr).
    layer_decay: float = 1.0
    #: R-Drop (Liang et al., 2021): each training batch runs twice with different dropout and
    #: this weight of the two predictions' symmetric KL divergence joins the loss (single-label
    #: classification with a trainable encoder; 0 is off). Costs about twice the training time.
    rdrop: float = 0.0
    #: Share of a TF-IDF n-gram logistic regression's probabilities mixed into a single-label
    #: classifier's (:mod:`tunesmith.engine.lexical`); 0 is off.
    lexical: float = 0.0
    #: Average the weights at the end of the last N epochs after training (0: off; full
    #: fine-tuning). With held-out data the mean is kept only if it scores at least as well.
    average_epochs: int = 0
    lora_r: int = LORA_DEFAULTS[0]
    lora_alpha: int = LORA_DEFAULTS[1]
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    #: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (:func:`tunesmith.devices.resolve_device`).
    device: str = "auto"
    #: ``fp32``, or mixed ``fp16``/``bf16`` (:func:`tunesmith.devices.check_precision`).
    precision: str = "fp32"
    #: What the ``auto``/``None`` settings resolved to; filled in by ``train``.
    resolved: Resolved = field(default_factory=Resolved)

    # -- derived ---------------------------------------------------------------------------

    @property
    def out_dir(self) -> Path:
        """Where the model directory goes: ``--out``, or ``models/<data file stem>``."""
        if self.out:
            return Path(self.out)
        return Path("models") / Path(self.data).stem

    @property
    def work_path(self) -> Path:
        """Checkpoints for ``--resume``: ``--work-dir`` or ``<out>.work`` beside the output."""
        if self.work_dir:
            return Path(self.work_dir)
        out = self.out_dir
        return out.with_name(out.name + ".work")

    @property
    def strategy_kind(self) -> str:
        """``full``, ``freeze``, ``head`` or ``lora``."""
        return self.strategy.split(":", 1)[0]

    @property
    def freeze_layers(self) -> int | None:
        """K of ``freeze:K``, else ``None``."""
        if self.strategy.startswith("freeze:"):
            return int(self.strategy.split(":", 1)[1])
        return None

    # -- checks and (de)serialisation ----------------------------------------------------------

    def validate(self) -> RunConfig:
        """Raise :class:`UserInputError` for any impossible setting; cheap, touches no model."""
        if not self.data:
            raise UserInputError("--data is required")
        self._check_choices()
        check_settings({name: getattr(self, name) for name in RULES})
        self._check_combinations()
        self._check_files()
        return self

    def _check_choices(self) -> None:
        """Each setting that takes one of a few words (``--task``, ``--strategy`` ...)."""
        if not _STRATEGY_RE.match(self.strategy):
            raise invalid("--strategy", self.strategy, "full | freeze:K | head | lora")
        if self.freeze_layers == 0:
            # It froze the embeddings alone, which "freeze the bottom 0 layers" does not say.
            raise UserInputError(
                "--strategy freeze:0 freezes no layer; use --strategy full (or freeze:K with K "
                "from 1 to the model's number of layers)"
            )
        for flag, value, choices in (
            ("--task", self.task, TASKS),
            ("--pooling", self.pooling, POOLINGS),
            ("--head-init", self.head_init, HEAD_INITS),
            ("--label-examples", self.label_examples, LABEL_EXAMPLES),
            ("--nearest", self.nearest, NEAREST),
            ("--precision", self.precision, PRECISIONS),
            ("--class-weights", self.class_weights, CLASS_WEIGHTS),
        ):
            if value not in choices:
                shown = (*choices, "pairs") if flag == "--task" else choices  # train's own task
                raise invalid(flag, value, " | ".join(shown))
        if self.label_sep == "":
            raise invalid("--label-sep", self.label_sep, "a non-empty separator such as '|'")

    def _check_combinations(self) -> None:
        """Settings each valid alone that do not go together."""
        if self.average_epochs and self.strategy_kind != "full":
            raise UserInputError("--average-epochs needs --strategy full")
        if self.unlabelled is not None and (self.task in ("multilabel", "ner") or self.label_sep):
            raise UserInputError(UNLABELLED_NEEDS_SINGLE_LABEL)
        if self.unlabelled is not None and self.strategy_kind == "lora":
            raise UserInputError(
                "--unlabelled is not supported with --strategy lora; use full, freeze:K or head"
            )
        if self.strategy_kind != "lora" and (self.lora_r, self.lora_alpha) != LORA_DEFAULTS:
            # Silently training without the adapter the user sized would be a wrong answer.
            raise UserInputError(
                f"--lora-r and --lora-alpha go with --strategy lora, not {self.strategy}"
            )
        if self.strategy_kind == "lora" and self.task == "ner":
            # PEFT handles token classification, but the saved adapter is not tested for it.
            raise UserInputError(
                "--strategy lora is not supported for --task ner; use full or freeze:K"
            )
        if self.eval_data and self.eval_fraction:
            raise UserInputError("give either --eval or --eval-fraction, not both")

    def _check_files(self) -> None:
        """The data files exist and ``--out`` may be written."""
        for path, flag in (
            (self.data, "--data"),
            (self.eval_data, "--eval"),
            (self.unlabelled, "--unlabelled"),
        ):
            if path is not None and Path(path).is_dir():
                raise UserInputError(f"{flag} {path} is a folder; give a data file")
            if path is not None and not data_file(path).is_file():  # book.xlsx#Sheet: the book
                raise UserInputError(f"{flag} {path}: no such file")
        check_model_output(
            self.out_dir,
            force=self.force,
            inputs=(
                (self.data, "--data"),
                (self.eval_data, "--eval"),
                (self.unlabelled, "--unlabelled"),
                (self.work_dir, "--work-dir"),
                (self.cache_dir, "--cache-dir"),
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every setting (``run_config.json``)."""
        data = dataclasses.asdict(self)
        data["resolved"] = self.resolved.to_dict()  # only what the run resolved, not every field
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Rebuild from ``to_dict()`` output; keys written by newer versions are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        settings = {k: v for k, v in data.items() if k in names}
        settings["resolved"] = Resolved.from_dict(settings.get("resolved") or {})
        return cls(**settings)
