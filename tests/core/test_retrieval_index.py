"""VectorIndex: stable ids, payload filters, atomic save, encoder checks, exact and IVF kinds."""

from __future__ import annotations

import hashlib
import json
import re
import threading

import numpy as np
import pytest

from tunesmith.errors import DataError, UserInputError
from tunesmith.retrieval import blas, generations
from tunesmith.retrieval import index as index_module
from tunesmith.retrieval.index import Hit, VectorIndex

DIM = 16


class FakeEncoder:
    """Bag of hashed words, L2-normalised: texts sharing words get similar vectors."""

    def __init__(self, name: str = "fake-encoder", dim: int = DIM) -> None:
        self.name = name
        self.dim = dim

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                digest = hashlib.sha256(word.encode()).digest()
                seed = int.from_bytes(digest[:4], "little")
                out[row] += np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def unit_rows(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """Points around 20 fixed centres, normalised: a stand-in for topic-clustered embeddings.

    The centres are the same for every seed, so another seed draws fresh points (queries)
    from the same distribution.
    """
    centres = np.random.default_rng(12345).standard_normal((20, dim))
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, 20, n)] + 0.6 * rng.standard_normal((n, dim))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_text_search_finds_the_matching_text_and_returns_its_payload(tmp_path):
    index = VectorIndex.create(tmp_path / "ix", encoder=FakeEncoder())
    index.add(
        ["a", "b", "c"],
        texts=["lost my card", "transfer money abroad", "change my pin"],
        payloads=[{"category": "cards"}, {"category": "transfers"}, None],
    )
    hits = index.search("card my lost", k=2)
    assert isinstance(hits[0], Hit)
    assert hits[0].id == "a"
    assert hits[0].payload == {"category": "cards", "text": "lost my card"}
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)  # same words, same normalised vector
    assert len(hits) == 2 and hits[0].score >= hits[1].score
    assert index.get("c") == {"text": "change my pin"}
    assert index.get("zzz") is None
    assert "b" in index and "zzz" not in index and len(index) == 3


def test_ids_stay_stable_across_delete_upsert_save_and_load(tmp_path):
    vectors = unit_rows(30)
    ids = [f"item-{i}" for i in range(30)]
    index = VectorIndex.create(tmp_path / "ix", dim=DIM, encoder_name="vecs")
    index.add(ids, payloads=[{"n": i} for i in range(30)], vectors=vectors)
    assert index.delete(["item-3", "item-7", "missing"]) == 2
    moved = unit_rows(1, seed=99)[0]
    index.upsert(["item-5"], payloads=[{"n": 500}], vectors=moved[None, :])
    index.save()

    loaded = VectorIndex.load(tmp_path / "ix")
    assert len(loaded) == 28
    assert "item-3" not in loaded and "item-7" not in loaded
    for i in (0, 12, 29):
        top = loaded.search(vectors[i], k=1)[0]
        assert (top.id, top.payload) == (f"item-{i}", {"n": i})
    top = loaded.search(moved, k=1)[0]
    assert (top.id, top.payload) == ("item-5", {"n": 500})
    np.testing.assert_allclose(loaded.vector("item-5"), moved, rtol=0, atol=1e-6)
    assert loaded.ids() == [i for i in ids if i not in {"item-3", "item-5", "item-7"}] + ["item-5"]
    # ids added after a load do not collide with the stored ones
    loaded.add(["new"], vectors=vectors[:1])
    assert {h.id for h in loaded.search(vectors[0], k=2)} == {"item-0", "new"}


def test_add_rejects_an_existing_id_and_upsert_replaces_it(tmp_path):
    index = VectorIndex.create(tmp_path / "ix", dim=DIM, encoder_name="vecs")
    index.add(["x"], vectors=unit_rows(1), payloads=[{"v": 1}])
    with pytest.raises(UserInputError, match="already in index.*'x'.*upsert"):
        index.add(["x", "y"], vectors=unit_rows(2))
    assert len(index) == 1 and "y" not in index  # the failed call changed nothing
    index.upsert(["x", "y"], vectors=unit_rows(2, seed=5), payloads=[{"v": 2}, {"v": 3}])
    assert len(index) == 2 and index.get("x") == {"v": 2}


