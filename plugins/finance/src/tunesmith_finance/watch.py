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


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and _wanted(p)]


def ingest_paths(
    ingester: Any,
    paths: list[Path],
    log: Callable[[str], None],
    retry: set[Path] | None = None,
) -> Report:
    """Ingest each file in follow mode; one file's error is logged, not fatal.

    A file the database stayed locked for is added to ``retry`` (and removed once read): its
    unread rows would otherwise wait for the file's next change, which may never come.
    """
    from tunesmith.store import StoreLockedError

    total = Report()
    for path in sorted(paths):
        try:
            total.merge(ingester.ingest_file(path, follow=True))
        except StoreLockedError as exc:
            log(f"Error: {exc}; trying again")
            if retry is not None:
                retry.add(path)
            continue
        except UserInputError as exc:
            log(f"Error: {exc}")
        except OSError as exc:  # deleted or made unreadable between the event and the read
            log(f"Error: {path}: {exc.strerror or exc}")
        if retry is not None:
            retry.discard(path)
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
    if once:
        report = ingest_paths(ingester, _files(folder), log)
        if on_pass is not None:
            on_pass(report)
        return
    from watchfiles import Change, watch

    log(f"watching {folder} (Ctrl-C to stop)")
    retry: set[Path] = set()
    scanned = False
    # yield_on_timeout: the first pass runs once the watcher is running (a file written while
    # it reads is then a change, not missed), and locked files are tried again without a change.
    for changes in watch(
        folder, stop_event=stop_event, recursive=False, rust_timeout=500, yield_on_timeout=True
    ):
        if not scanned:
            paths = set(_files(folder))
            scanned = True
        else:
            paths = {Path(p) for change, p in changes if change != Change.deleted}
            paths = {p for p in paths | retry if _wanted(p) and p.is_file()}
            retry &= paths
            if not paths:
                continue
        # The first pass reports (and runs `--alerts` on what is stored) even with no file yet.
        report = ingest_paths(ingester, list(paths), log, retry)
        if on_pass is not None:
            on_pass(report)
