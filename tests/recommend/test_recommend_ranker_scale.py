"""The ranker's fit on a large catalogue: each validation request's softmax over a candidate set
(the held-out item, the items that carry most of the softmax's mass, a uniform sample of the rest
standing for it), and full rankings made from the request's factored features instead of a
[requests, items, 11] design (1.8 GB for 200 requests at 200,000 books; ten minutes of CPU)."""

from __future__ import annotations

import numpy as np
import pytest

from tunesmith_recommend import ranker as rk
from tunesmith_recommend import ranker_sampled as rs
from tunesmith_recommend.split import Requests


def _signals(n: int, d: int = 16, seed: int = 0) -> rk.Signals:
    """Random signals of a shop's shape: half the items without events, Zipf-like counts."""
    from scipy.sparse import csr_matrix

    from tunesmith_recommend.two_tower import MAX_HISTORY, UserTower

    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, d)).astype(np.float32)
    warm = rng.random(n) < 0.5
    counts = np.where(warm, np.minimum(rng.zipf(1.6, n), 500), 0).astype(float)
    tower = UserTower(
        rng.standard_normal(MAX_HISTORY).astype(np.float32) * 0.1,
        rng.standard_normal(d).astype(np.float32) * 0.1,
        (rng.standard_normal((d, d)) * 0.05).astype(np.float32),
    )
    pairs = 10 * n
    cooc = csr_matrix(
        (rng.random(pairs).astype(np.float32), (rng.integers(0, n, pairs), rng.integers(0, n, pairs))),
        shape=(n, n),
    )  # fmt: skip
    return rk.Signals(
        item_vectors=vectors / np.linalg.norm(vectors, axis=1, keepdims=True),
        tower=tower,
        counts=counts,
        recent=counts * rng.random(n),
        prior=rng.standard_normal(d).astype(np.float32),
        cooc=cooc,
        age=np.where(warm, rng.random(n) * 1e6, np.inf),
    )


def _requests(signals: rk.Signals, m: int, seed: int = 1) -> Requests:
    """Requests whose targets follow popularity, co-occurrence and (for new items) the history's
    text, some of them in their own history (a re-read), some users with low ratings."""
    rng = np.random.default_rng(seed)
    n = len(signals.counts)
    p = (signals.counts + 0.3) / (signals.counts + 0.3).sum()
    histories = [rng.choice(n, rng.integers(1, 10), replace=False, p=p) for _ in range(m)]
    targets = rng.choice(n, m, p=p)
    cold = np.flatnonzero(signals.counts == 0)
    for row in range(m):
        if row % 5 == 1:
            mean = signals.item_vectors[histories[row]].mean(0)
            targets[row] = cold[np.argmax(signals.item_vectors[cold] @ mean)]
        elif row % 5 == 2:
            targets[row] = int(np.argmax(signals.cooc[histories[row]].sum(0).A1))
        elif row % 11 == 3:
            targets[row] = histories[row][0]
    return Requests(
        users=np.arange(m, dtype=np.int32),
        targets=targets.astype(np.int32),
        histories=histories,
        history_times=[np.zeros(len(h)) for h in histories],
        rated_below=[rng.integers(0, n, rng.integers(0, 3)) for _ in range(m)],
    )


def _dense_and_sampled(n: int, m: int) -> tuple[rk._DenseDesign, rs.SampledDesign, Requests]:
    signals = _signals(n)
    val = _requests(signals, m)
    inputs = signals.user_inputs(val.histories)
    return rk._DenseDesign(signals, inputs, val, 0), rs.SampledDesign(signals, inputs, val, 0), val


