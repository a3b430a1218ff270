"""The sample's cold-item slice, as docs/recommend.md's quick start describes it.

`recommend eval --sample` printed cold-item Recall@10 0 against random's 0.0667; the slice is
one test request, and no validation target is a new film, so the "no events yet" weight is
never shifted on the sample. These pin the facts the quick start states, so a regenerated
sample that changes them fails here rather than leaving the docs wrong.
"""

from __future__ import annotations

import numpy as np

from tunesmith_recommend.baselines import item_counts
from tunesmith_recommend.data import load_events, load_items, sample_paths
from tunesmith_recommend.ranker import _shift_cold
from tunesmith_recommend.split import leave_last_out


def _sample_split():
    catalogue = load_items(sample_paths()["items"])
    events = load_events(sample_paths()["events"], catalogue)
    return catalogue, events, leave_last_out(events, len(catalogue))


def test_sample_cold_slice_is_one_test_request_and_no_validation_request():
    catalogue, events, split = _sample_split()
    counts = item_counts(split)
    assert int((counts == 0).sum()) == 4  # of 150 films, none watched in training
    assert int((counts[split.val.targets] == 0).sum()) == 0
    cold_test = np.flatnonzero(counts[split.test.targets] == 0)
    assert len(cold_test) == 1
    (row,) = cold_test
    assert catalogue.ids[split.test.targets[row]] == "f004"
    assert events.user_ids[split.test.users[row]] == "u17"


def test_cold_shift_leaves_weights_alone_without_cold_validation_targets():
    w = np.arange(11, dtype=np.float64)

    def rank_shifted(weights, shifts):  # pragma: no cover - must not be asked
        raise AssertionError("no cold target: no shift to choose")

    kept = _shift_cold(rank_shifted, w, np.zeros(60, dtype=bool), 150)
    assert np.array_equal(kept, w)
