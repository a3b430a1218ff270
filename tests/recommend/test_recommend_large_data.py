"""A shop's real data at scale: a shared "guest" account, a 200,000-item catalogue, and demo
words that are not about films.

A guest account with half of a bookshop's events made co-occurrence quadratic in its history
(22 GB, killed without a word); ``fit_ranker`` copied its whole design to float64 each time it
ranked validation (3.5 GB at 200,000 items); ``eval`` scored 256 requests x every item at once.
The memory is measured in docs/recommend.md; these pin the behaviour and that the numbers did
not move.
"""

from __future__ import annotations

import numpy as np
import pytest

from tunesmith_recommend import baselines as bl
from tunesmith_recommend import evaluate as ev
from tunesmith_recommend import ranker as rk
from tunesmith_recommend.split import Requests, Split


def _split(users, items, times, n_items, n_users) -> Split:
    empty = Requests.none()
    return Split(
        n_items=n_items,
        n_users=n_users,
        fit_users=np.asarray(users, dtype=np.int32),
        fit_items=np.asarray(items, dtype=np.int64),
        fit_times=np.asarray(times, dtype=np.float64),
        fit_sequences=[],
        val=empty,
        test=empty,
    )


def test_cooccurrence_counts_only_a_long_historys_latest_items():
    # user 0 ("guest") saw items 0..5 in that order, item 0 again last; user 1 saw 4 and 5
    users = [0, 0, 0, 0, 0, 0, 0, 1, 1]
    items = [0, 1, 2, 3, 4, 5, 0, 4, 5]
    times = [1, 2, 3, 4, 5, 6, 7, 1, 2]
    split = _split(users, items, times, n_items=6, n_users=2)
    capped = bl.cooccurrence(split, max_history=3).toarray()
    # the guest's latest three distinct items: 0 (seen again last), 5 and 4
    latest = _split([0, 0, 0, 1, 1], [0, 5, 4, 4, 5], [7, 6, 5, 1, 2], 6, 2)
    assert np.array_equal(capped, bl.cooccurrence(latest, max_history=None).toarray())
    assert capped[1].sum() == 0 and capped[0, 4] > 0  # item 1 is too old to co-occur
    assert bl.long_histories(split, 3) == {0: 6}
    # under the cap nothing changes: the uncapped matrix, entry for entry
    assert np.array_equal(
        bl.cooccurrence(split, max_history=6).toarray(),
        bl.cooccurrence(split, max_history=None).toarray(),
    )
    knn = bl.ItemKNN(max_history=3).fit(split)
    assert np.array_equal(knn.sim.toarray(), capped)


def test_train_names_the_user_whose_cooccurrence_is_capped(tiny_model, tmp_path):
    from tunesmith_recommend.data import load_events, load_items, sample_paths
    from tunesmith_recommend.pipeline import Settings, fit

    catalogue = load_items(sample_paths()["items"])
    events = load_events(sample_paths()["events"], catalogue)
    said: list[str] = []
    settings = Settings(model=tiny_model, fine_tune=False, baselines=False, cooc_max_history=6)
    fitted = fit(catalogue, events, tmp_path, settings, say=said.append)
    notes = [line for line in said if "co-occurrence" in line]
    long = bl.long_histories(fitted.split, 6)
    assert long and len(notes) == 1
    heaviest = max(long, key=lambda user: (long[user], -user))
    assert f"'{events.user_ids[heaviest]}' ({long[heaviest]})" in notes[0]
    assert "latest 6 (--cooc-max-history)" in notes[0]
    assert np.array_equal(fitted.signals.cooc.toarray(), bl.cooccurrence(fitted.split, 6).toarray())
    assert fitted.cooc_max_history == 6


def _requests(rng, n_requests: int, n_items: int) -> Requests:
    histories = [rng.choice(n_items, rng.integers(1, 6), replace=False) for _ in range(n_requests)]
    targets = np.asarray(
        # some targets are in their own history (a re-watch competes as itself)
        [h[0] if i % 7 == 0 else rng.integers(n_items) for i, h in enumerate(histories)],
        dtype=np.int32,
    )
    return Requests(
        users=np.arange(n_requests, dtype=np.int32),
        targets=targets,
        histories=histories,
        history_times=[np.arange(len(h), dtype=np.float64) for h in histories],
    )


