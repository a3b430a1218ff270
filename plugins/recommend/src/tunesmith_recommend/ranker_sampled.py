"""The ranker's fit on a large catalogue: each request's softmax over a candidate set.

Above :data:`~tunesmith_recommend.ranker.SAMPLED_ABOVE_ITEMS` items the dense [requests, items,
11] float32 design held 1.8 GB for 200 requests at 200,000 items, and each of a fit's L-BFGS
steps passed over all of it and made about 1 GB of fresh temporaries. Here the listwise softmax
of a request is over its candidates instead, as serving only ever ranks a candidate set:

- the held-out item;
- an exact part, the items that carry most of the softmax's mass whatever the weights: the
  catalogue's most popular and most recently popular, and the request's nearest items by the
  two-tower and by text and its strongest co-occurring ones (:data:`EXACT_TOP` of each);
- a uniform sample of :data:`SAMPLED` of the rest, each with the log of how many items it stands
  for added to its logit, so the softmax's denominator is an unbiased estimate of the whole
  catalogue's (sampled softmax's log-Q correction, with a uniform Q).

The ranks that choose the penalty and the "no events yet" shift, and the validation NDCG@10
reported, are still over the whole catalogue: they are made from each request's two dense user
features (two-tower and text match, float32), its sparse co-occurrence row and the item columns,
rather than from eleven columns per (request, item).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tunesmith_recommend import evaluate
from tunesmith_recommend.ranker import (
    COLD_FEATURES,
    FEATURES,
    ITEM_FEATURES,
    Signals,
    UserInputs,
    _cold_columns,
    _count_shifted,
    _fit_listwise,
    _scale,
    _shifted,
    stalest_freshness,
)
from tunesmith_recommend.split import Requests

#: per request, this many of the catalogue's most popular, most recently popular, and the
#: request's nearest by two-tower, by text match and by co-occurrence are candidates as they are
EXACT_TOP = 256
#: items sampled uniformly from the rest of each request's catalogue
SAMPLED = 2048
#: user features dense per request (co-occurrence stays sparse: most of a row is zero)
DENSE_FEATURES = ("two_tower", "text_similarity")
#: item columns, standardised, with the content prior's cold term last
ITEM_COLUMNS = (*ITEM_FEATURES, "cold:content_prior")
#: [requests, items] float64 entries of a user feature made at a time
FEATURE_CHUNK_ENTRIES = 1 << 23
#: new items whose scores under every "no events yet" shift are summed at a time (a few
#: requests' terms of them stay in the CPU's cache for the nine shifts)
SHIFT_BLOCK_ITEMS = 2048


class SampledDesign:
    """Candidate sets for the fit and factored features for the full rankings of ``val``'s
    requests (the same interface as the dense design in :mod:`tunesmith_recommend.ranker`)."""

    def __init__(self, signals: Signals, inputs: UserInputs, val: Requests, seed: int) -> None:
        self.seed, self.n_items = seed, len(signals.counts)
        self.names = [*FEATURES, *(f"cold:{name}" for name in COLD_FEATURES)]
        # rank_requests hands the score function a subset of these requests: their users are
        # made the rows of the features here
        self.val = Requests(
            users=np.arange(len(val), dtype=np.int32),
            targets=val.targets,
            histories=val.histories,
            history_times=val.history_times,
            rated_below=val.rated_below,
        )
        scales: dict[str, float] = {}
        items = signals.item_features()
        self.cold = np.asarray(items["cold"], dtype=np.float64)
        for name in ITEM_FEATURES:
            scales[name] = _scale(items[name])
        self.dense = {name: self._dense(signals, inputs, name, scales) for name in DENSE_FEATURES}
        self.cooc = _log_cooc(inputs.cooc, scales)
        self.scales = {name: scales[name] for name in FEATURES}  # FEATURES order, as ranker.json
        columns = {name: np.asarray(items[name]) / scales[name] for name in ITEM_FEATURES}
        columns["cold:content_prior"] = self.cold * columns["content_prior"]
        self.items = np.stack([columns[name] for name in ITEM_COLUMNS], axis=1).astype(np.float32)
        self.cold_targets = self.cold[val.targets] > 0
        self.stalest = stalest_freshness(signals)
        self._candidates(np.random.default_rng(seed))

    def _dense(
        self, signals: Signals, inputs: UserInputs, name: str, scales: dict[str, float]
    ) -> np.ndarray:
        """One user feature [requests, items] float32, standardised, made a few requests at a
        time; its scale (standard deviation) is merged over the chunks in float64."""
        n_requests = len(inputs.users)
        out = np.empty((n_requests, self.n_items), dtype=np.float32)
        step = max(1, FEATURE_CHUNK_ENTRIES // max(self.n_items, 1))
        count, mean, m2 = 0, 0.0, 0.0
        for start in range(0, n_requests, step):
            rows = slice(start, start + step)
            part = UserInputs(inputs.users[rows], inputs.means[rows], inputs.cooc[rows])
            values = signals.user_feature(part, name)
            out[rows] = values
            mask = np.isfinite(values)
            finite = values.reshape(-1) if mask.all() else values[mask]  # no copy when finite
            del mask
            if len(finite):  # Chan et al.'s merge of two parts' means and squared deviations
                part_mean = float(finite.mean())
                part_m2 = float(((finite - part_mean) ** 2).sum())
                total = count + len(finite)
                delta = part_mean - mean
                m2 += part_m2 + delta * delta * count * len(finite) / total
                mean += delta * len(finite) / total
                count = total
        std = float(np.sqrt(m2 / count)) if count else 0.0
        scales[name] = std if std > 1e-12 else 1.0
        out /= np.float32(scales[name])
        return out

    def _columns(self, row: int, items: np.ndarray) -> np.ndarray:
        """The design's columns for one request and some items, [len(items), columns]."""
        cold = self.cold[items]
        values = {name: self.dense[name][row, items].astype(np.float64) for name in DENSE_FEATURES}
        values["cooccurrence"] = self.cooc[row].toarray()[0, items]
        for position, name in enumerate(ITEM_COLUMNS):
            values[name] = self.items[items, position]
        for name in DENSE_FEATURES:
            values[f"cold:{name}"] = cold * values[name]
        return np.stack([values[name] for name in self.names], axis=1)

    def _candidates(self, rng: np.random.Generator) -> None:
        """Each request's candidates (the held-out item first), their columns, the log of the
        items each stands for, and a mask of the padding."""
        import torch

        item_top = {
            name: _top(self.items[:, ITEM_COLUMNS.index(name)], EXACT_TOP)
            for name in ("popularity", "recent_popularity")
        }
        excluded = np.zeros(self.n_items, dtype=bool)
        chosen: list[tuple[np.ndarray, np.ndarray]] = []
        for row, (target, seen) in enumerate(zip(self.val.targets, self.val.seen(), strict=True)):
            cooc = self.cooc[row]
            exact = np.concatenate(
                [
                    *item_top.values(),
                    *(_top(self.dense[name][row], EXACT_TOP) for name in DENSE_FEATURES),
                    cooc.indices[_top(cooc.data, EXACT_TOP)],
                ]
            )
            excluded[seen] = True  # a re-watched held-out item competes as itself, once
            excluded[target] = True
            exact = np.unique(exact[~excluded[exact]])
            excluded[exact] = True
            rest = np.flatnonzero(~excluded)
            excluded[:] = False
            sampled = rng.choice(rest, min(SAMPLED, len(rest)), replace=False)
            weight = np.log(len(rest) / len(sampled)) if len(sampled) else 0.0
            items = np.concatenate([[target], exact, sampled]).astype(np.int64)
            offset = np.zeros(len(items), dtype=np.float32)
            offset[1 + len(exact) :] = weight
            chosen.append((items, offset))
        width = max(len(items) for items, _ in chosen)
        x = np.zeros((len(chosen), width, len(self.names)), dtype=np.float32)
        offsets = np.zeros((len(chosen), width), dtype=np.float32)
        padding = np.ones((len(chosen), width), dtype=bool)
        for row, (items, offset) in enumerate(chosen):
            x[row, : len(items)] = self._columns(row, items)
            offsets[row, : len(items)] = offset
            padding[row, : len(items)] = False
        self.candidates = [items for items, _ in chosen]
        self.x, self.offset = torch.as_tensor(x), torch.as_tensor(offsets)
        self.padding = torch.as_tensor(padding)
        self.targets = torch.zeros(len(chosen), dtype=torch.int64)

    def fit(self, l2: float, rows: np.ndarray | None = None) -> np.ndarray:
        """Weights fitted on ``rows``' candidate sets (a boolean mask; every request by default)."""
        return _fit_listwise(self.x, self.padding, self.targets, l2, rows=rows, offset=self.offset)

    def scorer(self, w: np.ndarray) -> Any:
        """A function of request rows (and optionally some items) giving their scores for
        every item (those items) under weights ``w`` (in :attr:`names` order), [len(rows),
        items] float64: what the dense design's ``x @ w`` gave. The item-only part and the
        per-item weights are made once."""
        item_part, user_terms = self._parts(w)

        def scores(rows: np.ndarray, items: Any = slice(None)) -> np.ndarray:
            return _summed(item_part[items], user_terms(rows, items), len(rows))

        return scores

    def _parts(self, w: np.ndarray) -> tuple[np.ndarray, Any]:
        """Under weights ``w``: the item-only part of the scores, [items], and a function of
        request rows and items giving the user terms, [len(rows), items] each, one at a time
        in the order they are added to it."""
        weight = dict(zip(self.names, w, strict=True))
        item_part = self.items.astype(np.float64) @ np.asarray([weight[n] for n in ITEM_COLUMNS])
        per_item = {n: weight[n] + weight[f"cold:{n}"] * self.cold for n in DENSE_FEATURES}

        def user_terms(rows: np.ndarray, items: Any) -> Any:
            for name in DENSE_FEATURES:
                yield self.dense[name][rows][:, items] * per_item[name][items]
            if weight["cooccurrence"]:
                yield weight["cooccurrence"] * self.cooc[rows].toarray()[:, items]

        return item_part, user_terms

    def _batch_size(self) -> int:
        """Requests ranked at a time: as many as the evaluation compares at a time."""
        return max(1, evaluate.SCORE_ENTRIES // max(self.n_items, 1))

    def ranks(self, w: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """The held-out items' ranks over the whole catalogue for ``rows``' requests, a few
        requests' scores at a time."""
        requests = self.val if rows is None else self.val.subset(rows)
        scores = self.scorer(w)
        return evaluate.rank_requests(
            lambda batch: scores(batch.users),
            requests,
            self.n_items,
            batch_size=self._batch_size(),
            seed=self.seed,
            coverage=False,
        ).ranks

    def shifted_ranks(
        self, w: np.ndarray, shifts: Sequence[float], rows: np.ndarray | None = None
    ) -> list[np.ndarray]:
        """:meth:`ranks` under ``w`` with the "no events yet" weight moved by each of
        ``shifts``, the same ranks, the user terms made once for all of them.

        The weight moves the item-only part of the items without events only (the others'
        "no events yet" column is 0), so an item with events scores the same under every
        shift: those are scored and compared once, and each shift adds its item part of the
        new items to their user terms, in the order :meth:`scorer` adds them (the same bits).
        """
        requests = self.val if rows is None else self.val.subset(rows)
        cold_at = _cold_columns(self.cold)
        new_items = np.flatnonzero(cold_at >= 0)
        parts = [self._parts(_shifted(w, shift)) for shift in shifts]
        user_terms = parts[0][1]  # the same under every shift
        new_parts = [item_part[new_items] for item_part, _ in parts]
        owners, items = evaluate.seen_pairs(requests, self.n_items)
        greater = np.empty((len(parts), len(requests)), dtype=np.int64)
        ties = np.empty((len(parts), len(requests)), dtype=np.int64)
        step = self._batch_size()
        for start in range(0, len(requests), step):
            batch = requests.users[start : start + step]
            base = _summed(parts[0][0], user_terms(batch, slice(None)), len(batch))
            terms = list(user_terms(batch, new_items))
            colds = [np.empty((len(batch), len(new_items))) for _ in parts]
            # a few columns at a time for every shift: each shift's pass over the whole
            # [requests, new items] terms read them from memory again
            for start_item in range(0, len(new_items), SHIFT_BLOCK_ITEMS):
                block = slice(start_item, start_item + SHIFT_BLOCK_ITEMS)
                local = [term[:, block] for term in terms]
                for scores, item_part in zip(colds, new_parts, strict=True):
                    _summed(item_part[block], local, len(batch), out=scores[:, block])
            del terms
            mine = (owners >= start) & (owners < start + len(batch))
            counts = _count_shifted(
                base,
                colds,
                requests.targets[start : start + len(batch)],
                cold_at,
                owners[mine] - start,
                items[mine],
            )
            greater[:, start : start + len(batch)], ties[:, start : start + len(batch)] = counts
        return [
            evaluate.break_ties(g, t, seed=self.seed, batch_size=step)
            for g, t in zip(greater, ties, strict=True)
        ]

    def scores(self, w: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``rows``' requests' scores for every item under ``w``, [rows, items] float64."""
        return self.scorer(w)(rows)

    def added_columns(self, rows: np.ndarray) -> list[np.ndarray]:
        """The standardised :data:`COLD_FEATURES` an item added after training is scored by
        (see the dense design's): [rows, items] float64, the content prior [items]."""

        def column(name: str) -> np.ndarray:
            if name in DENSE_FEATURES:
                return self.dense[name][rows].astype(np.float64)
            return self.items[:, ITEM_COLUMNS.index(name)].astype(np.float64)

        return [column(name) for name in COLD_FEATURES]


def _summed(item_part: np.ndarray, terms: Any, n_rows: int, out: Any = None) -> np.ndarray:
    """``item_part`` ([items]) plus each of ``terms`` ([n_rows, items]) in their order,
    [n_rows, items] float64 (into ``out`` when given)."""
    if out is None:
        out = np.empty((n_rows, len(item_part)), dtype=np.float64)
    first = True
    for term in terms:
        if first:  # item_part + term as out[:] = item_part; out += term gave, one pass fewer
            np.add(item_part, term, out=out)
            first = False
        else:
            out += term
    if first:
        out[:] = item_part
    return out


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest of ``values`` (all of them when there are fewer)."""
    if len(values) <= k:
        return np.arange(len(values))
    return np.argpartition(-np.asarray(values), k - 1)[:k]


def _log_cooc(cooc: Any, scales: dict[str, float]) -> Any:
    """``log1p`` of the requests' co-occurrence sums, standardised, kept sparse (float64); its
    scale is the standard deviation over every (request, item), zeros included."""
    matrix = cooc.tocsr().astype(np.float64)
    matrix.data = np.log1p(matrix.data)
    n = matrix.shape[0] * matrix.shape[1]
    mean = float(matrix.data.sum()) / n if n else 0.0
    m2 = float(((matrix.data - mean) ** 2).sum()) + (n - matrix.nnz) * mean * mean
    std = float(np.sqrt(m2 / n)) if n else 0.0
    scales["cooccurrence"] = std if std > 1e-12 else 1.0
    matrix.data /= scales["cooccurrence"]
    return matrix