def test_duplicate_ids_in_one_call_are_a_clear_error(tmp_path):
    index = VectorIndex.create(tmp_path / "ix", dim=DIM, encoder_name="vecs")
    with pytest.raises(UserInputError, match="duplicate ids in one call: 'a'"):
        index.upsert(["a", "b", "a"], vectors=unit_rows(3))
    assert len(index) == 0


def test_bad_inputs_are_one_line_errors(tmp_path):
    index = VectorIndex.create(tmp_path / "ix", dim=DIM, encoder_name="vecs")
    with pytest.raises(UserInputError, match=r"shape \[n, 16\]"):
        index.add(["a"], vectors=np.zeros((1, 8), np.float32))
    with pytest.raises(UserInputError, match="no encoder attached"):
        index.add(["a"], texts=["hello"])
    with pytest.raises(UserInputError, match="not JSON-serialisable"):
        index.add(["a"], vectors=unit_rows(1), payloads=[{"when": object()}])
    with pytest.raises(UserInputError, match="NaN"):
        index.add(["a"], vectors=np.full((1, DIM), np.nan, np.float32))
    with pytest.raises(UserInputError, match="k must be"):
        index.search(unit_rows(1)[0], k=0)
    with pytest.raises(UserInputError, match="not one string"):
        index.delete("abc")


def test_filter_returns_only_matching_payloads_and_still_k_results(tmp_path):
    n = 400
    vectors = unit_rows(n, seed=1)
    categories = ["cards"] * 12 + ["loans"] * (n - 12)  # "cards" is rare: 3%
    index = VectorIndex.create(tmp_path / "ix", dim=DIM, encoder_name="vecs")
    index.add(
        [f"i{i}" for i in range(n)],
        payloads=[{"category": c, "tier": i % 3} for i, c in enumerate(categories)],
        vectors=vectors,
    )
    query = vectors[200]  # a "loans" item: its neighbours are mostly loans
    hits = index.search(query, k=10, where={"category": "cards"})
    assert len(hits) == 10
    assert all(h.payload["category"] == "cards" for h in hits)
    exact = sorted(range(12), key=lambda i: -float(vectors[i] @ query))[:10]
    assert [h.id for h in hits] == [f"i{i}" for i in exact]

    any_of = index.search(query, k=50, where={"tier": [0, 2], "category": "loans"})
    assert len(any_of) == 50
    assert all(h.payload["tier"] in (0, 2) and h.payload["category"] == "loans" for h in any_of)
    assert len(index.search(query, k=50, where={"category": "cards"})) == 12  # only 12 exist
    assert index.search(query, k=5, where={"category": "nothing"}) == []
    batch = index.search_batch(vectors[:3], k=4, where={"category": "cards"})
    assert [len(b) for b in batch] == [4, 4, 4]


def test_filter_none_matches_a_missing_field_and_bad_filters_are_errors(tmp_path):
    index = VectorIndex.create(tmp_path / "ix", dim=DIM, encoder_name="vecs")
    index.add(["a", "b", "c"], vectors=unit_rows(3), payloads=[{"lang": "en"}, {}, {"lang": None}])
    assert {h.id for h in index.search(unit_rows(1)[0], where={"lang": None})} == {"b", "c"}
    assert {h.id for h in index.search(unit_rows(1)[0], where={"lang": ["en", None]})} == {
        "a",
        "b",
        "c",
    }
    with pytest.raises(UserInputError, match="where must be a dict"):
        index.search(unit_rows(1)[0], where=[("lang", "en")])
    with pytest.raises(UserInputError, match=r"where\['lang'\] values"):
        index.search(unit_rows(1)[0], where={"lang": {"en": 1}})