def test_the_factored_features_score_every_item_as_the_dense_design_did(monkeypatch):
    # a user feature made a few requests at a time, its scale merged over the chunks
    monkeypatch.setattr(rs, "FEATURE_CHUNK_ENTRIES", 3 * 400)
    dense, sampled, val = _dense_and_sampled(400, 25)
    for name, scale in dense.scales.items():
        assert sampled.scales[name] == pytest.approx(scale, rel=1e-6), name
    assert sampled.names == dense.names
    w = np.random.default_rng(2).standard_normal(len(dense.names))
    rows = np.arange(len(val))
    expected = dense.x.numpy().astype(np.float64) @ w
    assert np.allclose(sampled.scorer(w)(rows), expected, rtol=0, atol=1e-5)
    assert np.array_equal(sampled.ranks(w), dense.ranks(w))
    # a candidate's columns are its column of the dense design
    for row in (0, 3, 11):
        items = sampled.candidates[row]
        got = sampled.x.numpy()[row, : len(items)]
        assert np.allclose(got, dense.x.numpy()[row, items], rtol=0, atol=1e-6)


def test_candidates_hold_the_target_first_and_never_an_item_the_request_has_seen(monkeypatch):
    monkeypatch.setattr(rs, "EXACT_TOP", 8)
    monkeypatch.setattr(rs, "SAMPLED", 40)
    _, sampled, val = _dense_and_sampled(500, 30)
    padding, offset = sampled.padding.numpy(), sampled.offset.numpy()
    for row, (items, seen) in enumerate(zip(sampled.candidates, val.seen(), strict=True)):
        assert items[0] == val.targets[row]  # a re-read held-out item competes as itself
        assert len(np.unique(items)) == len(items)
        assert not set(items[1:].tolist()) & set(seen.tolist())
        assert not padding[row, : len(items)].any() and padding[row, len(items) :].all()
        # the last 40 are the uniform sample, each standing for its share of the rest
        rest = 500 - len(set(seen.tolist()) | set(items[:-40].tolist()))
        assert offset[row, len(items) - 40 : len(items)] == pytest.approx(np.log(rest / 40))
        assert not offset[row, : len(items) - 40].any()


def test_a_large_catalogues_candidate_fit_learns_what_the_whole_catalogues_softmax_did(
    monkeypatch,
):
    signals = _signals(3000, seed=4)
    val = _requests(signals, 150, seed=5)
    dense, dense_ndcg = rk.fit_ranker(signals, val, seed=0)  # 3,000 items: the dense design

    def no_dense_design(*args, **kwargs):
        raise AssertionError("a large catalogue made the [requests, items, columns] design")

    monkeypatch.setattr(rk, "SAMPLED_ABOVE_ITEMS", 2000)
    monkeypatch.setattr(rk, "_design", no_dense_design)
    # candidates: a fifth of the catalogue, most of them the uniform sample
    monkeypatch.setattr(rs, "EXACT_TOP", 32)
    monkeypatch.setattr(rs, "SAMPLED", 400)
    sampled, sampled_ndcg = rk.fit_ranker(signals, val, seed=0)
    for name, weight in dense.weights.items():
        assert sampled.weights[name] == pytest.approx(weight, abs=0.05), name
    for name, weight in dense.cold_weights.items():
        assert sampled.cold_weights[name] == pytest.approx(weight, abs=0.05), name
    assert sampled_ndcg == pytest.approx(dense_ndcg, abs=0.02)


def test_a_small_catalogue_keeps_the_dense_design_and_a_large_one_fits_more_requests():
    assert rk.ranker_requests(1_108, 3_096) == 1_108  # MovieTweetings: every request, as before
    assert rk.ranker_requests(93_770, rk.SAMPLED_ABOVE_ITEMS) == 200  # the dense design's cap
    # 200,000 books: two float32 features per (request, item) rather than eleven columns
    assert rk.ranker_requests(93_770, 200_000) == 500
    assert rk.ranker_requests(93_770, 200_000, max_requests=50) == 50
    assert rk.ranker_requests(93_770, 2_000_000) == rk.MIN_REQUESTS


