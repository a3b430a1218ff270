"""The work directory beside the output (``<out>.work``): checkpoints that ``--resume`` continues.

A finished run removes it; an interrupted one leaves it, with the settings it ran with, so that
a resume with other settings is refused instead of mixing two runs.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunesmith.data.excel import data_file
from tunesmith.engine.config import RunConfig
from tunesmith.engine.distributed import is_main_process
from tunesmith.engine.loading import check_safetensors
from tunesmith.errors import DataError, OutputExistsError, UserInputError, room_hint
from tunesmith.io import (
    atomic_directory,
    atomic_write_json,
    file_sha256,
    read_json_object,
    remove_stale_temps,
    remove_tree,
)
from tunesmith.model_dir import ADAPTER_WEIGHT_FILES, WEIGHT_FILES

WORK_MARKER = "tunesmith-work.json"
#: The marker's record of the input files' content (:func:`input_hashes`).
INPUTS_KEY = "inputs_sha256"
#: Settings that must match for ``--resume`` to continue a run rather than mix two.
#: ``--save-steps`` is not one: checkpoints do not change the model (evaluation keeps its
#: own schedule), so a resumed run may save more or less often.
RESUME_KEYS = (
    "data", "eval_data", "model", "task", "text_col", "label_col", "label_sep", "strategy",
    "epochs", "lr", "batch_size", "max_length", "seed", "class_weights", "eval_fraction",
    "clean", "augment", "label_examples", "pooling", "head_init", "feature_cache", "contrastive", "lora_r",
    "lora_alpha", "label_smoothing", "layer_decay", "rdrop",
)  # fmt: skip


_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
#: A checkpoint holds one of these weight files; ``trainer_state.json`` is written after them
#: (and after the optimizer and RNG states), so its presence marks a finished checkpoint write.
_WEIGHTS = (*WEIGHT_FILES, *ADAPTER_WEIGHT_FILES)


def checkpoint_is_complete(folder: Path) -> bool:
    """True when ``folder`` holds weights that are whole and a readable ``trainer_state.json``.

    A kill during a checkpoint write leaves a folder with ``config.json`` only, or weights cut
    short; resuming from it would fail, or silently start from wrong weights.
    """
    try:
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(state, dict):
        return False
    weights = [folder / name for name in _WEIGHTS if (folder / name).is_file()]
    if not weights:
        return False
    try:
        for file in weights:
            if file.suffix == ".safetensors":
                check_safetensors(file)
    except DataError:
        return False
    return True


def last_complete_checkpoint(
    folder: Path, log: Callable[[str], None] | None = None, *, remove: bool = True
) -> str | None:
    """The newest complete ``checkpoint-N`` in ``folder`` (None if there is none).

    Newer incomplete ones are removed (with a line in the log; not with ``remove=False``): the
    resumed run writes those steps again, and a half-written folder must not be mistaken for a
    checkpoint later.
    """
    if not folder.is_dir():
        return None
    found = sorted(
        (int(m.group(1)), child)
        for child in folder.iterdir()
        if child.is_dir() and (m := _CHECKPOINT.match(child.name))
    )
    for _, child in reversed(found):
        if checkpoint_is_complete(child):
            return str(child)
        if not remove:
            continue
        if log is not None:
            log(
                f"--resume: {child.name} was not completely written (the run was stopped while "
                "saving it); removed it"
            )
        shutil.rmtree(child, ignore_errors=True)
    return None


def has_resumable_work(work: Path) -> bool:
    """True when ``work`` holds something ``--resume`` would continue from."""
    return any(
        checkpoint_is_complete(child)
        for folder in work.glob("checkpoints*")
        if folder.is_dir()
        for child in folder.iterdir()
        if child.is_dir() and _CHECKPOINT.match(child.name)
    )


def _setting_defaults() -> dict[str, Any]:
    """Each run setting's default, by name (those without one left out)."""
    out = {}
    for setting in dataclasses.fields(RunConfig):
        if setting.default is not dataclasses.MISSING:
            out[setting.name] = setting.default
        elif setting.default_factory is not dataclasses.MISSING:
            out[setting.name] = setting.default_factory()
    return out


def _resume_settings(run: RunConfig) -> dict[str, Any]:
    data = run.to_dict()
    return {key: data[key] for key in RESUME_KEYS}


#: The files whose content the checkpoints depend on (the held-out one chooses the best).
_INPUT_FLAGS = {"data": "--data", "eval_data": "--eval"}


def input_hashes(run: RunConfig) -> dict[str, str | None]:
    """The SHA-256 of ``--data`` and ``--eval`` (``None`` when not given or unreadable): a
    resumed run must train on the same content, not only the same paths."""

    def sha256(path: str | None) -> str | None:
        try:
            return file_sha256(data_file(path)) if path else None  # book.xlsx#Sheet: the book
        except OSError:  # the data reader says what is wrong with it, in one line
            return None

    return {"data": sha256(run.data), "eval_data": sha256(run.eval_data)}


def _changed_inputs(run: RunConfig, saved: Any) -> list[str]:
    """The flags of the input files whose content differs from the interrupted run's (a work
    folder written before the hashes were recorded has none to compare)."""
    if not isinstance(saved, dict):
        return []
    now = input_hashes(run)
    # A file unreadable now (None) is the data reader's to report, in one line.
    return [
        flag
        for key, flag in _INPUT_FLAGS.items()
        if key in saved and now[key] is not None and saved[key] != now[key]
    ]


