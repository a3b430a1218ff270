"""The two kinds of FAISS index behind a ``VectorIndex``, and when to switch between them.

- ``flat`` (``IndexIDMap2(IndexFlatIP)``): exact search, used up to :data:`EXACT_LIMIT` vectors.
- ``ivf`` (``IndexIVFFlat``, inner product, with a hashtable direct map): approximate search
  above it. IVF removes and adds single vectors in place, so add, upsert and delete never need a
  rebuild (unlike HNSW, which cannot remove). ``nprobe`` is tuned when the index is built: the
  smallest value whose recall@10 against exact search reaches :data:`TUNE_RECALL` on a sample
  of stored vectors. The coarse centroids are retrained once the index has grown or shrunk 4x
  since they were trained.

The FAISS ids are int64 rowids of the payload table (:mod:`tunesmith.retrieval.payload_table`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.errors import DataError
from tunesmith.retrieval.blas import nearest_centroid, spherical_kmeans, top_k_inner_product
from tunesmith.retrieval.faiss_runtime import load_faiss

#: Up to this many vectors the index is exact (flat); above it ``save()``/``optimize()`` switch
#: to IVF. Exact search over 60,000 x 384 float32 took 7 ms per single query on one core here.
EXACT_LIMIT = 50_000
#: IVF turns back into flat only below half the limit, so a size near the limit does not flap.
_FLAT_AGAIN_SHARE = 0.5
#: recall@10 against exact search that the tuned ``nprobe`` must reach on stored vectors.
TUNE_RECALL = 0.97
#: Stored vectors used as queries when tuning ``nprobe``.
_TUNE_QUERIES = 256
#: Retrain the IVF centroids when the count moved this factor from the trained count.
_RETRAIN_FACTOR = 4.0
#: Training points per IVF list (FAISS warns below 39).
_TRAIN_PER_LIST = 50
#: From this many queries a search goes through numpy's BLAS (see top_k_inner_product); a
#: single query is faster on FAISS's own SIMD loop (50,000 x 384: 59 against 25 queries/s).
_BLAS_MIN_QUERIES = 8


def kind_to_rebuild(kind: str, count: int, exact_limit: int, trained_count: int) -> str | None:
    """The kind an index of ``count`` vectors should be rebuilt as, or ``None`` to keep it.

    Flat up to ``exact_limit``, IVF above it; an IVF index turns back into flat below half the
    limit, and is rebuilt (centroids retrained) when ``count`` moved 4x from ``trained_count``.
    """
    if kind == "flat":
        return "ivf" if count > exact_limit else None
    trained = max(1, trained_count)
    if count < exact_limit * _FLAT_AGAIN_SHARE:
        return "flat"
    if count > trained * _RETRAIN_FACTOR or count * _RETRAIN_FACTOR < trained:
        return "ivf"
    return None


def new_flat_index(dim: int) -> Any:
    """An empty exact index of ``dim``-dimensional vectors, with ids."""
    faiss = load_faiss()
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def read_index(file: Path) -> Any:
    """The FAISS index saved in ``file`` (a :class:`DataError` naming it when unreadable)."""
    faiss = load_faiss()
    try:
        return faiss.read_index(str(file))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise DataError(f"cannot read the FAISS index ({first})", path=file) from None


def search_index(
    index: Any, kind: str, ivf: dict[str, int], matrix: np.ndarray, k: int, sel: Any
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rids) of the ``k`` best stored vectors for each query row, best first.

    ``k`` is at most the number of vectors ``sel`` (a FAISS ``IDSelector``, or ``None`` for
    all) lets through; a rid of -1 marks a missing hit.
    """
    faiss = load_faiss()
    batched = len(matrix) >= _BLAS_MIN_QUERIES
    if kind == "flat":
        if sel is None and batched:
            flat = faiss.downcast_index(index.index)
            scores, positions = top_k_inner_product(matrix, flat_vectors(flat), k)
            return scores, faiss.vector_to_array(index.id_map)[positions]
        params = faiss.SearchParameters(sel=sel) if sel is not None else None
        return index.search(matrix, k, params=params)
    nlist = ivf["nlist"]
    nprobe = ivf["nprobe"]
    while True:
        params = (
            faiss.SearchParametersIVF(nprobe=nprobe, sel=sel)
            if sel is not None
            else faiss.SearchParametersIVF(nprobe=nprobe)
        )
        # FAISS's own coarse search here: for IVF batches it was 2.5x faster than lists
        # chosen by numpy and passed to search_preassigned (small products, more overhead).
        scores, rids = index.search(matrix, k, params=params)
        # The probed lists may hold fewer than k (matching) vectors: search more lists,
        # up to all of them, which is exact.
        if nprobe >= nlist or bool((rids[:, -1] >= 0).all()):
            return scores, rids
        nprobe = min(nlist, nprobe * 4)


