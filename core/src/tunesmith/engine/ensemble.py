"""Seed ensembles: N engine runs of one recipe that differ only in their seed, scored by the mean
of their calibrated probabilities.

The seed also draws each run's held-out slice, so together the members see all of the data. The
first member is an ordinary model directory at ``out`` (every tool can use it alone); the others
live in ``out/members/seed<S>``, listed in ``out/ensemble.json``, which is written last, so an
interrupted run leaves a usable single model. Directories written by tunesmith-finance before
this module existed list their members in ``finance_members.json``; it is read the same way.

Scoring costs N times one model's. On the finance tweets, members of 2 and 3 seeds each scored
above their best single member on a held-out slice of the training data (docs/finance.md); the
support plugin uses it for its intent classifier (``support train --classifier-members N``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.data.excel import data_file
from tunesmith.data.records import sort_labels
from tunesmith.engine.lexical_refit import refit_lexical
from tunesmith.engine.loading import load_model
from tunesmith.engine.predict import MEAN_TEMPERATURE, class_probabilities
from tunesmith.engine.prepare import stderr_log
from tunesmith.engine.resolved import Resolved
from tunesmith.engine.train import train
from tunesmith.errors import UserInputError
from tunesmith.io import atomic_write_json, file_sha256, read_json_object

#: The file that makes a model directory an ensemble.
MEMBERS_FILE = "ensemble.json"
#: Older names of that file, still read.
LEGACY_MEMBERS_FILES = ("finance_members.json",)
#: Where the second and later members live inside the first member's directory.
MEMBERS_DIR = "members"
#: Run settings that do not change the trained model (where it is written, how it is logged,
#: the data file's path, whose content is compared instead); every other setting must match
#: for ``reuse`` to keep an existing member.
NOT_REUSE_KEYS = frozenset(
    {"data", "out", "force", "work_dir", "cache_dir", "tensorboard", "resume", "save_steps",
     "data_license", "allow_network", "feature_cache", "resolved",
     # Where a member trained is not what it learned (fp32 on a GPU or the CPU): a member trained
     # with --device cuda is reused by the same command with --device auto. --precision stays.
     "device"}
)  # fmt: skip


#: Settings a reused member can take without training again: the lexical model is refitted.
REFIT_KEYS = frozenset({"lexical"})


def member_dirs(out: str | Path, members: int, seed: int) -> list[tuple[Path, int]]:
    """(directory, seed) of each member: ``out`` first, then ``out/members/seed<S>``."""
    out = Path(out)
    return [(out, seed)] + [
        (out / MEMBERS_DIR / f"seed{seed + k}", seed + k) for k in range(1, members)
    ]


def check_members(members: int, strategy: str) -> None:
    """A user error for an ensemble size the engine cannot train."""
    if members < 1:
        raise UserInputError(f"--members {members} is not valid; expected 1 or more")
    if members > 1 and strategy.split(":", 1)[0] == "lora":
        # A LoRA adapter directory cannot hold other model directories the engine reads.
        raise UserInputError("--members above 1 is not supported with --strategy lora")


def train_ensemble(
    run: Any,
    members: int,
    *,
    reuse: bool = False,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Train ``members`` runs of ``run`` (a ``RunConfig``), seeds ``run.seed``, +1, ...; returns
    ``run.out``. ``reuse`` keeps members already trained with the same settings on a data file
    with the same content (an ensemble whose first members finished); a member that differs
    only in ``--lexical`` keeps its transformer and gets its lexical model refitted."""
    check_members(members, run.strategy)
    say = log or stderr_log
    out = Path(run.out)
    written: list[str] = []
    for n, (where, seed) in enumerate(member_dirs(out, members, run.seed)):
        # The first member replaces ``out`` as a whole (old members included); later ones are
        # new directories inside it.
        member = dataclasses.replace(
            run,
            out=str(where),
            seed=seed,
            force=run.force if n == 0 else True,
            resolved=Resolved(),
        ).validate()
        if not (reuse and reuse_trained(where, member, log=say, what=f"member {n + 1}")):
            if members > 1:
                say(f"member {n + 1} of {members} (seed {seed}) ...")
            train(member, log=say)
        if n:
            written.append(where.relative_to(out).as_posix())
    if written:
        atomic_write_json(
            out / MEMBERS_FILE,
            {"members": written, "combine": "mean of calibrated probabilities", "seed": run.seed},
        )
    else:
        # A reused first member may still list the members of an earlier, larger ensemble.
        for name in (MEMBERS_FILE, *LEGACY_MEMBERS_FILES):
            (out / name).unlink(missing_ok=True)
    return out


def reuse_trained(
    where: str | Path, run: Any, *, log: Callable[[str], None], what: str = "the model"
) -> bool:
    """True when ``where`` holds a model ``run`` can keep instead of training again: one
    trained with the same settings on the same data (:func:`same_run`), or one that differs only
    in :data:`REFIT_KEYS`, whose lexical part is then refitted (:func:`refit_lexical`)."""
    if same_run(where, run):
        log(f"{what}: reusing {where} (same settings)")
        return True
    if same_run(where, run, ignore=REFIT_KEYS):
        log(f"{what}: reusing {where} with a new --lexical share")
        refit_lexical(where, run, log=log)
        return True
    return False


def _manifest_path(path: Path) -> Path | None:
    """The file listing the members of the model at ``path``, or None for a single model."""
    return next(
        (path / name for name in (MEMBERS_FILE, *LEGACY_MEMBERS_FILES) if (path / name).is_file()),
        None,
    )


