"""A bookshop run through the real CLI (200,000 books, a million ratings): the user tower's
examples are capped by a flag, and a user's ranking does not depend on the requests scored
beside it."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from tunesmith_recommend import pipeline
from tunesmith_recommend.data import sample_paths


def test_train_caps_the_user_towers_examples_at_tower_max_examples(
    tiny_model, tmp_path, monkeypatch
):
    from tunesmith.cli import build_app
    from tunesmith_recommend import two_tower

    # one (history, next item) example per event after a user's first: the sample has ~500
    trained_on: list[int] = []
    real = two_tower.train_user_tower

    def spy(item_vectors, sequences, **options):
        tower = real(item_vectors, sequences, **options)
        examples = len(two_tower.next_item_examples(sequences)[1])
        cap = options.get("max_examples")
        trained_on.append(examples if cap is None else min(examples, cap))
        return tower

    monkeypatch.setattr(pipeline, "train_user_tower", spy)
    paths = sample_paths()
    args = ["recommend", "train", "--items", str(paths["items"]), "--events"]
    args += [str(paths["events"]), "--model", tiny_model, "--no-fine-tune"]
    args += ["--tower-epochs", "1", "--tower-max-examples", "40", "--out", str(tmp_path / "m")]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    assert trained_on == [40]


def test_tower_max_examples_below_one_is_refused_before_any_work(tmp_path):
    from tunesmith.cli import build_app

    args = ["recommend", "train", "--sample", "--tower-max-examples", "0"]
    result = CliRunner().invoke(build_app(), [*args, "--out", str(tmp_path / "m")])
    assert result.exit_code != 0 and "--tower-max-examples" in result.output
    assert not (tmp_path / "m").exists()


def test_the_cli_default_tower_cap_is_the_pipelines():
    from tunesmith_recommend import cli

    assert cli.TOWER_MAX_EXAMPLES.default == pipeline.TOWER_MAX_EXAMPLES
    assert pipeline.Settings().tower_max_examples == pipeline.TOWER_MAX_EXAMPLES


def test_for_user_gives_each_user_the_list_the_full_ranking_of_a_batch_gives(tiny_model, tmp_path):
    # eval scores 256 users at once; for-user one user's candidates. In float32 the products'
    # last bits depended on their shape, and the ranker's weight over a feature's spread (about
    # 100 for this tiny tower, whose items are alike) made that swap two items of a top ten.
    from tunesmith_recommend.data import load_events, load_items
    from tunesmith_recommend.model import Recommender, save
    from tunesmith_recommend.pipeline import Settings, fit
    from tunesmith_recommend.split import Requests

    catalogue = load_items(sample_paths()["items"])
    events = load_events(sample_paths()["events"], catalogue)
    settings = Settings(model=tiny_model, fine_tune=False, baselines=False, tower_epochs=1)
    fitted = fit(catalogue, events, tmp_path / "work", settings, say=lambda line: None)
    save(fitted, tmp_path / "m")
    served = Recommender(tmp_path / "m")
    fitted.signals = served.signals  # the full ranking of what for-user serves from
    users = list(served.histories)
    histories = [served.positions(served.histories[user]) for user in users]
    batch = Requests(
        users=np.arange(len(users), dtype=np.int32),
        targets=np.zeros(len(users), dtype=np.int32),
        histories=histories,
        history_times=[np.zeros(len(h)) for h in histories],
    )
    alone = np.concatenate([fitted.ranker_scores(batch.subset(np.arange(len(users)) == row))
                            for row in range(len(users))])  # fmt: skip
    together = fitted.ranker_scores(batch)
    assert np.abs(alone - together).max() < 1e-12
    for row, user in enumerate(users):
        scores = together[row].copy()
        scores[histories[row]] = -np.inf
        best = [catalogue.ids[i] for i in np.argsort(-scores, kind="stable")[:10]]
        listed = served.for_user(user, 10)
        assert [rec.item_id for rec in listed] == best, user
        assert np.allclose(
            [rec.score for rec in listed], np.sort(scores)[::-1][:10], rtol=0, atol=1e-12
        )


def test_fit_ranker_builds_its_design_once_not_from_a_stack_of_column_copies():
    import tracemalloc

    import torch  # noqa: F401  (imported before tracing: its import is not the design's)

    from tunesmith_recommend import ranker as rk

    rng = np.random.default_rng(6)
    n_requests, n_items = 30, 3000
    features = {name: rng.standard_normal((n_requests, n_items)) for name in rk.USER_FEATURES}
    features.update({name: rng.standard_normal(n_items) for name in rk.ITEM_FEATURES})
    features["cold"] = (rng.random(n_items) < 0.2).astype(np.float64)
    scales = {name: 0.5 + rng.random() for name in rk.FEATURES}
    design_bytes = n_requests * n_items * (len(rk.FEATURES) + len(rk.COLD_FEATURES)) * 4
    tracemalloc.start()
    try:
        x, names = rk._design(features, scales)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the design, plus a [requests, items] float64 column on its way in (and its temporaries)
    assert peak < design_bytes + 2.5 * n_requests * n_items * 8
    column = names.index("cold:two_tower")
    expected = (features["cold"] * features["two_tower"] / scales["two_tower"]).astype(np.float32)
    assert np.array_equal(x.numpy()[..., column], expected)


def test_a_folds_weights_are_fitted_on_its_rows_without_copying_them_out():
    import torch

    from tunesmith_recommend import ranker as rk

    rng = np.random.default_rng(7)
    x = torch.as_tensor(rng.standard_normal((25, 80, 11)).astype(np.float32))
    seen = torch.as_tensor(rng.random((25, 80)) < 0.1)
    targets = torch.as_tensor(rng.integers(0, 80, 25))
    seen[torch.arange(25), targets] = False
    rows = np.arange(25) % 5 != 2
    copied = rk._fit_listwise(x[rows], seen[rows], targets[rows], 0.01)
    assert np.allclose(rk._fit_listwise(x, seen, targets, 0.01, rows=rows), copied, atol=1e-6)
    w = rng.standard_normal(11)
    whole = x.numpy().astype(np.float64) @ w
    assert np.array_equal(rk._linear_scores(x, w, 80 * 11 * 2, rows=rows), whole[rows])