def test_fit_ranker_scores_validation_in_chunks_with_the_same_ranks():
    import torch

    rng = np.random.default_rng(3)
    n_requests, n_items, columns = 37, 101, 11
    x = torch.as_tensor(rng.standard_normal((n_requests, n_items, columns)).astype(np.float32))
    # a few exact ties, as cold items' constant features give
    x[:, :10] = x[:, :1]
    w = rng.standard_normal(columns)
    whole = x.numpy().astype(np.float64) @ w  # what _ranks computed before
    for chunk in (1, n_items * columns, 5 * n_items * columns, 1 << 30):
        assert np.array_equal(rk._linear_scores(x, w, chunk), whole)
    val = _requests(rng, n_requests, n_items)
    before = ev.rank_requests(
        lambda batch: whole, val, n_items, batch_size=n_requests, seed=5, coverage=False
    ).ranks
    assert np.array_equal(rk._ranks(x, w, val, n_items, seed=5), before)


def _peak(run) -> int:
    """Peak bytes traced while ``run()`` runs."""
    import tracemalloc

    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_fit_ranker_never_copies_the_whole_design_to_float64(monkeypatch):
    import torch

    rng = np.random.default_rng(4)
    n_requests, n_items, columns = 40, 2000, 11
    x = torch.as_tensor(rng.standard_normal((n_requests, n_items, columns)).astype(np.float32))
    w = rng.standard_normal(columns)
    val = _requests(rng, n_requests, n_items)
    monkeypatch.setattr(rk, "SCORE_CHUNK_ENTRIES", 2 * n_items * columns)
    monkeypatch.setattr(ev, "SCORE_ENTRIES", 2 * n_items)
    whole_copy = n_requests * n_items * columns * 8  # what x.numpy().astype(float64) held
    scores = n_requests * n_items * 8  # the [requests, items] scores themselves
    assert _peak(lambda: rk._ranks(x, w, val, n_items, seed=0)) < scores + whole_copy / 4


@pytest.mark.parametrize("coverage", [True, False])
def test_rank_requests_compares_a_large_catalogue_in_slices_with_the_same_ranks(
    monkeypatch, coverage
):
    rng = np.random.default_rng(5)
    n_items, n_requests = 3000, 70
    requests = _requests(rng, n_requests, n_items)
    users = rng.standard_normal((n_requests, 4))
    items = rng.standard_normal((4, n_items))
    counts = rng.integers(0, 4, n_items).astype(np.float64)  # many ties, broken at random
    sizes: list[int] = []

    def personal(batch):
        sizes.append(len(batch))
        return np.round(users[batch.users] @ items, 1)  # ties too

    def popular(batch):
        return np.broadcast_to(counts, (len(batch), n_items))

    for score in (personal, popular):

        def rank(score=score):
            return ev.rank_requests(
                score, requests, n_items, batch_size=64, seed=1, coverage=coverage
            )

        whole = rank()
        monkeypatch.setattr(ev, "SCORE_ENTRIES", 5 * n_items)
        sliced = rank()
        assert np.array_equal(sliced.ranks, whole.ranks)
        assert np.array_equal(sliced.top_items, whole.top_items)
        if score is personal:
            # the model still scores whole batches (a product's last bits depend on its rows)
            assert sizes == [64, 6, 64, 6]
            # the batch's own scores (made twice here: rounded) and a slice's copies, not the
            # whole batch's copy, negation and top-k indices
            assert _peak(rank) < 3 * 64 * n_items * 8
        monkeypatch.setattr(ev, "SCORE_ENTRIES", 1 << 22)


