"""Per (key, bucket) counts that follow a growing database: the dashboard's refresh.

Reading every key's bucket counts again took seconds at a million documents (the detector over
every topic and ticker, the chart's trends), and the dashboard did so whenever the document
count changed, which on a busy feed is every batch. A document never changes once stored
(storage.py), so the counts of a bucket change only by the documents added to it: this module
reads the whole history once, then only the documents stored since (by rowid, late ones
included, whatever their time) and adds them to their buckets. What it gives is what
:func:`~tunesmith_finance.trends.bucket_counts` reads, bucket for bucket, and the documents'
negative share (the detector's prior).

Larger buckets on the same clock are sums of smaller ones (a day of 24 wall-clock hours, also
on the 23- and 25-hour days the clocks change: buckets are cut on the wall clock), so counts
given a ``source`` of such smaller buckets add those up instead of reading the history again.

A prune (or anything else that removed documents) is seen by the count, or by the newest
document counted no longer being there: the history is read again.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from datetime import tzinfo
from typing import Any

from tunesmith_finance.trends import (
    bucket_counts,
    bucket_index,
    bucket_origin,
    is_utc,
    local_seconds,
    zone_name,
)

#: Documents read per statement while reading the whole history (by rowid ranges): a million
#: rows fetched at once held a few hundred MB of row objects.
CHUNK = 50_000
#: The kinds of key counted (``all`` is the document totals, :meth:`LiveCounts.prior_counts`).
KINDS = ("topic", "ticker")
#: Tries of the whole-history read (SQLite's grouping, 5 s at a million documents) when a batch
#: lands while it runs, before the history is read by rowid instead (20 s).
WHOLE_READS = 3
#: Rounds of an :meth:`LiveCounts.update` that finds documents still arriving as it reads.
UPDATE_ROUNDS = 5
#: Empty buckets the screen's arrays keep after the newest one, so that a stream's next hours
#: are written in place rather than the arrays built again.
SPARE_BUCKETS = 256
#: Keys screened at a time by :func:`screen_counts`.
SCREEN_KEYS = 256
#: The screen's p-value (scipy's incomplete beta function) may exceed the detector's ``p_value``
#: by this factor and still let the key through: the detector's exact sum differs from it in the
#: last digits, and the screen must never drop a key the detector would alert.
P_SLACK = 1.001


def divides(fine: float, coarse: float) -> bool:
    """Whether every bucket of ``coarse`` seconds is made of whole buckets of ``fine`` seconds
    on the same clock: the sizes divide evenly and their origins (:func:`bucket_origin`, a
    Monday for weeks) are whole fine buckets apart."""
    if coarse < fine or coarse % fine:
        return False
    return (bucket_origin(coarse) - bucket_origin(fine)) % fine == 0


class LiveCounts:
    """``(key, bucket index, count, negatives, score sum)`` per kind, for buckets of ``size``
    seconds cut on the wall clock of ``zone``, kept up to date by :meth:`update`.

    ``source``: gives the up-to-date counts of smaller buckets on the same clock whose size
    :func:`divides` ``size``; the whole history is then summed from them, not read.

    Score sums are added in Python, in the order documents were stored, so they may differ
    from SQLite's ``SUM`` in the last bits (an alert's mean score is rounded to 4 digits);
    counts and negatives are exact."""

    def __init__(
        self,
        db: Any,
        size: float,
        zone: tzinfo | None = None,
        source: Callable[[], LiveCounts] | None = None,
    ) -> None:
        self.db = db
        self.size = float(size)
        self.zone = zone
        self.source = source
        self._origin = bucket_origin(self.size)
        self._lock = threading.RLock()
        self._reset()
        self.rebuilds = 0

    def _reset(self) -> None:
        self.cells: dict[str, dict[str, dict[int, list[Any]]]] = {kind: {} for kind in KINDS}
        self.documents = 0
        self.negatives = 0
        self.seen = 0  # the highest document rowid counted
        self._seen_id: str | None = None  # the id of that document
        # The screen's arrays per kind, and the cells changed since they were written
        self._dense: dict[str, _Dense] = {}
        self._touched: dict[str, set[tuple[str, int]]] = {kind: set() for kind in KINDS}

    # -- reading ---------------------------------------------------------------------------------

    def update(self) -> int:
        """Count the documents stored since the last call (at the first, all of them); returns
        how many were added (all of them after the history was read again). Reads the whole
        history again when documents were removed."""
        with self._lock:
            before, rebuilds = self.documents, self.rebuilds
            rounds = 0
            while True:
                rounds += 1
                if self.seen and self._moved():
                    self._rebuild()
                if self.seen == 0:
                    self._read_history()
                self._read_new(*self._newest())
                # Counted apart: COUNT(*) and MAX(rowid) in one statement scan the documents
                # (0.3 s at a million) instead of counting the id index's pages (0.01 s).
                if self._count() == self.documents or rounds >= UPDATE_ROUNDS:
                    break  # (after that many rounds, the next update goes on)
                if self._newest()[0] == self.seen:
                    # Nothing arrived between the reads, so documents went (a prune) while
                    # others arrived: the held counts are no longer the database's.
                    self._rebuild()
                # Else a batch landed between the reads: the next round counts it.
            return self.documents if self.rebuilds != rebuilds else self.documents - before

    def _newest(self) -> tuple[int, str | None]:
        """The highest document rowid and its document's id: ``(0, None)`` with none."""
        rows = self.db.query(
            "SELECT rowid AS r, id FROM finance_documents ORDER BY rowid DESC LIMIT 1"
        )
        return (int(rows[0]["r"]), rows[0]["id"]) if rows else (0, None)

    def _count(self) -> int:
        return int(self.db.query("SELECT COUNT(*) AS n FROM finance_documents")[0]["n"])

    def _moved(self) -> bool:
        """Whether the newest document counted is gone or another has its rowid: removed, its
        rowid given to a later document (SQLite reuses the highest one), or renumbered by a
        VACUUM. Counts alone miss a prune of as many documents as arrive."""
        rows = self.db.query("SELECT id FROM finance_documents WHERE rowid = ?", (self.seen,))
        return not rows or rows[0]["id"] != self._seen_id

    def _read_history(self) -> None:
        """The whole history at once: summed from the source's smaller buckets, else read with
        SQLite's grouping; left to :meth:`_read_new` (by rowid, four times slower) only when
        batches kept landing during :data:`WHOLE_READS` reads."""
        if self.source is not None:
            self._sum_source(self.source())
            return
        for _try in range(WHOLE_READS):
            if self._read_whole():
                return

    def _read_whole(self) -> bool:
        """Read the whole history with SQLite's own grouping (:func:`bucket_counts`, seconds at
        a million documents; the rows one by one in Python took 20). Several statements, so
        they count as of the newest document before them only when nothing was stored or
        removed meanwhile; False (nothing kept) otherwise."""
        top, top_id = self._newest()
        total = self._count()
        if not top:
            return False
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
        self._reset()
        self.cells, self.documents, self.negatives = cells, total, int(row["neg"] or 0)
        self.seen, self._seen_id = top, top_id
        return True

    def _sum_source(self, source: LiveCounts) -> None:
        """Take the history from ``source`` (up to date), its buckets summed into this size's."""
        if zone_name(source.zone) != zone_name(self.zone) or not divides(source.size, self.size):
            raise ValueError(
                f"buckets of {source.size:g} s in {zone_name(source.zone)} do not add up to "
                f"buckets of {self.size:g} s in {zone_name(self.zone)}"
            )
        # Bucket h of the source starts at wall second origin_s + h * size_s, a whole number of
        # this size's buckets from this origin: its number here is exact integer arithmetic.
        ratio = round(self.size / source.size)
        shift = round((self._origin - source._origin) / source.size)
        with source._lock:
            cells: dict[str, dict[str, dict[int, list[Any]]]] = {kind: {} for kind in KINDS}
            for kind in KINDS:
                for key, per in source.cells[kind].items():
                    mine: dict[int, list[Any]] = {}
                    for h, (n, neg, score) in per.items():
                        cell = mine.get(b := (h - shift) // ratio)
                        if cell is None:
                            mine[b] = [n, neg, score]
                        else:
                            cell[0] += n
                            cell[1] += neg
                            cell[2] += score
                    cells[kind][key] = mine
            self._reset()
            self.cells, self.documents, self.negatives = cells, source.documents, source.negatives
            self.seen, self._seen_id = source.seen, source._seen_id

    def _rebuild(self) -> None:
        self._reset()
        self.rebuilds += 1

    def _read_new(self, top: int, top_id: str | None) -> None:
        """Add the documents stored after the last counted one, up to rowid ``top``."""
        if top <= self.seen:
            return
        while self.seen < top:
            upto = min(top, self.seen + CHUNK)
            self._add_range(self.seen, upto)
            self.seen = upto
        self._seen_id = top_id

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
            kind = row["kind"]
            if kind is None:
                continue
            b = self._bucket(row["ts"])
            cell = self.cells[kind].setdefault(row["key"], {}).setdefault(b, [0, 0, 0.0])
            cell[0] += 1
            cell[1] += neg
            cell[2] += row["score"]
            if kind in self._dense:  # only once the screen has arrays to keep up to date
                self._touched[kind].add((row["key"], b))

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

    def mark(self) -> tuple[int, int, int]:
        """What the held counts are as of: ``(rebuilds, newest rowid counted, documents)``; it
        changes whenever documents were added or removed (a prune of as many documents as
        arrived keeps the count, not this)."""
        with self._lock:
            return self.rebuilds, self.seen, self.documents

    def prior_counts(self) -> tuple[int, int]:
        """``(documents, negatives)`` of every stored document, as of the last update."""
        return self.documents, self.negatives

    def negative_share(self) -> float | None:
        """:func:`~tunesmith_finance.alerts.global_negative_share` as of the last update."""
        return self.negatives / self.documents if self.documents else None

    def could_alert(
        self, kind: str, detector: Any, quiet: dict[str, list[float]] | None = None
    ) -> set[str] | None:
        """The keys of ``kind`` in which ``detector`` (a
        :class:`~tunesmith_finance.detector.SurgeDetector` on this size's buckets) may find a
        new alert: a window with ``min_volume`` documents whose share is ``min_lift`` above its
        baseline with a binomial p-value under ``p_value`` (the detector's three tests, over
        every window at once in numpy), and which does not end within the cool-down of one of
        ``quiet``'s window ends (per key, the Unix window ends of the stored alerts, as
        :func:`~tunesmith_finance.alerts.stored_window_ends` gives them: the detector skips
        such windows without starting a cool-down). The detector finds nothing in the other
        keys, so only these need its own pass (3 s over 300 tickers' 2,000 hourly buckets,
        and 1 s over the hundred tail tickers that merely had the lift once). None (every key)
        for another detector. Generous by a hair (``1e-9`` on the lift, :data:`P_SLACK` on the
        p-value): the screen sums the baseline in another order than the detector."""
        if not screens(detector) or float(detector.bucket) != self.size:
            return None
        quiet_at = {
            key: [local_seconds(end, self.zone) - self._origin for end in values]
            for key, values in (quiet or {}).items()
        }
        with self._lock:  # the arrays are written in place by the next update
            dense = self._dense_of(kind, int(detector.window))
            if dense is None:
                return set()
            return screen(dense, detector, quiet_at, self.size)

    def _dense_of(self, kind: str, width: int) -> _Dense | None:
        """The screen's arrays of ``kind`` with ``width`` empty buckets before the first, the
        cells changed since written into them (built again when a key or a bucket falls
        outside them); None without keys. Called with the lock held."""
        per_key = self.cells[kind]
        if not per_key:
            return None
        dense = self._dense.get(kind)
        touched = self._touched[kind]
        if dense is not None and dense.width == width:
            if not all(dense.put(key, b, per_key[key][b]) for key, b in touched):
                dense = None
        else:
            dense = None
        touched.clear()
        if dense is None:
            dense = self._dense[kind] = _Dense(per_key, width)
        return dense


def screens(detector: Any) -> bool:
    """Whether :func:`screen` knows ``detector``'s tests (a
    :class:`~tunesmith_finance.detector.SurgeDetector`)."""
    needed = ("bucket", "window", "min_volume", "min_lift", "p_value", "cooldown")
    needed += ("half_life", "prior", "prior_weight")
    return all(hasattr(detector, name) for name in needed)


def screen_counts(
    counts: list[tuple[str, int, int, int, float]],
    detector: Any,
    quiet_at: dict[str, list[float]],
) -> set[str]:
    """:func:`screen` over :func:`~tunesmith_finance.trends.bucket_counts`' rows (``finance
    alerts``, which reads them once a run); ``quiet_at``: per key, the stored alerts' window
    ends in the detector's own seconds."""
    per_key: dict[str, dict[int, list[Any]]] = {}
    for key, b, n, k, total in counts:
        per_key.setdefault(key, {})[b] = [n, k, total]
    # A few hundred keys at a time: the screen's dozen arrays of every ticker by every hour
    # of 90 days (1,400 by 2,200) doubled a check's memory.
    keys = sorted(per_key)
    found: set[str] = set()
    for first in range(0, len(keys), SCREEN_KEYS):
        part = {key: per_key[key] for key in keys[first : first + SCREEN_KEYS]}
        found |= screen(_Dense(part, int(detector.window), 0), detector, quiet_at, detector.bucket)
    return found


def screen(dense: _Dense, detector: Any, quiet_at: dict[str, list[float]], size: float) -> set[str]:
    """The keys of ``dense`` with a window that passes ``detector``'s three tests (volume,
    lift, the binomial p-value; see :meth:`LiveCounts.could_alert`) and ends beyond the
    cool-down of every window end in ``quiet_at`` (the detector's own seconds)."""
    import numpy as np
    from scipy.special import betainc

    width = int(detector.window)
    decay = 0.5 ** (detector.bucket / detector.half_life)
    n, k = dense.n[:, : dense.used], dense.k[:, : dense.used]
    keys, low = dense.keys, dense.low
    # Window sums, each window ending at a bucket: cumulative sums, exact in integers.
    cn, ck = np.cumsum(n, axis=1), np.cumsum(k, axis=1)
    # The baseline before each window: the buckets that left it, faded by the half-life.
    base_n, base_k = _faded_sums(n[:, :-width], decay), _faded_sums(k[:, :-width], decay)
    win_n = cn[:, width:] - cn[:, :-width]
    win_k = ck[:, width:] - ck[:, :-width]
    prior_n = detector.prior_weight
    prior_k = detector.prior * prior_n
    rate = np.clip((base_k + prior_k) / (base_n + prior_n), 0.01, 0.99)
    with np.errstate(invalid="ignore", divide="ignore"):
        lift = win_k / win_n - rate
    rows, ends = np.nonzero((win_n >= detector.min_volume) & (lift >= detector.min_lift - 1e-9))
    wn, wk, wr = win_n[rows, ends], win_k[rows, ends], rate[rows, ends]
    # P(X >= k) for X ~ Binomial(n, rate) is the regularised incomplete beta I_rate(k, n-k+1)
    with np.errstate(invalid="ignore"):
        p = np.where(wk > 0, betainc(np.maximum(wk, 1), wn - wk + 1, wr), 1.0)
    passing = p < detector.p_value * P_SLACK
    rows, ends = rows[passing], ends[passing]
    # The detector's window ends in its own seconds (bucket index + 1, times the size), the
    # stored alerts' ends converted as detect_all converts them.
    reach = detector.cooldown - 1e-6
    found: set[str] = set()
    for row, end in zip(rows.tolist(), ends.tolist(), strict=True):
        key = keys[row]
        if key in found:
            continue
        window_end = (low + end + width + 1) * size
        if not any(abs(window_end - e) < reach for e in quiet_at.get(key, ())):
            found.add(key)
    return found


def _faded_sums(x: Any, decay: float) -> Any:
    """``out[:, t] = out[:, t - 1] * decay + x[:, t]`` along each row of ``x``, as the
    detector fades its baseline, in blocks of columns: within a block it is a cumulative sum of
    ``x * decay**-j`` times ``decay**j`` (a loop over 2,000 columns was a tenth of a check;
    scipy's ``lfilter`` took seconds to import). A block is as long as ``decay**-j`` stays far
    from overflowing."""
    import numpy as np

    out = np.empty(x.shape, dtype=float)
    if decay <= 0.0:  # a half-life far below the bucket: nothing is carried over
        out[:] = x
        return out
    block = int(min(256, max(1, 500 / max(-math.log2(decay), 1e-12))))
    steps = np.arange(block)
    fade, unfade = decay**steps, decay ** (-steps.astype(float))
    carry = np.zeros(x.shape[0])
    for first in range(0, x.shape[1], block):
        part = x[:, first : first + block]
        m = part.shape[1]
        sums = np.cumsum(part * unfade[:m], axis=1) * fade[:m]
        sums += carry[:, None] * (fade[:m] * decay)
        out[:, first : first + m] = sums
        carry = sums[:, -1]
    return out


class _Dense:
    """One kind's counts and negatives as integer arrays, a row per key and a column per bucket
    (``width`` empty columns first, :data:`SPARE_BUCKETS` spare ones last): the screen reads
    them at every check, and building them from the cells took a fifth of it."""

    def __init__(
        self, per_key: dict[str, dict[int, list[Any]]], width: int, spare: int = SPARE_BUCKETS
    ) -> None:
        import numpy as np

        self.width = width
        self.keys = sorted(per_key)
        self.row = {key: i for i, key in enumerate(self.keys)}
        first = min(min(cells) for cells in per_key.values())
        last = max(max(cells) for cells in per_key.values())
        self.low = first - width  # the bucket of column 0
        self.used = last - self.low + 1
        shape = (len(self.keys), self.used + spare)
        self.n = np.zeros(shape, dtype=np.int64)
        self.k = np.zeros(shape, dtype=np.int64)
        rows, cols, counts, negatives = [], [], [], []
        for key, cells in per_key.items():
            row = self.row[key]
            for b, cell in cells.items():
                rows.append(row)
                cols.append(b - self.low)
                counts.append(cell[0])
                negatives.append(cell[1])
        self.n[rows, cols] = counts
        self.k[rows, cols] = negatives

    def put(self, key: str, b: int, cell: list[Any]) -> bool:
        """Write one bucket's cell; False when its key or bucket has no place here."""
        row, col = self.row.get(key), b - self.low
        if row is None or not self.width <= col < self.n.shape[1]:
            return False
        self.n[row, col], self.k[row, col] = cell[0], cell[1]
        self.used = max(self.used, col + 1)
        return True
