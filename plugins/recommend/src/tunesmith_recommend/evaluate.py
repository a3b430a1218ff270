"""Full-ranking evaluation: every catalogue item is ranked for every request, seen items excluded.

Recall@k, NDCG@k (one relevant item, so IDCG is 1), MRR and catalogue coverage, overall and on
slices (cold items: targets with no training event; short histories), with bootstrap 95%
intervals over users. Ties are broken at random (seeded), so a model that gives many items the
same score, as ID-based models do for cold items, is scored as a random order among them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tunesmith_recommend.split import Requests

#: scores for a batch of requests: [len(batch), n_items]
ScoreFn = Callable[[Requests], np.ndarray]
#: [requests, items] entries compared at a time: the comparisons' boolean buffer (reused from
#: slice to slice) is this size. The model still scores the whole batch at once: a float32
#: matrix product of 20 rows differs in the last bits from the same rows in a product of 256
#: (OpenBLAS), which moved a rank.
SCORE_ENTRIES = 1 << 22
#: items per block when finding each request's top k: the k-th best score is bounded by the
#: blocks' maxima, so only the few blocks that can hold the top k are read again. A partition
#: of every row (numpy's argpartition) was most of the ranking's time: 2.6 ms a request at
#: 200,000 items, where counting the items above the target takes 0.4 ms.
TOP_BLOCK = 256


@dataclass
class Ranked:
    """Per-request rank of the held-out item (0 = first) and the union of top-k lists."""

    ranks: np.ndarray
    top_items: np.ndarray  # distinct items that appeared in any top-k list
    n_items: int
    k: int


def mask_seen(scores: np.ndarray, batch: Requests) -> None:
    """Set the scores of each request's seen items (its history, and the items rated below
    --min-rating before it, which serving never recommends either) to -inf, in place."""
    seen = batch.seen()
    rows = np.repeat(np.arange(len(batch)), [len(h) for h in seen])
    if len(rows):
        scores[rows, np.concatenate(seen)] = -np.inf


def seen_pairs(batch: Requests, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Each request's distinct seen items other than its own target, as (request, item) arrays
    sorted by request then item: what the ranking leaves out without masking a dense
    [requests, items] copy (a re-watched target competes as itself)."""
    seen = batch.seen()
    owners = np.repeat(np.arange(len(batch), dtype=np.int64), [len(h) for h in seen])
    if not len(owners):
        return owners, owners.copy()
    n = np.int64(max(n_items, 1))
    pairs = np.unique(owners * n + np.concatenate(seen).astype(np.int64))
    owners, items = pairs // n, pairs % n
    keep = items != batch.targets[owners]
    return owners[keep], items[keep]


def _item_only_row(scores: np.ndarray) -> np.ndarray | None:
    """The one row of a batch's scores when every request got the same finite scores (a
    broadcast row, as popularity's are: row stride 0), else None."""
    if scores.ndim != 2 or len(scores) == 0 or scores.strides[0] != 0:
        return None
    row = np.asarray(scores[0], dtype=np.float64)
    return row if np.isfinite(row).all() else None


def _counts_item_only(row: np.ndarray, batch: Requests) -> tuple[np.ndarray, np.ndarray]:
    """(items scored above the target, other items tied with it) per request, seen items
    excluded, for scores shared by every request: the same counts as :func:`_compare`'s, from
    one sorted row (a batch of 256 requests over 200,000 items compared 51M scores per batch)."""
    n = len(row)
    ordered = np.sort(row)
    target = row[batch.targets]
    above = n - np.searchsorted(ordered, target, side="right")
    tied = np.searchsorted(ordered, target, side="right") - np.searchsorted(
        ordered, target, side="left"
    )
    owners, items = seen_pairs(batch, n)
    if len(owners):
        values = row[items]
        above = above - np.bincount(
            owners, weights=values > target[owners], minlength=len(batch)
        ).astype(np.int64)
        tied = tied - np.bincount(
            owners, weights=values == target[owners], minlength=len(batch)
        ).astype(np.int64)
    return above, tied - 1


def _comparable(raw: np.ndarray) -> np.ndarray:
    """``raw`` itself when its comparisons are those of its float64 copy (float16, 32 and 64
    convert exactly), else that copy."""
    if raw.dtype in (np.float64, np.float32, np.float16):
        return raw
    return np.asarray(raw, dtype=np.float64)