def test_the_candidate_fit_holds_far_less_than_the_dense_design(monkeypatch):
    import tracemalloc

    import torch

    from tunesmith_recommend import evaluate as ev

    # the first L-BFGS fit imports torch.optim and what it needs (tens of MB): not the fit's own
    rk._fit_listwise(
        torch.zeros(1, 2, 11),
        torch.zeros(1, 2, dtype=torch.bool),
        torch.zeros(1, dtype=torch.int64),
        0.01,
    )

    n, m = 20_000, 40
    signals = _signals(n, seed=6)
    val = _requests(signals, m, seed=7)
    inputs = signals.user_inputs(val.histories)
    monkeypatch.setattr(ev, "SCORE_ENTRIES", 4 * n)
    monkeypatch.setattr(rs, "FEATURE_CHUNK_ENTRIES", 5 * n)
    monkeypatch.setattr(rs, "EXACT_TOP", 32)
    monkeypatch.setattr(rs, "SAMPLED", 256)
    design_bytes = m * n * (len(rk.FEATURES) + len(rk.COLD_FEATURES)) * 4
    tracemalloc.start()
    try:
        design = rs.SampledDesign(signals, inputs, val, 0)
        design.ranks(design.fit(0.01, rows=np.arange(m) % 5 != 0))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the two dense user features (float32: 2/11 of the design), a few requests' feature in the
    # making and the candidates' columns
    assert peak < design_bytes / 3


def test_every_no_events_shift_ranks_as_its_own_full_ranking(monkeypatch):
    """The shift search scores items with events once for all nine shifts; each shift's ranks
    must still be those of ranking its own weights (bit for bit: one swapped tie moves NDCG)."""
    from tunesmith_recommend import evaluate as ev

    n, m = 600, 40
    dense, sampled, val = _dense_and_sampled(n, m)
    # several chunks and batches, so the tie-break draws follow rank_requests' batches
    monkeypatch.setattr(rk, "SCORE_CHUNK_ENTRIES", 7 * n * len(dense.names))
    monkeypatch.setattr(ev, "SCORE_ENTRIES", 6 * n)
    rows = np.arange(m) % 5 != 2
    random = np.random.default_rng(4).standard_normal(len(dense.names))
    # popularity and "no events yet" only: every new item ties with every other, as the
    # shifts' draws among ties must reproduce
    tied = np.zeros(len(dense.names))
    tied[[dense.names.index("popularity"), dense.names.index("cold")]] = [1.0, -0.3]
    assert dense.cold_targets.any() and (~dense.cold_targets).any()
    for design in (dense, sampled):
        for w in (random, tied):
            for picked in (None, rows):
                got = design.shifted_ranks(w, rk.COLD_SHIFTS, rows=picked)
                for shift, ranks in zip(rk.COLD_SHIFTS, got, strict=True):
                    expected = design.ranks(rk._shifted(w, shift), rows=picked)
                    assert np.array_equal(ranks, expected), (type(design).__name__, shift)


def test_every_no_events_shift_scores_new_items_with_the_bits_of_its_own_scores(monkeypatch):
    """A new item's score under a shift is its own product's, not the unshifted score plus the
    shift (the last bits differ, and a tie in one is an order in the other)."""
    dense, sampled, val = _dense_and_sampled(500, 30)
    seen: list[tuple[np.ndarray, list[np.ndarray]]] = []
    count = rk._count_shifted

    def spy(base, colds, *rest):
        seen.append((base.copy(), [scores.copy() for scores in colds]))
        return count(base, colds, *rest)

    monkeypatch.setattr(rk, "_count_shifted", spy)
    monkeypatch.setattr(rs, "_count_shifted", spy)
    w = np.random.default_rng(8).standard_normal(len(dense.names))
    new = dense.cold > 0
    for design, scores_of in (
        (dense, lambda trial: dense.x.numpy().astype(np.float64) @ trial),
        (sampled, lambda trial: sampled.scorer(trial)(np.arange(len(val)))),
    ):
        seen.clear()
        design.shifted_ranks(w, rk.COLD_SHIFTS)
        base = np.concatenate([chunk for chunk, _ in seen])
        for number, shift in enumerate(rk.COLD_SHIFTS):
            expected = scores_of(rk._shifted(w, shift))
            colds = np.concatenate([chunk[number] for _, chunk in seen])
            assert np.array_equal(colds, expected[:, new]), (type(design).__name__, shift)
            assert np.array_equal(base[:, ~new], expected[:, ~new]), (type(design).__name__, shift)
