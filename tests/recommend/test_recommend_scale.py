"""What keeps a large catalogue (a bookshop's 200,000 titles, 60,000 validation requests)
trainable: ranks-only rankings skip the top-k lists, item-only scores (popularity) are ranked
from one sorted row with the same ranks, and ``train`` fits no baseline it does not keep."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from typer.testing import CliRunner

from tunesmith_recommend.evaluate import rank_requests
from tunesmith_recommend.split import Requests


def requests_with_repeats(n_items: int, n: int, seed: int = 3) -> Requests:
    """Requests whose histories repeat items and sometimes hold their own target (a re-read)."""
    rng = np.random.default_rng(seed)
    histories = [rng.integers(0, n_items, rng.integers(0, 12)) for _ in range(n)]
    targets = rng.integers(0, n_items, n)
    for row in range(0, n, 7):
        histories[row] = np.append(histories[row], targets[row])
    return Requests(
        users=np.arange(n, dtype=np.int32),
        targets=targets.astype(np.int32),
        histories=histories,
        history_times=[np.zeros(len(h)) for h in histories],
        rated_below=[rng.integers(0, n_items, rng.integers(0, 3)) for _ in range(n)],
    )


def test_item_only_scores_rank_from_a_sorted_row_exactly_as_the_full_comparison():
    n_items = 60
    # few distinct values, so most targets tie with others: the random tie-break must match too
    row = np.random.default_rng(0).integers(0, 6, n_items).astype(np.float64)
    requests = requests_with_repeats(n_items, 500)

    def score(batch):
        return np.broadcast_to(row, (len(batch), n_items))

    full = rank_requests(score, requests, n_items, batch_size=64, seed=5)
    fast = rank_requests(score, requests, n_items, batch_size=64, seed=5, coverage=False)
    assert fast.ranks.tolist() == full.ranks.tolist()
    assert len(fast.top_items) == 0 and len(full.top_items) > 0


def test_ranks_only_ranking_of_per_request_scores_gives_the_same_ranks():
    n_items = 40
    scores = np.random.default_rng(1).integers(0, 4, (300, n_items)).astype(np.float64)
    requests = requests_with_repeats(n_items, 300)

    def score(batch):
        return scores[batch.users]

    full = rank_requests(score, requests, n_items, batch_size=50, seed=2)
    ranks_only = rank_requests(score, requests, n_items, batch_size=50, seed=2, coverage=False)
    assert ranks_only.ranks.tolist() == full.ranks.tolist()


def test_train_fits_no_baselines_but_eval_does(tmp_path, monkeypatch):
    from tunesmith.cli import build_app
    from tunesmith_recommend import model, pipeline

    seen = []
    fitted = SimpleNamespace(
        val_ndcg=0.5, ranker=SimpleNamespace(weights={}), item_tower="pretrained",
        tower_scores={}, collapsed_tower=None,
    )  # fmt: skip

    def fake_fit(catalogue, events, work, settings, **progress):
        seen.append(settings.baselines)
        return fitted

    monkeypatch.setattr(pipeline, "fit", fake_fit)
    monkeypatch.setattr(model, "save", lambda *args, **kwargs: None)
    monkeypatch.setattr(pipeline, "evaluate", lambda f: {"models": {}})
    monkeypatch.setattr(pipeline, "headline", lambda result, n: {})
    app = build_app()
    train = ["recommend", "train", "--sample", "--no-fine-tune", "--out", str(tmp_path / "m")]
    assert CliRunner().invoke(app, train).exit_code == 0
    CliRunner().invoke(app, ["recommend", "eval", "--sample", "--no-fine-tune", "--json"])
    assert seen == [False, True]