def test_the_final_rankers_eval_scores_are_the_same_summed_in_slices(monkeypatch):
    from scipy.sparse import random as sparse_random

    from tunesmith_recommend import pipeline
    from tunesmith_recommend.ranker import COLD_FEATURES, FEATURES, Ranker, Signals
    from tunesmith_recommend.two_tower import MAX_HISTORY, UserTower

    rng = np.random.default_rng(6)
    n_items, dim = 500, 8
    vectors = rng.standard_normal((n_items, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    counts = rng.integers(0, 5, n_items).astype(np.float64)
    signals = Signals(
        item_vectors=vectors,
        tower=UserTower(
            position_bias=rng.standard_normal(MAX_HISTORY).astype(np.float32),
            query=rng.standard_normal(dim).astype(np.float32),
            linear=rng.standard_normal((dim, dim)).astype(np.float32) * 0.1,
            temperature=0.05,
        ),
        counts=counts,
        recent=counts * rng.random(n_items),
        prior=rng.standard_normal(dim).astype(np.float32),
        cooc=sparse_random(n_items, n_items, density=0.02, random_state=1, format="csr"),
        age=np.where(counts > 0, rng.random(n_items) * 1e6, np.inf),
        base_vectors=rng.standard_normal((n_items, dim)).astype(np.float32),
    )
    ranker = Ranker(
        weights=dict(zip(FEATURES, rng.standard_normal(len(FEATURES)).tolist(), strict=True)),
        scales={name: 0.5 + rng.random() for name in FEATURES},
        cold_weights={name: 0.3 for name in COLD_FEATURES},
    )
    fitted = pipeline.Fitted(
        catalogue=None, events=None, split=None, signals=signals, ranker=ranker, val_ndcg=0.0,
        encoder_dir="", pretrained_vectors=vectors, half_life=1.0,
    )  # fmt: skip
    batch = _requests(rng, 30, n_items)
    # what ranker_scores computed before: the batch's dense features summed at once
    items = signals.item_features()
    whole = ranker.combine(
        signals.user_features(batch.histories), ranker.item_part(items), cold=items["cold"]
    )
    monkeypatch.setattr(pipeline, "SCORE_ENTRIES", 7 * n_items)
    assert np.array_equal(fitted.ranker_scores(batch), whole)


def test_a_small_catalogue_is_still_compared_a_whole_batch_at_a_time():
    # MovieTweetings' 3,096 items and the sample's 150: every batch of 256 in one piece
    assert ev.SCORE_ENTRIES // 16_384 >= 256


def test_the_demos_examples_follow_the_item_noun(tmp_path, monkeypatch):
    import gradio as gr

    from tunesmith_recommend import demo
    from tunesmith_recommend.model import item_noun_meta

    def page(model_dir):
        blocks = list(demo.build_demo(model_dir).blocks.values())
        box = next(b for b in blocks if isinstance(b, gr.Textbox))
        radio = next(b for b in blocks if isinstance(b, gr.Radio))
        empty = demo.recommend(model_dir, demo.MODES[2], None, None, "  ", False)[0]
        return box.placeholder, empty, [value for _label, value in radio.choices]

    from test_recommend_item_words import Books, write_model

    monkeypatch.setattr(demo, "recommender_for", lambda model_dir: Books())
    books = write_model(tmp_path / "books", item_noun_meta("book"))
    placeholder, empty, values = page(books)
    words = " ".join([placeholder, empty, *values]).lower()
    assert "book" in placeholder and "what the book should be about" in empty
    for film_word in ("film", "space opera", "haunted"):
        assert film_word not in words
    placeholder, empty, values = page(write_model(tmp_path / "old", None))  # no --item-noun
    assert "what the item should be about" in placeholder and "item" in empty
    assert values[1] == "Liked items"
    # the film sample keeps its film examples
    placeholder, empty, _ = page(write_model(tmp_path / "films", item_noun_meta("film")))
    assert placeholder == "space operas with a strong female lead" and "a haunted lake" in empty
    # a request sent with the old value of the liked-items mode still works
    assert demo.recommend(books, "Liked films", None, [], "", False)[0] == (
        "**Choose at least one book you liked.**"
    )
