"""Upgrades that rewrite stored rows: said before they start, a copy of the file kept first.

A migration marked :class:`Rewrite` copies a table into a new shape (seconds to a minute at a
million rows), after which an older release refuses the file. Before the first such step the
store says on stderr what runs and for about how long, checks that the disk has room for a copy
and for the rewrite, and copies the file beside itself as it is (SQLite's backup API, read from
a second connection while the store holds the write lock, so nothing lands in between), named
with the schema version it had: ``news.sqlite`` -> ``news.finance-schema5.sqlite``. Putting
that copy back in the file's place is the way back to the release before.
``TUNESMITH_UPGRADE_COPY=0`` upgrades without the copy (for who keeps backups otherwise).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The environment variable that turns the copy off (``0``, ``no``, ``false``, ``off``).
COPY_ENV = "TUNESMITH_UPGRADE_COPY"
#: The page cache during a rewrite (KiB, SQLite's negative ``cache_size``): the default 2 MB
#: rewrote a million-row table's pages several times over.
REWRITE_CACHE_KIB = 131_072
#: A progress bar is drawn for rewrites estimated at least this long (on a terminal only).
BAR_SECONDS = 10.0
#: Pages copied per step of the backup (4 MiB of 4 KiB pages): the bar moves between steps.
COPY_PAGES = 1024


@dataclass(frozen=True)
class Rewrite:
    """A migration that rewrites stored rows (a table copied into a new shape).

    ``step``: the migration itself, SQL or a function of the transaction, run with foreign key
    checks off (SQLite's recipe for rebuilding a table: a dropped parent table would otherwise
    delete its children); the step keeps every reference valid itself. It may call
    ``tx.progress(fraction)`` to move the bar. ``count``: SQL giving how many ``noun`` it
    rewrites, for the note ("about 20 seconds for 1,000,000 documents"), at
    ``seconds_per_million`` (measured on a laptop CPU, the copy included)."""

    step: str | Callable[[Any], None]
    count: str
    noun: str = "rows"
    seconds_per_million: float = 60.0


def copy_wanted() -> bool:
    """False when ``TUNESMITH_UPGRADE_COPY`` turns the copy off."""
    return os.environ.get(COPY_ENV, "1").strip().lower() not in {"0", "no", "false", "off"}


def copy_path(path: Path, namespace: str, version: int) -> Path:
    """Where the copy of ``path`` at ``namespace``'s schema ``version`` goes, beside it and
    with the same suffix, so that an older release opens it as it is."""
    return path.with_name(f"{path.stem}.{namespace}-schema{version}{path.suffix}")


def about(seconds: float) -> str:
    """``seconds`` as a person says a wait: "a few seconds", "about 20 seconds", "about a
    minute", "about 3 minutes"."""
    if seconds < 8:
        return "a few seconds"
    if seconds < 45:
        return f"about {max(10, round(seconds / 10) * 10)} seconds"
    if seconds < 90:
        return "about a minute"
    return f"about {round(seconds / 60)} minutes"


def size_text(size: float) -> str:
    """Bytes as ``530 MB`` or ``1.2 GB``."""
    if size >= 1e9:
        return f"{size / 1e9:.1f} GB"
    return f"{max(size / 1e6, 0.1):.0f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


def say(line: str) -> None:
    """One line on stderr, at once (the wait follows it)."""
    print(line, file=sys.stderr, flush=True)


def file_size(path: Path) -> int:
    """The database's bytes, its write-ahead log included (what the copy holds at most)."""
    return sum(
        Path(f"{path}{suffix}").stat().st_size
        for suffix in ("", "-wal")
        if Path(f"{path}{suffix}").exists()
    )


def room_needed(path: Path, copy: bool) -> int:
    """Bytes the upgrade needs free beside ``path``: the copy, and as much again for the
    rewrite (its new table and indexes pass through the write-ahead log before they replace
    the old; measured: 0.6 times the file at a million documents)."""
    size = file_size(path)
    return size * 2 if copy else size