def test_filter_on_numpy_values_matches_like_plain_numbers_not_a_cached_string(tmp_path):
    index = VectorIndex.create(tmp_path / "ix", dim=DIM, encoder_name="vecs")
    index.add(
        ["num", "str", "yes"],
        vectors=unit_rows(3),
        payloads=[{"c": 3}, {"c": "3"}, {"flag": True}],
    )
    query = unit_rows(1)[0]
    # The string filter first: its cached result must not answer the numeric one.
    assert [h.id for h in index.search(query, where={"c": "3"})] == ["str"]
    assert [h.id for h in index.search(query, where={"c": np.int64(3)})] == ["num"]
    assert [h.id for h in index.search(query, where={"c": [np.int32(3), "x"]})] == ["num"]
    assert [h.id for h in index.search(query, where={"flag": np.bool_(True)})] == ["yes"]
    # A set means "any of", also after a string filter that prints the same was cached.
    assert index.search(query, where={"c": "{1, 3}"}) == []
    assert [h.id for h in index.search(query, where={"c": {1, 3}})] == ["num"]


def test_filter_sees_writes_made_after_a_cached_filter(tmp_path):
    index = VectorIndex.create(tmp_path / "ix", dim=DIM, encoder_name="vecs")
    index.add(["a", "b"], vectors=unit_rows(2), payloads=[{"c": "x"}, {"c": "y"}])
    assert [h.id for h in index.search(unit_rows(1)[0], where={"c": "x"})] == ["a"]
    index.upsert(["b"], vectors=unit_rows(1, seed=3), payloads=[{"c": "x"}])
    index.delete(["a"])
    assert [h.id for h in index.search(unit_rows(1)[0], where={"c": "x"})] == ["b"]


def test_failed_save_leaves_the_previous_index_loadable(tmp_path, monkeypatch):
    path = tmp_path / "ix"
    index = VectorIndex.create(path, dim=DIM, encoder_name="vecs")
    index.add(["old"], vectors=unit_rows(1))
    index.save()
    index.add(["new"], vectors=unit_rows(1, seed=1))

    def crash(*args, **kwargs):
        raise OSError("disk full")

    # fails after index.faiss and payloads.sqlite of the new generation were written
    monkeypatch.setattr(generations, "atomic_write_json", crash)
    with pytest.raises(OSError, match="disk full"):
        index.save()
    monkeypatch.undo()
    assert VectorIndex.load(path).ids() == ["old"]
    assert [p.name for p in path.iterdir() if p.name.startswith(".")] == []  # temp folder removed

    index.save()
    assert VectorIndex.load(path).ids() == ["old", "new"]
    assert sorted(p.name for p in path.iterdir()) == ["CURRENT", "gen-000002"]


@pytest.mark.parametrize("folder", ["a#b", "50%20off", "why?not"])
def test_an_index_in_a_folder_named_with_hash_percent_or_question_mark_loads(tmp_path, folder):
    path = tmp_path / folder / "ix"
    index = VectorIndex.create(path, dim=DIM, encoder_name="vecs")
    index.add(["a"], vectors=unit_rows(1), payloads=[{"n": 1}])
    index.save()
    assert VectorIndex.load(path).get("a") == {"n": 1}
    # and loading wrote nothing beside it (SQLite once created the cut-short path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder]


def test_load_reads_the_new_generation_when_a_save_removes_meta_json_midway(tmp_path, monkeypatch):
    path = tmp_path / "ix"
    index = VectorIndex.create(path, dim=DIM, encoder_name="vecs")
    index.add(["old"], vectors=unit_rows(1))
    index.save()
    real_read = generations.read_json_object
    raced = []

    def read_racing_a_save(file):
        if not raced:
            # Another process saves after the generation was found and before its meta.json
            # is read: the generation being loaded is removed (a FileNotFoundError traceback).
            raced.append(file)
            index.add(["new"], vectors=unit_rows(1, seed=1))
            index.save()
            assert not file.exists()
        return real_read(file)

    monkeypatch.setattr(generations, "read_json_object", read_racing_a_save)
    assert VectorIndex.load(path).ids() == ["old", "new"]
    assert raced[0].parent.name == "gen-000001"


