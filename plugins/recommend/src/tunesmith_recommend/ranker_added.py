"""The weights of items added after training (``add-items``), fitted on items scored as new.

Where validation has fewer than :data:`~tunesmith_recommend.ranker.MIN_COLD_TARGETS` targets
without events, the ranker's weights for items without events are fitted on the catalogue's
few never-chosen items: they say how often those items were chosen (never), nothing of how a
new item's text should count. On the sample (4 such films, none a target) the two-tower weight
for them came out at -7.9 per unit of cosine, and a space opera added later ranked 147th of 149
for three liked space operas.

So the added items get their own parameters: a weight for each of the text signals
(:data:`~tunesmith_recommend.ranker.COLD_FEATURES`) and a constant. The validation requests are
ranked in a simulated catalogue where one item in
:data:`~tunesmith_recommend.ranker.ADDED_GROUPS`, in turn, is scored as new (its text signals
only, the stalest freshness, no popularity or co-occurrence) and the others as the fitted
weights score them; the new items' parameters are fitted there by the ranker's listwise softmax
(:func:`added_fit`, the other weights fixed), and the constant's shift is then chosen on
NDCG@10 in the same simulation (:func:`added_shift`). The test split is never looked at.

A simulated item must look to the fit as a really added item looks when served: its text
read by towers that never saw its events. The user tower and the content prior were fitted on
every training event, the simulated items' too, so their scores of those items carried what
the towers learned from the items' own events (a prior that had learned the popular items'
directions, a user tower pointed at them), which an item added later never has. So the user
tower and the content prior are fitted again for each group without its items' events (as if
the items were not in the catalogue yet: :class:`TrainingEvents`), and each item is scored by
its own group's (:class:`HeldOutColumns`). The item vectors stay as fitted: a fine-tuned item
tower also saw the items' pairs, and fitting it ten times more is not done.

Each refit of the user tower trains on at most :data:`REFIT_MAX_EXAMPLES` (history, next item)
examples, a seeded sample of the kept ones: uncapped, the ten refits took 40 % of ``train`` on
a 30,000-item shop (749 of 1,848 s), and at 10,000 items this cap (of 48,000 examples) took
them from 175 s to 64 s and moved the fitted weights by less than 0.002 (docs/recommend.md).
The sample has 400 examples: nothing is left out there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tunesmith_recommend.evaluate import seen_pairs
from tunesmith_recommend.ranker import (
    ADDED_GROUPS,
    ADDED_SHIFTS,
    COLD_FEATURES,
    DESIGN_ENTRIES,
    FEATURES,
    SCORE_CHUNK_ENTRIES,
    Signals,
    _ndcg10,
    cosines,
)

#: L-BFGS iterations of :func:`added_fit` (four parameters, a convex loss)
ITERATIONS = 50

#: (history, next item) examples each of the ten refitted user towers trains on at most, a
#: seeded sample of those without the group's items (the served tower: ``--tower-max-examples``)
REFIT_MAX_EXAMPLES = 10_000


def added_groups(n_items: int, seed: int) -> np.ndarray:
    """Each item's group: the items of one group at a time are scored as new."""
    return np.random.default_rng(seed).permutation(n_items) % ADDED_GROUPS


#: an added item's standardised :data:`COLD_FEATURES` for some requests (the design's rows)
Columns = Callable[[np.ndarray], list[Any]]


@dataclass
class TrainingEvents:
    """What the user tower and the content prior were fitted on, and how, so that they can be
    fitted again without some items' events (``pipeline.fit`` makes it)."""

    sequences: Sequence[tuple[np.ndarray, np.ndarray]]  # per user: items, times
    recent: np.ndarray  # the recency-weighted counts the content prior fitted
    tower_epochs: int
    tower_max_examples: int | None
    seed: int
    #: the refits' own cap on examples (None: the served tower's)
    refit_max_examples: int | None = REFIT_MAX_EXAMPLES

    def fit_without(self, item_vectors: np.ndarray, dropped: np.ndarray) -> tuple[Any, Any]:
        """(user tower, content prior) fitted as ``pipeline.fit`` fits them, on the events
        of the items not ``dropped`` (a boolean per item): the dropped items are in no history
        and no softmax, as an item added after training is in none. The user tower trains on
        at most ``refit_max_examples`` of the kept examples (a sample of them, never a warm
        start from the served tower: its weights learned the dropped items' events)."""
        from tunesmith_recommend.two_tower import train_content_prior, train_user_tower

        kept = []
        for items, times in self.sequences:
            keep = ~dropped[items]
            kept.append((items[keep], times[keep]))
        caps = [c for c in (self.tower_max_examples, self.refit_max_examples) if c is not None]
        tower = train_user_tower(
            item_vectors,
            kept,
            epochs=self.tower_epochs,
            seed=self.seed,
            max_examples=min(caps) if caps else None,
        )
        return tower, train_content_prior(item_vectors[~dropped], self.recent[~dropped])


