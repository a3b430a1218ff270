"""Recommendation on MovieTweetings (first 10,000 ratings): every baseline and the final ranker,
in one run, on one leave-last-out split with full ranking over the whole catalogue.

Items are read as title + year + genres (the data's README). Every rating is an event (the
protocol behind "popularity 0.083"); users with at least 3 events are evaluated: the last event
is the test request, the one before it the validation request that chooses the ranker's weights,
ALS's factors and recent popularity's half-life. Intervals are bootstrap 95% over test users;
the ratio's interval is a paired bootstrap (the same resampled users for both models).

Goals (issue 28): final ranker NDCG@10 >= 1.1x the best baseline; on test items with no
training event, Recall@10 >= 5x random and above every ID-based baseline.

``--quick``: a random 60% of the users (all their events), pair fine-tuning on at most 3,000
pairs, 3 user-tower epochs, 200 bootstrap samples; the same JSON keys.

Usage: python benchmarks/recommend_movietweetings.py [--quick] [--data-root DIR] [--no-fine-tune]
Prints a table and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit's advice; we set 1 thread ALS
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import DEFAULT_DATA, log  # noqa: E402

from tunesmith.events import strict_json  # noqa: E402


def subset_users(events, fraction: float, seed: int = 0):
    """The events of a random share of the users (for --quick)."""
    import numpy as np

    from tunesmith_recommend.data import Events

    rng = np.random.default_rng(seed)
    keep_users = np.flatnonzero(rng.random(len(events.user_ids)) < fraction)
    mask = np.isin(events.users, keep_users)
    remap = {old: new for new, old in enumerate(keep_users.tolist())}
    return Events(
        user_ids=[events.user_ids[u] for u in keep_users],
        users=np.asarray([remap[u] for u in events.users[mask].tolist()], dtype=np.int32),
        items=events.items[mask],
        times=events.times[mask],
        path=events.path,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true", help="60%% of users, fewer epochs.")
    parser.add_argument("--no-fine-tune", action="store_true", help="Pretrained item tower.")
    parser.add_argument("--model", default="default", help="Base encoder.")
    parser.add_argument("--encoder-epochs", type=float, default=1.0)
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)

    from tunesmith_recommend.cli import report_table
    from tunesmith_recommend.data import load_events, load_items
    from tunesmith_recommend.pipeline import Settings, evaluate, fit, headline

    root = args.data_root / "movietweetings"
    started = time.perf_counter()
    catalogue = load_items(root / "items.csv", text_cols=["year", "genres"])
    events = load_events(root / "events.csv", catalogue)
    if args.quick:
        events = subset_users(events, 0.6)
    settings = Settings(
        model=args.model,
        fine_tune=not args.no_fine_tune,
        encoder_epochs=args.encoder_epochs,
        max_pairs=3000 if args.quick else 20000,
        tower_epochs=3 if args.quick else 5,
    )
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="rec-bench-"))
    fitted = fit(catalogue, events, work, settings, say=log)
    fit_seconds = time.perf_counter() - started
    result = evaluate(fitted, n_boot=200 if args.quick else 1000)
    head = headline(result, len(catalogue))
    print(
        f"MovieTweetings 10K: {len(catalogue)} items, {len(events.user_ids)} users, "
        f"{len(events)} events; {head['n_test']} test users ({head['n_cold']} cold targets)"
    )
    print(report_table(result["models"]))
    ratio_goal = head["ratio"] >= 1.1
    cold_goal = (
        head["cold_recall10"] >= 5 * head["random_recall10"]
        and head["cold_recall10"] > head["best_id_baseline_cold_recall10"]
    )
    print(
        f"final ranker {head['ndcg10']:.4f} {head['ndcg10_ci']} vs {head['best_baseline']} "
        f"{head['ndcg10_best_baseline']:.4f} {head['ndcg10_best_baseline_ci']}: ratio "
        f"{head['ratio']:.3f} {head['ratio_ci']} (goal 1.1: {'met' if ratio_goal else 'not met'})"
    )
    print(
        f"cold items Recall@10 {head['cold_recall10']:.4f} (random {head['random_recall10']:.4f}, "
        f"best ID-based {head['best_id_baseline_cold_recall10']:.4f}; goal "
        f"{'met' if cold_goal else 'not met'})"
    )
    print(f"item tower chosen on validation: {fitted.item_tower} {fitted.tower_scores}")
    print(f"ranker weights (chosen on validation): {fitted.ranker.weights}")
    line = {
        "benchmark": "recommend_movietweetings",
        "quick": args.quick,
        "item_tower": fitted.item_tower,
        "item_tower_validation_ndcg10": fitted.tower_scores,
        **head,
        "ratio_goal_met": ratio_goal,
        "cold_goal_met": cold_goal,
        "validation_ndcg10": round(fitted.val_ndcg, 4),
        "ranker_weights": fitted.ranker.weights,
        "seconds": round(time.perf_counter() - started, 1),
        "fit_seconds": round(fit_seconds, 1),
    }
    print(strict_json(line))  # a slice with no request: null, not NaN


if __name__ == "__main__":
    main()
