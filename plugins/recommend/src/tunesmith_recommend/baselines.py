"""Baselines, each fitted on the training events and scoring the whole catalogue per request.

ID-based: popularity, recent popularity (exponential time decay, half-life chosen on validation),
item-kNN co-occurrence (cosine between items' user sets), implicit ALS. Text-based: cosine between
an item's pretrained embedding and the mean embedding of the user's history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tunesmith_recommend.evaluate import per_request_metrics, rank_requests
from tunesmith_recommend.split import Requests, Split

DAY = 86400.0


def item_counts(split: Split) -> np.ndarray:
    """Training events per item."""
    return np.bincount(split.fit_items, minlength=split.n_items).astype(np.float64)


def decayed_counts(split: Split, half_life: float) -> np.ndarray:
    """Training events per item, each weighted by 0.5 ** (age / half_life) at the last event."""
    weights = 0.5 ** ((split.end_time - split.fit_times) / half_life)
    return np.bincount(split.fit_items, weights=weights, minlength=split.n_items)


def history_matrix(histories: Sequence[np.ndarray], n_items: int) -> Any:
    """A sparse [requests, items] matrix with a 1 for every item in each history."""
    from scipy.sparse import csr_matrix

    lengths = [len(h) for h in histories]
    rows = np.repeat(np.arange(len(histories)), lengths)
    cols = np.concatenate(histories) if histories else np.zeros(0, dtype=np.int64)
    data = np.ones(len(cols), dtype=np.float32)
    matrix = csr_matrix((data, (rows, cols)), shape=(len(histories), n_items))
    matrix.data[:] = 1.0  # a repeated item counts once
    return matrix


#: At most this many of one user's items count towards co-occurrence: their latest. A shared
#: "guest" account with half of a bookshop's events (tens of thousands of distinct books) made
#: the item-item product quadratic in that one history; it passed 22 GB and the process was
#: killed without a word. Item-kNN implementations cap or sample long histories the same way
#: (Mahout's ``maxPrefsPerUser``). MovieTweetings' longest history has 110 items, so its figures
#: do not move.
COOC_MAX_HISTORY = 1000


def _distinct_pairs(split: Split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each distinct (user, item) of the training events with its latest time, in (user, item)
    order."""
    n = np.int64(max(split.n_items, 1))
    key = split.fit_users.astype(np.int64) * n + split.fit_items.astype(np.int64)
    times = np.asarray(split.fit_times, dtype=np.float64)
    if not len(key):
        return key, key, times
    # each key's latest time by a stable sort of the integer keys alone: sorting a million
    # events by (key, time) took a second of every add-events
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    latest = np.maximum.reduceat(times[order], starts)
    key = key[starts]
    return key // n, key % n, latest


def long_histories(split: Split, max_history: int = COOC_MAX_HISTORY) -> dict[int, int]:
    """Users with more than ``max_history`` distinct training items: user -> how many."""
    users, _, _ = _distinct_pairs(split)
    per_user = np.bincount(users, minlength=split.n_users)
    return {int(u): int(per_user[u]) for u in np.flatnonzero(per_user > max_history)}


def cooccurrence(split: Split, max_history: int | None = COOC_MAX_HISTORY) -> Any:
    """Sparse item-item cosine of the items' training user sets, zero diagonal.

    A user counts with their latest ``max_history`` distinct items (None: all of them); the
    product is quadratic in one history's length (see :data:`COOC_MAX_HISTORY`).
    """
    from scipy.sparse import csr_matrix, diags

    users, items, times = _distinct_pairs(split)
    long = np.zeros(0, dtype=np.int64)
    if max_history is not None and len(users):
        long = np.flatnonzero(np.bincount(users) > max_history)
    if len(long):
        # the long histories' pairs newest first within each user (ties: item order, lexsort is
        # stable); the first max_history are kept. The matrix does not depend on the pairs'
        # order, so the other users' are not sorted.
        rows = np.flatnonzero(np.isin(users, long))
        order = rows[np.lexsort((-times[rows], users[rows]))]
        starts = np.searchsorted(users[order], users[order], side="left")
        keep = np.ones(len(users), dtype=bool)
        keep[order[np.arange(len(order)) - starts >= max_history]] = False
        users, items = users[keep], items[keep]
    users = csr_matrix(
        (np.ones(len(items), dtype=np.float32), (users, items)),
        shape=(split.n_users, split.n_items),
    )
    counts = np.asarray(users.sum(0)).ravel()
    norm = diags(1.0 / np.sqrt(np.maximum(counts, 1.0)).astype(np.float32))
    sim = (norm @ (users.T @ users) @ norm).tocsr()
    sim.setdiag(0.0)
    sim.eliminate_zeros()
    return sim


class Popularity:
    """Most training events first."""

    name = "popularity"
    id_based = True

    def fit(self, split: Split) -> Popularity:
        self.scores = item_counts(split)
        return self

    def score(self, batch: Requests) -> np.ndarray:
        return np.broadcast_to(self.scores, (len(batch), len(self.scores)))


