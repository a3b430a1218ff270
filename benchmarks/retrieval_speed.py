"""Vector search speed: tunesmith's VectorIndex, approximate (IVF) against exact (flat) search.

Data (synthetic, no model): 1,000,000 vectors of dimension 384 (``--quick``: 100,000) drawn
from a Gaussian mixture of 1,000 clusters in a 64-dimensional latent space, mapped to 384
dimensions by a fixed random matrix, plus isotropic noise, L2-normalised like MiniLM
embeddings. Sentence embeddings have a low intrinsic dimension and topic clusters; this keeps
both, where uniform random vectors have neither (and make every neighbour nearly equidistant).
Queries are fresh draws from the same mixture (not indexed points): a validation set that
chooses ``nprobe`` and a separate test set that every reported figure comes from.

Both sides are the same class, ``VectorIndex``, in one run with the same FAISS threads: the
peer is its exact kind (``IndexFlatIP``, what FAISS offers for exact inner-product search; it
uses BLAS for batches), the candidate its approximate kind (``IndexIVFFlat``, built by
``optimize()`` as ``save()`` does above 50,000 vectors). Every search returns ``Hit`` objects
with their payloads from SQLite, as users get them.

Reported: build time (add, IVF train+add+tune), memory (RSS growth while building, bytes of
the saved FAISS file and payload table), save/load time, queries/s for batched search (1,000
test queries at once) and single queries, latency p50/p95 of single queries, recall@10 of the
approximate index against exact search. Goal: >= 10x exact search's queries/s at recall@10 >=
0.95 (on the test queries, with the nprobe chosen on validation).

Usage: python benchmarks/retrieval_speed.py [--quick] [--n N] [--threads T]
Prints a table and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "core" / "src"))

from bench_common import log  # noqa: E402

DIM = 384
LATENT = 64
CLUSTERS = 1000
K = 10
GOAL_SPEEDUP = 10.0
GOAL_RECALL = 0.95
#: nprobe is chosen on validation as the smallest reaching this recall@10 (a margin over 0.95).
VAL_TARGET = 0.96


class Mixture:
    """The fixed synthetic distribution: cluster centres and the latent-to-384 map."""

    def __init__(self, seed: int = 2026) -> None:
        rng = np.random.default_rng(seed)
        self.centres = rng.standard_normal((CLUSTERS, LATENT)).astype(np.float32)
        self.spread = rng.uniform(0.35, 0.8, CLUSTERS).astype(
            np.float32
        )  # clusters differ in width
        self.weights = rng.dirichlet(np.full(CLUSTERS, 2.0))  # and in size
        self.project = (rng.standard_normal((LATENT, DIM)) / np.sqrt(LATENT)).astype(np.float32)

    def draw(self, n: int, seed: int, chunk: int = 100_000) -> np.ndarray:
        """``n`` unit vectors; another seed gives fresh points from the same mixture."""
        rng = np.random.default_rng(seed)
        out = np.empty((n, DIM), dtype=np.float32)
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            which = rng.choice(CLUSTERS, m, p=self.weights)
            latent = self.centres[which] + self.spread[which, None] * rng.standard_normal(
                (m, LATENT), dtype=np.float32
            )
            x = latent @ self.project + 0.15 * rng.standard_normal((m, DIM), dtype=np.float32)
            out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out


def rss_mb() -> float:
    """Resident memory of this process, MB (from /proc)."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def ids_of(results) -> list[list[str]]:
    return [[h.id for h in hits] for hits in results]


def recall_at_k(found: list[list[str]], truth: list[list[str]]) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


def batched_qps(index, queries: np.ndarray, repeats: int = 2) -> tuple[float, list[list[str]]]:
    """Best queries/s of ``repeats`` passes of one batch call over all queries."""
    best, result = 0.0, []
    for _ in range(repeats):
        start = time.perf_counter()
        result = index.search_batch(queries, k=K)
        best = max(best, len(queries) / (time.perf_counter() - start))
    return best, ids_of(result)


def single_latencies(index, queries: np.ndarray) -> np.ndarray:
    """Seconds per single-query ``search`` call."""
    out = []
    for q in queries:
        start = time.perf_counter()
        index.search(q, k=K)
        out.append(time.perf_counter() - start)
    return np.array(out)


def add_all(index, vectors: np.ndarray, chunk: int = 100_000) -> None:
    for start in range(0, len(vectors), chunk):
        part = vectors[start : start + chunk]
        index.add([f"v{i:07d}" for i in range(start, start + len(part))], vectors=part)


