"""The final ranker: a weighted sum of standardised signals, weights chosen on validation.

Signals per (user, item): the two-tower score, the pretrained encoder's cosine between the item
and the history's mean (it keeps the plain text match when fine-tuning has pulled the item tower
towards popular items), popularity, recent popularity, the item's freshness (how long ago its
latest training event was), co-occurrence with the history, the text-learned content prior, and
a "no events yet" indicator (it lets the validation data say how often new items are chosen,
since popularity cannot). Weights are
chosen by coordinate ascent over a grid, maximising NDCG@10 on the validation requests; the test
requests are never looked at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunesmith_recommend.split import Requests
from tunesmith_recommend.two_tower import UserTower

USER_FEATURES = ("two_tower", "text_similarity", "cooccurrence")
ITEM_FEATURES = ("popularity", "recent_popularity", "freshness", "content_prior", "cold")
FEATURES = USER_FEATURES + ITEM_FEATURES
GRID = (0.0, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass
class Signals:
    """Everything the ranker reads, fitted on the training events."""

    item_vectors: np.ndarray  # [n, d] item tower output, L2-normalised
    tower: UserTower
    counts: np.ndarray  # training events per item
    recent: np.ndarray  # recency-weighted counts
    prior: np.ndarray  # [d] content-prior vector
    cooc: Any  # scipy sparse [n, n] item-item cosine
    age: np.ndarray  # seconds from each item's latest training event to the last one (inf: none)
    base_vectors: np.ndarray | None = None  # pretrained vectors; None = the item vectors
    _item_cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def item_features(self) -> dict[str, np.ndarray]:
        """Features that depend on the item only, [n] each."""
        if not self._item_cache:
            self._item_cache.update(
                popularity=np.log1p(self.counts),
                recent_popularity=np.log1p(self.recent),
                freshness=freshness(self.age),
                content_prior=self.item_vectors @ self.prior,
                cold=(self.counts == 0).astype(np.float64),
            )
        return self._item_cache

    def user_features(
        self, histories: Sequence[np.ndarray], items: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Two-tower and co-occurrence scores [len(histories), n] (or only for ``items``)."""
        from tunesmith_recommend.baselines import history_matrix, mean_history_vectors

        users = self.tower.encode(self.item_vectors, histories)
        vectors = self.item_vectors if items is None else self.item_vectors[items]
        base = self.item_vectors if self.base_vectors is None else self.base_vectors
        cooc = history_matrix(histories, len(self.counts)) @ (
            self.cooc if items is None else self.cooc[:, items]
        )
        return {
            "two_tower": users @ vectors.T,
            "text_similarity": mean_history_vectors(base, histories)
            @ (base if items is None else base[items]).T,
            "cooccurrence": np.log1p(np.asarray(cooc.todense())),
        }


def item_ages(n_items: int, items: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Seconds from each item's latest event to the latest event overall (inf for none)."""
    latest = np.full(n_items, -np.inf)
    np.maximum.at(latest, items, times)
    return float(times.max()) - latest


def freshness(age: np.ndarray) -> np.ndarray:
    """Minus log hours since the item's latest event; items without events rank as the stalest."""
    hours = np.log1p(np.maximum(age, 0.0) / 3600.0)
    finite = np.isfinite(hours)
    stalest = float(hours[finite].max()) + 1.0 if finite.any() else 0.0
    return -np.where(finite, hours, stalest)


@dataclass
class Ranker:
    """Weights over standardised features."""

    weights: dict[str, float]
    scales: dict[str, float]

    def combine(self, features: dict[str, np.ndarray], item_part: np.ndarray | None = None) -> Any:
        """The score: sum of weight / scale x feature (item features may be pre-combined)."""
        total: Any = 0.0
        names = USER_FEATURES if item_part is not None else FEATURES
        for name in names:
            if self.weights.get(name, 0.0):
                total = total + (self.weights[name] / self.scales[name]) * features[name]
        return total + (item_part if item_part is not None else 0.0)

    def item_part(self, item_features: dict[str, np.ndarray]) -> np.ndarray:
        """The item-only share of the score, [n]: precomputed once for serving."""
        total = np.zeros_like(next(iter(item_features.values())))
        for name in ITEM_FEATURES:
            if self.weights.get(name, 0.0):
                total = total + (self.weights[name] / self.scales[name]) * item_features[name]
        return total

    def to_json(self) -> dict[str, Any]:
        return {"weights": self.weights, "scales": self.scales}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ranker:
        return cls(weights=dict(data["weights"]), scales=dict(data["scales"]))


def _scale(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    std = float(finite.std()) if len(finite) else 0.0
    return std if std > 1e-12 else 1.0


def fit_ranker(
    signals: Signals,
    val: Requests,
    *,
    max_requests: int = 3000,
    rounds: int = 3,
    seed: int = 0,
) -> tuple[Ranker, float]:
    """Choose the weights on validation requests; returns the ranker and its validation NDCG@10."""
    from tunesmith_recommend.evaluate import per_request_metrics, rank_requests

    # dense [requests, items] matrices per feature: keep each under ~20M entries
    max_requests = max(200, min(max_requests, 20_000_000 // max(len(signals.counts), 1)))
    if len(val) > max_requests:
        keep = np.zeros(len(val), dtype=bool)
        keep[np.random.default_rng(seed).choice(len(val), max_requests, replace=False)] = True
        val = val.subset(keep)
    n_items = len(signals.counts)
    features = {**signals.user_features(val.histories)}
    for name, values in signals.item_features().items():
        features[name] = np.broadcast_to(values, (len(val), n_items))
    scales = {name: _scale(np.asarray(features[name])) for name in FEATURES}
    weights = {name: 0.0 for name in FEATURES}
    weights["two_tower"] = 1.0

    def ndcg(candidate: dict[str, float]) -> float:
        ranker = Ranker(candidate, scales)
        scores = np.broadcast_to(ranker.combine(features), (len(val), n_items))
        ranked = rank_requests(lambda batch: scores, val, n_items, batch_size=len(val), seed=seed)
        return float(per_request_metrics(ranked.ranks)["ndcg10"].mean())

    best = ndcg(weights)
    for _ in range(rounds):
        improved = False
        for name in FEATURES:
            for value in GRID:
                if value == weights[name]:
                    continue
                trial = {**weights, name: value}
                if not any(trial.values()):
                    continue
                score = ndcg(trial)
                if score > best + 1e-9:
                    best, weights, improved = score, trial, True
        if not improved:
            break
    return Ranker(weights, scales), best
