"""Leave-last-out split, full-ranking metrics and the baselines."""

from __future__ import annotations

import numpy as np
import pytest

from tunesmith_recommend import baselines as bl
from tunesmith_recommend.data import Events
from tunesmith_recommend.evaluate import (
    bootstrap_interval,
    per_request_metrics,
    rank_requests,
    standard_slices,
    summarise,
)
from tunesmith_recommend.split import Requests, leave_last_out


def make_events(sequences: dict[str, list[int]]) -> Events:
    users, items, times = [], [], []
    for u, seq in enumerate(sequences.values()):
        for t, item in enumerate(seq):
            users.append(u)
            items.append(item)
            times.append(1000.0 * t + u)
    return Events(
        user_ids=list(sequences),
        users=np.asarray(users, dtype=np.int32),
        items=np.asarray(items, dtype=np.int32),
        times=np.asarray(times),
    )


def test_leave_last_out_holds_out_last_for_test_and_second_last_for_validation():
    split = leave_last_out(make_events({"a": [0, 1, 2, 3, 4], "b": [5, 6]}), n_items=7)
    assert split.test.targets.tolist() == [4] and split.val.targets.tolist() == [3]
    assert split.val.histories[0].tolist() == [0, 1, 2]
    # a test request sees the validation event as history, but never trains on it
    assert split.test.histories[0].tolist() == [0, 1, 2, 3]
    assert sorted(split.fit_items.tolist()) == [0, 1, 2, 5, 6]


def test_full_ranking_excludes_seen_items_and_finds_the_target_rank():
    requests = Requests(
        users=np.array([0, 1]),
        targets=np.array([2, 0]),
        histories=[np.array([0]), np.array([1])],
        history_times=[np.zeros(1), np.zeros(1)],
    )
    scores = np.array([[9.0, 5.0, 4.0, 1.0], [3.0, 9.0, 8.0, 1.0]])
    ranked = rank_requests(lambda batch: scores[batch.users], requests, n_items=4, k=2)
    # user 0: item 0 is seen, so item 2 is behind item 1 only; user 1: item 1 seen, 2 beats 0
    assert ranked.ranks.tolist() == [1, 1]
    metrics = per_request_metrics(ranked.ranks, k=2)
    assert metrics["ndcg2"][0] == pytest.approx(1 / np.log2(3))
    assert metrics["mrr"].tolist() == [0.5, 0.5]
    assert ranked.top_items.tolist() == [0, 1, 2]


def test_coverage_counts_only_recommended_items_not_seen_ones_filling_a_short_list():
    # The user has seen 3 of 5 items, so a top-10 list holds the 2 unseen ones only.
    requests = Requests(
        users=np.array([0]),
        targets=np.array([0]),
        histories=[np.array([1, 2, 3])],
        history_times=[np.zeros(3)],
    )
    scores = np.array([[0.1, 0.9, 0.8, 0.7, 0.0]])
    ranked = rank_requests(lambda batch: scores[batch.users], requests, n_items=5, k=10)
    assert ranked.ranks.tolist() == [0]
    assert ranked.top_items.tolist() == [0, 4]
    assert summarise(ranked, n_boot=100)["all"]["coverage"] == pytest.approx(2 / 5)


def test_ties_are_broken_at_random_not_in_the_targets_favour():
    n = 1000
    requests = Requests(
        users=np.zeros(200, dtype=np.int32),
        targets=np.arange(200, dtype=np.int32),
        histories=[np.zeros(0, dtype=np.int64)] * 200,
        history_times=[np.zeros(0)] * 200,
    )
    ranked = rank_requests(lambda batch: np.zeros((len(batch), n)), requests, n, k=10)
    assert 350 < ranked.ranks.mean() < 650


def test_bootstrap_interval_brackets_the_mean():
    values = np.random.default_rng(0).random(500)
    low, high = bootstrap_interval(values)
    assert low < values.mean() < high and high - low < 0.1
    assert bootstrap_interval(np.ones(50)) == (1.0, 1.0)


def test_slices_mark_cold_targets_and_short_histories():
    split = leave_last_out(make_events({"a": [0, 1, 2], "b": [0, 1, 3, 4, 5]}), n_items=6)
    slices = standard_slices(split.test, bl.item_counts(split))
    assert slices["cold_items"].tolist() == [True, True]  # items 2 and 5 have no training event
    assert slices["short_users"].tolist() == [True, False]
    summary = summarise(rank_requests(bl.Popularity().fit(split).score, split.test, 6), slices)
    assert summary["cold_items"]["n"] == 2 and 0 < summary["all"]["coverage"] <= 1


@pytest.fixture
def taste_split():
    # two taste groups: items 0-4 and 5-9; item 0 is popular with everyone
    rng = np.random.default_rng(1)
    sequences = {}
    for u in range(60):
        group = range(0, 5) if u % 2 == 0 else range(5, 10)
        seq = [0] + rng.permutation(list(group)).tolist()[:4]
        sequences[f"u{u}"] = [i for i in dict.fromkeys(seq)]
    return leave_last_out(make_events(sequences), n_items=10)


def test_popularity_ranks_by_training_counts(taste_split):
    scores = bl.Popularity().fit(taste_split).score(taste_split.test)
    assert scores.shape == (len(taste_split.test), 10) and scores[0].argmax() == 0


def test_item_knn_and_als_learn_the_taste_groups(taste_split):
    for model in (bl.ItemKNN(), bl.ALS(iterations=5)):
        model.fit(taste_split)
        scores = model.score(taste_split.test)
        for row, user in enumerate(taste_split.test.users):
            in_group = slice(1, 5) if user % 2 == 0 else slice(5, 10)
            other = slice(5, 10) if user % 2 == 0 else slice(1, 5)
            assert scores[row, in_group].mean() > scores[row, other].mean(), model.name


def test_recent_popularity_prefers_recent_events():
    events = make_events({"a": [0, 0, 0, 1, 2], "b": [3, 4, 1, 2, 5]})
    split = leave_last_out(events, n_items=6)
    counts = bl.decayed_counts(split, half_life=100.0)
    # item 0's events are the oldest; item 1's are the latest
    assert counts[1] > counts[0]
    assert bl.RecentPopularity().fit(split).half_life > 0
