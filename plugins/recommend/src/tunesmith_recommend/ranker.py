"""The final ranker: a weighted sum of standardised signals, weights learned on validation.

Signals per (user, item): the two-tower score, the pretrained encoder's cosine between the item
and the history's mean (it keeps the plain text match when fine-tuning has pulled the item tower
towards popular items), popularity, recent popularity, the item's freshness (how long ago its
latest training event was), co-occurrence with the history, the text-learned content prior, and
a "no events yet" indicator (it lets the validation data say how often new items are chosen,
since popularity cannot).

Items with no training events get their own weights for the text signals (two-tower, text match,
content prior): for them text is the only evidence, while for items with events popularity
dominates, and one shared weight had to compromise between the two. The score is then a mixture
of two softmax rankers, one over items with events and one over items without, with a learned
share between them.

Items added after training (``add-items``: catalogue positions from :attr:`Ranker.trained_items`
on) without events get the "no events yet" weight moved by :attr:`Ranker.added_shift` on top.
Where validation has few targets without events (the sample has none), the fitted weight says
how often the catalogue's never-chosen items were chosen (never: negative), which says nothing of
a new item written for its users; the shift is chosen on validation with a tenth of the items
at a time scored as new ones (:func:`_added_shift`). The catalogue's own items keep the fitted
weights.

The weights are learned on the validation requests by a listwise softmax (the held-out item
against the whole catalogue, seen items excluded; above :data:`SAMPLED_ABOVE_ITEMS` items
against a candidate set, see :mod:`tunesmith_recommend.ranker_sampled`), with an L2 penalty
chosen by 5-fold cross-validation of NDCG@10 over those same requests, ranked over the whole
catalogue; the test requests are never looked at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunesmith_recommend.baselines import history_matrix, mean_history_vectors
from tunesmith_recommend.evaluate import (
    above_and_tied,
    break_ties,
    rank_requests,
    seen_pairs,
)
from tunesmith_recommend.split import Requests
from tunesmith_recommend.two_tower import UserTower

USER_FEATURES = ("two_tower", "text_similarity", "cooccurrence")
ITEM_FEATURES = ("popularity", "recent_popularity", "freshness", "content_prior", "cold")
FEATURES = USER_FEATURES + ITEM_FEATURES
#: features with a second weight that applies to items without training events only
COLD_FEATURES = ("two_tower", "text_similarity", "content_prior")
#: L2 penalties tried (per standardised weight); 5-fold cross-validation on validation picks one
L2_GRID = (0.003, 0.01, 0.03)
FOLDS = 5
#: new items must reach this multiple of random Recall@10 on validation's cold targets (the
#: issue's cold-start goal); the "no events yet" weight is moved by one of these to get there
COLD_RECALL_FLOOR = 5.0
COLD_SHIFTS = (-0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
#: with fewer validation targets without events than this, items added after training get their
#: own shift, chosen on validation with items scored as new ones (:func:`_added_shift`): on the
#: sample none is new, and a film added later came 145th of 149 for users its text matched. With
#: more (MovieTweetings: 187-232), the catalogue's shift already stands for new items.
MIN_COLD_TARGETS = 20
#: the added items' shifts tried: never below the catalogue's items without events (0)
ADDED_SHIFTS = tuple(shift for shift in COLD_SHIFTS if shift >= 0)
#: :func:`_added_shift` scores one item in this many as new at a time, each item once
ADDED_GROUPS = 10
#: design entries (requests x items x columns) copied to float64 at a time when scoring: the
#: whole design at once was 3.5 GB at 200,000 items, copied about 70 times per ranker fitted
SCORE_CHUNK_ENTRIES = 1 << 22


#: item vectors made float64 at a time by :func:`cosines` (25 MB at 384 dimensions)
COSINE_CHUNK_ITEMS = 8192


def cosines(rows: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``rows @ vectors.T`` in float64, [len(rows), len(vectors)]: one user's scores are the
    same, to about 1e-15, whether they are computed alone (``for-user``) or among a batch's
    (``eval``, ``fit_ranker``).

    In float32 a user's scores depended on the product's shape (a batch of 256 users, a
    serving request's few hundred candidates) in their last bits, times the ranker's weight
    over the feature's spread (about 100 for a tower whose items are alike): ``for-user`` and
    the full ranking put two books of one user's top ten in opposite orders. float32 inputs
    make exact float64 products, so only the order of the sums differs. The vectors are made
    float64 :data:`COSINE_CHUNK_ITEMS` at a time rather than kept (614 MB for 200,000 x 384).
    """
    left = np.asarray(rows, dtype=np.float64)
    out = np.empty((len(left), len(vectors)), dtype=np.float64)
    for start in range(0, len(vectors), COSINE_CHUNK_ITEMS):
        part = np.asarray(vectors[start : start + COSINE_CHUNK_ITEMS], dtype=np.float64)
        out[:, start : start + len(part)] = left @ part.T
    return out


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

    def user_inputs(self, histories: Sequence[np.ndarray]) -> UserInputs:
        """What the requests' features are made of (see :class:`UserInputs`)."""
        base = self.item_vectors if self.base_vectors is None else self.base_vectors
        return UserInputs(
            users=self.tower.encode(self.item_vectors, histories),
            means=mean_history_vectors(base, histories),
            cooc=history_matrix(histories, len(self.counts)) @ self.cooc,
        )

    def features_of(self, inputs: UserInputs, items: Any = slice(None)) -> dict[str, np.ndarray]:
        """Two-tower, text-match and co-occurrence scores of ``inputs``' requests for
        ``items`` (a slice or positions; every item by default), [requests, items] float64."""
        return {name: self.user_feature(inputs, name, items) for name in USER_FEATURES}

    def user_feature(self, inputs: UserInputs, name: str, items: Any = slice(None)) -> np.ndarray:
        """One of :data:`USER_FEATURES` for ``inputs``' requests and ``items``, float64."""
        if name == "two_tower":
            return cosines(inputs.users, self.item_vectors[items])
        if name == "text_similarity":
            base = self.item_vectors if self.base_vectors is None else self.base_vectors
            return cosines(inputs.means, base[items])
        if name == "cooccurrence":
            return np.log1p(inputs.cooc[:, items].toarray())
        raise KeyError(name)

    def user_features(
        self, histories: Sequence[np.ndarray], items: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Two-tower, text-match and co-occurrence scores [len(histories), n] (or only for
        ``items``)."""
        inputs = self.user_inputs(histories)
        return self.features_of(inputs, slice(None) if items is None else items)


@dataclass
class UserInputs:
    """Per request: the user tower's vector, the history's mean (pretrained) vector, and the
    co-occurrence sums over the catalogue (sparse, ``log1p`` not yet taken)."""

    users: np.ndarray
    means: np.ndarray
    cooc: Any


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
    """Weights over standardised features, plus extra weights for items without events, and a
    shift of the "no events yet" weight for items added after training."""

    weights: dict[str, float]
    scales: dict[str, float]
    cold_weights: dict[str, float] = field(default_factory=dict)
    #: the catalogue's size when the ranker was fitted: later positions were added (add-items
    #: appends); None for a ranker saved before it was recorded (nothing counts as added)
    trained_items: int | None = None
    #: moves the "no events yet" weight of added items still without events (standardised)
    added_shift: float = 0.0
    #: the added items' own (whole, standardised) weights for :data:`COLD_FEATURES`, fitted on
    #: items scored as new (:func:`_added_fit`); empty: they take the catalogue's cold weights
    added_weights: dict[str, float] = field(default_factory=dict)

    def added_items(self, cold: np.ndarray) -> np.ndarray:
        """1 for the items added after training still without events (``cold``: the "no events
        yet" feature of every catalogue position), 0 for the others."""
        added = np.zeros(len(cold))
        if self.trained_items is not None:
            added[self.trained_items :] = np.asarray(cold)[self.trained_items :] > 0
        return added

    def _weight(self, name: str, cold: Any, added: Any = None) -> Any:
        """The weight of one feature per item: [n] when it has a cold-item share, else a float."""
        weight = self.weights.get(name, 0.0) / self.scales[name]
        extra = self.cold_weights.get(name, 0.0) / self.scales[name]
        total = weight + extra * cold if extra else weight
        if name in self.added_weights and added is not None and np.any(added):
            # only the added items' entries are replaced: the catalogue's keep their bits
            own = self.added_weights[name] / self.scales[name]
            total = np.where(np.asarray(added) > 0, own, total)
        return total

    def combine(
        self,
        features: dict[str, np.ndarray],
        item_part: np.ndarray | None = None,
        cold: np.ndarray | None = None,
        added: np.ndarray | None = None,
    ) -> Any:
        """The score: sum of weight / scale x feature (item features may be pre-combined).

        ``cold`` (1 for items without training events, aligned with the feature columns) is
        needed when ``item_part`` is given and the ranker has cold-item weights; without
        ``item_part`` it is read from ``features["cold"]``. ``added`` (:meth:`added_items`,
        aligned the same way) gives the items added after training their own text weights;
        None: no column is such an item.
        """
        if cold is None:
            cold = features.get("cold")
        if cold is None and any(self.cold_weights.get(n, 0.0) for n in USER_FEATURES):
            raise ValueError("this ranker weighs items without events apart: pass cold=")
        names = USER_FEATURES if item_part is not None else FEATURES
        # Zeros of the features' shape, not 0.0: with every per-request weight at zero the sum
        # would otherwise be the item part alone, one row where the caller expects one per request.
        total: Any = np.zeros(np.broadcast_shapes(*(np.shape(features[n]) for n in names)))
        terms = ((self._weight(n, cold, added), features[n]) for n in names)
        total = _add_weighted(total, terms)
        return total if item_part is None else _add_weighted(total, [(1.0, item_part)])

    def item_part(self, item_features: dict[str, np.ndarray]) -> np.ndarray:
        """The item-only share of the score, [n]: precomputed once for serving."""
        total = np.zeros_like(next(iter(item_features.values())))
        cold = item_features["cold"]
        added = self.added_items(cold)
        terms = ((self._weight(n, cold, added), item_features[n]) for n in ITEM_FEATURES)
        total = _add_weighted(total, terms)
        if self.added_shift and self.trained_items is not None:
            # added last, to the added items only: the catalogue's scores keep their bits
            added = slice(self.trained_items, None)
            total[added] += self.added_shift / self.scales["cold"] * cold[added]
        return total

    def to_json(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "scales": self.scales,
            "cold_weights": self.cold_weights,
            "trained_items": self.trained_items,
            "added_shift": self.added_shift,
            "added_weights": self.added_weights,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ranker:
        trained = data.get("trained_items")
        return cls(
            weights=dict(data["weights"]),
            scales=dict(data["scales"]),
            cold_weights=dict(data.get("cold_weights", {})),
            trained_items=None if trained is None else int(trained),
            added_shift=float(data.get("added_shift", 0.0)),
            added_weights=dict(data.get("added_weights", {})),
        )


def _add_weighted(total: np.ndarray, terms: Iterable[tuple[Any, Any]]) -> np.ndarray:
    """``total + weight * feature`` summed over ``terms`` in their order, skipping zero weights.

    In place where the result keeps ``total``'s shape and dtype (one product buffer reused):
    the same multiplications and additions in the same order as making two new arrays per
    term, so the same bits, without two fresh [requests, items] float64 arrays per feature.
    """
    product: np.ndarray | None = None
    for weight, feature in terms:
        if not np.any(weight):
            continue
        shape = np.broadcast_shapes(np.shape(weight), np.shape(feature))
        dtype = np.result_type(weight, feature)
        if np.result_type(total, dtype) != total.dtype or (
            np.broadcast_shapes(shape, total.shape) != total.shape
        ):
            total = total + weight * feature  # a wider result: a new array, as it was
            product = None
        elif shape == total.shape and dtype == total.dtype:
            if product is None:
                product = np.empty_like(total)
            np.multiply(weight, feature, out=product)
            total += product
        else:  # a row under per-request features, or a narrower product: its own small array
            total += weight * feature
    return total


def _scale(values: np.ndarray) -> float:
    """The standard deviation of the finite values (1.0 when there is no spread)."""
    # No copy when every value is finite (a [requests, items] feature's was 320 MB); the same
    # flat order, so the same sum, as the copy's
    flat = np.asarray(values).reshape(-1)
    finite_mask = np.isfinite(flat)
    finite = flat if finite_mask.all() else flat[finite_mask]
    del finite_mask
    std = float(finite.std()) if len(finite) else 0.0
    return std if std > 1e-12 else 1.0


def _design(
    features: Mapping[str, np.ndarray],
    scales: dict[str, float],
    shape: tuple[int, ...] | None = None,
) -> tuple[Any, list[str]]:
    """[requests, items, columns] float32 tensor of standardised features and cold terms.

    Filled a feature at a time (its column and its cold term): a list of the columns before
    stacking them held the design twice (3.5 GB at 200,000 items and 200 requests). Each
    feature is read from ``features`` once, so a mapping that makes it on demand
    (:class:`_OneAtATime`) holds one [requests, items] float64 feature at a time beside the
    design. A feature missing from ``scales`` gets its standard deviation, put in ``scales``;
    ``shape`` is the [requests, items] shape when reading ``features`` to find it would make them.
    """
    import torch

    names = list(FEATURES) + [f"cold:{name}" for name in COLD_FEATURES]
    if shape is None:
        shape = np.broadcast_shapes(*(np.shape(features[name]) for name in FEATURES))
    x = np.empty((*shape, len(names)), dtype=np.float32)
    cold = np.asarray(features["cold"])
    for feature in FEATURES:
        values = np.asarray(features[feature])
        if feature not in scales:
            scales[feature] = _scale(values)
        # a few requests at a time: the whole feature's scaled float64 copies were 640 MB
        for rows in _row_chunks(values):
            x[rows + (..., names.index(feature))] = values[rows] / scales[feature]
            if feature in COLD_FEATURES:
                scaled = cold * values[rows] / scales[feature]
                x[rows + (..., names.index(f"cold:{feature}"))] = scaled
        del values
    return torch.as_tensor(x), names


def _row_chunks(values: np.ndarray) -> list[tuple[Any, ...]]:
    """Index tuples over ``values``' first axis, about :data:`SCORE_CHUNK_ENTRIES` entries
    each (the whole array in one when it is an item feature, [items])."""
    if values.ndim < 2:
        return [()]
    step = max(1, SCORE_CHUNK_ENTRIES // max(int(np.prod(values.shape[1:])), 1))
    return [(slice(start, start + step),) for start in range(0, len(values), step)]


class _OneAtATime(Mapping):
    """The ranker's features for requests, each user feature made when it is read and not
    kept: three [requests, items] float64 arrays held beside the design were 960 MB at 200
    requests x 200,000 items."""

    def __init__(self, signals: Signals, inputs: UserInputs) -> None:
        self.signals, self.inputs = signals, inputs
        self.items = signals.item_features()

    def __getitem__(self, name: str) -> np.ndarray:
        if name in USER_FEATURES:
            return self.signals.user_feature(self.inputs, name)
        return self.items[name]

    def __iter__(self) -> Any:
        return iter(FEATURES)

    def __len__(self) -> int:
        return len(FEATURES)


def _fit_listwise(
    x: Any,
    seen: Any,
    targets: Any,
    l2: float,
    iterations: int = 50,
    rows: Any = None,
    offset: Any = None,
) -> np.ndarray:
    """Weights maximising the softmax likelihood of each held-out item over the catalogue;
    ``rows`` (a boolean mask) fits those requests only, without copying their part of ``x``
    (a fold's 80% was 1.4 GB at 200,000 items). ``offset`` ([requests, items], optional) is
    added to the logits: a sampled candidate's log of the items it stands for."""
    import torch

    if rows is not None:
        rows = torch.as_tensor(rows)
        seen, targets = seen[rows], targets[rows]
    w = torch.zeros(x.shape[-1], requires_grad=True)
    optimiser = torch.optim.LBFGS([w], lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe")

    def loss_fn() -> Any:
        optimiser.zero_grad()
        logits = x @ w
        if offset is not None:
            logits = logits + offset
        if rows is not None:
            logits = logits[rows]
        logits = logits.masked_fill(seen, float("-inf"))
        loss = torch.nn.functional.cross_entropy(logits, targets) + l2 * (w * w).sum()
        loss.backward()
        return loss

    optimiser.step(loss_fn)
    return w.detach().numpy().astype(np.float64)


def _linear_scores(
    x: Any, w: np.ndarray, chunk_entries: int | None = None, rows: Any = None
) -> np.ndarray:
    """``x @ w`` in float64, [requests, items], ``chunk_entries`` of ``x`` (default
    :data:`SCORE_CHUNK_ENTRIES`) copied to float64 at a time; ``rows`` (a boolean mask): those
    requests only, without copying their part of ``x`` first.

    The same numbers as ``x.numpy().astype(np.float64) @ w``: matmul of a stack by a vector
    is one matrix-vector product per request, so the chunks do not change any sum.
    """
    values = x.numpy()
    chunk_entries = chunk_entries or SCORE_CHUNK_ENTRIES
    picked = np.arange(len(values)) if rows is None else np.flatnonzero(rows)
    scores = np.empty((len(picked), *values.shape[1:-1]), dtype=np.float64)
    step = max(1, chunk_entries // max(int(np.prod(values.shape[1:])), 1))
    for start in range(0, len(picked), step):
        chunk = picked[start : start + step]
        part = values[chunk[0] : chunk[-1] + 1] if rows is None else values[chunk]
        scores[start : start + step] = part.astype(np.float64) @ w
    return scores


def _ranks(
    x: Any, w: np.ndarray, val: Requests, n_items: int, seed: int, rows: Any = None
) -> np.ndarray:
    """Rank of each held-out item under the linear scores ``x @ w`` (the evaluation's ranking);
    ``rows``: of those requests of ``x`` only (``val`` holds just them)."""
    scores = _linear_scores(x, w, rows=rows)
    ranked = rank_requests(
        lambda batch: scores, val, n_items, batch_size=len(val), seed=seed, coverage=False
    )
    return ranked.ranks


def _ndcg10(ranks: np.ndarray) -> np.ndarray:
    return np.where(ranks < 10, 1.0 / np.log2(ranks + 2.0), 0.0)


def _shift_cold(
    rank_shifted: Callable[[np.ndarray, Sequence[float]], list[np.ndarray]],
    w: np.ndarray,
    cold_targets: np.ndarray,
    n_items: int,
) -> np.ndarray:
    """``w`` with the "no events yet" weight moved to the best NDCG@10 on the requests
    ``rank_shifted`` ranks (given weights and shifts, their held-out items' ranks under the
    weights with that weight moved by each shift) whose cold-target Recall@10 is at least
    COLD_RECALL_FLOOR x random.

    The softmax fits likelihood, and spread over many new items that puts none of them in a
    top ten; new items must still get recommended, and this is where the trade is chosen.
    """
    if not cold_targets.any():
        return w
    floor = COLD_RECALL_FLOOR * min(10 / n_items, 1.0)
    best: tuple[bool, float, float] | None = None
    for shift, ranks in zip(COLD_SHIFTS, rank_shifted(w, COLD_SHIFTS), strict=True):
        recall = float((ranks[cold_targets] < 10).mean())
        key = (recall >= floor, float(_ndcg10(ranks).mean()) if recall >= floor else recall)
        if best is None or key > best[:2]:
            best = (*key, shift)
    assert best is not None
    return _shifted(w, best[2])


def _shifted(w: np.ndarray, shift: float) -> np.ndarray:
    """``w`` with the "no events yet" weight (its :data:`FEATURES` position) moved by ``shift``."""
    trial = w.copy()
    trial[FEATURES.index("cold")] += shift
    return trial


def _count_shifted(
    base: np.ndarray,
    colds: Sequence[np.ndarray],
    targets: np.ndarray,
    cold_at: np.ndarray,
    owners: np.ndarray,
    items: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(items scored above the target, other items tied with it) per shift and request,
    [shifts, requests] each, seen items excluded: :func:`evaluate.rank_requests`' counts of
    each shift's scores, made without each shift's whole [requests, items] scores.

    ``base`` holds the requests' scores under any of the shifts: an item with events scores
    the same under every shift (its "no events yet" column is 0). ``colds`` holds each shift's
    scores of the items without events (``cold_at`` gives an item's column there, -1 for an
    item with events). ``owners`` and ``items`` are :func:`evaluate.seen_pairs`. ``base`` and
    ``colds`` are overwritten. A seen item is made -inf, which counts what the evaluation's
    taking back of its comparison counts; a target with events is compared with the items with
    events once, a new one under each shift.
    """
    rows = np.arange(len(base))
    cold_items = np.flatnonzero(cold_at >= 0)
    base[owners, items] = -np.inf
    seen_cold = cold_at[items] >= 0
    for scores in colds:
        scores[owners[seen_cold], cold_at[items[seen_cold]]] = -np.inf
    target_cold = cold_at[targets]
    new = np.flatnonzero(target_cold >= 0)
    target_warm = base[rows, targets]
    base[:, cold_items] = np.nan  # compared as none: they are counted from ``colds``
    buffer = np.empty(base.shape, dtype=bool)
    warm_above, warm_tied = above_and_tied(base, target_warm, buffer)
    greater = np.empty((len(colds), len(base)), dtype=np.int64)
    ties = np.empty((len(colds), len(base)), dtype=np.int64)
    for shift, scores in enumerate(colds):
        target = target_warm.copy()
        target[new] = scores[new, target_cold[new]]
        above, tied = above_and_tied(scores, target, buffer[:, : scores.shape[1]])
        if len(new):
            warm_above[new], warm_tied[new] = above_and_tied(
                base[new], target[new], buffer[: len(new)]
            )
        greater[shift] = warm_above + above
        ties[shift] = warm_tied + tied - 1  # the target itself
    return greater, ties


def stalest_freshness(signals: Signals) -> float:
    """The freshness of an item without events beside ``signals``' items (unscaled)."""
    return float(freshness(np.append(signals.age, np.inf))[-1])


def _cold_columns(cold: np.ndarray) -> np.ndarray:
    """Each item's column among the items without events (``cold`` > 0), -1 for the others."""
    at = np.full(len(cold), -1, dtype=np.int64)
    new = np.flatnonzero(np.asarray(cold) > 0)
    at[new] = np.arange(len(new))
    return at


#: validation requests the ranker is fitted on by default (``train --ranker-max-requests``)
MAX_REQUESTS = 3000
#: [requests, items] entries of the dense design at most (x 11 columns of float32: 264 MB);
#: a catalogue of more than DESIGN_ENTRIES / MIN_REQUESTS items keeps MIN_REQUESTS
DESIGN_ENTRIES = 6_000_000
MIN_REQUESTS = 200
#: a catalogue of more items is fitted on candidate sets (see :mod:`ranker_sampled`): the
#: dense design no longer holds MIN_REQUESTS requests within DESIGN_ENTRIES
SAMPLED_ABOVE_ITEMS = DESIGN_ENTRIES // MIN_REQUESTS
#: [requests, items] entries a candidate-set fit holds at most (two float32 user features per
#: entry for the full rankings: 800 MB), so 500 requests at 200,000 items
SAMPLED_ENTRIES = 100_000_000


def ranker_requests(n_requests: int, n_items: int, max_requests: int = MAX_REQUESTS) -> int:
    """How many of ``n_requests`` validation requests :func:`fit_ranker` fits on: at most
    ``max_requests``, and at most what memory holds: the dense [requests, items, columns]
    design's :data:`DESIGN_ENTRIES` up to :data:`SAMPLED_ABOVE_ITEMS` items, the candidate-set
    fit's :data:`SAMPLED_ENTRIES` above (500 at 200,000 items); never fewer than
    :data:`MIN_REQUESTS`."""
    entries = SAMPLED_ENTRIES if n_items > SAMPLED_ABOVE_ITEMS else DESIGN_ENTRIES
    fits = max(MIN_REQUESTS, entries // max(n_items, 1))
    return min(n_requests, max_requests, fits)


class _DenseDesign:
    """The whole catalogue for every request: a [requests, items, columns] float32 design,
    fitted and ranked as it is (catalogues up to :data:`SAMPLED_ABOVE_ITEMS` items)."""

    def __init__(self, signals: Signals, inputs: UserInputs, val: Requests, seed: int) -> None:
        import torch

        self.val, self.seed, self.n_items = val, seed, len(signals.counts)
        features = _OneAtATime(signals, inputs)
        scales: dict[str, float] = {}
        self.x, self.names = _design(features, scales, shape=(len(val), self.n_items))
        self.scales = {name: scales[name] for name in FEATURES}  # FEATURES order, as ranker.json
        seen = np.zeros((len(val), self.n_items), dtype=bool)
        for row, history in enumerate(val.seen()):  # rated below --min-rating too, as served
            seen[row, history] = True
        seen[np.arange(len(val)), val.targets] = False  # a re-watched item competes as itself
        self.seen = torch.as_tensor(seen)
        self.targets = torch.as_tensor(val.targets.astype(np.int64))
        self.cold = np.asarray(features["cold"])
        self.cold_targets = self.cold[val.targets] > 0
        self.stalest = stalest_freshness(signals)

    def fit(self, l2: float, rows: np.ndarray | None = None) -> np.ndarray:
        """Weights fitted on ``rows`` (a boolean mask; every request by default)."""
        return _fit_listwise(self.x, self.seen, self.targets, l2, rows=rows)

    def ranks(self, w: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """The held-out items' ranks over the whole catalogue for ``rows``' requests."""
        if rows is None:
            return _ranks(self.x, w, self.val, self.n_items, self.seed)
        return _ranks(self.x, w, self.val.subset(rows), self.n_items, self.seed, rows=rows)

    def shifted_ranks(
        self, w: np.ndarray, shifts: Sequence[float], rows: np.ndarray | None = None
    ) -> list[np.ndarray]:
        """:meth:`ranks` under ``w`` with the "no events yet" weight moved by each of
        ``shifts``, the same ranks, from one float64 copy of each chunk of the design.

        Each shift's scores are still its own ``x @ w`` over the whole chunk: a product's
        last bits depend on the item's place in it (OpenBLAS), so a new item's score from a
        product over the new items alone, or the unshifted score plus the shift, can differ
        and move a rank. Only the copy and the items with events' comparisons are shared.
        """
        values = self.x.numpy()
        picked = np.arange(len(values)) if rows is None else np.flatnonzero(rows)
        requests = self.val if rows is None else self.val.subset(rows)
        cold_at = _cold_columns(self.cold)
        cold_items = np.flatnonzero(cold_at >= 0)
        trials = [_shifted(w, shift) for shift in shifts]
        owners, items = seen_pairs(requests, self.n_items)
        greater = np.empty((len(trials), len(picked)), dtype=np.int64)
        ties = np.empty((len(trials), len(picked)), dtype=np.int64)
        step = max(1, SCORE_CHUNK_ENTRIES // max(int(np.prod(values.shape[1:])), 1))
        for start in range(0, len(picked), step):
            chunk = picked[start : start + step]
            part = values[chunk[0] : chunk[-1] + 1] if rows is None else values[chunk]
            part = part.astype(np.float64)
            base = np.empty(part.shape[:-1])
            colds = []
            for trial in trials:
                np.matmul(part, trial, out=base)
                colds.append(base[:, cold_items])
            del part
            mine = (owners >= start) & (owners < start + len(chunk))
            counts = _count_shifted(
                base,
                colds,
                requests.targets[start : start + len(chunk)],
                cold_at,
                owners[mine] - start,
                items[mine],
            )
            greater[:, start : start + len(chunk)], ties[:, start : start + len(chunk)] = counts
        # _ranks ranks every request in one batch
        return [
            break_ties(g, t, seed=self.seed, batch_size=len(picked))
            for g, t in zip(greater, ties, strict=True)
        ]

    def scores(self, w: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``rows``' requests' scores for every item under ``w``, [rows, items] float64."""
        return self.x.numpy()[rows].astype(np.float64) @ w

    def added_columns(self, rows: np.ndarray) -> list[np.ndarray]:
        """The standardised :data:`COLD_FEATURES` an item added after training is scored by,
        for ``rows``' requests, [rows, items] float64 each."""
        part = self.x.numpy()[rows]
        return [part[..., self.names.index(name)].astype(np.float64) for name in COLD_FEATURES]


def fit_ranker(
    signals: Signals,
    val: Requests,
    *,
    max_requests: int = MAX_REQUESTS,
    seed: int = 0,
    training: Any = None,
) -> tuple[Ranker, float]:
    """Learn the weights on validation requests; returns the ranker and its validation NDCG@10.

    ``training`` (a :class:`~tunesmith_recommend.ranker_added.TrainingEvents`): what the user
    tower and content prior were fitted on, for the weights of items added after training to
    be fitted on items scored by towers that never saw their events; None (signals made
    without training events) scores them by ``signals``' own.

    The requests are a seeded sample of :func:`ranker_requests` of ``val`` when there are more.
    The NDCG@10 returned is the cross-validated one (each request scored by weights learned on
    the other folds), so it is not flattered by fitting and scoring the same requests. Above
    :data:`SAMPLED_ABOVE_ITEMS` items each request's softmax is over a candidate set (see
    :mod:`tunesmith_recommend.ranker_sampled`); the ranks are over the whole catalogue either way.
    """
    n_items = len(signals.counts)
    val = val.sample(ranker_requests(len(val), n_items, max_requests), seed)
    inputs = signals.user_inputs(val.histories)
    design: Any
    if n_items > SAMPLED_ABOVE_ITEMS:
        # imported here: that module builds on this one's features and fit
        from tunesmith_recommend.ranker_sampled import SampledDesign

        design = SampledDesign(signals, inputs, val, seed)
    else:
        design = _DenseDesign(signals, inputs, val, seed)
    del inputs
    scales, names, cold = design.scales, design.names, design.cold_targets
    folds = np.random.default_rng(seed).permutation(len(val)) % FOLDS
    n_folds = FOLDS if len(val) >= 2 * FOLDS else 0
    fold_weights: dict[tuple[float, int], np.ndarray] = {}
    best: tuple[float, float] = (-1.0, L2_GRID[0])
    for l2 in L2_GRID:
        per_request = np.zeros(len(val))
        for fold in range(n_folds):
            train, held = folds != fold, folds == fold
            w = design.fit(l2, rows=train)
            fold_weights[l2, fold] = w
            per_request[held] = _ndcg10(design.ranks(w, rows=held))
        if per_request.mean() > best[0] + 1e-9:
            best = (float(per_request.mean()), l2)
    l2 = best[1]
    # The reported figure: each fold's weights, their cold shift chosen on the other folds,
    # scored on the held-out fold.
    per_request = np.zeros(len(val))
    for fold in range(n_folds):
        train, held = folds != fold, folds == fold

        def rank_train(
            w: np.ndarray, shifts: Sequence[float], train: np.ndarray = train
        ) -> list[np.ndarray]:
            return design.shifted_ranks(w, shifts, rows=train)

        w = _shift_cold(rank_train, fold_weights[l2, fold], cold[train], n_items)
        per_request[held] = _ndcg10(design.ranks(w, rows=held))
    w = _shift_cold(design.shifted_ranks, design.fit(l2), cold, n_items)
    val_ndcg = float(per_request.mean())
    if not n_folds:  # too few requests to cross-validate: the in-sample figure
        val_ndcg = float(_ndcg10(design.ranks(w)).mean())
    # Items added after training: their own text weights and shift where real new targets are
    # too few to stand for them. They move no catalogue item, so the figure above stands.
    added_shift, added_weights = 0.0, {}
    if int(cold.sum()) < MIN_COLD_TARGETS:
        from tunesmith_recommend import ranker_added

        columns = (
            ranker_added.HeldOutColumns(design, signals, training, n_items, seed)
            if training is not None
            else None
        )
        params = ranker_added.added_fit(design, w, n_items, seed, l2, columns)
        move = ranker_added.added_shift(design, w, params, n_items, seed, columns)
        constant = params[-1] - ranker_added.catalogue_constant(design, w)
        added_shift = round(float(constant * scales["cold"] + move), 6)
        added_weights = {
            name: round(float(value), 6)
            for name, value in zip(COLD_FEATURES, params[: len(COLD_FEATURES)], strict=True)
        }
    weights = {name: round(float(v), 6) for name, v in zip(names, w, strict=True)}
    ranker = Ranker(
        weights={name: weights[name] for name in FEATURES},
        scales=scales,
        cold_weights={name: weights[f"cold:{name}"] for name in COLD_FEATURES},
        trained_items=n_items,
        added_shift=added_shift,
        added_weights=added_weights,
    )
    return ranker, val_ndcg