def above_and_tied(
    scores: np.ndarray, target: np.ndarray, buffer: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``scores``, how many items are above its ``target`` and how many equal it
    (the target itself included); ``buffer``: bool of ``scores``' shape, holds the comparisons."""
    above = np.empty(len(scores), dtype=np.int64)
    tied = np.empty(len(scores), dtype=np.int64)
    # a row at a time: count_nonzero over one row is several times faster than with axis=1
    np.greater(scores, target[:, None], out=buffer)
    for row, line in enumerate(buffer):
        above[row] = np.count_nonzero(line)
    np.equal(scores, target[:, None], out=buffer)
    for row, line in enumerate(buffer):
        tied[row] = np.count_nonzero(line)
    return above, tied


def _compare(
    scores: np.ndarray,
    batch: Requests,
    n_items: int,
    k: int,
    coverage: bool,
    top: set[int],
    buffer: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(items scored above the target, other items tied with it) per request of ``batch``, seen
    items excluded; with ``coverage`` the batch's top-k items are added to ``top``.

    Every item is compared as scored and each seen item's comparison is then taken back, which
    counts what the comparison of a masked float64 copy counted (a seen item was -inf there)
    without making that copy; ``buffer`` ([at least len(batch), n_items] bool) holds the
    comparisons.
    """
    scores = _comparable(scores)
    rows = np.arange(len(batch))
    target = scores[rows, batch.targets]
    greater, ties = above_and_tied(scores, target, buffer[: len(batch)])
    ties -= 1  # the target itself
    owners, items = seen_pairs(batch, n_items)
    if len(owners):
        values, against = scores[owners, items], target[owners]
        greater -= np.bincount(owners, weights=values > against, minlength=len(batch)).astype(
            np.int64
        )
        # as -inf a seen item tied only with a target scored -inf
        taken = (values == against).astype(np.int64) - (against == -np.inf)
        ties -= np.bincount(owners, weights=taken, minlength=len(batch)).astype(np.int64)
    if coverage:
        _add_top(scores, batch, owners, items, min(k, n_items), top)
    return greater, ties


def _block_maxima(scores: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Each row's maximum per block of items (NaN when the block holds one), [rows, blocks];
    scores shared by every row (stride 0) are reduced once."""
    if len(scores) and scores.strides[0] == 0:
        one = np.maximum.reduceat(scores[0], starts)
        return np.broadcast_to(one, (len(scores), len(starts)))
    return np.maximum.reduceat(scores, starts, axis=1)


def _add_top(
    scores: np.ndarray,
    batch: Requests,
    owners: np.ndarray,
    items: np.ndarray,
    shown: int,
    top: set[int],
) -> None:
    """Add each request's ``shown`` best unseen items to ``top``: the items the partition of a
    masked copy (seen items -inf, the target its own score) lists, without masking a copy or
    partitioning every row.

    A request's (shown + distinct seen)-th best block maximum is a score that at least
    ``shown`` unseen items reach, so its top items are among those blocks' items at or above
    it. When more items tie at its ``shown``-th best score than the list has room for, which of
    them are listed is the partition's own choice, so that request (and one with a NaN, or more
    seen items than blocks) is partitioned as before.
    """
    n_rows, n_items = scores.shape
    block = max(1, min(TOP_BLOCK, n_items // 512))
    starts = np.arange(0, n_items, block)
    maxima = _block_maxima(scores, starts)
    need = shown + np.bincount(owners, minlength=n_rows)
    ordered = np.sort(maxima, axis=1)  # NaN last
    fine = (need <= len(starts)) & ~np.isnan(ordered[:, -1])
    threshold = np.full(n_rows, np.inf)
    picked = np.flatnonzero(fine)
    threshold[picked] = ordered[picked, len(starts) - need[picked]]
    fine &= threshold > -np.inf
    threshold[~fine] = np.inf
    # the blocks that can hold a request's top items, and their items at or above its bound
    reaching_blocks = fine[:, None] & (maxima >= threshold[:, None])
    # many blocks tied at the bound (item-kNN's zeros past a short history's neighbours) would
    # read the whole row again: such a request is partitioned as before
    fine &= reaching_blocks.sum(1) <= 4 * need
    block_rows, block_ids = np.nonzero(fine[:, None] & reaching_blocks)
    columns = starts[block_ids][:, None] + np.arange(block)
    inside = columns < n_items
    columns = np.minimum(columns, n_items - 1)
    values = scores[block_rows[:, None], columns]
    hit = inside & (values >= threshold[block_rows][:, None])
    cand_rows = np.broadcast_to(block_rows[:, None], hit.shape)[hit]
    cand_items, cand_values = columns[hit], values[hit]
    if len(owners):
        unseen = ~np.isin(cand_rows * np.int64(n_items) + cand_items, owners * n_items + items)
        cand_rows, cand_items, cand_values = (
            cand_rows[unseen],
            cand_items[unseen],
            cand_values[unseen],
        )
    # each request's shown-th best candidate; its top is unique when no other ties with it
    order = np.lexsort((-cand_values, cand_rows))
    counts = np.bincount(cand_rows, minlength=n_rows)
    firsts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    fine &= counts >= shown
    last = np.full(n_rows, np.inf)
    last[fine] = cand_values[order[firsts[fine] + shown - 1]]
    reaching = cand_values >= last[cand_rows]
    fine &= np.bincount(cand_rows, weights=reaching, minlength=n_rows) == shown
    top.update(cand_items[reaching & fine[cand_rows]].tolist())
    for row in np.flatnonzero(~fine):
        mine = items[owners == row]
        line = np.array(scores[row], dtype=np.float64)
        target = line[batch.targets[row]]
        line[mine] = -np.inf
        line[batch.targets[row]] = target
        listed = np.argpartition(-line, shown - 1)[:shown]
        top.update(listed[line[listed] > -np.inf].tolist())


def rank_requests(
    score: ScoreFn,
    requests: Requests,
    n_items: int,
    *,
    k: int = 10,
    batch_size: int = 256,
    seed: int = 0,
    coverage: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Ranked:
    """Score requests in batches and find where each held-out item lands.

    Each batch's scores are compared :data:`SCORE_ENTRIES` at a time, in place: seen items are
    left out by taking their comparisons back, not by masking a copy.

    ``coverage=False`` skips the top-k lists (``top_items`` is empty) for callers that need
    only the ranks (choosing a setting on validation); the ranks are the same either way.
    Scores shared by every request (popularity) are ranked from one sorted row.
    ``progress`` is called after each batch with the number of requests ranked so far.
    """
    above = np.empty(len(requests), dtype=np.int64)
    tied = np.empty(len(requests), dtype=np.int64)
    top: set[int] = set()
    step = max(1, SCORE_ENTRIES // max(n_items, 1))
    buffer = np.empty((min(step, batch_size, max(len(requests), 1)), n_items), dtype=bool)
    positions = np.arange(len(requests))
    for start in range(0, len(requests), batch_size):
        batch = requests.subset((positions >= start) & (positions < start + batch_size))
        raw = np.asarray(score(batch))
        row = _item_only_row(raw)
        greater = np.empty(len(batch), dtype=np.int64)
        ties = np.empty(len(batch), dtype=np.int64)
        if row is not None:
            greater[:], ties[:] = _counts_item_only(row, batch)
        inside = np.arange(len(batch))
        if row is None or coverage:
            # a slice of rows at a time; the ties are still broken by one draw for the batch
            for first in range(0, len(batch), step):
                rows = slice(first, first + step)
                part = batch.subset((inside >= first) & (inside < first + step))
                if row is None:
                    greater[rows], ties[rows] = _compare(
                        raw[rows], part, n_items, k, coverage, top, buffer
                    )
                else:
                    owners, items = seen_pairs(part, n_items)
                    _add_top(raw[rows], part, owners, items, min(k, n_items), top)
        del raw
        above[start : start + len(batch)], tied[start : start + len(batch)] = greater, ties
        if progress is not None:
            progress(start + len(batch))
    ranks = break_ties(above, tied, seed=seed, batch_size=batch_size)
    return Ranked(ranks=ranks, top_items=np.asarray(sorted(top)), n_items=n_items, k=k)


def break_ties(
    greater: np.ndarray, ties: np.ndarray, *, seed: int = 0, batch_size: int = 256
) -> np.ndarray:
    """Ranks from each request's count of items scored above its held-out item (``greater``)
    and of other items tied with it (``ties``): the held-out item lands at a uniformly drawn
    place among its ties, as :func:`rank_requests` places it (one draw per ``batch_size``
    requests from a generator seeded with ``seed``), so a caller that counts them itself gets
    the same ranks."""
    # one draw per batch, as rank_requests made them: numpy does not promise that one draw
    # for all gives the same numbers as its parts (it does today, for bounds below 2**32)
    rng = np.random.default_rng(seed)
    ranks = np.empty(len(greater), dtype=np.int64)
    for start in range(0, len(greater), max(1, batch_size)):
        part = slice(start, start + max(1, batch_size))
        ranks[part] = greater[part] + rng.integers(0, ties[part] + 1)
    return ranks


def per_request_metrics(ranks: np.ndarray, k: int = 10) -> dict[str, np.ndarray]:
    """Recall@k, NDCG@k and reciprocal rank of each request."""
    inside = ranks < k
    return {
        f"recall{k}": inside.astype(np.float64),
        f"ndcg{k}": np.where(inside, 1.0 / np.log2(ranks + 2.0), 0.0),
        "mrr": 1.0 / (ranks + 1.0),
    }


def bootstrap_interval(
    values: np.ndarray, *, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """A percentile 95% interval of the mean, resampling requests with replacement."""
    return bootstrap_intervals([values], n_boot=n_boot, seed=seed)[0]


def bootstrap_intervals(
    values: Sequence[np.ndarray], *, n_boot: int = 1000, seed: int = 0
) -> list[tuple[float, float]]:
    """:func:`bootstrap_interval` of each of ``values`` (arrays of one length), the same
    intervals from one draw of the resamples: drawing them was half of each interval's time
    (0.4 s at 94,000 requests), and an evaluation asks for 21 per slice (seven models x three
    metrics), all of one length and seed."""
    if not len(values) or len(values[0]) == 0:
        return [(float("nan"), float("nan"))] * len(values)
    size = len(values[0])
    rng = np.random.default_rng(seed)
    means = np.empty((len(values), n_boot))
    for start in range(0, n_boot, 100):  # chunks keep memory small on large request sets
        idx = rng.integers(0, size, size=(min(100, n_boot - start), size))
        for row, each in enumerate(values):
            means[row, start : start + len(idx)] = each[idx].mean(1)
    intervals = []
    for row in means:
        low, high = np.percentile(row, [2.5, 97.5])
        intervals.append((float(low), float(high)))
    return intervals


def summarise(
    ranked: Ranked, slices: dict[str, np.ndarray] | None = None, *, n_boot: int = 1000
) -> dict[str, dict[str, float]]:
    """Mean and 95% interval of each metric, overall and per slice, plus coverage and counts."""
    return summarise_all({"": ranked}, slices, n_boot=n_boot)[""]


def summarise_all(
    rankings: dict[str, Ranked],
    slices: dict[str, np.ndarray] | None = None,
    *,
    n_boot: int = 1000,
) -> dict[str, dict[str, dict[str, float]]]:
    """:func:`summarise` of each model's ranking of the same requests, each slice's bootstrap
    resamples drawn once for every model and metric (the same intervals)."""
    metrics = {name: per_request_metrics(r.ranks, r.k) for name, r in rankings.items()}
    size = len(next(iter(rankings.values())).ranks) if rankings else 0
    groups = {"all": np.ones(size, dtype=bool), **(slices or {})}
    out: dict[str, dict[str, dict[str, float]]] = {name: {} for name in rankings}
    for group, mask in groups.items():
        chosen = {(m, name): values[mask] for m in metrics for name, values in metrics[m].items()}
        found = bootstrap_intervals(list(chosen.values()), n_boot=n_boot)
        intervals = dict(zip(chosen, found, strict=True))
        for model in rankings:
            row: dict[str, float] = {"n": int(mask.sum())}
            for name in metrics[model]:
                values = chosen[model, name]
                row[name] = float(values.mean()) if len(values) else float("nan")
                row[f"{name}_ci"] = intervals[model, name]  # type: ignore[assignment]
            out[model][group] = row
    for model, ranked in rankings.items():
        out[model]["all"]["coverage"] = len(ranked.top_items) / ranked.n_items
    return out


def paired_ratio_interval(
    a: np.ndarray, b: np.ndarray, *, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% interval of mean(a) / mean(b) over the same resampled requests (paired bootstrap)."""
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(n_boot // 100):
        idx = rng.integers(0, len(a), size=(100, len(a)))
        ratios.append(a[idx].mean(1) / np.maximum(b[idx].mean(1), 1e-12))
    low, high = np.percentile(np.concatenate(ratios), [2.5, 97.5])
    return float(low), float(high)


def standard_slices(requests: Requests, train_counts: np.ndarray) -> dict[str, np.ndarray]:
    """Cold items (the held-out item has no training event) and users with at most 3 events."""
    lengths = np.asarray([len(h) for h in requests.histories])
    return {
        "cold_items": train_counts[requests.targets] == 0,
        # history + the held-out event = the events this user had when asked
        "short_users": lengths + 1 <= 3,
    }
