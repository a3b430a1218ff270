"""Retention: documents older than a cut-off leave a finance database; its alerts stay.

`finance prune` deletes in short transactions (a batch of documents with their keys and
issues each), so a `watch` or `ingest` writing to the same database waits at most one batch.
Each transaction deletes only documents older than the cut-off: killed at any moment, a prune
has removed some of them and nothing else, and running it again finishes the job.

The cut-off is recorded first (``finance_meta`` :data:`~tunesmith_finance.storage.RETENTION_CUTOFF`):
ingest stores no document older than the last prune's cut-off, so re-reading an old file (or a
folder whose progress records a prune removed) does not bring pruned documents back to be
scored, stored and pruned again.

Alerts are never deleted: they are the record of what happened, and each keeps its own copy of
its figures, words and example documents. Space: deleted pages stay in the file and new
documents fill them, so a database pruned daily stops growing; ``vacuum`` gives them back to
the disk (see :func:`reclaim`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tunesmith import store_space
from tunesmith.errors import UserInputError
from tunesmith.store_space import VACUUM_PAGES, file_sizes
from tunesmith_finance import storage

#: Documents deleted per transaction: about 0.1 s on a million-document database, far below
#: the 5 s a writer waits for the lock.
DEFAULT_BATCH = 2000
#: The shortest ``--older-than``: ``90m`` typed for ``90d`` would keep an hour and a half.
SHORTEST = 86400.0


@dataclass
class PrunePlan:
    """What a prune at ``cutoff`` (Unix seconds) deletes, and what it keeps."""

    cutoff: float
    documents: int
    kept_documents: int
    keys: int
    issues: int
    progress: list[str]
    alerts_kept: int
    oldest: float | None
    file_bytes: int
    free_bytes: int

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cutoff_time"] = iso(self.cutoff)
        data["oldest_time"] = iso(self.oldest) if self.oldest is not None else None
        return data


@dataclass
class PruneReport:
    """What a prune did: the plan it followed, what it deleted, the file before and after."""

    plan: PrunePlan
    documents: int = 0
    issues: int = 0
    progress: int = 0
    batches: int = 0
    vacuum: str = "none"
    file_bytes: int = 0
    free_bytes: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["plan"] = self.plan.to_dict()
        data["seconds"] = round(self.seconds, 2)
        return data


def prune_cutoff(
    older_than: str | None,
    before: str | None,
    *,
    names: tuple[str, str] = ("--older-than", "--before"),
) -> float:
    """The cut-off (Unix seconds) of a prune given one of ``older_than`` (a duration from now,
    ``90d``, at least a day) and ``before`` (ISO 8601, UTC without a zone), refused in one line
    naming ``names`` (the flags, or the Python API's arguments): neither or both, a duration
    under a day, a time in the future (ingest stores nothing older than the cut-off, so a
    future one would stop the feed)."""
    from tunesmith_finance.documents import parse_moment
    from tunesmith_finance.trends import parse_duration

    older_name, before_name = names
    if (older_than is None) == (before is None):
        raise UserInputError(f"give one of {older_name} (e.g. 90d) or {before_name} TIME")
    if older_than is not None:
        span = parse_duration(older_than, older_name)
        if span < SHORTEST:
            raise UserInputError(
                f"{older_name} {older_than} would keep less than a day; give days (90d) or "
                f"weeks, or {before_name} TIME for an exact cut-off"
            )
        return time.time() - span
    cutoff = parse_moment(before, before_name)
    assert cutoff is not None  # before is given here
    if cutoff > time.time():
        raise UserInputError(
            f"{before_name} {before} is in the future: it would delete every document, and "
            "ingest would store none until then"
        )
    return cutoff


def iso(ts: float) -> str:
    """A Unix time as ISO 8601 UTC, to the second."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _file_gone(key: str) -> bool:
    """Whether the file a progress record names is no longer on disk (a workbook's record is
    ``book.xlsx#Sheet``; a ``#`` may also be part of a file's name)."""
    return not Path(key).exists() and not Path(key.rpartition("#")[0] or key).exists()


def stale_progress(db: Any, cutoff: float) -> list[str]:
    """Progress records of files that are gone from disk and were last read before the
    cut-off: nothing can resume from them. A record of a file still there is kept, or the next
    `watch` would read the whole file again."""
    rows = db.query("SELECT path FROM finance_progress WHERE updated_at < ?", (iso_stamp(cutoff),))
    return [r["path"] for r in rows if _file_gone(r["path"])]


def iso_stamp(ts: float) -> str:
    """A Unix time written as :func:`storage.now_iso` writes ingest's stamps (comparable as
    text with ``updated_at`` and ``at``)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def plan_prune(db: Any, cutoff: float) -> PrunePlan:
    """What :func:`prune` at ``cutoff`` would delete; reads only (`--dry-run`)."""
    docs = db.query(
        "SELECT COUNT(*) AS n, MIN(ts) AS oldest FROM finance_documents WHERE ts < ?", (cutoff,)
    )[0]
    total = storage.count_documents(db)
    keys = db.query("SELECT COUNT(*) AS n FROM finance_keys WHERE ts < ?", (cutoff,))[0]["n"]
    issues = db.query(
        "SELECT COUNT(*) AS n FROM finance_issues WHERE at < ? OR doc_id IN "
        "(SELECT id FROM finance_documents WHERE ts < ?)",
        (iso_stamp(cutoff), cutoff),
    )[0]["n"]
    alerts = db.query("SELECT COUNT(*) AS n FROM finance_alerts WHERE window_start < ?", (cutoff,))[
        0
    ]["n"]
    size, free = file_sizes(db)
    return PrunePlan(
        cutoff=cutoff,
        documents=int(docs["n"]),
        kept_documents=total - int(docs["n"]),
        keys=int(keys),
        issues=int(issues),
        progress=stale_progress(db, cutoff),
        alerts_kept=int(alerts),
        oldest=docs["oldest"],
        file_bytes=size,
        free_bytes=free,
    )


def prune(
    db: Any,
    cutoff: float,
    *,
    batch: int = DEFAULT_BATCH,
    vacuum: bool = False,
    pause: float = 0.02,
    on_batch: Any = None,
) -> PruneReport:
    """Delete the documents older than ``cutoff`` (with their keys and issues), the issues
    recorded before it and the progress records nothing can resume from; keep every alert.

    One transaction per ``batch`` documents, ``pause`` seconds apart so that a waiting writer
    gets the lock between them. The cut-off is recorded first (ingest then stores nothing
    older). ``vacuum``: give the freed space back to the disk (:func:`reclaim`) afterwards.
    ``on_batch(deleted so far)`` is called after each committed batch."""
    started = time.perf_counter()
    plan = plan_prune(db, cutoff)
    report = PruneReport(plan=plan)
    storage.set_meta(db, storage.RETENTION_CUTOFF, cutoff)
    oldest_first = "SELECT id FROM finance_documents WHERE ts < ? ORDER BY ts LIMIT ?"
    while True:
        with db.transaction() as tx:
            # Issues about a document go with it; its keys by the foreign key's cascade.
            report.issues += tx.execute(
                f"DELETE FROM finance_issues WHERE doc_id IN ({oldest_first})", (cutoff, batch)
            ).rowcount
            deleted = tx.execute(
                f"DELETE FROM finance_documents WHERE id IN ({oldest_first})", (cutoff, batch)
            ).rowcount
        if deleted <= 0:
            break
        report.documents += deleted
        report.batches += 1
        if on_batch is not None:
            on_batch(report.documents)
        time.sleep(pause)
    stamp = iso_stamp(cutoff)
    while True:  # ingest's log of skipped rows and the like, by when it was written
        gone = db.execute(
            "DELETE FROM finance_issues WHERE id IN "
            "(SELECT id FROM finance_issues WHERE at < ? LIMIT ?)",
            (stamp, batch),
        ).rowcount
        report.issues += max(gone, 0)
        if gone <= 0:
            break
    with db.transaction() as tx:
        for path in plan.progress:
            report.progress += tx.execute(
                "DELETE FROM finance_progress WHERE path = ? AND updated_at < ?", (path, stamp)
            ).rowcount
    if vacuum:
        report.vacuum = reclaim(db)
    report.file_bytes, report.free_bytes = file_sizes(db)
    report.seconds = time.perf_counter() - started
    return report


def reclaim(db: Any, pages: int = VACUUM_PAGES) -> str:
    """Give the database's free pages back to the disk; returns how: ``incremental`` or
    ``full`` (:func:`tunesmith.store_space.reclaim`).

    Every finance database made before `finance prune` existed is not in incremental mode: its
    first ``--vacuum`` is one full ``VACUUM`` that switches it on, while a running
    `watch`/`ingest` waits (they retry a locked batch)."""
    return store_space.reclaim(db, pages, flag="--vacuum", rows="documents")