class HeldOutColumns:
    """The standardised :data:`COLD_FEATURES` of each item as scored in its own group's
    simulation (the only one where it is new): the two-tower score by a user tower, and the
    content prior by a prior, both fitted without the group's events; the text match (the
    pretrained encoder's cosine, nothing learned from events) as the design has it.

    Called with the design's rows, as ``design.added_columns`` is. The two-tower column is kept
    when the requests times items fit in :data:`DESIGN_ENTRIES` (the fit asks for the same rows
    at each of its steps), else made again each time.
    """

    def __init__(
        self, design: Any, signals: Signals, training: TrainingEvents, n_items: int, seed: int
    ) -> None:
        self.design = design
        self.vectors = signals.item_vectors
        groups = added_groups(n_items, seed)
        self.members = [np.flatnonzero(groups == group) for group in range(ADDED_GROUPS)]
        histories = design.val.histories
        prior = np.empty(n_items)
        self.users = []
        for group, members in enumerate(self.members):
            tower, group_prior = training.fit_without(self.vectors, groups == group)
            self.users.append(tower.encode(self.vectors, histories))
            prior[members] = self.vectors[members] @ group_prior
        self.prior = prior / design.scales["content_prior"]
        self.keep = len(histories) * n_items <= DESIGN_ENTRIES
        self._kept: dict[tuple[int, int], np.ndarray] = {}

    def two_tower(self, rows: np.ndarray) -> np.ndarray:
        """The two-tower column for ``rows``' requests, [rows, items] float64."""
        key = (int(rows[0]), len(rows))
        if key in self._kept:
            return self._kept[key]
        out = np.empty((len(rows), len(self.vectors)))
        for users, members in zip(self.users, self.members, strict=True):
            out[:, members] = cosines(users[rows], self.vectors[members])
        out /= self.design.scales["two_tower"]
        if self.keep:
            self._kept[key] = out
        return out

    def __call__(self, rows: np.ndarray) -> list[Any]:
        given = dict(zip(COLD_FEATURES, self.design.added_columns(rows), strict=True))
        given["two_tower"] = self.two_tower(rows)
        given["content_prior"] = self.prior
        return [given[name] for name in COLD_FEATURES]


def catalogue_params(design: Any, w: np.ndarray) -> np.ndarray:
    """An item without events' parameters under ``w`` (in ``design.names`` order): the whole
    weights of :data:`COLD_FEATURES` and the constant (freshness at the stalest, "no events
    yet"), standardised: what an added item took before it had its own."""
    weight = dict(zip(design.names, w, strict=True))
    text = [float(weight[name] + weight[f"cold:{name}"]) for name in COLD_FEATURES]
    return np.asarray([*text, catalogue_constant(design, w)])


def catalogue_constant(design: Any, w: np.ndarray) -> float:
    """The constant part of an item without events' score under ``w``."""
    scales = design.scales
    return (
        float(w[FEATURES.index("freshness")]) * design.stalest / scales["freshness"]
        + float(w[FEATURES.index("cold")]) / scales["cold"]
    )


def added_text(params: np.ndarray, columns: list[Any]) -> Any:
    """An added item's score without its constant: ``params``' text weights times ``columns``
    (:data:`COLD_FEATURES`' standardised features, [requests, items] or [items])."""
    total: Any = 0.0
    for weight, column in zip(params[: len(COLD_FEATURES)], columns, strict=True):
        if weight:
            total = total + float(weight) * column
    return total


