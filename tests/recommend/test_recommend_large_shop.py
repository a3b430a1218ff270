"""A bookshop's million ratings through ``recommend``: read a column at a time, the ranker fitted
on a seeded sample of validation requests, and every cap recorded in the model."""

from __future__ import annotations

import numpy as np
import pytest

from tunesmith.errors import DataError
from tunesmith_recommend import data


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def shop(tmp_path):
    items = write(
        tmp_path / "books.csv",
        "item_id,title,description\n" + "".join(f"b{i},Book {i},About {i}\n" for i in range(6)),
    )
    rng = np.random.default_rng(0)
    rows = [
        f"r{rng.integers(0, 9)},b{rng.integers(0, 6)},{1_600_000_000 + rng.integers(0, 50)},"
        f"{rng.integers(1, 6)}\n"
        for _ in range(300)
    ]
    events = write(tmp_path / "ratings.csv", "user_id,item_id,timestamp,rating\n" + "".join(rows))
    return data.load_items(items, text_cols=["description"]), events


def test_whole_unix_seconds_are_read_a_column_at_a_time_with_the_row_readers_events(
    shop, monkeypatch
):
    catalogue, events = shop
    by_rows = data.load_events(events, catalogue, rating_col="rating", min_rating=4)

    def one_row_at_a_time(value):  # a million of these calls were most of reading the ratings
        raise AssertionError("parse_time called for a whole number of Unix seconds")

    monkeypatch.setattr(data, "parse_time", one_row_at_a_time)
    by_columns = data.load_events(events, catalogue, rating_col="rating", min_rating=4)
    assert by_columns.user_ids == by_rows.user_ids
    for name in ("users", "items", "times"):
        ours, theirs = getattr(by_columns, name), getattr(by_rows, name)
        assert ours.dtype == theirs.dtype and ours.tolist() == theirs.tolist(), name
    assert by_columns.rated_below == by_rows.rated_below
    assert by_columns.rated_below_times == by_rows.rated_below_times


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("r1,b9,1600000000,5", "item 'b9' is not in books.csv"),
        ("r1,b1,2026-01-01T00:00:00Z,5", "mixed time formats"),
        ("r1,b1,1600000000,nan", "cannot read the rating 'nan'"),
        (",b1,1600000000,5", "empty user id"),
    ],
)
def test_a_row_the_column_reader_cannot_take_is_named_by_the_row_reader(shop, row, message):
    catalogue, events = shop
    events.write_text(events.read_text() + row + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message) as caught:
        data.load_events(events, catalogue, rating_col="rating", min_rating=4)
    assert "ratings.csv:302," in str(caught.value)


def _cli(args):
    from typer.testing import CliRunner

    from tunesmith.cli import build_app

    return CliRunner().invoke(build_app(), args)


def _sample_args(tiny_model):
    paths = data.sample_paths()
    return ["--items", str(paths["items"]), "--events", str(paths["events"]), "--model",
            tiny_model, "--no-fine-tune", "--tower-epochs", "1"]  # fmt: skip


