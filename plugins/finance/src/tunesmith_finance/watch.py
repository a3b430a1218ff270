"""``finance watch``: ingest a folder's files, then whatever is added or appended to them.

Every file is read from the offset its last committed batch recorded, so a restarted watcher
resumes where it stopped. Files are read in follow mode: a last line still being written (no
newline yet) waits for the next change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith_finance.ingest import Report
from tunesmith_finance.sources import FORMATS


def _wanted(path: Path) -> bool:
    return path.suffix.lower() in FORMATS and not path.name.startswith(".")


def ingest_paths(ingester: Any, paths: list[Path], log: Callable[[str], None]) -> Report:
    """Ingest each file in follow mode; one file's user error is logged, not fatal."""
    total = Report()
    for path in sorted(paths):
        try:
            total.merge(ingester.ingest_file(path, follow=True))
        except UserInputError as exc:
            log(f"Error: {exc}")
    return total


def watch_folder(
    ingester: Any,
    folder: str | Path,
    *,
    on_pass: Callable[[Report], None] | None = None,
    once: bool = False,
    log: Callable[[str], None] = print,
    stop_event: threading.Event | None = None,
) -> None:
    """Ingest the folder now, then on every change until ``stop_event`` is set (or Ctrl-C)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserInputError(f"{folder}: no such folder")
    report = ingest_paths(
        ingester, [p for p in folder.iterdir() if p.is_file() and _wanted(p)], log
    )
    if on_pass is not None:
        on_pass(report)
    if once:
        return
    from watchfiles import Change, watch

    log(f"watching {folder} (Ctrl-C to stop)")
    for changes in watch(folder, stop_event=stop_event, recursive=False, rust_timeout=500):
        paths = {Path(p) for change, p in changes if change != Change.deleted and _wanted(Path(p))}
        paths = {p for p in paths if p.is_file()}
        if not paths:
            continue
        report = ingest_paths(ingester, list(paths), log)
        if on_pass is not None:
            on_pass(report)
