"""Per (key, bucket) counts that follow a growing database: the dashboard's refresh.

Reading every key's bucket counts again took seconds at a million documents (the detector over
every topic and ticker, the chart's trends), and the dashboard did so whenever the document
count changed, which on a busy feed is every batch. A document never changes once stored
(storage.py), so the counts of a bucket change only by the documents added to it: this module
reads the whole history once, then only the documents stored since (by rowid, late ones
included, whatever their time) and adds them to their buckets. What it gives is what
:func:`~tunesmith_finance.trends.bucket_counts` reads, bucket for bucket, and the documents'
negative share (the detector's prior).

A prune (or anything else that removed documents) is seen by the count: the counts held plus
the new ones no longer add up to the documents stored, and the history is read again.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from datetime import tzinfo
from typing import Any

from tunesmith_finance.trends import bucket_counts, bucket_index, bucket_origin, is_utc

#: Documents read per statement while reading the whole history (by rowid ranges): a million
#: rows fetched at once held a few hundred MB of row objects.
CHUNK = 50_000
#: The kinds of key counted (``all`` is the document totals, :meth:`LiveCounts.prior_counts`).
KINDS = ("topic", "ticker")


class LiveCounts:
    """``(key, bucket index, count, negatives, score sum)`` per kind, for buckets of ``size``
    seconds cut on the wall clock of ``zone``, kept up to date by :meth:`update`.

    Score sums are added in Python, in the order documents were stored, so they may differ
    from SQLite's ``SUM`` in the last bits (an alert's mean score is rounded to 4 digits);
    counts and negatives are exact."""

    def __init__(self, db: Any, size: float, zone: tzinfo | None = None) -> None:
        self.db = db
        self.size = float(size)
        self.zone = zone
        self._origin = bucket_origin(self.size)
        self._lock = threading.RLock()
        self._reset()

    def _reset(self) -> None:
        self.cells: dict[str, dict[str, dict[int, list[Any]]]] = {kind: {} for kind in KINDS}
        self.documents = 0
        self.negatives = 0
        self.seen = 0  # the highest document rowid counted
        self.rebuilds = 0

    # -- reading ---------------------------------------------------------------------------------

    def update(self) -> int:
        """Count the documents stored since the last call (at the first, all of them); returns
        how many were added. Reads the whole history again when documents were removed."""
        with self._lock:
            mark = self.db.query("SELECT MAX(rowid) AS top, COUNT(*) AS n FROM finance_documents")[
                0
            ]
            top, total = int(mark["top"] or 0), int(mark["n"])
            if total < self.documents or top < self.seen:
                self._rebuild()
                return self.update()
            before = self.documents
            if self.seen == 0 and top and self._read_whole(top, total):
                return self.documents
            while self.seen < top:
                upto = min(top, self.seen + CHUNK)
                self._add_range(self.seen, upto)
                self.seen = upto
            if self.documents != total:
                # Documents went (a prune) while others arrived, or rowids were renumbered
                # (VACUUM): the held counts are no longer the database's.
                self._rebuild()
                return self.update()
            return self.documents - before

    def _read_whole(self, top: int, total: int) -> bool:
        """Read the whole history with SQLite's own grouping (:func:`bucket_counts`, seconds at
        a million documents; the rows one by one in Python took 20). Several statements, so
        they count as of ``(top, total)`` only when nothing was stored or removed meanwhile;
        False (nothing kept) otherwise, and the documents are read by rowid instead."""
        cells: dict[str, dict[str, dict[int, list[Any]]]] = {kind: {} for kind in KINDS}
        for kind in KINDS:
            for key, b, n, neg, score in bucket_counts(
                self.db, by=kind, bucket=self.size, zone=self.zone
            ):
                cells[kind].setdefault(key, {})[b] = [n, neg, score]
        row = self.db.query(
            "SELECT MAX(rowid) AS top, COUNT(*) AS n, SUM(label = 'negative') AS neg "
            "FROM finance_documents"
        )[0]
        if (int(row["top"] or 0), int(row["n"])) != (top, total):
            return False
        self.cells, self.documents, self.negatives = cells, total, int(row["neg"] or 0)
        self.seen = top
        return True

    def _rebuild(self) -> None:
        rebuilds = self.rebuilds + 1
        self._reset()
        self.rebuilds = rebuilds

    def _add_range(self, after: int, upto: int) -> None:
        """Add the documents whose rowid is in ``(after, upto]``, with their keys: one statement,
        so a document and its keys (stored in one transaction) are read together."""
        rows = self.db.query(
            "SELECT d.rowid AS r, d.ts AS ts, d.label = 'negative' AS neg, d.score AS score, "
            "k.kind AS kind, k.key AS key FROM finance_documents d "
            "LEFT JOIN finance_keys k ON k.doc_id = d.id "
            "WHERE d.rowid > ? AND d.rowid <= ? ORDER BY d.rowid",
            (after, upto),
        )
        last = None
        for row in rows:
            neg = int(row["neg"])
            if row["r"] != last:
                last = row["r"]
                self.documents += 1
                self.negatives += neg
            if row["kind"] is None:
                continue
            cell = (
                self.cells[row["kind"]]
                .setdefault(row["key"], {})
                .setdefault(self._bucket(row["ts"]), [0, 0, 0.0])
            )
            cell[0] += 1
            cell[1] += neg
            cell[2] += row["score"]

    def _bucket(self, ts: float) -> int:
        if is_utc(self.zone):
            # bucket_index's arithmetic, as trends' SQL does it, without its zone lookup
            return math.floor((ts - self._origin) / self.size)
        return bucket_index(ts, self.size, self.zone)

    # -- what it gives ---------------------------------------------------------------------------

    def rows(
        self, kind: str, keys: set[str] | None = None
    ) -> Iterator[tuple[str, int, int, int, float]]:
        """``bucket_counts(db, by=kind, bucket=size, zone=zone)``'s rows (ordered by key and
        bucket) as of the last :meth:`update`; ``keys``: only those keys."""
        with self._lock:
            per_key = self.cells[kind]
            chosen = sorted(per_key if keys is None else keys & per_key.keys())
            out = [
                (key, b, cell[0], cell[1], cell[2])
                for key in chosen
                for b, cell in sorted(per_key[key].items())
            ]
        return iter(out)

    def prior_counts(self) -> tuple[int, int]:
        """``(documents, negatives)`` of every stored document, as of the last update."""
        return self.documents, self.negatives

    def negative_share(self) -> float | None:
        """:func:`~tunesmith_finance.alerts.global_negative_share` as of the last update."""
        return self.negatives / self.documents if self.documents else None

    def could_alert(self, kind: str, detector: Any) -> set[str] | None:
        """The keys of ``kind`` in which ``detector`` (a
        :class:`~tunesmith_finance.detector.SurgeDetector`) may find a window: one with
        ``min_volume`` documents whose share is ``min_lift`` above its baseline, the first two
        of its tests, over every window at once in numpy. A key without such a window has no
        alert (the detector alerts only in such windows), so only the others need the
        detector's own pass, which took 3 s over 300 tickers' 2,000 hourly buckets. None
        (every key) for another detector. Generous by a hair (``1e-9``): the baseline is summed
        here in another order than the detector sums it."""
        import numpy as np

        needed = ("window", "min_volume", "min_lift", "half_life", "prior", "prior_weight")
        if not all(hasattr(detector, name) for name in needed):
            return None
        with self._lock:
            per_key = self.cells[kind]
            keys = sorted(per_key)
            if not keys:
                return set()
            low = min(min(b) for b in per_key.values())
            high = max(max(b) for b in per_key.values())
            width = detector.window
            n = np.zeros((len(keys), high - low + 1 + width), dtype=np.int64)
            k = np.zeros_like(n)
            for row, key in enumerate(keys):
                for b, cell in per_key[key].items():
                    n[row, b - low + width] = cell[0]
                    k[row, b - low + width] = cell[1]
        # Window sums, each window ending at a bucket: cumulative sums, exact in integers.
        cn, ck = np.cumsum(n, axis=1), np.cumsum(k, axis=1)
        win_n = cn[:, width:] - cn[:, :-width]
        win_k = ck[:, width:] - ck[:, :-width]
        # The baseline before each window: the buckets that left it, faded by the half-life.
        decay = 0.5 ** (detector.bucket / detector.half_life)
        leaving_n, leaving_k = n[:, :-width].astype(float), k[:, :-width].astype(float)
        base_n, base_k = np.zeros_like(leaving_n), np.zeros_like(leaving_k)
        run_n, run_k = np.zeros(len(keys)), np.zeros(len(keys))
        for end in range(leaving_n.shape[1]):
            run_n = run_n * decay + leaving_n[:, end]
            run_k = run_k * decay + leaving_k[:, end]
            base_n[:, end], base_k[:, end] = run_n, run_k
        prior_n = detector.prior_weight
        prior_k = detector.prior * prior_n
        rate = np.clip((base_k + prior_k) / (base_n + prior_n), 0.01, 0.99)
        with np.errstate(invalid="ignore", divide="ignore"):
            lift = win_k / win_n - rate
        open_ = (win_n >= detector.min_volume) & (lift >= detector.min_lift - 1e-9)
        return {keys[row] for row in np.flatnonzero(open_.any(axis=1))}
