"""VectorIndex.search_ids: the same ids and scores as search, without reading payloads."""

from __future__ import annotations

import numpy as np
import pytest

from tunesmith.errors import UserInputError
from tunesmith.retrieval import index as index_module
from tunesmith.retrieval.index import VectorIndex

DIM = 16


def unit_rows(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def as_pairs(hits):
    return [h.id for h in hits], np.asarray([h.score for h in hits], dtype=np.float32)


def assert_same_as_search(index: VectorIndex, query: np.ndarray, k: int, where=None) -> None:
    ids, scores = index.search_ids(query, k=k, where=where)
    want_ids, want_scores = as_pairs(index.search(query, k=k, where=where))
    assert ids == want_ids
    np.testing.assert_allclose(scores, want_scores, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_search_ids_returns_the_ids_and_scores_search_returns_on_both_kinds(tmp_path, kind):
    n = 1500
    data = unit_rows(n)
    index = VectorIndex.create(tmp_path / "ix", dim=DIM, encoder_name="vecs", exact_limit=1000)
    index.add(
        [f"d{i}" for i in range(n)],
        vectors=data,
        payloads=[{"shelf": "odd" if i % 2 else "even"} for i in range(n)],
    )
    if kind == "ivf":
        assert index.optimize() == "ivf"
    assert index.kind == kind
    for query in unit_rows(5, seed=1):
        assert_same_as_search(index, query, k=10)
        assert_same_as_search(index, query, k=7, where={"shelf": "odd"})
    ids, scores = index.search_ids(unit_rows(1, seed=2)[0], k=10)
    assert len(ids) == 10 and list(scores) == sorted(scores, reverse=True)


def test_search_ids_reads_no_payload_json(tmp_path, monkeypatch):
    index = VectorIndex.create(tmp_path / "ix", dim=DIM, encoder_name="vecs")
    data = unit_rows(50)
    index.add([str(i) for i in range(50)], vectors=data, payloads=[{"t": i} for i in range(50)])

    def no_parsing(*args, **kwargs):
        raise AssertionError("search_ids parsed a payload")

    monkeypatch.setattr(index_module.json, "loads", no_parsing)
    ids, scores = index.search_ids(data[7], k=3)
    assert ids[0] == "7" and scores[0] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(AssertionError, match="parsed a payload"):
        index.search(data[7], k=3)  # the payload-reading search does parse: the patch bites


def test_search_ids_sees_deletes_and_upserts_and_survives_save_and_load(tmp_path):
    data = unit_rows(40)
    index = VectorIndex.create(tmp_path / "ix", dim=DIM, encoder_name="vecs")
    index.add([f"x{i}" for i in range(40)], vectors=data)
    index.delete(["x3"])
    index.upsert(["x4"], vectors=data[3:4])  # x4 now sits where x3 was
    assert index.search_ids(data[3], k=1)[0] == ["x4"]
    index.save()
    loaded = VectorIndex.load(tmp_path / "ix")
    ids, _ = loaded.search_ids(data[3], k=40)
    assert ids[0] == "x4" and "x3" not in ids and len(ids) == 39  # fewer than k: all there is


def test_search_ids_rejects_bad_k_and_matrices_like_search(tmp_path):
    index = VectorIndex.create(tmp_path / "ix", dim=DIM, encoder_name="vecs")
    index.add(["a"], vectors=unit_rows(1))
    with pytest.raises(UserInputError, match="k must be a positive integer"):
        index.search_ids(unit_rows(1)[0], k=0)
    with pytest.raises(UserInputError, match="1-d vector"):
        index.search_ids(unit_rows(2), k=1)
