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

Reported: build time (add, then IVF train + add + nprobe tuning), memory (RSS growth while
building, bytes of the saved FAISS file and payload table), save/load time, batched queries/s
(1,000 test queries in chunks of 100, exact and approximate taking turns so a change in the
shared machine's load hits both), single-query latency p50/p95 (alternating), recall@10 of the
approximate index against exact search. Goal: >= 10x exact search's queries/s at recall@10 >=
0.95 (test queries, nprobe chosen on validation). The nprobe the library tuned by itself at
build time is reported beside it.

Is the mixture realistic? ``--compare-real N`` embeds N banking77 + clinc150 texts with the
default model and prints, at equal size, the neighbour cosines and IVF recall curve of the real
embeddings beside the synthetic ones (the synthetic data was the harder of the two for IVF).

Usage: python benchmarks/retrieval_speed.py [--quick] [--n N] [--threads T] [--compare-real N]
Prints a table and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "core" / "src"))

from bench_common import DEFAULT_DATA, log, read_csv  # noqa: E402

from tunesmith.events import strict_json  # noqa: E402

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


def batched_qps(index, queries: np.ndarray) -> tuple[float, list[list[str]]]:
    """Queries/s of one batch call over all queries, and the ids found."""
    start = time.perf_counter()
    result = index.search_batch(queries, k=K)
    return len(queries) / (time.perf_counter() - start), ids_of(result)


def interleaved(exact, approx, queries: np.ndarray, chunk: int) -> dict[str, object]:
    """Batched queries/s of both indexes taking turns on chunks of the queries.

    A change in the machine's load (it is shared) then hits both alike; each side's time is
    the sum over its chunks.
    """
    spent = {"exact": 0.0, "approx": 0.0}
    found: dict[str, list[list[str]]] = {"exact": [], "approx": []}
    for start in range(0, len(queries), chunk):
        part = queries[start : start + chunk]
        for name, index in (("exact", exact), ("approx", approx)):
            t0 = time.perf_counter()
            hits = index.search_batch(part, k=K)
            spent[name] += time.perf_counter() - t0
            found[name].extend(ids_of(hits))
    return {"qps": {k: len(queries) / v for k, v in spent.items()}, "found": found}


def single_latencies(exact, approx, queries: np.ndarray, exact_every: int) -> dict[str, np.ndarray]:
    """Seconds per single-query ``search`` call: approx on every query, exact on every
    ``exact_every``-th (it is slow), alternating so load changes hit both."""
    out: dict[str, list[float]] = {"exact": [], "approx": []}
    for i, q in enumerate(queries):
        sides = (
            (("exact", exact), ("approx", approx))
            if i % exact_every == 0
            else (("approx", approx),)
        )
        for name, index in sides:
            t0 = time.perf_counter()
            index.search(q, k=K)
            out[name].append(time.perf_counter() - t0)
    return {k: np.array(v) for k, v in out.items()}


def add_all(index, vectors: np.ndarray, chunk: int = 100_000) -> None:
    for start in range(0, len(vectors), chunk):
        part = vectors[start : start + chunk]
        index.add([f"v{i:07d}" for i in range(start, start + len(part))], vectors=part)


def dir_bytes(path: Path, name: str) -> int:
    return sum(p.stat().st_size for p in path.glob(f"gen-*/{name}"))


def real_texts(data_root: Path, limit: int) -> list[str]:
    """Distinct banking77 and clinc150 training texts, shuffled with a fixed seed."""
    texts = [r["text"] for r in read_csv(data_root / "banking77" / "train.csv")]
    with (data_root / "clinc150" / "train.jsonl").open(encoding="utf-8") as handle:
        texts += [json.loads(line)["text"] for line in handle if line.strip()]
    texts = list(dict.fromkeys(texts))
    order = np.random.default_rng(0).permutation(len(texts))
    return [texts[i] for i in order[:limit]]


def neighbour_profile(faiss, x: np.ndarray, q: np.ndarray, nlist: int) -> dict[str, object]:
    """Mean top-1/top-10 cosine, random-pair cosine and IVF recall@10 by nprobe."""
    scores, truth = faiss.knn(q, x, K, metric=faiss.METRIC_INNER_PRODUCT)
    half = len(x) // 2
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIM), DIM, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.cp.niter = 10
    ivf.train(x)
    ivf.add(x)
    curve = {}
    for nprobe in (1, 2, 4, 8, 16, 32):
        _, found = ivf.search(q, K, params=faiss.SearchParametersIVF(nprobe=nprobe))
        curve[nprobe] = round(
            float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)])), 3
        )
    return {
        "top1_cosine": round(float(scores[:, 0].mean()), 3),
        "top10_cosine": round(float(scores[:, -1].mean()), 3),
        "random_pair_cosine": round(
            float(np.mean(np.sum(x[:half] * x[half : 2 * half], axis=1))), 3
        ),
        "ivf_recall@10_by_nprobe": curve,
    }