def read_members(path: str | Path) -> list[Path]:
    """The extra members' directories of the model at ``path`` (empty for a single model)."""
    path = Path(path)
    manifest_path = _manifest_path(path)
    if manifest_path is None:
        return []
    manifest = read_json_object(manifest_path)
    if not manifest:
        return []
    members = manifest.get("members")
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise UserInputError(f"{manifest_path}: 'members' must be a list of folder names")
    found = []
    for member in members:
        where = (path / member).resolve()
        if path.resolve() not in where.parents or not where.is_dir():
            raise UserInputError(f"{manifest_path}: member {member!r} is not a folder in it")
        found.append(where)
    return found


def same_run(where: str | Path, run: Any, *, ignore: frozenset[str] = frozenset()) -> bool:
    """True when ``where`` holds a finished model trained with ``run``'s settings (all but
    :data:`NOT_REUSE_KEYS` and ``ignore``) on a data file with the same content."""
    where = Path(where)
    config = (
        read_json_object(where / "run_config.json") if (where / "config.json").is_file() else None
    )
    if not config:
        return False
    mine = run.to_dict()
    for setting in dataclasses.fields(run):
        if setting.name in NOT_REUSE_KEYS or setting.name in ignore:
            continue
        # A setting newer than the stored run_config.json had its default then.
        if setting.default_factory is not dataclasses.MISSING:
            default = setting.default_factory()
        else:
            default = None if setting.default is dataclasses.MISSING else setting.default
        if config.get(setting.name, default) != mine.get(setting.name):
            return False
    resolved = config.get("resolved") or {}
    if run.task != "auto" and resolved.get("task") != run.task:
        return False
    labels = resolved.get("labels")
    if (
        resolved.get("task") != "ner"
        and isinstance(labels, list)
        and all(isinstance(label, str) for label in labels)
        and labels != sort_labels(labels)
    ):
        # Trained when whole-number labels were ordered as text ("10" before "2"): a member
        # trained now orders them by number, and the members of an ensemble must agree.
        return False
    # The hash recorded when it was trained: the file at the same path may have changed since.
    # A run_config.json from before the hash was recorded cannot tell, so it is not reused.
    then = resolved.get("data_sha256")
    try:
        return then is not None and then == file_sha256(data_file(run.data))
    except OSError:
        return False


def load_ensemble(
    path: str | Path, *, quantize: str | None = None, device: str = "cpu"
) -> list[Any]:
    """Every member of the model at ``path`` loaded (``LoadedModel``), the first one first; a
    single model gives a list of one. Members must share their labels. The temperature(s) that
    ``calibrate`` fitted on the ensemble's mean go on the first member's ``extra``
    (:data:`~tunesmith.engine.predict.MEAN_TEMPERATURE`), where scoring the members together
    applies them."""
    models = [load_model(path, quantize=quantize, device=device)]
    models += [load_model(m, quantize=quantize, device=device) for m in read_members(path)]
    for model in models[1:]:
        if list(model.labels) == list(models[0].labels):
            continue
        if sorted(model.labels) == sorted(models[0].labels):
            # Whole-number labels were once ordered as text ("10" before "2"): a member trained
            # before that and one trained since list the same labels in another order.
            raise UserInputError(
                f"{model.path}: its labels are {models[0].path}'s in another order (one of them "
                "was trained by an older tunesmith); train the ensemble again"
            )
        raise UserInputError(
            f"{model.path}: its labels differ from {models[0].path}'s; "
            "the members of an ensemble must be trained on the same labels"
        )
    if len(models) > 1:
        temperature = _mean_temperature(Path(path), models[0])
        if temperature is not None:
            models[0].extra[MEAN_TEMPERATURE] = temperature
    return models


def _mean_temperature(path: Path, first: Any) -> float | list[float] | None:
    """The mean's temperature(s) from the manifest's ``calibration``, checked as a member's
    ``calibration.json`` is; None when the ensemble was not calibrated as a whole."""
    manifest_path = _manifest_path(path)
    manifest = read_json_object(manifest_path) if manifest_path is not None else None
    calibration = (manifest or {}).get("calibration")
    if calibration is None:
        return None
    multilabel = first.task == "multilabel"
    key = "temperatures" if multilabel else "temperature"
    value = calibration.get(key) if isinstance(calibration, dict) else None
    values = value if multilabel and isinstance(value, list) else [value]
    ok = not multilabel or len(values) == len(first.labels)
    ok = ok and all(
        isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < float("inf")
        for v in values
    )
    if not ok:
        what = (
            f"one positive number per label ({len(first.labels)})"
            if multilabel
            else ("a positive number")
        )
        raise UserInputError(f"{manifest_path}: calibration '{key}' must be {what}")
    return [float(v) for v in values] if multilabel else float(values[0])


def save_mean_calibration(path: str | Path, calibration: dict[str, Any]) -> Path:
    """Record ``calibration`` (:func:`~tunesmith.engine.calibration.fit_mean_calibration`) in
    the ensemble's manifest, atomically; training the ensemble again writes a manifest without
    it, as its members change."""
    manifest_path = _manifest_path(Path(path))
    if manifest_path is None:
        raise UserInputError(f"{path}: not a seed ensemble (no {MEMBERS_FILE})")
    manifest = read_json_object(manifest_path) or {}
    manifest["calibration"] = calibration
    return atomic_write_json(manifest_path, manifest)


def mean_probabilities(
    models: Sequence[Any], texts: Sequence[str], *, batch_size: int = 32
) -> np.ndarray:
    """The mean of the members' calibrated probabilities, ``[len(texts), labels]``."""
    return class_probabilities(models, texts, batch_size=batch_size)