def check_work_dir(run: RunConfig) -> None:
    """Fail early when a work directory is in the way or ``--resume`` settings differ."""
    work = run.work_path
    if not work.exists():
        return
    marker = work / WORK_MARKER
    if not marker.is_file():
        raise OutputExistsError(
            f"{work} exists and is not a tunesmith work directory; remove it or pass --work-dir"
        )
    if run.resume:
        document = read_json_object(marker) or {}  # a broken one: one line
        saved = document.get("settings")
        saved = saved if isinstance(saved, dict) else {}
        current = _resume_settings(run)
        # A setting newer than the marker (a run started before --rdrop existed) had its
        # default then: repeating the run's exact flags must resume it.
        defaults = _setting_defaults()
        changed = [k for k in RESUME_KEYS if saved.get(k, defaults.get(k)) != current[k]]
        if changed:
            flags = ", ".join("--" + k.replace("_", "-") for k in changed)
            raise UserInputError(
                f"--resume: the interrupted run in {work} used other settings ({flags}); "
                "repeat its exact flags, or pass --force instead of --resume to start over"
            )
        edited = _changed_inputs(run, document.get(INPUTS_KEY))
        if edited:
            # Its checkpoints hold a head for the old labels, weights fitted to the old rows.
            raise UserInputError(
                f"--resume: the content of {' and '.join(edited)} changed since the interrupted "
                f"run in {work} started; resuming would mix two data sets: pass --force instead "
                "of --resume to start over"
            )
    elif not run.force and has_resumable_work(work):
        raise OutputExistsError(
            f"an interrupted run left checkpoints in {work}; pass --resume to continue it or "
            "--force to start over"
        )


#: The marker's record of the label order the checkpoints' outputs follow.
LABELS_KEY = "labels"


def resumed_label_order(run: RunConfig, labels: list[str], log: Callable[[str], None]) -> list[str]:
    """The order of ``labels`` to train with: with ``--resume`` of an interrupted run, the
    order its checkpoints' outputs follow, else ``labels`` as they are.

    Whole-number labels were once ordered as text ("10" before "2"); a run started then and
    resumed now would continue its checkpoints with every label past 9 moved to another
    output, and save a model that predicts the wrong classes. A marker without the order (from
    before it was recorded) was written by a tunesmith that ordered every label set as text.
    """
    marker = run.work_path / WORK_MARKER
    if not run.resume or not marker.is_file():
        return labels
    saved = (read_json_object(marker) or {}).get(LABELS_KEY, sorted(labels))
    if not isinstance(saved, list) or sorted(map(str, saved)) != sorted(labels):
        return labels  # another label set: check_work_dir refuses changed data files
    saved = [str(label) for label in saved]
    if saved != labels:
        log(f"--resume: keeping the label order of the interrupted run in {run.work_path}")
    return saved


def open_work_dir(
    run: RunConfig, log: Callable[[str], None], labels: list[str] | None = None
) -> str | None:
    """Create (or reuse, with ``--resume``) the work directory; the checkpoint to resume from.
    ``labels``: the order the run's outputs follow, recorded for a later ``--resume``
    (:func:`resumed_label_order`)."""
    work = run.work_path
    if not is_main_process():
        # The main process opens and cleans the folder; this one only reads where to resume.
        if run.resume:
            return last_complete_checkpoint(work / "checkpoints", remove=False)
        return None
    if work.exists() and run.resume:
        last = last_complete_checkpoint(work / "checkpoints", log)
        if last is None:
            log(f"--resume: no complete checkpoint in {work} yet; training from the start")
        else:
            log(f"--resume: continuing from {last}")
        return last
    if work.exists():
        if not run.force:  # check_work_dir let it through: nothing in it could be resumed
            log(f"an interrupted run left {work} without a complete checkpoint; starting over")
        remove_tree(work)
    elif run.resume:
        log(f"--resume: nothing to resume in {work}; training from the start")
    # Made whole with its marker, then renamed into place: a folder without the marker is
    # refused as "not a tunesmith work directory", even with --force.
    with atomic_directory(work) as tmp:
        atomic_write_json(
            tmp / WORK_MARKER,
            {
                "settings": _resume_settings(run),
                INPUTS_KEY: input_hashes(run),
                LABELS_KEY: labels,
                "out": str(run.out_dir),
            },
        )
    return None


def clean_after_killed_runs(run: RunConfig, log: Callable[[str], None]) -> None:
    """Remove the temporary folders and files killed runs left beside the output, and say so.

    Called with the output's run lock held, so every ``.<out>.*.tmp`` there is stale; a model
    a killed swap had moved aside (``.<out>.old-<pid>``) is put back instead.
    """
    removed = remove_stale_temps(run.out_dir, any_owner=True)
    # A work folder a killed run was removing (io.remove_tree); its lock is held as well.
    removed += remove_stale_temps(run.work_path, any_owner=True)
    if removed:
        names = ", ".join(path.name for path in removed[:3]) + (", ..." if len(removed) > 3 else "")
        log(
            f"removed {len(removed)} temporary item(s) a stopped run left beside {run.out_dir}: "
            f"{names}"
        )


def interrupted_message(work: Path) -> str:
    """What to tell the user after Ctrl-C: resume only when a checkpoint was written."""
    if has_resumable_work(work):
        return (
            f"training interrupted; checkpoints are kept in {work}; run the same command with "
            "--resume to continue"
        )
    return (
        "training interrupted before its first checkpoint was written; there is nothing to "
        "resume, the next run starts over"
    )


def out_of_room_outcome(work: Path, out: Path, code: int) -> str:
    """What to tell the user when a checkpoint found no room (``code``, its errno): the
    checkpoint cut short is removed now (its space is free again for the next run), the output
    is as it was, and ``--resume`` continues when an earlier checkpoint is whole."""
    for folder in work.glob("checkpoints*"):
        last_complete_checkpoint(folder)
    if has_resumable_work(work):
        return f"{out} is unchanged: {room_hint(code, 'run the same command with --resume')}"
    return f"{out} is unchanged: {room_hint(code, 'run the same command again')}"