def test_create_with_force_replaces_an_index_whose_current_pointer_is_damaged(tmp_path):
    path = tmp_path / "ix"
    index = VectorIndex.create(path, dim=DIM, encoder_name="vecs")
    index.add(["old"], vectors=unit_rows(1))
    index.save()
    (path / "CURRENT").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataError, match="CURRENT"):
        VectorIndex.load(path)
    fresh = VectorIndex.create(path, dim=DIM, encoder_name="vecs", force=True)
    fresh.add(["new"], vectors=unit_rows(1, seed=1))
    fresh.save()
    assert VectorIndex.load(path).ids() == ["new"]


def test_save_records_encoder_dim_kind_and_count(tmp_path):
    index = VectorIndex.create(tmp_path / "ix", encoder=FakeEncoder("enc-a"))
    index.add(["a", "b"], texts=["one", "two"])
    index.save()
    pointer = (tmp_path / "ix" / "CURRENT").read_text().strip()
    meta = json.loads((tmp_path / "ix" / pointer / "meta.json").read_text())
    assert meta["encoder"] == "enc-a" and meta["dim"] == DIM and meta["count"] == 2
    assert meta["kind"] == "flat" and meta["metric"] == "inner_product" and meta["format"] == 1
    assert "tunesmith_version" in meta


def test_loading_with_another_encoder_is_one_clear_error(tmp_path):
    index = VectorIndex.create(tmp_path / "ix", encoder=FakeEncoder("enc-a"))
    index.add(["a"], texts=["hello"])
    index.save()
    with pytest.raises(UserInputError) as caught:
        VectorIndex.load(tmp_path / "ix", encoder=FakeEncoder("enc-b"))
    message = str(caught.value)
    assert "\n" not in message
    assert str(tmp_path / "ix") in message and "'enc-a'" in message and "'enc-b'" in message
    with pytest.raises(UserInputError, match=r"dim 16\).*dim 8\)"):
        VectorIndex.load(tmp_path / "ix", encoder=FakeEncoder("enc-a", dim=8))
    assert (
        VectorIndex.load(tmp_path / "ix", encoder=FakeEncoder("enc-a")).search("hello")[0].id == "a"
    )


def test_missing_or_damaged_index_is_a_clear_error(tmp_path):
    with pytest.raises(UserInputError, match="no vector index at"):
        VectorIndex.load(tmp_path / "nothing")
    index = VectorIndex.create(tmp_path / "ix", dim=DIM, encoder_name="vecs")
    index.add(["a"], vectors=unit_rows(1))
    index.save()
    gen = tmp_path / "ix" / "gen-000001"
    (gen / "index.faiss").write_bytes(b"not a faiss file")
    with pytest.raises(DataError, match="cannot read the FAISS index"):
        VectorIndex.load(tmp_path / "ix")
    (gen / "payloads.sqlite").write_bytes(b"garbage" * 200)
    index.save()  # a fresh generation repairs it
    (tmp_path / "ix" / "gen-000002" / "payloads.sqlite").write_bytes(b"garbage" * 200)
    with pytest.raises(DataError, match="damaged payload table"):
        VectorIndex.load(tmp_path / "ix")
    with pytest.raises(UserInputError, match="is an index already"):
        VectorIndex.create(tmp_path / "ix", dim=DIM, encoder_name="vecs")


def test_ivf_settings_that_are_not_numbers_are_a_clear_error_naming_the_generation(tmp_path):
    index = VectorIndex.create(tmp_path / "ix", dim=DIM, encoder_name="vecs")
    index.add(["a"], vectors=unit_rows(1))
    index.save()
    meta_path = tmp_path / "ix" / "gen-000001" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["nlist"] = "many"  # a hand-edited or foreign manifest
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DataError, match="IVF settings are not whole numbers") as caught:
        VectorIndex.load(tmp_path / "ix")
    assert "gen-000001" in str(caught.value) and "\n" not in str(caught.value)


