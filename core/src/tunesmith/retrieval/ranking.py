"""Retrieval metrics: recall@k and MRR of queries against a pool of candidate texts.

Each query ranks every candidate by inner product (cosine for normalised vectors). A query may
have several right candidates (a question seen with two answers); its rank is that of the best
placed one. Ties with wrong candidates count against the query: its rank is one plus the number
of wrong candidates that score at least as high as its best right one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

KS = (1, 5, 10)
#: Queries scored against the whole pool at once; bounds the memory of the score matrix.
CHUNK = 1024


def ranks(
    query_vectors: np.ndarray, candidate_vectors: np.ndarray, relevant: Sequence[Sequence[int]]
) -> np.ndarray:
    """The 1-based rank of each query's best-placed relevant candidate."""
    if len(query_vectors) != len(relevant):
        raise ValueError("one set of relevant candidates per query is needed")
    out = np.empty(len(relevant), dtype=np.int64)
    for start in range(0, len(relevant), CHUNK):
        scores = query_vectors[start : start + CHUNK] @ candidate_vectors.T
        for row, right in enumerate(relevant[start : start + CHUNK]):
            if not right:
                raise ValueError(f"query {start + row} has no relevant candidate")
            best = max(scores[row, j] for j in right)
            # Every wrong candidate at or above the best right one is ranked ahead of it; a
            # right one tied with it is not a miss (two answers with equal vectors, such as
            # texts an uncased encoder reads alike, would otherwise make the top hit rank 2).
            ahead = scores[row] >= best
            ahead[list(right)] = False
            out[start + row] = 1 + int(ahead.sum())
    return out


def metrics_from_ranks(rank: np.ndarray, ks: Sequence[int] = KS) -> dict[str, float]:
    """``recall@k`` for each k and ``mrr`` (mean reciprocal rank), rounded to 4 places."""
    if len(rank) == 0:
        return {**{f"recall@{k}": float("nan") for k in ks}, "mrr": float("nan")}
    result = {f"recall@{k}": round(float((rank <= k).mean()), 4) for k in ks}
    result["mrr"] = round(float((1.0 / rank).mean()), 4)
    return result


def retrieval_metrics(
    query_vectors: np.ndarray,
    candidate_vectors: np.ndarray,
    relevant: Sequence[Sequence[int]],
    ks: Sequence[int] = KS,
) -> dict[str, float]:
    """recall@k and MRR of the queries against all candidates (see the module docstring)."""
    return metrics_from_ranks(ranks(query_vectors, candidate_vectors, relevant), ks)
