"""The work directory beside the output (``<out>.work``): checkpoints that ``--resume`` continues.

A finished run removes it; an interrupted one leaves it, with the settings it ran with, so that
a resume with other settings is refused instead of mixing two runs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from typing import Any

from tunesmith.engine.config import RunConfig
from tunesmith.errors import OutputExistsError, UserInputError

WORK_MARKER = "tunesmith-work.json"
#: Settings that must match for ``--resume`` to continue a run rather than mix two.
RESUME_KEYS = (
    "data", "eval_data", "model", "task", "text_col", "label_col", "label_sep", "strategy",
    "epochs", "lr", "batch_size", "max_length", "seed", "class_weights", "eval_fraction",
    "clean", "augment", "label_examples", "pooling", "head_init", "feature_cache", "contrastive", "soup", "lora_r",
    "lora_alpha", "save_steps",
)  # fmt: skip


def _resume_settings(run: RunConfig) -> dict[str, Any]:
    data = run.to_dict()
    return {key: data[key] for key in RESUME_KEYS}


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
        saved = json.loads(marker.read_text(encoding="utf-8")).get("settings", {})
        current = _resume_settings(run)
        changed = [k for k in RESUME_KEYS if saved.get(k) != current[k]]
        if changed:
            flags = ", ".join("--" + k.replace("_", "-") for k in changed)
            raise UserInputError(
                f"--resume: the interrupted run in {work} used other settings ({flags}); "
                "repeat its exact flags, or pass --force instead of --resume to start over"
            )
    elif not run.force:
        raise OutputExistsError(
            f"an interrupted run left checkpoints in {work}; pass --resume to continue it or "
            "--force to start over"
        )


def open_work_dir(run: RunConfig, log: Callable[[str], None]) -> str | None:
    """Create (or reuse, with ``--resume``) the work directory; the checkpoint to resume from."""
    from tunesmith.io import atomic_write_json

    work = run.work_path
    if work.exists() and run.resume:
        from transformers.trainer_utils import get_last_checkpoint

        checkpoints = work / "checkpoints"
        last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
        if last is None:
            log(f"--resume: no checkpoint in {work} yet; training from the start")
        else:
            log(f"--resume: continuing from {last}")
        return last
    if work.exists():
        shutil.rmtree(work)
    elif run.resume:
        log(f"--resume: nothing to resume in {work}; training from the start")
    work.mkdir(parents=True)
    atomic_write_json(
        work / WORK_MARKER, {"settings": _resume_settings(run), "out": str(run.out_dir)}
    )
    return None