def free_space(path: Path) -> int | None:
    """Free bytes on the disk holding ``path``; None when the system does not say."""
    try:
        return shutil.disk_usage(path.parent).free
    except OSError:
        return None


def keep_copy(path: Path, target: Path, show_bar: bool) -> None:
    """Copy the database at ``path`` to ``target`` as it is committed now, through a temporary
    file renamed in place (a copy cut short is never taken for a whole one). Another
    connection reads it, so the caller may hold the write lock meanwhile."""
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    bar = _bar(show_bar, "copying", "page")
    try:
        dest = sqlite3.connect(str(partial))
        try:

            def moved(_status: int, remaining: int, total: int) -> None:
                if bar is not None:
                    bar.total = total
                    bar.update(total - remaining - bar.n)

            source.backup(dest, pages=COPY_PAGES, progress=moved)
        finally:
            dest.close()
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()
        if bar is not None:
            bar.close()


def _bar(show: bool, desc: str, unit: str, total: float | None = None) -> Any:
    """A tqdm bar on stderr when ``show`` and stderr is a terminal; else None."""
    if not show:
        return None
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, disable=None)
    return None if bar.disable else bar


class RewriteBar:
    """The bar a :class:`Rewrite` step moves with ``tx.progress(fraction)``."""

    def __init__(self, show: bool) -> None:
        self.bar = _bar(show, "upgrading", "%", total=100)

    def __call__(self, fraction: float) -> None:
        if self.bar is not None:
            self.bar.update(max(0, round(min(fraction, 1.0) * 100) - self.bar.n))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class Announced:
    """What was said before an upgrade: its start, the copy kept (None without one)."""

    started: float
    copy: Path | None
    show_bar: bool


def announce(
    path: Path,
    namespace: str,
    version: int,
    target: int,
    step: Rewrite,
    count: int,
    refuse: Callable[[str], Exception],
) -> Announced:
    """Say what upgrade runs, check the room for it, and keep the copy: the caller holds the
    write lock. Raises ``refuse(message)`` (the store's ``StoreRoomError``: this module
    comes before the store) when the disk has no room for it, with nothing changed."""
    seconds = count / 1e6 * step.seconds_per_million
    copy = copy_path(path, namespace, version) if copy_wanted() else None
    needed, free = room_needed(path, copy is not None), free_space(path)
    if free is not None and free < needed:
        what = (
            f"a copy of the file as it is ({size_text(file_size(path))}) and as much again for "
            "the rewrite"
            if copy is not None
            else "room for the rewrite"
        )
        instead = (
            f", or set {COPY_ENV}=0 to upgrade without the copy (no way back then)"
            if copy is not None
            else ""
        )
        raise refuse(
            f"{path}: not upgraded (nothing changed): upgrading namespace {namespace!r} from "
            f"schema {version} to {target} needs about {size_text(needed)} free beside it "
            f"({what}) and {size_text(free)} are free; free some space and run again{instead}"
        )
    kept = f"; first a copy of it as it is: {copy.name}" if copy is not None else ""
    say(
        f"upgrading {path} from schema {version} to {target} ({namespace}): "
        f"{about(seconds)} for {count:,} {step.noun}{kept}"
    )
    show_bar = seconds >= BAR_SECONDS
    if copy is not None:
        keep_copy(path, copy, show_bar)
    return Announced(time.monotonic(), copy, show_bar)


def finished(path: Path, target: int, announced: Announced) -> None:
    """Say that the upgrade is done, and where the way back is."""
    took = time.monotonic() - announced.started
    back = (
        f"; to go back to the release before, put {announced.copy.name} in its place"
        if announced.copy is not None
        else ""
    )
    say(f"upgraded {path} to schema {target} in {took:.0f} s{back}")


def abandoned(announced: Announced) -> None:
    """The upgrade failed and was rolled back: the file is as it was, so the copy goes."""
    if announced.copy is not None:
        announced.copy.unlink(missing_ok=True)
