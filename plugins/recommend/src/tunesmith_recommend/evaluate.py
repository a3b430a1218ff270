"""Full-ranking evaluation: every catalogue item is ranked for every request, seen items excluded.

Recall@k, NDCG@k (one relevant item, so IDCG is 1), MRR and catalogue coverage, overall and on
slices (cold items: targets with no training event; short histories), with bootstrap 95%
intervals over users. Ties are broken at random (seeded), so a model that gives many items the
same score, as ID-based models do for cold items, is scored as a random order among them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tunesmith_recommend.split import Requests

#: scores for a batch of requests: [len(batch), n_items]
ScoreFn = Callable[[Requests], np.ndarray]
#: [requests, items] entries ranked at a time: a batch of 256 requests over 200,000 items is
#: 51M float64 scores, and ranking held them several times over (their masked copy, its
#: negation, the top-k partition's int64 indices): 1.6 GB on top of the model's own matrix.
#: The model still scores the whole batch at once: a float32 matrix product of 20 rows differs
#: in the last bits from the same rows in a product of 256 (OpenBLAS), which moved a rank.
SCORE_ENTRIES = 1 << 22


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


def _item_only_row(scores: np.ndarray) -> np.ndarray | None:
    """The one row of a batch's scores when every request got the same finite scores (a
    broadcast row, as popularity's are: row stride 0), else None."""
    if scores.ndim != 2 or len(scores) == 0 or scores.strides[0] != 0:
        return None
    row = np.asarray(scores[0], dtype=np.float64)
    return row if np.isfinite(row).all() else None


def _counts_item_only(row: np.ndarray, batch: Requests) -> tuple[np.ndarray, np.ndarray]:
    """(items scored above the target, other items tied with it) per request, seen items
    excluded, for scores shared by every request: the same counts as the [batch, items]
    comparison in :func:`rank_requests`, from one sorted row (a batch of 256 requests over
    200,000 items compared 51M scores per batch)."""
    n = len(row)
    ordered = np.sort(row)
    target = row[batch.targets]
    above = n - np.searchsorted(ordered, target, side="right")
    tied = np.searchsorted(ordered, target, side="right") - np.searchsorted(
        ordered, target, side="left"
    )
    seen = batch.seen()
    owners = np.repeat(np.arange(len(batch)), [len(h) for h in seen])
    if len(owners):
        # each seen item once per request, and never the target (it competes as itself)
        pairs = np.unique(owners * np.int64(n) + np.concatenate(seen).astype(np.int64))
        owners, items = pairs // n, pairs % n
        keep = items != batch.targets[owners]
        owners, values = owners[keep], row[items[keep]]
        above = above - np.bincount(
            owners, weights=values > target[owners], minlength=len(batch)
        ).astype(np.int64)
        tied = tied - np.bincount(
            owners, weights=values == target[owners], minlength=len(batch)
        ).astype(np.int64)
    return above, tied - 1


def _compare(
    raw: np.ndarray, batch: Requests, n_items: int, k: int, coverage: bool, top: set[int]
) -> tuple[np.ndarray, np.ndarray]:
    """(items scored above the target, other items tied with it) per request of ``batch``, seen
    items excluded; with ``coverage`` the batch's top-k items are added to ``top``."""
    scores = np.array(raw, dtype=np.float64, copy=True)
    rows = np.arange(len(batch))
    target = scores[rows, batch.targets].copy()
    mask_seen(scores, batch)
    # A re-watched item may be a target; it competes with its own score.
    scores[rows, batch.targets] = target
    greater = (scores > target[:, None]).sum(1)
    ties = (scores == target[:, None]).sum(1) - 1
    if coverage:
        shown = min(k, n_items)
        listed = np.argpartition(-scores, shown - 1, axis=1)[:, :shown]
        # A user who has seen all but a few items gets fewer than k: the seen ones (-inf) fill
        # the rest of the partition but are never recommended, so they are not coverage.
        top.update(listed[np.take_along_axis(scores, listed, axis=1) > -np.inf].tolist())
    return greater, ties


def rank_requests(
    score: ScoreFn,
    requests: Requests,
    n_items: int,
    *,
    k: int = 10,
    batch_size: int = 256,
    seed: int = 0,
    coverage: bool = True,
) -> Ranked:
    """Score requests in batches and find where each held-out item lands.

    Each batch's scores are compared :data:`SCORE_ENTRIES` at a time.

    ``coverage=False`` skips the top-k lists (``top_items`` is empty) for callers that need
    only the ranks (choosing a setting on validation); the ranks are the same either way, and
    scores shared by every request (popularity) are then ranked from one sorted row.
    """
    rng = np.random.default_rng(seed)
    ranks = np.empty(len(requests), dtype=np.int64)
    top: set[int] = set()
    step = max(1, SCORE_ENTRIES // max(n_items, 1))
    positions = np.arange(len(requests))
    for start in range(0, len(requests), batch_size):
        batch = requests.subset((positions >= start) & (positions < start + batch_size))
        raw = np.asarray(score(batch))
        row = None if coverage else _item_only_row(raw)
        if row is not None:
            greater, ties = _counts_item_only(row, batch)
        else:
            greater = np.empty(len(batch), dtype=np.int64)
            ties = np.empty(len(batch), dtype=np.int64)
            inside = np.arange(len(batch))
            # a slice of rows at a time; the ties are still broken by one draw for the batch
            for first in range(0, len(batch), step):
                rows = slice(first, first + step)
                part = batch.subset((inside >= first) & (inside < first + step))
                greater[rows], ties[rows] = _compare(raw[rows], part, n_items, k, coverage, top)
        del raw
        ranks[start : start + len(batch)] = greater + rng.integers(0, ties + 1)
    return Ranked(ranks=ranks, top_items=np.asarray(sorted(top)), n_items=n_items, k=k)


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
    if len(values) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for start in range(0, n_boot, 100):  # chunks keep memory small on large request sets
        idx = rng.integers(0, len(values), size=(min(100, n_boot - start), len(values)))
        means[start : start + len(idx)] = values[idx].mean(1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def summarise(
    ranked: Ranked, slices: dict[str, np.ndarray] | None = None, *, n_boot: int = 1000
) -> dict[str, dict[str, float]]:
    """Mean and 95% interval of each metric, overall and per slice, plus coverage and counts."""
    metrics = per_request_metrics(ranked.ranks, ranked.k)
    groups = {"all": np.ones(len(ranked.ranks), dtype=bool), **(slices or {})}
    out: dict[str, dict[str, float]] = {}
    for group, mask in groups.items():
        row: dict[str, float] = {"n": int(mask.sum())}
        for name, values in metrics.items():
            chosen = values[mask]
            row[name] = float(chosen.mean()) if len(chosen) else float("nan")
            row[f"{name}_ci"] = bootstrap_interval(chosen, n_boot=n_boot)  # type: ignore[assignment]
        out[group] = row
    out["all"]["coverage"] = len(ranked.top_items) / ranked.n_items
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
