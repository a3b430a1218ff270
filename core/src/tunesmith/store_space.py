"""Giving a :class:`~tunesmith.store.Store`'s free pages back to the disk.

Deleted rows leave free pages in the file; new rows fill them, so a database pruned regularly
stops growing, but it does not shrink. :func:`reclaim` gives them back. A file created in
SQLite's incremental auto-vacuum mode (``Store.open(..., incremental_vacuum=True)``) does it in
short transactions, each a fraction of a second, so another process writing to it hardly waits.
Any other file needs one full ``VACUUM``, which rewrites it while holding the write lock (every
writer waits for all of it) and switches the mode on for the next time; :func:`is_incremental`
tells the two apart, for a caller that must not hold its writers that long.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError

#: Pages given back to the disk per transaction by an incremental vacuum (8 MB of 4 KiB pages).
VACUUM_PAGES = 2048
#: SQLite's ``PRAGMA auto_vacuum`` value for incremental mode.
INCREMENTAL = 2


def file_sizes(db: Any) -> tuple[int, int]:
    """The database's size and the part of it that is free pages (bytes)."""
    size = int(db.query("PRAGMA page_size")[0][0])
    pages = int(db.query("PRAGMA page_count")[0][0])
    free = int(db.query("PRAGMA freelist_count")[0][0])
    return pages * size, free * size


def is_incremental(db: Any) -> bool:
    """Whether the database is in incremental auto-vacuum mode (:func:`reclaim` then never
    rewrites it whole)."""
    return int(db.query("PRAGMA auto_vacuum")[0][0]) == INCREMENTAL


def _free_pages(db: Any) -> int:
    return int(db.query("PRAGMA freelist_count")[0][0])


def reclaim(
    db: Any, pages: int = VACUUM_PAGES, *, flag: str = "--vacuum", rows: str = "rows"
) -> str:
    """Give the database's free pages back to the disk; returns how: ``incremental`` or
    ``full``.

    A database in incremental auto-vacuum mode gives back ``pages`` pages per transaction,
    each a fraction of a second, so writers hardly wait. One that is not gets one full
    ``VACUUM`` that switches the mode on: it rewrites the file in place while holding the write
    lock, so every writer waits for it, and needs free disk space about twice the file's size
    (a copy and the WAL); without that room it is refused in one line naming ``flag`` and what
    was already removed (``rows``), before anything is written. Not ``VACUUM INTO`` a new file
    renamed over the old one: a process that keeps the old file open would go on writing into
    it, its rows lost once it is replaced."""
    if is_incremental(db):
        left = _free_pages(db)
        while left:
            with db.transaction() as tx:
                for _ in range(pages):
                    # Python's sqlite3 steps a pragma that returns no row once, and each step
                    # of this one gives back one page: `incremental_vacuum(2048)` freed one.
                    tx.query("PRAGMA incremental_vacuum")
            now = _free_pages(db)
            if now >= left:  # nothing more given back (a writer freeing as fast): done
                break
            left = now
            time.sleep(0.02)  # a waiting writer gets the lock between transactions
        how = "incremental"
    else:
        size, _free = file_sizes(db)
        room = shutil.disk_usage(Path(db.path).resolve().parent).free
        if room < 2 * size:
            raise UserInputError(
                f"{db.path}: {flag} rewrites the database once ({size / 1e6:,.0f} MB) and "
                f"needs about {2 * size / 1e6:,.0f} MB free beside it; there are "
                f"{room / 1e6:,.0f} MB. The {rows} are deleted; their space stays in the "
                f"file and new {rows} fill it"
            )
        # Outside any transaction (VACUUM cannot run in one): the store's query runs it as is.
        db.query("PRAGMA auto_vacuum = INCREMENTAL")
        db.query("VACUUM")
        how = "full"
    # The WAL held the rewritten pages: make it small again (no-op when a reader holds it).
    db.query("PRAGMA wal_checkpoint(TRUNCATE)")
    return how