def test_above_the_threshold_the_index_is_ivf_with_recall_at_least_095(tmp_path):
    dim, n = 32, 4000
    data = clustered(n, dim, seed=0)
    queries = clustered(200, dim, seed=1)  # fresh points, not the indexed ones
    ids = [f"d{i}" for i in range(n)]
    index = VectorIndex.create(tmp_path / "ix", dim=dim, encoder_name="vecs", exact_limit=1000)
    index.add(ids, vectors=data)
    assert index.kind == "flat"
    exact = [[h.id for h in hits] for hits in index.search_batch(queries, k=10)]
    assert index.optimize() == "ivf" and index.nprobe is not None

    approx = [[h.id for h in hits] for hits in index.search_batch(queries, k=10)]
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact, strict=True)])
    assert recall >= 0.95

    # add, upsert and delete keep working on the IVF index, and survive save and load
    index.delete(["d0", "d1"])
    index.upsert(["d2", "fresh"], vectors=queries[:2], payloads=[{"k": "moved"}, {"k": "new"}])
    index.save()
    loaded = VectorIndex.load(tmp_path / "ix")
    assert loaded.kind == "ivf" and len(loaded) == n - 1
    assert "d0" not in loaded and loaded.search(queries[0], k=1)[0].id == "d2"
    assert loaded.search(queries[1], k=1)[0].payload == {"k": "new"}
    hits = loaded.search(queries[5], k=10, where={"k": ["moved", "new"]})
    assert {h.id for h in hits} == {"d2", "fresh"}  # a rare filter still finds every match


def test_ivf_turns_back_into_flat_when_it_shrinks(tmp_path):
    data = clustered(1500, DIM, seed=2)
    index = VectorIndex.create(tmp_path / "ix", dim=DIM, encoder_name="vecs", exact_limit=1000)
    index.add([str(i) for i in range(1500)], vectors=data)
    assert index.optimize() == "ivf"
    index.delete([str(i) for i in range(1100)])
    index.save()
    loaded = VectorIndex.load(tmp_path / "ix")
    assert loaded.kind == "flat" and len(loaded) == 400
    assert loaded.search(data[1200], k=1)[0].id == "1200"


