"""The weights of items added after training are fitted on an honest simulation, and they lift.

The fit scores a tenth of the catalogue at a time as new. Those items' two-tower score and
content prior came from a user tower and a prior fitted on their own events, which an item
added later never has: where the text says nothing of what is chosen, the simulation still
found the content prior (0.76) and the two-tower score (0.35) worth a weight, since the prior
had learned the popular items' directions. The towers are now fitted again without each
group's events. And where text is a weaker signal than popularity, added items with the
catalogue's weights for items without events sink to the bottom of every list, while with
their own they reach their topic's users' top tens.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from test_recommend_added_items_rank import _rank_of, _served_scores, _with_new_items

from tunesmith_recommend import ranker as rk
from tunesmith_recommend import ranker_added
from tunesmith_recommend.ranker_added import HeldOutColumns, TrainingEvents
from tunesmith_recommend.split import Requests
from tunesmith_recommend.two_tower import (
    MAX_HISTORY,
    UserTower,
    train_content_prior,
    train_user_tower,
)


def _requests(histories: list[np.ndarray], targets: list[int]) -> Requests:
    m = len(targets)
    return Requests(
        users=np.arange(m, dtype=np.int32),
        targets=np.asarray(targets, dtype=np.int32),
        histories=histories,
        history_times=[np.zeros(len(h)) for h in histories],
        rated_below=[np.zeros(0, dtype=np.int64) for _ in range(m)],
    )


@dataclass
class _RefitOnce(TrainingEvents):
    """The refits made once for the module: the ranker's fit and the check of its columns ask
    for the same ten (each a user tower and a content prior of 300 steps)."""

    fits: dict[bytes, tuple] = field(default_factory=dict, repr=False)

    def fit_without(self, item_vectors: np.ndarray, dropped: np.ndarray) -> tuple:
        key = dropped.tobytes()
        if key not in self.fits:
            self.fits[key] = super().fit_without(item_vectors, dropped)
        return self.fits[key]


def _shop_whose_text_says_nothing(
    n: int = 60, dim: int = 64, users: int = 150, length: int = 8
) -> tuple[rk.Signals, Requests, TrainingEvents]:
    """Random item texts (vectors), users who choose by popularity alone; the user tower and
    the content prior trained on the training events, as ``pipeline.fit`` trains them (the
    prior, with more dimensions than items, learns each item's popularity by its vector)."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    popularity = np.minimum(rng.zipf(1.5, n), 100).astype(float)
    sequences, histories, targets = [], [], []
    for _ in range(users):
        items = rng.choice(n, length, replace=False, p=popularity / popularity.sum())
        sequences.append((items[:-1], np.arange(length - 1, dtype=float)))
        histories.append(items[:-1])
        targets.append(int(items[-1]))
    counts = np.bincount(np.concatenate([s[0] for s in sequences]), minlength=n).astype(float)
    training = _RefitOnce(sequences, counts, tower_epochs=5, tower_max_examples=None, seed=0)
    signals = rk.Signals(
        item_vectors=vectors,
        tower=train_user_tower(vectors, sequences, seed=0),
        counts=counts,
        recent=counts,
        prior=train_content_prior(vectors, counts),
        cooc=csr_matrix((n, n)),
        age=np.where(counts > 0, rng.random(n) * 1e6, np.inf),
    )
    return signals, _requests(histories, targets), training


@pytest.fixture(scope="module")
def text_says_nothing() -> tuple[rk.Signals, Requests, TrainingEvents]:
    return _shop_whose_text_says_nothing()


def test_added_items_weights_learn_nothing_from_a_text_that_says_nothing_of_the_choices(
    text_says_nothing,
):
    signals, val, training = text_says_nothing
    # the prior has learned the catalogue's popularity from its events
    learned = signals.item_vectors @ signals.prior
    assert np.corrcoef(learned, np.log1p(signals.counts))[0, 1] > 0.8
    ranker, _ = rk.fit_ranker(signals, val, seed=0, training=training)
    # scored by towers fitted on their own events: content prior 0.76, two-tower 0.35
    assert abs(ranker.added_weights["content_prior"]) < 0.15, ranker.added_weights
    assert abs(ranker.added_weights["two_tower"]) < 0.15, ranker.added_weights


def test_a_simulated_new_item_is_scored_as_an_item_added_to_towers_without_its_events(
    text_says_nothing,
):
    signals, val, training = text_says_nothing
    n = len(signals.counts)
    design = rk._DenseDesign(signals, signals.user_inputs(val.histories), val, 0)
    columns = HeldOutColumns(design, signals, training, n, 0)(np.arange(len(val)))
    groups = ranker_added.added_groups(n, 0)
    for group in (0, 7):
        members = np.flatnonzero(groups == group)
        # the model trained on the catalogue without the group: its items added later
        tower, prior = training.fit_without(signals.item_vectors, groups == group)
        served = rk.Signals(
            item_vectors=signals.item_vectors,
            tower=tower,
            counts=signals.counts,
            recent=signals.recent,
            prior=prior,
            cooc=signals.cooc,
            age=signals.age,
        )
        features = served.user_features(val.histories, members)
        want = {
            "two_tower": features["two_tower"],
            "text_similarity": features["text_similarity"],
            "content_prior": signals.item_vectors[members] @ prior,
        }
        for name, got in zip(rk.COLD_FEATURES, columns, strict=True):
            np.testing.assert_allclose(
                np.broadcast_to(got, (len(val), n))[..., members],
                np.broadcast_to(want[name] / design.scales[name], (len(val), len(members))),
                rtol=1e-5,
                atol=1e-6,
                err_msg=name,
            )


def test_each_refit_trains_the_user_tower_on_a_capped_sample_of_the_events_without_its_group(
    monkeypatch,
):
    """Uncapped, the ten refits took 40 % of train on a 30,000-item shop: each trains on at
    most REFIT_MAX_EXAMPLES examples (or the served tower's cap, if lower), none of the
    group's items among them."""
    from tunesmith_recommend import two_tower

    asked = []
    monkeypatch.setattr(
        two_tower, "train_user_tower", lambda v, kept, **k: asked.append((kept, k)) or None
    )
    monkeypatch.setattr(two_tower, "train_content_prior", lambda v, w: np.zeros(v.shape[1]))
    rng = np.random.default_rng(0)
    sequences = [(rng.choice(100, 12, replace=False), np.arange(12.0)) for _ in range(50)]
    dropped = np.arange(100) % 10 == 3
    vectors = np.zeros((100, 4), np.float32)
    for served, want in ((200_000, ranker_added.REFIT_MAX_EXAMPLES), (300, 300), (None, None)):
        training = TrainingEvents(sequences, np.ones(100), 5, served, seed=0)
        if served is None:
            training.refit_max_examples = None
        training.fit_without(vectors, dropped)
        kept, options = asked[-1]
        assert options["max_examples"] == want
        assert not dropped[np.concatenate([items for items, _ in kept])].any()


TOPICS, PER_TOPIC, D = 10, 30, 16


def _shop_where_text_is_weaker_than_popularity() -> tuple[rk.Signals, Requests, np.ndarray]:
    """300 items in 10 topics; users choose by popularity, 70% in their own topic. Popular
    items are typical of their topic, rare ones wander from it, so among the catalogue's items
    popularity says most of what the text says, and its text weight is small (0.39 against
    popularity's 1.32)."""
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((TOPICS, D))
    topic = np.repeat(np.arange(TOPICS), PER_TOPIC)
    n = len(topic)
    counts = np.minimum(rng.zipf(1.6, n), 200).astype(float)
    counts[rng.choice(n, 6, replace=False)] = 0  # never chosen
    spread = 0.3 + 1.5 / np.sqrt(1 + counts)
    vectors = centres[topic] + spread[:, None] * rng.standard_normal((n, D))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    signals = rk.Signals(
        item_vectors=vectors,
        tower=UserTower(
            np.zeros(MAX_HISTORY, np.float32), np.zeros(D, np.float32), np.zeros((D, D), np.float32)
        ),
        counts=counts,
        recent=counts * rng.random(n),
        prior=np.zeros(D, np.float32),
        cooc=csr_matrix((n, n), dtype=np.float32),
        age=np.where(counts > 0, rng.random(n) * 1e6, np.inf),
    )
    chosen = np.flatnonzero(counts > 0)
    histories, targets = [], []
    for row in range(200):
        weight = counts[chosen] * np.where(topic[chosen] == row % TOPICS, 1.0, 0.3 / 0.7 / 9)
        picked = rng.choice(chosen, 5, replace=False, p=weight / weight.sum())
        histories.append(picked[:4])
        targets.append(int(picked[4]))
    return signals, _requests(histories, targets), centres


def _new_items_ranks(ranker: rk.Ranker, signals: rk.Signals, centres: np.ndarray):
    """Each topic's new item's rank for the topic's 4 most popular items as a history, and the
    median rank of the other topics' new items there."""
    topic = np.repeat(np.arange(TOPICS), PER_TOPIC)
    rng = np.random.default_rng(7)
    served = _with_new_items(signals, centres + 0.3 * rng.standard_normal(centres.shape))
    n = len(signals.counts)
    own, others = [], []
    for t in range(TOPICS):
        members = np.flatnonzero((topic == t) & (signals.counts > 0))
        scores = _served_scores(ranker, served, members[np.argsort(-signals.counts[members])][:4])
        own.append(_rank_of(scores, n + t))
        others += [_rank_of(scores, n + other) for other in range(TOPICS) if other != t]
    return own, float(np.median(others))


def test_added_items_reach_their_topics_top_ten_with_their_own_weights_and_sink_without(
    monkeypatch,
):
    signals, val, centres = _shop_where_text_is_weaker_than_popularity()
    assert not (signals.counts[val.targets] == 0).any()  # no new validation target
    fitted, fit = [], ranker_added.added_fit

    def added_fit(design, w, *args, **kwargs):
        fitted.append((design, w))
        return fit(design, w, *args, **kwargs)

    monkeypatch.setattr(ranker_added, "added_fit", added_fit)
    ranker, _ = rk.fit_ranker(signals, val, seed=0)
    own, others = _new_items_ranks(ranker, signals, centres)
    assert sum(rank < 10 for rank in own) >= 7, own
    assert others > 50, others  # not in every list
    # the catalogue's weights for items without events, with the best shift on top: they sink.
    # What fit_ranker makes of them, on its own design and weights (a second fit_ranker, the
    # fit replaced by these, gives the same ranker at twice the cost): their constant is the
    # catalogue's, so the shift is the move alone.
    design, w = fitted[0]
    params = ranker_added.catalogue_params(design, w)
    move = ranker_added.added_shift(design, w, params, len(signals.counts), 0)
    catalogue = replace(
        ranker,
        added_weights=dict(zip(rk.COLD_FEATURES, params[: len(rk.COLD_FEATURES)], strict=True)),
        added_shift=move,
    )
    sunk, _ = _new_items_ranks(catalogue, signals, centres)
    assert min(sunk) > 100, sunk


@pytest.fixture(scope="module")
def sample_model(tiny_model, tmp_path_factory):
    """The sample saved from a pipeline fitted with the tiny encoder: copy it before changing it."""
    from tunesmith_recommend import model, pipeline
    from tunesmith_recommend.data import load_events, load_items, sample_paths
    from tunesmith_recommend.pipeline import Settings, fit

    catalogue = load_items(sample_paths()["items"])
    events = load_events(sample_paths()["events"], catalogue)
    settings = Settings(model=tiny_model, fine_tune=False, baselines=False, tower_epochs=1)
    with pytest.MonkeyPatch.context() as patch:
        # the added items' weights do not matter here: no ten refits of the towers
        patch.setattr(pipeline, "TrainingEvents", lambda *args, **kwargs: None)
        fitted = fit(
            catalogue, events, tmp_path_factory.mktemp("work"), settings, say=lambda _: None
        )
    return model.save(fitted, tmp_path_factory.mktemp("saved") / "model")


def test_add_items_leaves_the_signals_as_they_were_and_its_items_serve_without_events(
    sample_model, tmp_path
):
    """Every add-items rewrote signals.npz (2.4 MB at 100,000 items) for the new items'
    zeros. It is now left as it was, a link to the old version's file, and serving pads it
    to the catalogue, as co-occurrence; a folder whose signals.npz add-items padded before
    serves the same."""
    from tunesmith_recommend import model
    from tunesmith_recommend.data import load_items

    folder = tmp_path / "model"
    shutil.copytree(sample_model, folder)
    held = tmp_path / "signals.npz"
    held.hardlink_to(folder / "signals.npz")
    new = tmp_path / "new.csv"
    new.write_text(
        "item_id,title,genres,description\n"
        "n001,Harbour of Stars,space opera,A rebel pilot leads a stolen fleet.\n"
        "n002,The Drowned Bell,horror,A bell rings under a haunted lake.\n",
        encoding="utf-8",
    )
    assert model.add_items(folder, load_items(new, min_items=1)) == 2
    assert (folder / "signals.npz").samefile(held)
    served = model.Recommender(folder)
    assert len(served.signals.counts) == len(served.ids) == 152
    assert list(served.signals.counts[-2:]) == [0, 0] and np.isinf(served.signals.age[-2:]).all()
    assert list(served.cold[-2:]) == [1, 1] and list(served.added[-2:]) == [1, 1]

    # as add-items wrote it before: the whole catalogue's counts, the new items' zeros
    before = tmp_path / "before"
    shutil.copytree(folder, before)
    with np.load(held) as data:
        stored = {name: data[name] for name in data.files}
    np.savez(
        before / "signals.npz",
        counts=np.append(stored["counts"], [0.0, 0.0]),
        recent=np.append(stored["recent"], [0.0, 0.0]),
        age=np.append(stored["age"], [np.inf, np.inf]),
        prior=stored["prior"],
    )
    then = model.Recommender(before)
    for user in list(served.histories)[:10]:
        got = [(r.item_id, r.score) for r in served.for_user(user, k=20)]
        assert got == [(r.item_id, r.score) for r in then.for_user(user, k=20)], user
    liked = ["f121", "f122", "n001"]
    got = [(r.item_id, r.score) for r in served.for_liked(liked, k=149)]
    assert got == [(r.item_id, r.score) for r in then.for_liked(liked, k=149)]