def _chunks(design: Any, n_items: int) -> list[np.ndarray]:
    """Request rows scored at a time (about :data:`SCORE_CHUNK_ENTRIES` scores)."""
    step = max(1, SCORE_CHUNK_ENTRIES // max(n_items, 1))
    n = len(design.val.targets)
    return [np.arange(start, min(start + step, n)) for start in range(0, n, step)]


def _seen_in(rows: np.ndarray, owners: np.ndarray, items: np.ndarray) -> tuple[Any, Any]:
    """``rows``' (request, item) seen pairs, the requests local to ``rows``."""
    mine = (owners >= rows[0]) & (owners <= rows[-1])
    return owners[mine] - rows[0], items[mine]


def added_fit(
    design: Any,
    w: np.ndarray,
    n_items: int,
    seed: int,
    l2: float,
    columns_of: Columns | None = None,
) -> np.ndarray:
    """The added items' parameters (:func:`catalogue_params`' layout) maximising the softmax
    likelihood of each validation request's held-out item in the simulated catalogues, each
    group of items in turn scored as new by them, the others by ``w``; an L2 penalty ``l2``
    on the text weights, as the ranker's own fit has. ``columns_of``: the new items' columns
    (:class:`HeldOutColumns`; by default the design's, for signals without training events).

    The other items' scores do not depend on the parameters, so each request's softmax
    denominator in each simulation is their exponentials summed once (per group) plus the new
    items', made again at each step a few requests at a time.
    """
    from scipy.optimize import minimize

    columns_of = columns_of or design.added_columns
    groups = added_groups(n_items, seed)
    onehot = np.zeros((n_items, ADDED_GROUPS))
    onehot[np.arange(n_items), groups] = 1.0
    owners, items = seen_pairs(design.val, n_items)
    targets = design.val.targets
    fixed = []
    for rows in _chunks(design, n_items):
        base = design.scores(w, rows)
        seen = _seen_in(rows, owners, items)
        base[seen] = -np.inf
        top = base.max(1)
        by_group = np.exp(base - top[:, None]) @ onehot  # [rows, groups]
        local = np.arange(len(rows))
        columns = columns_of(rows)
        at_target = np.stack(
            [np.broadcast_to(c, base.shape)[local, targets[rows]] for c in columns], axis=1
        )
        fixed.append((rows, seen, top, by_group, base[local, targets[rows]], at_target))
    n_terms = len(targets) * ADDED_GROUPS
    n_text = len(COLD_FEATURES)

    def loss_and_grad(params: np.ndarray) -> tuple[float, np.ndarray]:
        loss, grad = 0.0, np.zeros(len(params))
        for rows, seen, top, by_group, target_base, at_target in fixed:
            columns = columns_of(rows)
            new = added_text(params, columns) + params[-1]
            new = np.array(np.broadcast_to(new, (len(rows), n_items)))
            new[seen] = -np.inf
            peak = np.maximum(top, new.max(1))
            mass = np.exp(new - peak[:, None])
            denominator = (by_group.sum(1, keepdims=True) - by_group) * np.exp(top - peak)[
                :, None
            ] + mass @ onehot
            target_new = at_target @ params[:n_text] + params[-1]
            loss += float((np.log(denominator) + peak[:, None]).sum())
            # the held-out item is new in its own group's simulation, as it is in the others
            loss -= float(target_base.sum() * (ADDED_GROUPS - 1) + target_new.sum())
            for at, column in enumerate(columns):
                weighted = (mass * column) @ onehot
                grad[at] += float((weighted / denominator).sum()) - float(at_target[:, at].sum())
            grad[-1] += float(((mass @ onehot) / denominator).sum()) - len(rows)
        loss /= n_terms
        grad /= n_terms
        text = params[:n_text]
        loss += l2 * float(text @ text)
        grad[:n_text] += 2 * l2 * text
        return loss, grad

    start = catalogue_params(design, w)
    result = minimize(
        loss_and_grad, start, jac=True, method="L-BFGS-B", options={"maxiter": ITERATIONS}
    )
    return np.asarray(result.x, dtype=np.float64)


def added_shift(
    design: Any,
    w: np.ndarray,
    params: np.ndarray,
    n_items: int,
    seed: int,
    columns_of: Columns | None = None,
) -> float:
    """The move of ``params``' constant, of :data:`ADDED_SHIFTS` (in "no events yet" units),
    with the best validation NDCG@10 in the simulated catalogues of :func:`added_fit`.

    A move is rewarded where a held-out item of the group comes up, and paid for where the
    group's items its user did not choose push the held-out item down. The catalogue's scores
    do not move with it (only added items take it), so validation NDCG@10 as ranked cannot
    choose it, and a floor on the new items' recall alone lifted every added item into every
    list where text says little (the sample). ``columns_of``: as :func:`added_fit`'s.
    """
    columns_of = columns_of or design.added_columns
    groups = added_groups(n_items, seed)
    constant = float(params[-1])
    steps = np.asarray(ADDED_SHIFTS) / design.scales["cold"]
    gains = np.zeros(len(ADDED_SHIFTS))
    owners, items = seen_pairs(design.val, n_items)
    targets = design.val.targets
    for rows in _chunks(design, n_items):
        base = design.scores(w, rows)
        text = np.broadcast_to(added_text(params, columns_of(rows)), base.shape).copy()
        seen = _seen_in(rows, owners, items)
        base[seen] = -np.inf
        text[seen] = -np.inf
        local = np.arange(len(rows))
        target = targets[rows]
        for group in range(ADDED_GROUPS):
            added = groups == group
            new_target = added[target]
            for at, move in enumerate(steps):
                new = text[:, added] + (constant + move)
                score = np.where(
                    new_target, text[local, target] + (constant + move), base[local, target]
                )
                above = (base[:, ~added] > score[:, None]).sum(1)
                above += (new > score[:, None]).sum(1)
                # the target's own column is in one of the two, compared with itself: not above
                gains[at] += float(_ndcg10(above).sum())
    return float(ADDED_SHIFTS[int(np.argmax(gains))])  # the least of equal ones
