"""``recommend eval`` at a bookshop's size: each request's top ten without partitioning every
row, seen items left out without a masked copy of the scores, one draw of bootstrap resamples
for every model, and a line of progress while a model ranks.

The figures must not move: the ranks and top-ten lists are checked against the dense
comparison the evaluation made before (a masked float64 copy, ``argpartition`` of every row).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tunesmith_recommend import baselines as bl
from tunesmith_recommend import evaluate as ev
from tunesmith_recommend.split import Requests, leave_last_out


def dense_ranking(scores, requests, n_items, *, k=10, batch_size=256, seed=0):
    """What ``rank_requests`` computed before: per batch, a masked float64 copy compared
    whole, and its top k by ``argpartition`` of every row."""
    rng = np.random.default_rng(seed)
    ranks, top = [], set()
    for start in range(0, len(requests), batch_size):
        rows = np.arange(start, min(start + batch_size, len(requests)))
        batch = requests.subset(np.isin(np.arange(len(requests)), rows))
        masked = np.array(scores[rows], dtype=np.float64)
        target = masked[np.arange(len(rows)), batch.targets].copy()
        ev.mask_seen(masked, batch)
        masked[np.arange(len(rows)), batch.targets] = target
        greater = (masked > target[:, None]).sum(1)
        ties = (masked == target[:, None]).sum(1) - 1
        shown = min(k, n_items)
        listed = np.argpartition(-masked, shown - 1, axis=1)[:, :shown]
        top.update(listed[np.take_along_axis(masked, listed, axis=1) > -np.inf].tolist())
        ranks.append(greater + rng.integers(0, ties + 1))
    return np.concatenate(ranks), np.asarray(sorted(top))


def shop_requests(rng, n_requests, n_items, *, with_rated_below=True):
    """Histories with repeated items, re-read targets and items rated below the threshold."""
    histories = [rng.integers(0, n_items, rng.integers(0, 30)) for _ in range(n_requests)]
    targets = rng.integers(0, n_items, n_requests)
    for row in range(0, n_requests, 6):
        if len(histories[row]):
            targets[row] = histories[row][-1]  # read again: competes with its own score
    below = [rng.integers(0, n_items, rng.integers(0, 4)) for _ in range(n_requests)]
    return Requests(
        users=np.arange(n_requests, dtype=np.int32),
        targets=targets.astype(np.int32),
        histories=histories,
        history_times=[np.zeros(len(h)) for h in histories],
        rated_below=below if with_rated_below else [],
    )


def kinds_of_scores(rng, n_requests, n_items):
    """Distinct floats, float32, few values (ties at the tenth place), and -inf/inf/NaN."""
    odd = rng.standard_normal((n_requests, n_items))
    odd[rng.random(odd.shape) < 0.05] = -np.inf
    odd[rng.random(odd.shape) < 0.01] = np.inf
    odd[rng.random(odd.shape) < 0.002] = np.nan
    return {
        "distinct": rng.standard_normal((n_requests, n_items)),
        "float32": rng.standard_normal((n_requests, n_items)).astype(np.float32),
        "ties": rng.integers(0, 4, (n_requests, n_items)).astype(np.float64),
        "counts": rng.integers(0, 30, (n_requests, n_items)),  # integers, as a model may give
        "odd": odd,
    }


@pytest.mark.parametrize("n_items", [7, 150, 3096, 20_000])
@pytest.mark.parametrize("top_block", [1, 4, 256])
def test_ranks_and_top_ten_are_the_dense_comparisons_for_every_kind_of_score(
    monkeypatch, n_items, top_block
):
    rng = np.random.default_rng(n_items + top_block)
    n_requests = 70
    requests = shop_requests(rng, n_requests, n_items)
    monkeypatch.setattr(ev, "TOP_BLOCK", top_block, raising=False)
    for name, scores in kinds_of_scores(rng, n_requests, n_items).items():
        if name == "odd":  # a NaN target cannot be ranked, before or now
            scores[np.arange(n_requests), requests.targets] = 0.5
        ranks, top = dense_ranking(scores, requests, n_items, batch_size=32, seed=3)
        ranked = ev.rank_requests(
            lambda batch, s=scores: s[batch.users], requests, n_items, batch_size=32, seed=3
        )
        assert ranked.ranks.tolist() == ranks.tolist(), name
        assert ranked.top_items.tolist() == top.tolist(), name
        ranks_only = ev.rank_requests(
            lambda batch, s=scores: s[batch.users],
            requests,
            n_items,
            batch_size=32,
            seed=3,
            coverage=False,
        )
        assert ranks_only.ranks.tolist() == ranks.tolist(), name


def test_popularitys_top_ten_comes_from_its_one_row_with_the_dense_lists():
    rng = np.random.default_rng(8)
    n_items, n_requests = 5000, 300
    requests = shop_requests(rng, n_requests, n_items)
    for row in (rng.random(n_items), rng.integers(0, 5, n_items).astype(np.float64)):
        dense = np.broadcast_to(row, (n_requests, n_items))
        ranks, top = dense_ranking(dense, requests, n_items, seed=1)
        ranked = ev.rank_requests(
            lambda batch, row=row: np.broadcast_to(row, (len(batch), n_items)),
            requests,
            n_items,
            seed=1,
        )
        assert ranked.ranks.tolist() == ranks.tolist()
        assert ranked.top_items.tolist() == top.tolist()


def test_distinct_scores_find_each_top_ten_without_partitioning_a_row(monkeypatch):
    # argpartition of every row was 2.6 ms a request at 200,000 items, six times the counting
    rng = np.random.default_rng(2)
    n_items, n_requests = 20_000, 100
    requests = shop_requests(rng, n_requests, n_items)
    scores = rng.standard_normal((n_requests, n_items))
    _, top = dense_ranking(scores, requests, n_items)
    partitioned: list[tuple[int, ...]] = []
    real = np.argpartition

    def spy(values, *args, **kwargs):
        partitioned.append(np.shape(values))
        return real(values, *args, **kwargs)

    monkeypatch.setattr(np, "argpartition", spy)
    ranked = ev.rank_requests(lambda batch: scores[batch.users], requests, n_items)
    assert partitioned == []
    assert ranked.top_items.tolist() == top.tolist()


def _peak(run) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("coverage", [True, False])
def test_seen_items_are_left_out_without_a_masked_copy_of_the_scores(monkeypatch, coverage):
    # fit_ranker ranks its validation requests from one precomputed [requests, items] matrix;
    # each slice was copied to float64 and masked (then negated and partitioned for coverage)
    rng = np.random.default_rng(4)
    n_items, n_requests, rows = 50_000, 60, 20
    requests = shop_requests(rng, n_requests, n_items)
    scores = rng.standard_normal((n_requests, n_items))
    monkeypatch.setattr(ev, "SCORE_ENTRIES", rows * n_items)

    def rank():
        return ev.rank_requests(
            lambda batch: scores, requests, n_items, batch_size=n_requests, coverage=coverage
        )

    one_slice_copy = rows * n_items * 8
    assert _peak(rank) < one_slice_copy / 2
    ranks, top = dense_ranking(scores, requests, n_items, batch_size=n_requests)
    assert rank().ranks.tolist() == ranks.tolist()


def test_bootstrap_resamples_are_drawn_once_per_slice_for_every_model(monkeypatch):
    rng = np.random.default_rng(5)
    n = 400
    rankings = {
        name: ev.Ranked(ranks=rng.integers(0, 40, n), top_items=np.arange(3), n_items=50, k=10)
        for name in ("popularity", "two_tower", "final_ranker")
    }
    slices = {"cold_items": rng.random(n) < 0.2, "short_users": rng.random(n) < 0.4}
    one_by_one = {name: ev.summarise(r, slices) for name, r in rankings.items()}
    draws = []
    real = np.random.default_rng

    def counting(*args, **kwargs):
        draws.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(ev.np.random, "default_rng", counting)
    together = ev.summarise_all(rankings, slices)
    assert together == one_by_one  # the same intervals to the last bit, and in the same order
    assert [list(s) for s in together["two_tower"].values()] == [
        list(s) for s in one_by_one["two_tower"].values()
    ]
    # one generator per slice, not one per slice x model x metric (27)
    assert len(draws) == 3
    assert ev.bootstrap_interval(np.zeros(0)) == (pytest.approx(np.nan, nan_ok=True),) * 2


def test_eval_says_which_model_it_ranks_and_how_far_it_has_got(monkeypatch):
    from test_recommend_protocol import make_events

    from tunesmith_recommend import pipeline

    rng = np.random.default_rng(6)
    n_items = 40
    events = make_events({f"u{u:03d}": rng.integers(0, n_items, 5).tolist() for u in range(600)})
    split = leave_last_out(events, n_items)
    vectors = rng.standard_normal((600, n_items))
    fitted = SimpleNamespace(
        split=split,
        settings=pipeline.Settings(),
        baselines={"popularity": bl.Popularity().fit(split)},
        two_tower_scores=lambda batch: vectors[batch.users],
        ranker_scores=lambda batch: -vectors[batch.users],
    )
    monkeypatch.setattr(pipeline, "PROGRESS_SECONDS", 0.0)
    said: list[str] = []
    result = pipeline.evaluate(fitted, n_boot=100, say=said.append)
    assert said[0] == "ranking 600 test requests over 40 items: popularity (1 of 3)"
    assert "  two_tower: 512 of 600 test requests, about 0 s left" in said
    assert sum(line.startswith("ranking 600 test requests") for line in said) == 3
    assert [line.split(":")[0] for line in said if "of 600 test requests" in line] == [
        "  popularity",
        "  popularity",
        "  two_tower",
        "  two_tower",
        "  final_ranker",
        "  final_ranker",
    ]
    assert set(result["models"]) == {"popularity", "two_tower", "final_ranker"}
    # --max-test-requests: the sample is what is ranked and said
    said.clear()
    pipeline.evaluate(fitted, n_boot=100, max_requests=25, say=said.append)
    assert said[0] == "ranking 25 test requests over 40 items: popularity (1 of 3)"
