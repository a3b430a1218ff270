"""The "because you liked" shares shown as whole percents add up as the shares do."""

from __future__ import annotations

from tunesmith_recommend.explain import percents


def test_shares_of_one_whole_are_shown_as_percents_that_add_up_to_100():
    # each rounded alone: 55% + 46% = 101%
    assert percents([0.545, 0.455]) == [54, 46] or percents([0.545, 0.455]) == [55, 45]
    assert sum(percents([0.545, 0.455])) == 100
    assert sum(percents([1 / 3, 1 / 3, 1 / 3])) == 100


def test_shares_of_part_of_the_whole_add_up_to_their_rounded_sum_and_keep_their_order():
    shown = percents([0.4449, 0.3349, 0.1049])  # the three best of more items: 88.47%
    assert sum(shown) == 88
    assert shown == sorted(shown, reverse=True)
    assert percents([]) == []
    assert percents([0.0]) == [0]