class RecentPopularity:
    """Events weighted by recency; the half-life is chosen on the validation requests."""

    name = "recent_popularity"
    id_based = True
    #: candidate half-lives as fractions of the training time span
    FRACTIONS = (0.01, 0.03, 0.1, 0.3, 1.0)

    def fit(self, split: Split) -> RecentPopularity:
        span = max(split.end_time - float(split.fit_times.min()), DAY)
        best = (-1.0, span)
        for fraction in self.FRACTIONS:
            self.scores = decayed_counts(split, span * fraction)
            ranked = rank_requests(self.score, split.val, split.n_items, coverage=False)
            ndcg = float(per_request_metrics(ranked.ranks)["ndcg10"].mean())
            if ndcg > best[0]:
                best = (ndcg, span * fraction)
        self.half_life = best[1]
        self.scores = decayed_counts(split, self.half_life)
        return self

    def score(self, batch: Requests) -> np.ndarray:
        return np.broadcast_to(self.scores, (len(batch), len(self.scores)))


class ItemKNN:
    """Sum of co-occurrence cosines between each item and the user's history items."""

    name = "item_knn"
    id_based = True

    def __init__(self, max_history: int | None = COOC_MAX_HISTORY):
        self.max_history = max_history

    def fit(self, split: Split) -> ItemKNN:
        self.n_items = split.n_items
        self.sim = cooccurrence(split, self.max_history)
        return self

    def score(self, batch: Requests) -> np.ndarray:
        return np.asarray((history_matrix(batch.histories, self.n_items) @ self.sim).todense())


class ALS:
    """implicit's alternating least squares; the user's vector is solved from the given history.

    Solving from the history (rather than reading the fitted user row) lets the test requests use
    the validation event too, as every other model does. Factors are chosen on validation.
    """

    name = "implicit_als"
    id_based = True
    FACTORS = (16, 64)

    def __init__(
        self,
        *,
        iterations: int = 15,
        regularization: float = 0.05,
        threads: int = 1,
        max_requests: int | None = None,
        seed: int = 42,
    ):
        self.iterations = iterations
        self.regularization = regularization
        self.threads = threads
        # factors chosen on a seeded sample of this many validation requests (None: all)
        self.max_requests, self.seed = max_requests, seed

    def _fit(self, split: Split, factors: int) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from scipy.sparse import csr_matrix

        user_items = csr_matrix(
            (np.ones(len(split.fit_items), dtype=np.float32), (split.fit_users, split.fit_items)),
            shape=(split.n_users, split.n_items),
        )
        user_items.data[:] = 1.0
        from threadpoolctl import threadpool_limits

        # implicit runs its own threads; BLAS threads underneath them only contend (its advice)
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=factors,
                regularization=self.regularization,
                iterations=self.iterations,
                num_threads=self.threads,
                random_state=42,
            )
            model.fit(user_items, show_progress=False)
        self.items = np.asarray(model.item_factors, dtype=np.float64)
        self.n_items = split.n_items
        # Implicit ALS user solve with confidence 1 + alpha (alpha = 1, implicit's default):
        # u = (Y^T Y + Y_h^T Y_h + reg I)^-1 Y_h^T 2.
        self.gram = self.items.T @ self.items + self.regularization * np.eye(factors)

    def fit(self, split: Split) -> ALS:
        best = (-1.0, self.FACTORS[0])
        val = split.val.sample(self.max_requests, self.seed)
        for factors in self.FACTORS:
            self._fit(split, factors)
            ranked = rank_requests(self.score, val, split.n_items, coverage=False)
            ndcg = float(per_request_metrics(ranked.ranks)["ndcg10"].mean())
            if ndcg > best[0]:
                best = (ndcg, factors)
        self.factors = best[1]
        self._fit(split, self.factors)
        return self

    def score(self, batch: Requests) -> np.ndarray:
        vectors = np.empty((len(batch), self.items.shape[1]))
        for row, history in enumerate(batch.histories):
            y = self.items[np.unique(history)]
            vectors[row] = np.linalg.solve(self.gram + y.T @ y, 2.0 * y.sum(0))
        return vectors @ self.items.T


def mean_history_vectors(item_vectors: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
    """The L2-normalised mean of each history's item vectors."""
    out = np.stack([item_vectors[h].mean(0) for h in histories])
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


class EmbeddingSimilarity:
    """Cosine between item text embeddings (a frozen pretrained encoder) and the history mean."""

    name = "pretrained_embedding"
    id_based = False

    def __init__(self, item_vectors: np.ndarray):
        self.vectors = np.asarray(item_vectors, dtype=np.float32)

    def fit(self, split: Split) -> EmbeddingSimilarity:
        return self

    def score(self, batch: Requests) -> np.ndarray:
        return mean_history_vectors(self.vectors, batch.histories) @ self.vectors.T
