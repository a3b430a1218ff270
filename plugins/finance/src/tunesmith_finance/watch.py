"""``finance watch``: ingest a folder's files, then whatever is added or appended to them.

Every file is read from the offset its last committed batch recorded, so a restarted watcher
resumes where it stopped. Files are read in follow mode: a last line still being written (no
newline yet) waits for the next change. A file renamed in the folder (a log rotated to
``feed.jsonl.1``) is followed under its new name: its progress moves with it, so the lines
written just before the rename (or after it, by a writer that has not reopened its file yet)
are read.

Workbooks (``.xlsx``, ``.xlsm``) are not followed: Excel rewrites the whole file on each save
(there are no appended lines, and a read during a save sees half a zip). The watcher says so
once for each and leaves them to ``finance ingest``, which resumes at the last stored row.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tunesmith.data.excel import EXCEL_SUFFIXES
from tunesmith.errors import UserInputError
from tunesmith_finance.ingest import Report
from tunesmith_finance.sources import FORMATS, format_of


def _wanted(path: Path) -> bool:
    return path.suffix.lower() in FORMATS and not path.name.startswith(".")


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and _wanted(p)]


def note_workbooks(paths: Iterable[Path], noted: set[Path], log: Callable[[str], None]) -> None:
    """Say once for each workbook among ``paths`` that it is not watched, and what to run
    instead (Office's ``~$book.xlsx`` lock files and hidden files are no workbooks)."""
    for path in sorted(paths):
        name = path.name
        if path.suffix.lower() not in EXCEL_SUFFIXES or name.startswith(("~$", ".")):
            continue
        if path not in noted:
            noted.add(path)
            log(
                f"{path}: workbooks are not watched (Excel rewrites the whole file on each "
                f"save); run `tunesmith finance ingest '{path}'` after saving it, which "
                "resumes after the rows already stored"
            )


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


class Renames:
    """The files a watcher has read, by identity (device and inode), to follow one that is
    renamed in the folder: a log rotated from ``feed.jsonl`` to ``feed.jsonl.1`` keeps the
    progress and the format it was read with, so its last lines are not lost."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.known: dict[Path, tuple[tuple[int, int], str]] = {}

    def tracks(self, path: Path) -> bool:
        return path in self.known

    def format(self, path: Path) -> str | None:
        """The format ``path`` was read with (its original name's), or ``None``."""
        entry = self.known.get(path)
        return entry[1] if entry else None

    def remember(self, path: Path, identity: tuple[int, int] | None, fmt: str) -> None:
        if identity is not None:
            self.known[path] = (identity, fmt)

    def moved(self, db: Any) -> dict[Path, str]:
        """Files renamed since they were read: their progress records are moved to the new
        names, returned with their formats, to be read now."""
        from tunesmith_finance import storage

        changed = {p: v for p, v in self.known.items() if _identity(p) != v[0]}
        if not changed:
            return {}
        where: dict[tuple[int, int], Path] = {}
        with os.scandir(self.folder) as entries:
            for entry in entries:
                identity = _identity(Path(entry.path))
                if identity is not None and entry.is_file():
                    where[identity] = Path(entry.path)
        moves: dict[str, str] = {}
        found: dict[Path, str] = {}
        for path in changed:
            del self.known[path]
        for path, (identity, fmt) in changed.items():
            new = where.get(identity)
            if new is not None and new != path:
                moves[str(path.resolve())] = str(new.resolve())
                found[new] = fmt
                self.known[new] = (identity, fmt)
        if moves:
            with db.transaction() as tx:
                storage.move_progress(tx, moves)
        return found


def ingest_paths(
    ingester: Any,
    paths: list[Path],
    log: Callable[[str], None],
    retry: set[Path] | None = None,
    renames: Renames | None = None,
) -> Report:
    """Ingest each file in follow mode; one file's error is logged, not fatal.

    A file the database stayed locked for is added to ``retry`` (and removed once read): its
    unread rows would otherwise wait for the file's next change, which may never come.
    ``renames``: remembers each file read, and gives the format of a renamed one.
    """
    from tunesmith.store import StoreLockedError

    total = Report()
    for path in sorted(paths):
        fmt = renames.format(path) if renames is not None else None
        # Before reading: a file renamed meanwhile is then at worst read again, never skipped.
        identity = _identity(path)
        try:
            if fmt is None:
                total.merge(ingester.ingest_file(path, follow=True))
            else:
                total.merge(ingester.ingest_file(path, follow=True, fmt=fmt))
            if renames is not None:
                renames.remember(path, identity, fmt or format_of(path))
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
    noted: set[Path] = set()
    if once:
        note_workbooks(folder.iterdir(), noted, log)
        report = ingest_paths(ingester, _files(folder), log)
        if on_pass is not None:
            on_pass(report)
        return
    from watchfiles import Change, watch

    log(f"watching {folder} (Ctrl-C to stop)")
    retry: set[Path] = set()
    renames = Renames(folder)
    scanned = False
    # yield_on_timeout: the first pass runs once the watcher is running (a file written while
    # it reads is then a change, not missed), and locked files are tried again without a change.
    for changes in watch(
        folder, stop_event=stop_event, recursive=False, rust_timeout=500, yield_on_timeout=True
    ):
        if not scanned:
            note_workbooks(folder.iterdir(), noted, log)
            paths = set(_files(folder))
            scanned = True
        else:
            # Renamed files first: their progress moves before a new file takes the old name.
            moved = renames.moved(ingester.db) if changes else {}
            paths = {Path(p) for change, p in changes if change != Change.deleted}
            note_workbooks(paths, noted, log)
            paths = {
                p
                for p in paths | retry | set(moved)
                if (_wanted(p) or renames.tracks(p)) and p.is_file()
            }
            retry &= paths
            if not paths:
                continue
        # The first pass reports (and runs `--alerts` on what is stored) even with no file yet.
        report = ingest_paths(ingester, list(paths), log, retry, renames)
        if on_pass is not None:
            on_pass(report)
