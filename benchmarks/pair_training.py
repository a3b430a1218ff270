"""Pair fine-tuning on bank_faq: held-out questions to their answers, untuned against tuned.

``train_pair_encoder`` runs exactly as ``tunesmith train --task pairs --data faq.csv --text-col
question --pair-col answer`` runs it: the default encoder (all-MiniLM-L6-v2), a seeded 20 % of
the distinct question texts held out whole (a question that occurs with several answers is all
held out or all trained on), every held-out question ranking all distinct answers. A question
with several answers counts as right at k when any of its answers is in the top k. Beside it, in
the same run and on the same split: BM25 (bm25s, English stop words, no stemming) of the question
against the answers, a lexical peer, and the untuned encoder, which the tuned one must beat.

``--quick`` trains on a seeded 400-question subset (same keys in the JSON line).

Usage: python benchmarks/pair_training.py [--quick] [--data-root DIR] [--epochs 1]
    [--batch-size 32] [--lr LR] [--seed 42]
Prints a table and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import DEFAULT_DATA, log, read_csv  # noqa: E402

from tunesmith.events import strict_json  # noqa: E402


def bm25_metrics(queries, targets, candidates):
    """recall@k and MRR of BM25 scores of each distinct query against the candidates."""
    import bm25s
    import numpy as np
    from bm25s.tokenization import Tokenizer

    from tunesmith.retrieval.ranking import metrics_from_ranks

    tokenizer = Tokenizer(stopwords="en", stemmer=None)
    retriever = bm25s.BM25()
    retriever.index(
        tokenizer.tokenize(list(candidates), return_as="ids", show_progress=False),
        show_progress=False,
    )
    position = {text: i for i, text in enumerate(candidates)}
    relevant: dict[str, set[int]] = {}
    for query, target in zip(queries, targets, strict=True):
        relevant.setdefault(query, set()).add(position[target])
    texts = list(relevant)
    tokens = tokenizer.tokenize(texts, update_vocab=False, return_as="ids", show_progress=False)
    ranks = []
    for query, ids in zip(texts, tokens, strict=True):
        scores = np.asarray(retriever.get_scores(list(ids)), dtype=np.float64)
        best = max(scores[j] for j in relevant[query])
        ranks.append(int((scores >= best).sum()))
    return metrics_from_ranks(np.asarray(ranks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    from tunesmith.engine.threads import configure_threads

    configure_threads()
    import torch

    from tunesmith.retrieval.pairs import DEFAULT_LR, split_by_query, train_pair_encoder

    rows = read_csv(args.data_root / "bank_faq" / "faq.csv")
    queries = [r["question"] for r in rows]
    targets = [r["answer"] for r in rows]
    if args.quick:
        keep = set(random.Random(args.seed).sample(sorted(set(queries)), 400))
        pairs = [(q, t) for q, t in zip(queries, targets, strict=True) if q in keep]
        queries, targets = [q for q, _ in pairs], [t for _, t in pairs]
    train_idx, eval_idx = split_by_query(queries, args.seed)
    eval_q, eval_t = [queries[i] for i in eval_idx], [targets[i] for i in eval_idx]
    candidates = list(dict.fromkeys([*(targets[i] for i in train_idx), *eval_t]))
    log(f"{len(queries)} pairs; {len(set(eval_q))} held-out questions; {len(candidates)} answers")

    bm25 = bm25_metrics(eval_q, eval_t, candidates)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = train_pair_encoder(
            queries,
            targets,
            Path(tmp) / "bank_faq_pairs",
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
        )
        seconds = time.perf_counter() - started
    metrics = result.metrics
    assert metrics["n_eval"] == len(set(eval_q)) and metrics["n_candidates"] == len(candidates)

    names = ["recall@1", "recall@5", "recall@10", "mrr"]
    table = [("bm25 (peer)", bm25), ("untuned", metrics["untuned"]), ("tuned", metrics["tuned"])]
    print(f"{'method':<12} " + " ".join(f"{n:>9}" for n in names))
    for label, m in table:
        print(f"{label:<12} " + " ".join(f"{m[n]:>9.4f}" for n in names))
    print(
        f"{metrics['n_train']} training pairs, {metrics['steps']} steps, "
        f"training {metrics['train_seconds']:.0f} s, whole run {seconds:.0f} s, "
        f"{torch.get_num_threads()} threads, loss {metrics['loss_first']} -> "
        f"{metrics['loss_last']}"
    )
    gain = metrics["tuned"]["mrr"] - metrics["untuned"]["mrr"]
    summary = {
        "benchmark": "pair_training",
        "quick": args.quick,
        "data": "bank_faq",
        "n_pairs": len(queries),
        "n_train": metrics["n_train"],
        "n_eval_queries": metrics["n_eval"],
        "n_candidates": metrics["n_candidates"],
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr if args.lr is not None else DEFAULT_LR,
        "seed": args.seed,
        "steps": metrics["steps"],
        "train_seconds": metrics["train_seconds"],
        "total_seconds": round(seconds, 1),
        "threads": torch.get_num_threads(),
        "bm25": bm25,
        "untuned": metrics["untuned"],
        "tuned": metrics["tuned"],
        "mrr_gain": round(gain, 4),
        "tuned_beats_untuned": gain > 0,
    }
    print(strict_json(summary))


if __name__ == "__main__":
    main()