def stored_vectors(index: Any, kind: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (rid, vector) in ``index``, read straight from FAISS's storage.

    For a flat index the vectors are a view of its storage, not a copy (1.5 GB at 1M x
    384), valid while that index lives; a rebuild replaces it only when done.
    """
    faiss = load_faiss()
    n = int(index.ntotal)
    if n == 0:
        return np.empty(0, np.int64), np.empty((0, dim), np.float32)
    if kind == "flat":
        rids = faiss.vector_to_array(index.id_map).astype(np.int64)
        return rids, flat_vectors(faiss.downcast_index(index.index))
    invlists = index.invlists
    rids = np.empty(n, dtype=np.int64)
    vectors = np.empty((n, dim), dtype=np.float32)
    at = 0
    for lst in range(invlists.nlist):
        size = invlists.list_size(lst)
        if not size:
            continue
        rids[at : at + size] = faiss.rev_swig_ptr(invlists.get_ids(lst), size)
        codes = faiss.rev_swig_ptr(invlists.get_codes(lst), size * dim * 4)
        vectors[at : at + size] = codes.view(np.float32).reshape(size, dim)
        at += size
    return rids, vectors


def build_ivf(
    vectors: np.ndarray, rids: np.ndarray, dim: int, *, seed: int = 0
) -> tuple[Any, dict[str, int]]:
    """An ``IndexIVFFlat`` (inner product) over ``vectors`` with ``nprobe`` tuned for recall.

    nlist is about 4 sqrt(n) rounded down to a power of two (at most n / 39 so k-means has
    enough points); the centroids come from spherical k-means (10 rounds) on up to 50 points
    per list. ``nprobe`` is the smallest value whose recall@10 against exact search reaches
    :data:`TUNE_RECALL` on stored vectors used as queries (their own id left out).
    """
    faiss = load_faiss()
    n = len(vectors)
    nlist = 2 ** int(math.log2(max(1.0, 4 * math.sqrt(n))))
    nlist = max(1, min(nlist, 65536, n // 39 or 1))
    rng = np.random.default_rng(seed)
    sample = vectors
    if n > nlist * _TRAIN_PER_LIST:
        sample = vectors[np.sort(rng.choice(n, nlist * _TRAIN_PER_LIST, replace=False))]
    centroids = spherical_kmeans(sample, nlist, rng=rng)
    quantizer = faiss.IndexFlatIP(dim)
    quantizer.add(centroids)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quantizer.this.disown()  # the IVF index frees its quantizer now
    # A hashtable direct map lets remove_ids and reconstruct work on single ids in place.
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    ivf_add(index, vectors, rids)
    nprobe = tune_nprobe(index, vectors, rids, rng=rng)
    return index, {"nlist": nlist, "nprobe": nprobe, "trained_count": n}


def tune_nprobe(
    index: Any, vectors: np.ndarray, rids: np.ndarray, *, rng: np.random.Generator, k: int = 10
) -> int:
    """The smallest nprobe with recall@k >= TUNE_RECALL on sampled stored vectors."""
    faiss = load_faiss()
    n = len(vectors)
    if n <= k + 1:
        return index.nlist
    picks = rng.choice(n, min(_TUNE_QUERIES, n), replace=False)
    queries = np.ascontiguousarray(vectors[picks])
    _, truth_pos = top_k_inner_product(queries, vectors, k + 1)
    truth = [set(rids[row[row != p]][:k].tolist()) for row, p in zip(truth_pos, picks, strict=True)]
    own = rids[picks]
    candidates = sorted(
        {1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512} | {index.nlist}
    )
    for nprobe in (c for c in candidates if c <= index.nlist):
        _, found = index.search(queries, k + 1, params=faiss.SearchParametersIVF(nprobe=nprobe))
        hits = sum(
            len(t & set(row[row != o][:k].tolist()))
            for t, row, o in zip(truth, found, own, strict=True)
        )
        if hits / sum(len(t) for t in truth) >= TUNE_RECALL:
            return nprobe
    return index.nlist


def flat_vectors(flat: Any) -> np.ndarray:
    """A view (no copy) of an ``IndexFlat``'s stored vectors, valid while it lives."""
    faiss = load_faiss()
    return faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d)


def ivf_add(index: Any, vectors: np.ndarray, rids: np.ndarray) -> None:
    """Add to an IVF index with the list assignment computed by numpy."""
    faiss = load_faiss()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    rids = np.ascontiguousarray(rids, dtype=np.int64)
    assign = nearest_centroid(vectors, flat_vectors(faiss.downcast_index(index.quantizer)))
    index.add_core(
        len(vectors), faiss.swig_ptr(vectors), faiss.swig_ptr(rids), faiss.swig_ptr(assign)
    )
