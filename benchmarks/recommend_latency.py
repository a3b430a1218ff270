"""Serving latency of a recommend model with a 100,000-item synthetic catalogue.

The catalogue is synthetic: item vectors are drawn from a mixture of 200 Gaussian "genres"
(L2-normalised, 384 dimensions, as the default encoder gives), with made-up titles; users'
events favour one or two genres and popular items (Zipf). Only the size and shape matter for
latency, so no text is encoded at build time. The model directory is written by the plugin's own
``model.save`` (FAISS index: IVF above 50,000 items, nprobe tuned by the core), then loaded,
and for-user (known users, user tower + FAISS candidates + co-occurrence + re-ranking) and
similar (FAISS neighbours of an item) are timed one request at a time after a warm-up. The
peer row is the same for-user request scored by brute force over the whole catalogue (what
the evaluation does), to show what the candidate step saves.

Goal (issue 28): p95 <= 50 ms for for-user and similar on this machine.

``--filter 'price<20'`` (repeatable) also times for-user and similar with those --where
conditions (the synthetic items have a ``category``, g0 to g199, and a ``price``, 1 to 100).

Usage: python benchmarks/recommend_latency.py [--quick] [--items N] [--requests N]
[--filter WHERE ...]
Prints a table and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import log  # noqa: E402

from tunesmith.events import strict_json  # noqa: E402


def synthetic_model(out: Path, n_items: int, n_users: int, dim: int = 384, seed: int = 0) -> None:
    """Write a model directory for a synthetic catalogue and event log."""
    import numpy as np

    from tunesmith_recommend import baselines as bl
    from tunesmith_recommend.data import Catalogue, Events
    from tunesmith_recommend.model import save
    from tunesmith_recommend.ranker import Ranker, Signals, item_ages
    from tunesmith_recommend.split import leave_last_out
    from tunesmith_recommend.two_tower import train_content_prior, train_user_tower

    rng = np.random.default_rng(seed)
    n_genres = 200
    centres = rng.normal(size=(n_genres, dim)).astype(np.float32)
    genre = rng.integers(0, n_genres, n_items)
    vectors = centres[genre] + 0.8 * rng.normal(size=(n_items, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"i{i:06d}" for i in range(n_items)]
    titles = [f"Synthetic film {i} (genre {g})" for i, g in enumerate(genre.tolist())]
    # fields for --filter: a category per genre (200 of them) and a price from 1 to 100
    prices = np.round(rng.uniform(1, 100, n_items), 2)
    catalogue = Catalogue(
        ids=ids,
        titles=titles,
        texts=titles,
        fields={"category": [f"g{g}" for g in genre.tolist()], "price": prices.tolist()},
        field_types={"category": "text", "price": "number"},
    )
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popularity = popularity[rng.permutation(n_items)]
    by_genre = [np.flatnonzero(genre == g) for g in range(n_genres)]
    users, items, times = [], [], []
    for u in range(n_users):
        liked = rng.choice(n_genres, 2, replace=False)
        pool = np.concatenate([by_genre[g] for g in liked])
        weights = popularity[pool] / popularity[pool].sum()
        n = int(rng.integers(3, 30))
        chosen = rng.choice(pool, size=min(n, len(pool)), replace=False, p=weights)
        users += [u] * len(chosen)
        items += chosen.tolist()
        times += sorted(rng.uniform(0, 90 * 86400, len(chosen)).tolist())
    events = Events(
        user_ids=[f"u{u}" for u in range(n_users)],
        users=np.asarray(users, dtype=np.int32),
        items=np.asarray(items, dtype=np.int32),
        times=np.asarray(times),
    )
    split = leave_last_out(events, n_items)
    recent = bl.decayed_counts(split, 7 * 86400)
    log("training the user tower and the content prior on the synthetic events")
    signals = Signals(
        item_vectors=vectors,
        tower=train_user_tower(vectors, split.fit_sequences, epochs=1, max_examples=20_000),
        counts=bl.item_counts(split),
        recent=recent,
        prior=train_content_prior(vectors, recent, steps=50),
        cooc=bl.cooccurrence(split),
        age=item_ages(n_items, split.fit_items, split.fit_times),
    )
    weights = {
        "two_tower": 1.0,
        "text_similarity": 0.25,
        "cooccurrence": 0.5,
        "popularity": 0.5,
        "recent_popularity": 0.25,
        "freshness": 0.25,
        "content_prior": 0.25,
        "cold": 0.0,
    }
    fitted = SimpleNamespace(
        encoder_dir="default",
        catalogue=catalogue,
        signals=signals,
        ranker=Ranker(
            weights,
            {name: 1.0 for name in weights},
            # items without events weigh text apart (as a trained ranker does): per-item weights
            cold_weights={"two_tower": 0.5, "text_similarity": 0.25, "content_prior": 0.25},
        ),
        events=events,
        val_ndcg=0.0,
    )
    log("saving the model directory (FAISS index included)")
    save(fitted, out)


def percentiles(samples: list[float]) -> tuple[float, float]:
    import numpy as np

    return float(np.percentile(samples, 50)), float(np.percentile(samples, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 requests each.")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        help="A --where condition to time for-user and similar with too (repeat: all hold).",
    )
    args = parser.parse_args()
    requests = 200 if args.quick else args.requests

    import numpy as np

    from tunesmith_recommend.model import Recommender

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="rec-latency-"))
    model_dir = work / "model"
    if not (model_dir / "meta.json").exists():
        started = time.perf_counter()
        synthetic_model(model_dir, args.items, args.users)
        log(f"built in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    recommender = Recommender(model_dir)
    load_seconds = time.perf_counter() - started
    rng = np.random.default_rng(1)
    users = rng.choice(sorted(recommender.histories), requests)
    items = rng.choice(recommender.ids, requests)

    def timed(call, values) -> list[float]:
        for value in values[:20]:  # warm-up
            call(value)
        out = []
        for value in values:
            t0 = time.perf_counter()
            call(value)
            out.append((time.perf_counter() - t0) * 1000)
        return out

    def brute_force(user: str) -> None:
        # the whole catalogue scored, as the evaluation does: the peer of the candidate step
        history = recommender.history_of(user)
        u, _ = recommender.signals.tower.encode_one(recommender.signals.item_vectors[history])
        scores = recommender.signals.item_vectors @ u + recommender.item_part
        scores[history] = -np.inf
        np.argpartition(-scores, 10)[:10]

    rows = {
        "for_user": timed(lambda u: recommender.for_user(u, 10), users),
        "similar": timed(lambda i: recommender.similar(i, 10), items),
        "for_user_brute_force": timed(brute_force, users[: max(50, requests // 4)]),
    }
    if args.filter:
        where = list(args.filter)
        rows["for_user_filtered"] = timed(lambda u: recommender.for_user(u, 10, where=where), users)
        rows["similar_filtered"] = timed(lambda i: recommender.similar(i, 10, where=where), items)
    print(
        f"{len(recommender.ids)} items, {len(recommender.histories)} users, index "
        f"{recommender.index.kind}; load {load_seconds:.2f} s; {requests} requests each"
    )
    print(f"{'request':24s} {'p50 ms':>8s} {'p95 ms':>8s}")
    figures = {}
    for name, samples in rows.items():
        p50, p95 = percentiles(samples)
        figures[name] = (round(p50, 2), round(p95, 2))
        print(f"{name:24s} {p50:8.2f} {p95:8.2f}")
    timed_goal = [figures[name][1] for name in figures if "brute_force" not in name]
    goal = max(timed_goal) <= 50.0
    print(f"goal p95 <= 50 ms for every request timed: {'met' if goal else 'not met'}")
    print(
        strict_json(
            {
                "benchmark": "recommend_latency",
                "quick": args.quick,
                "items": len(recommender.ids),
                "index_kind": recommender.index.kind,
                "load_seconds": round(load_seconds, 2),
                "for_user_p50_ms": figures["for_user"][0],
                "for_user_p95_ms": figures["for_user"][1],
                "similar_p50_ms": figures["similar"][0],
                "similar_p95_ms": figures["similar"][1],
                "brute_force_p50_ms": figures["for_user_brute_force"][0],
                "brute_force_p95_ms": figures["for_user_brute_force"][1],
                "goal_met": goal,
                "filter": args.filter or None,
                **{
                    f"{name}_p{q}_ms": figures[name][i]
                    for name in ("for_user_filtered", "similar_filtered")
                    if name in figures
                    for i, q in enumerate((50, 95))
                },
            }
        )
    )


if __name__ == "__main__":
    main()