def test_train_fits_the_ranker_on_a_seeded_sample_of_ranker_max_requests_and_records_its_caps(
    tiny_model, tmp_path
):
    import json

    args = ["recommend", "train", *_sample_args(tiny_model), "--ranker-max-requests", "20"]
    result = _cli([*args, "--tower-max-examples", "40", "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "a seeded sample of 20 of the 60 validation requests" in result.stderr
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    assert meta["tower_max_examples"] == 40
    assert meta["ranker_max_requests"] == 20 and meta["ranker_validation_requests"] == 20
    assert meta["validation_requests"] == 60


def test_a_large_catalogue_fits_the_ranker_on_as_many_requests_as_its_design_holds():
    from tunesmith_recommend.ranker import ranker_requests

    assert ranker_requests(93_770, 30_000) == 200  # the last catalogue of the dense design
    assert ranker_requests(93_770, 200_000) == 500  # candidate sets (test_recommend_ranker_scale)
    assert ranker_requests(93_770, 200_000, max_requests=50) == 50
    assert ranker_requests(1_108, 3_096) == 1_108  # MovieTweetings: every request, as before


def test_fit_ranker_holds_one_user_feature_at_a_time_beside_the_design(monkeypatch):
    import weakref

    from scipy.sparse import csr_matrix

    from tunesmith_recommend import ranker as rk
    from tunesmith_recommend.split import Requests
    from tunesmith_recommend.two_tower import MAX_HISTORY, UserTower

    rng = np.random.default_rng(0)
    n, d = 300, 8
    vectors = rng.standard_normal((n, d)).astype(np.float32)
    counts = np.where(rng.random(n) < 0.7, rng.poisson(3, n), 0).astype(float)
    tower = UserTower(np.zeros(MAX_HISTORY, np.float32), np.zeros(d, np.float32),
                      np.zeros((d, d), np.float32))  # fmt: skip
    signals = rk.Signals(
        item_vectors=vectors / np.linalg.norm(vectors, axis=1, keepdims=True),
        tower=tower,
        counts=counts,
        recent=counts * rng.random(n),
        prior=rng.standard_normal(d).astype(np.float32),
        cooc=csr_matrix(np.eye(n, dtype=np.float32)),
        age=np.where(counts > 0, rng.random(n) * 1e6, np.inf),
    )
    histories = [rng.choice(n, 4, replace=False) for _ in range(30)]
    val = Requests(
        users=np.arange(30, dtype=np.int32),
        targets=rng.integers(0, n, 30).astype(np.int32),
        histories=histories,
        history_times=[np.zeros(4) for _ in histories],
    )
    made: list[weakref.ref] = []
    real = rk.Signals.user_feature

    def one_at_a_time(self, inputs, name, items=slice(None)):
        # [requests, items] float64 each: three held beside the design were 960 MB at 200
        # requests x 200,000 books
        assert all(ref() is None for ref in made), "a user feature outlived its columns"
        values = real(self, inputs, name, items)
        made.append(weakref.ref(values))
        return values

    monkeypatch.setattr(rk.Signals, "user_feature", one_at_a_time)
    ranker, _ = rk.fit_ranker(signals, val, seed=1)
    assert len(made) == 3 and set(ranker.scales) == set(rk.FEATURES)


def test_eval_scores_a_seeded_sample_of_max_test_requests_and_says_so(tiny_model):
    args = ["recommend", "eval", *_sample_args(tiny_model), "--max-test-requests", "25"]
    result = _cli(args)
    assert result.exit_code == 0, result.output
    # the line is made from the report's n_test and n_test_all (also in --json)
    assert "scored on a seeded sample of 25 of the 60 test requests" in result.stdout


def test_als_chooses_its_factors_on_a_seeded_sample_of_validation_requests(monkeypatch):
    from tunesmith_recommend import baselines as bl
    from tunesmith_recommend.split import leave_last_out

    catalogue = data.load_items(data.sample_paths()["items"])
    split = leave_last_out(data.load_events(data.sample_paths()["events"], catalogue), 150)
    ranked_on: list[int] = []
    real = bl.rank_requests

    def spy(score, requests, n_items, **options):
        ranked_on.append(len(requests))
        return real(score, requests, n_items, **options)

    monkeypatch.setattr(bl, "rank_requests", spy)
    bl.ALS(max_requests=15, iterations=2).fit(split)
    assert ranked_on == [15, 15]


def test_a_features_scale_is_its_standard_deviation_without_copying_it():
    import tracemalloc

    from tunesmith_recommend import ranker as rk

    values = np.random.default_rng(2).standard_normal((50, 4000))
    tracemalloc.start()
    try:
        scale = rk._scale(values)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert scale == values.reshape(-1).std()  # the copy's figure, to the bit
    # numpy's own deviations from the mean, and the finite mask; a copy of the finite values
    # was one more (a [requests, items] feature's: 320 MB)
    assert peak < 1.3 * values.nbytes
    values[0, 0] = np.inf
    assert rk._scale(values) == values.reshape(-1)[1:].std()