def test_concurrent_searches_and_writes_do_not_corrupt_results(tmp_path):
    data = unit_rows(300, seed=4)
    index = VectorIndex.create(tmp_path / "ix", dim=DIM, encoder_name="vecs")
    index.add([f"s{i}" for i in range(300)], vectors=data)
    errors: list[BaseException] = []

    def searcher() -> None:
        try:
            for i in range(150):
                top = index.search(data[i], k=1)[0]
                assert top.id == f"s{i}"
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def writer() -> None:
        try:
            for j in range(60):
                index.upsert([f"w{j}"], vectors=-data[j : j + 1])
                index.delete([f"w{j}"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(3)] + [
        threading.Thread(target=writer)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(index) == 300


def test_single_queries_run_on_one_faiss_thread_and_batches_on_the_configured_number(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("TUNESMITH_FAISS_THREADS", "2")
    index = VectorIndex.create(tmp_path / "ix", dim=DIM, encoder_name="vecs")
    index.add([str(i) for i in range(50)], vectors=unit_rows(50))
    faiss = index_module._faiss()
    seen: list[int] = []

    def run() -> None:  # OpenMP threads are a per-thread setting: check in a fresh thread
        index.search(unit_rows(1)[0], k=3)
        seen.append(faiss.omp_get_max_threads())
        index.search_batch(unit_rows(20), k=3)
        seen.append(faiss.omp_get_max_threads())

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert seen == [1, 2]
    monkeypatch.setenv("TUNESMITH_FAISS_THREADS", "two")
    with pytest.raises(UserInputError, match="TUNESMITH_FAISS_THREADS must be a whole number"):
        index.search_batch(unit_rows(20), k=3)


def test_real_encoder_from_a_model_directory_indexes_texts_and_guards_loading(tmp_path):
    from tunesmith.retrieval.encoder import Encoder
    from tunesmith.testing import make_tiny_base_model

    texts = ["my card is broken", "transfer money abroad", "refund please", "open an account"]
    encoder = Encoder.load(make_tiny_base_model(tmp_path / "m1", texts))
    index = VectorIndex.create(tmp_path / "ix", encoder=encoder)
    index.upsert([f"t{i}" for i in range(4)], texts=texts)
    assert [index.search(t, k=1)[0].id for t in texts] == ["t0", "t1", "t2", "t3"]
    index.save()
    assert VectorIndex.load(tmp_path / "ix", encoder=encoder).search(texts[2], k=1)[0].payload == {
        "text": "refund please"
    }
    other = Encoder.load(make_tiny_base_model(tmp_path / "m2", texts))
    with pytest.raises(
        UserInputError, match=f"'{re.escape(encoder.name)}'.*'{re.escape(other.name)}'"
    ):
        VectorIndex.load(tmp_path / "ix", encoder=other)


def test_batched_search_agrees_with_single_queries_on_both_kinds(tmp_path):
    # batches of 8+ queries go through numpy's BLAS (and, for IVF, lists chosen by numpy);
    # single queries through FAISS: the same hits either way
    data = clustered(3000, 32, seed=7)
    queries = clustered(40, 32, seed=8)
    index = VectorIndex.create(tmp_path / "ix", dim=32, encoder_name="vecs", exact_limit=1000)
    index.add([f"p{i}" for i in range(3000)], vectors=data)
    for kind in ("flat", "ivf"):
        if kind == "ivf":
            assert index.optimize() == "ivf"
        batched = index.search_batch(queries, k=7)
        for query, hits in zip(queries, batched, strict=True):
            single = index.search(query, k=7)
            assert [h.id for h in hits] == [h.id for h in single]
            np.testing.assert_allclose(
                [h.score for h in hits], [h.score for h in single], atol=1e-5
            )
    brute = data @ queries[0]
    assert [h.id for h in index.search_batch(queries, k=3)[0]][:1] == [f"p{int(brute.argmax())}"]


def test_top_k_inner_product_matches_a_full_sort_across_tiles(monkeypatch):
    monkeypatch.setattr(blas, "_BASE_TILE", 64)  # many tiles and a short last one
    monkeypatch.setattr(blas, "_QUERY_TILE", 5)
    base = unit_rows(1000, seed=11)
    queries = unit_rows(12, seed=12)
    scores, positions = blas.top_k_inner_product(queries, base, 9)
    full = queries @ base.T
    expected = np.argsort(-full, axis=1)[:, :9]
    np.testing.assert_array_equal(positions, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(full, expected, axis=1), atol=1e-6)
    _, all_rows = blas.top_k_inner_product(queries[:2], base[:5], 9)  # k above n
    assert all_rows.shape == (2, 5)


def test_an_index_of_int8_vectors_refuses_a_float32_encoder_and_the_reverse(tmp_path):
    # Encoder.name is the same with and without quantize="int8", so the index took either
    from tunesmith.retrieval.encoder import Encoder
    from tunesmith.testing import make_tiny_base_model

    texts = ["my card is broken", "transfer money abroad", "refund please"]
    base = make_tiny_base_model(tmp_path / "m", texts)
    fp32, int8 = Encoder.load(base), Encoder.load(base, quantize="int8")
    for built, other, hint in ((int8, fp32, "quantize='int8'"), (fp32, int8, "no quantize")):
        path = tmp_path / f"ix-{built.quantized}"
        index = VectorIndex.create(path, encoder=built)
        index.add(["a", "b", "c"], texts=texts)
        index.save()
        with pytest.raises(UserInputError, match=f"load the encoder with {hint}") as caught:
            VectorIndex.load(path, encoder=other)
        assert "\n" not in str(caught.value) and str(path) in str(caught.value)
        again = VectorIndex.load(path, encoder=built)
        assert again.encoder_precision == ("int8" if built.quantized else "float32")
        assert again.search(texts[1], k=1)[0].id == "b"
    # Vectors given by the caller, or an index saved before precision was recorded: unchecked.
    plain = VectorIndex.create(tmp_path / "vecs", dim=int8.dim, encoder_name=int8.name)
    plain.add(["a"], vectors=fp32.encode(texts[:1]))
    plain.save()
    assert VectorIndex.load(tmp_path / "vecs", encoder=int8).encoder_precision is None