def dir_bytes(path: Path, name: str) -> int:
    return sum(p.stat().st_size for p in path.glob(f"gen-*/{name}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 vectors instead of 1,000,000")
    parser.add_argument("--n", type=int, help="number of indexed vectors (overrides --quick)")
    parser.add_argument("--val-queries", type=int, default=500)
    parser.add_argument("--test-queries", type=int, default=1000)
    parser.add_argument("--single", type=int, default=200, help="single queries timed for latency")
    parser.add_argument("--threads", type=int, help="FAISS threads (default: usable CPUs)")
    args = parser.parse_args()
    if args.threads:
        os.environ["TUNESMITH_FAISS_THREADS"] = str(args.threads)

    from tunesmith.retrieval.index import EXACT_LIMIT, VectorIndex, _faiss, max_threads

    _faiss()  # chooses the OpenMP wait policy as the library does
    n = args.n or (100_000 if args.quick else 1_000_000)
    threads = max_threads()
    log(
        f"drawing {n:,} x {DIM} vectors and {args.val_queries}+{args.test_queries} queries; FAISS threads {threads}"
    )
    mixture = Mixture()
    t0 = time.perf_counter()
    data = mixture.draw(n, seed=1)
    val_q = mixture.draw(args.val_queries, seed=2)
    test_q = mixture.draw(args.test_queries, seed=3)
    log(f"  drawn in {time.perf_counter() - t0:.1f} s")
    work = Path(tempfile.mkdtemp(prefix="retrieval_speed."))

    # ---- exact peer: the flat kind (exact_limit above n keeps it flat)
    exact = VectorIndex.create(
        work / "exact", dim=DIM, encoder_name="synthetic-mixture", exact_limit=n + 1
    )
    t0 = time.perf_counter()
    add_all(exact, data)
    exact_build = time.perf_counter() - t0
    log(f"exact: built in {exact_build:.1f} s; searching")
    val_truth = ids_of(exact.search_batch(val_q, k=K))
    exact_qps, test_truth = batched_qps(exact, test_q)
    exact_lat = single_latencies(exact, test_q[: max(20, args.single // 4)])
    top1 = float(np.mean([exact.search(q, k=1)[0].score for q in test_q[:200]]))
    log(f"exact: {exact_qps:.1f} q/s batched, p50 {np.median(exact_lat) * 1e3:.1f} ms single")
    del exact
    gc.collect()

    # ---- approximate: what save()/optimize() builds above EXACT_LIMIT
    rss0 = rss_mb()
    approx = VectorIndex.create(work / "approx", dim=DIM, encoder_name="synthetic-mixture")
    t0 = time.perf_counter()
    add_all(approx, data)
    add_s = time.perf_counter() - t0
    del data
    gc.collect()
    t0 = time.perf_counter()
    kind = approx.optimize()
    optimize_s = time.perf_counter() - t0
    rss_growth = rss_mb() - rss0
    auto_nprobe, nlist = approx.nprobe, approx.nlist
    log(
        f"approx: add {add_s:.1f} s, optimize ({kind}, nlist {nlist}, "
        f"auto nprobe {auto_nprobe}) {optimize_s:.1f} s, RSS +{rss_growth:.0f} MB"
    )

    sweep = []
    for nprobe in (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256):
        approx.nprobe = nprobe
        qps, found = batched_qps(approx, val_q, repeats=1)
        sweep.append(
            {
                "nprobe": nprobe,
                "val_recall@10": round(recall_at_k(found, val_truth), 4),
                "val_qps": round(qps, 1),
            }
        )
        log(f"  val nprobe {nprobe}: recall@10 {sweep[-1]['val_recall@10']:.4f}, {qps:.0f} q/s")
        if sweep[-1]["val_recall@10"] >= 0.995:
            break
    chosen = next(
        (s["nprobe"] for s in sweep if s["val_recall@10"] >= VAL_TARGET), sweep[-1]["nprobe"]
    )

    approx.nprobe = chosen
    approx_qps, found = batched_qps(approx, test_q)
    approx_recall = recall_at_k(found, test_truth)
    approx_lat = single_latencies(approx, test_q[: args.single])
    approx.nprobe = auto_nprobe
    auto_qps, auto_found = batched_qps(approx, test_q)
    auto_recall = recall_at_k(auto_found, test_truth)
    approx.nprobe = chosen

    t0 = time.perf_counter()
    approx.save()
    save_s = time.perf_counter() - t0
    index_bytes = dir_bytes(work / "approx", "index.faiss")
    payload_bytes = dir_bytes(work / "approx", "payloads.sqlite")
    del approx
    gc.collect()
    t0 = time.perf_counter()
    loaded = VectorIndex.load(work / "approx")
    load_s = time.perf_counter() - t0
    loaded_ok = loaded.kind == kind and len(loaded) == n
    del loaded
    gc.collect()

    speedup = approx_qps / exact_qps
    met = bool(speedup >= GOAL_SPEEDUP and approx_recall >= GOAL_RECALL)
    result = {
        "benchmark": "retrieval_speed",
        "quick": bool(args.quick and not args.n),
        "n": n,
        "dim": DIM,
        "data": f"synthetic gaussian mixture ({CLUSTERS} clusters, {LATENT}-d latent, random map to {DIM}-d, noise, L2-normalised)",
        "queries": "fresh draws from the same mixture",
        "val_queries": args.val_queries,
        "test_queries": args.test_queries,
        "faiss_threads": threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "exact_limit": EXACT_LIMIT,
        "mean_top1_cosine": round(top1, 4),
        "exact_build_s": round(exact_build, 2),
        "exact_qps": round(exact_qps, 1),
        "exact_latency_ms_p50": round(float(np.median(exact_lat)) * 1e3, 2),
        "exact_latency_ms_p95": round(float(np.percentile(exact_lat, 95)) * 1e3, 2),
        "approx_kind": kind,
        "nlist": nlist,
        "add_s": round(add_s, 2),
        "optimize_s": round(optimize_s, 2),
        "build_s": round(add_s + optimize_s, 2),
        "rss_growth_mb": round(rss_growth, 1),
        "index_bytes": index_bytes,
        "payload_bytes": payload_bytes,
        "save_s": round(save_s, 2),
        "load_s": round(load_s, 2),
        "loaded_ok": loaded_ok,
        "nprobe_sweep": sweep,
        "nprobe": chosen,
        "approx_qps": round(approx_qps, 1),
        "approx_latency_ms_p50": round(float(np.median(approx_lat)) * 1e3, 3),
        "approx_latency_ms_p95": round(float(np.percentile(approx_lat, 95)) * 1e3, 3),
        "recall@10": round(approx_recall, 4),
        "speedup_qps": round(speedup, 2),
        "single_query_speedup": round(float(np.median(exact_lat) / np.median(approx_lat)), 1),
        "auto_nprobe": auto_nprobe,
        "auto_nprobe_qps": round(auto_qps, 1),
        "auto_nprobe_recall@10": round(auto_recall, 4),
        "goal": f">= {GOAL_SPEEDUP:g}x exact queries/s at recall@10 >= {GOAL_RECALL}",
        "goal_met": met,
    }
    print(f"\nretrieval_speed: {n:,} x {DIM}, {result['data']}; FAISS threads {threads}")
    print(f"{'':28}{'exact (flat)':>16}{'approx (' + kind + ')':>18}")
    print(f"{'build s':28}{exact_build:>16.1f}{add_s + optimize_s:>18.1f}")
    print(f"{'batched queries/s':28}{exact_qps:>16.1f}{approx_qps:>18.1f}")
    print(
        f"{'single latency p50 ms':28}{result['exact_latency_ms_p50']:>16.2f}{result['approx_latency_ms_p50']:>18.3f}"
    )
    print(
        f"{'single latency p95 ms':28}{result['exact_latency_ms_p95']:>16.2f}{result['approx_latency_ms_p95']:>18.3f}"
    )
    print(f"{'recall@10 (test)':28}{1.0:>16.4f}{approx_recall:>18.4f}")
    print(
        f"nprobe {chosen} (chosen on validation; auto-tuned at build: {auto_nprobe}, "
        f"recall@10 {auto_recall:.4f} at {auto_qps:.0f} q/s)"
    )
    print(
        f"memory: RSS +{rss_growth:.0f} MB building; index.faiss {index_bytes / 1e6:.0f} MB, "
        f"payloads.sqlite {payload_bytes / 1e6:.0f} MB; save {save_s:.1f} s, load {load_s:.1f} s"
    )
    print(
        f"speed-up {speedup:.1f}x at recall@10 {approx_recall:.4f}: goal {'met' if met else 'NOT met'}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