def compare_real(n_texts: int, data_root: Path) -> None:
    """Real MiniLM embeddings against the synthetic mixture at equal size (see the docstring)."""
    from tunesmith.retrieval import Encoder
    from tunesmith.retrieval.index import _faiss, _use_threads

    faiss = _faiss()
    texts = real_texts(data_root, n_texts)
    log(f"embedding {len(texts)} real texts with the default model")
    real = Encoder.load("default").encode(texts)
    _use_threads()
    n_queries = max(100, len(real) // 8)
    index_part, query_part = real[n_queries:], real[:n_queries]
    nlist = max(16, 2 ** int(np.log2(max(1, len(index_part) // 50))))  # ~50 points per list
    mixture = Mixture()
    rows = {
        "real (all-MiniLM-L6-v2, banking77 + clinc150)": neighbour_profile(
            faiss, index_part, query_part, nlist
        ),
        "synthetic mixture": neighbour_profile(
            faiss, mixture.draw(len(index_part), seed=1), mixture.draw(n_queries, seed=3), nlist
        ),
    }
    print(f"\n{len(index_part)} indexed, {n_queries} queries, IVF nlist {nlist}")
    for name, row in rows.items():
        print(f"{name:48} {row}")
    print(
        strict_json(
            {
                "benchmark": "retrieval_speed.compare_real",
                "n": len(index_part),
                "nlist": nlist,
                **rows,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 vectors instead of 1,000,000")
    parser.add_argument("--n", type=int, help="number of indexed vectors (overrides --quick)")
    parser.add_argument("--val-queries", type=int, default=500)
    parser.add_argument("--test-queries", type=int, default=1000)
    parser.add_argument("--single", type=int, default=200, help="single queries timed for latency")
    parser.add_argument(
        "--threads", type=int, help="FAISS threads (default: one per physical core)"
    )
    parser.add_argument(
        "--compare-real",
        type=int,
        metavar="N",
        help="only compare N real embeddings with the mixture",
    )
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    if args.threads:
        os.environ["TUNESMITH_FAISS_THREADS"] = str(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.compare_real:
        compare_real(args.compare_real, args.data_root)
        return

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
    log(f"exact: built in {exact_build:.1f} s")

    # ---- approximate: what save()/optimize() builds above EXACT_LIMIT
    gc.collect()
    rss0 = rss_mb()
    approx = VectorIndex.create(work / "approx", dim=DIM, encoder_name="synthetic-mixture")
    t0 = time.perf_counter()
    add_all(approx, data)
    add_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    kind = approx.optimize()
    optimize_s = time.perf_counter() - t0
    rss_growth = rss_mb() - rss0
    del data
    gc.collect()
    auto_nprobe, nlist = approx.nprobe, approx.nlist
    log(
        f"approx: add {add_s:.1f} s, optimize ({kind}, nlist {nlist}, "
        f"auto nprobe {auto_nprobe}) {optimize_s:.1f} s, RSS +{rss_growth:.0f} MB"
    )

    # ---- nprobe chosen on validation queries
    val_truth = ids_of(exact.search_batch(val_q, k=K))
    sweep = []
    for nprobe in (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256):
        approx.nprobe = nprobe
        qps, found = batched_qps(approx, val_q)
        sweep.append(
            {
                "nprobe": approx.nprobe,
                "val_recall@10": round(recall_at_k(found, val_truth), 4),
                "val_qps": round(qps, 1),
            }
        )
        log(f"  val nprobe {nprobe}: recall@10 {sweep[-1]['val_recall@10']:.4f}, {qps:.0f} q/s")
        if sweep[-1]["val_recall@10"] >= 0.995 or nprobe >= (nlist or 0):
            break
    chosen = next(
        (s["nprobe"] for s in sweep if s["val_recall@10"] >= VAL_TARGET), sweep[-1]["nprobe"]
    )

    # ---- test queries: both sides interleaved
    approx.nprobe = chosen
    log(f"test: {len(test_q)} queries, exact and approx (nprobe {chosen}) taking turns")
    run = interleaved(exact, approx, test_q, chunk=100)
    exact_qps, approx_qps = run["qps"]["exact"], run["qps"]["approx"]
    test_truth = run["found"]["exact"]
    approx_recall = recall_at_k(run["found"]["approx"], test_truth)
    lat = single_latencies(exact, approx, test_q[: args.single], exact_every=4)
    exact_lat, approx_lat = lat["exact"], lat["approx"]
    top1 = float(np.mean([exact.search(q, k=1)[0].score for q in test_q[:100]]))
    approx.nprobe = auto_nprobe
    auto_qps, auto_found = batched_qps(approx, test_q)
    auto_recall = recall_at_k(auto_found, test_truth)
    approx.nprobe = chosen
    del exact
    gc.collect()

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
    loaded_ok = loaded.kind == kind and len(loaded) == n and loaded.nprobe == chosen
    del loaded
    gc.collect()
    shutil.rmtree(work, ignore_errors=True)

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
    print(strict_json(result))


if __name__ == "__main__":
    main()
