"""Plugin-facing services at their edges: the vector index, the encoder, pair training, the
store and events each turn a developer's mistake into one clear error, and never lose data."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from tunesmith.errors import DataError, UserInputError
from tunesmith.events import RetryPolicy, emit, list_deliveries, retry
from tunesmith.hooktypes import Event
from tunesmith.retrieval.index import VectorIndex
from tunesmith.store import Store, StoreError

DIM = 8


def unit_rows(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def saved_index(path, n: int = 3) -> VectorIndex:
    index = VectorIndex.create(path, dim=DIM, encoder_name="vecs")
    index.add(
        [f"i{k}" for k in range(n)], vectors=unit_rows(n), payloads=[{"n": k} for k in range(n)]
    )
    index.save()
    return index


# ------------------------------------------------------------------ vector index


def test_a_load_during_another_process_save_reads_the_new_generation(tmp_path, monkeypatch):
    path = tmp_path / "ix"
    saved_index(path)
    other = VectorIndex.load(path)
    other.add(["new"], vectors=unit_rows(1, seed=5))
    real = VectorIndex._load_generation.__func__
    calls = []

    def save_in_between(cls, *args):
        if not calls:  # the other process saves (and removes gen 1) just as we read it
            calls.append(1)
            other.save()
        return real(cls, *args)

    monkeypatch.setattr(VectorIndex, "_load_generation", classmethod(save_in_between))
    loaded = VectorIndex.load(path)
    assert "new" in loaded and len(loaded) == 4


def test_saving_over_a_generation_another_writer_saved_is_refused_not_silently_lost(tmp_path):
    path = tmp_path / "ix"
    saved_index(path)
    first, second = VectorIndex.load(path), VectorIndex.load(path)
    first.add(["from-first"], vectors=unit_rows(1, seed=1))
    first.save()
    second.add(["from-second"], vectors=unit_rows(1, seed=2))
    with pytest.raises(UserInputError, match="saved by another process .*load it again"):
        second.save()
    assert "from-first" in VectorIndex.load(path)
    # Replacing on purpose still works: create(force=True) over the saved index.
    fresh = VectorIndex.create(path, dim=DIM, encoder_name="vecs", force=True)
    fresh.save()
    assert len(VectorIndex.load(path)) == 0


def test_two_processes_saving_one_index_never_break_it(tmp_path):
    path = tmp_path / "ix"
    saved_index(path)
    script = textwrap.dedent(
        f"""
        import sys, time
        import numpy as np
        from tunesmith.errors import UserInputError
        from tunesmith.retrieval.index import VectorIndex
        index = VectorIndex.load({str(path)!r})
        time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
        for i in range(15):
            index.add([sys.argv[1] + str(i)], vectors=np.ones((1, {DIM}), np.float32))
            try:
                index.save()
            except UserInputError:
                pass  # overtaken by the other writer: refused, said clearly
        """
    )
    start = str(time.time() + 3)
    procs = [
        subprocess.Popen([sys.executable, "-c", script, tag, start], stderr=subprocess.PIPE)
        for tag in "AB"
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    ids = VectorIndex.load(path).ids()
    # The index loads, and holds one writer's complete history on top of the original items.
    assert len(ids) >= 3 and sorted(p.name for p in path.iterdir())[0] == "CURRENT"


def test_a_binary_current_pointer_or_bad_exact_limit_is_a_data_error(tmp_path):
    path = tmp_path / "ix"
    saved_index(path)
    (path / "gen-000001" / "meta.json").write_text(
        (path / "gen-000001" / "meta.json")
        .read_text()
        .replace('"exact_limit": 50000', '"exact_limit": "x"')
    )
    with pytest.raises(DataError, match="meta.json"):
        VectorIndex.load(path)
    (path / "CURRENT").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataError, match="CURRENT"):
        VectorIndex.load(path)


def test_search_batch_of_one_string_is_refused_not_searched_per_character(tmp_path):
    class Enc:
        name, dim = "enc", DIM

        def encode(self, texts):
            return unit_rows(len(texts))

    index = VectorIndex.create(tmp_path / "ix", encoder=Enc())
    index.add(["a", "b"], texts=["x", "y"])
    with pytest.raises(UserInputError, match="use search for one text"):
        index.search_batch("hello")
    with pytest.raises(UserInputError, match="not one string"):
        index.add(["c"], texts="abc")


def test_numpy_integer_k_is_accepted_and_huge_where_ints_are_a_clear_error(tmp_path):
    index = saved_index(tmp_path / "ix")
    assert len(index.search(unit_rows(1)[0], k=np.int64(2))) == 2
    with pytest.raises(UserInputError, match="64-bit integer range"):
        index.search(unit_rows(1)[0], where={"n": 2**70})


def test_vectors_that_are_not_real_numbers_are_refused(tmp_path):
    index = VectorIndex.create(tmp_path / "ix", dim=DIM, encoder_name="vecs")
    with pytest.raises(UserInputError, match="real numbers"):
        index.add(["c"], vectors=np.ones((1, DIM), dtype=complex))
    with pytest.raises(UserInputError, match="real numbers"):
        index.add(["s"], vectors=np.array([["a"] * DIM]))
    assert len(index) == 0


def test_create_refuses_a_file_path_and_a_non_integer_dim(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserInputError, match="is a file"):
        VectorIndex.create(tmp_path / "file", dim=DIM, encoder_name="vecs")
    with pytest.raises(UserInputError, match="dim must be a positive integer"):
        VectorIndex.create(tmp_path / "ix", dim="8", encoder_name="vecs")


# ------------------------------------------------------------------ encoder and pair training


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    from tunesmith.testing import make_tiny_base_model

    texts = ["my card is broken", "transfer money", "refund please", "hello there"]
    return make_tiny_base_model(tmp_path_factory.mktemp("enc") / "base", texts)


def test_encode_of_a_lone_surrogate_names_the_text(base_dir):
    from tunesmith.retrieval import Encoder

    encoder = Encoder.load(base_dir)
    with pytest.raises(UserInputError, match="text 1 holds U\\+D800"):
        encoder.encode(["fine", "bad \ud800 text"])


def test_a_max_length_above_the_model_limit_is_capped_not_a_crash(base_dir):
    from tunesmith.retrieval import Encoder

    encoder = Encoder.load(base_dir, max_length=100_000)
    assert encoder.max_length == 128  # the tiny model's position table
    assert encoder.encode(["word " * 2000]).shape == (1, encoder.dim)


def test_pair_training_refuses_infinite_settings_a_fractional_batch_and_surrogates(tmp_path):
    from tunesmith.retrieval import train_pair_encoder

    q, t = ["q1", "q2"], ["a1", "a2"]
    for kwargs, message in [
        ({"epochs": float("inf")}, "epochs"),
        ({"lr": float("inf")}, "lr"),
        ({"batch_size": 2.5}, "batch.size"),
    ]:
        with pytest.raises(UserInputError, match=message):
            train_pair_encoder(q, t, tmp_path / "out", **kwargs)
    with pytest.raises(UserInputError, match="training queries\\[1\\]: .*surrogate"):
        train_pair_encoder(["q1", "q\ud800"], t, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ store


def test_transaction_control_sql_inside_a_transaction_is_refused_and_nothing_half_commits(
    tmp_path,
):
    with Store.open(tmp_path / "s.sqlite", migrations=["CREATE TABLE t (x)"]) as db:
        with (
            pytest.raises(StoreError, match="ROLLBACK is not allowed"),
            db.transaction() as tx,
        ):
            tx.execute("INSERT INTO t VALUES (1)")
            tx.execute("ROLLBACK")
            tx.execute("INSERT INTO t VALUES (2)")
        assert db.query("SELECT x FROM t") == []
        with pytest.raises(StoreError, match="BEGIN is not allowed"):
            Store.open(tmp_path / "m.sqlite", migrations=["BEGIN; CREATE TABLE u (x); COMMIT;"])


def test_a_bad_namespace_or_migration_list_is_one_store_error(tmp_path):
    path = tmp_path / "s.sqlite"
    Store.open(path, namespace="n", migrations=["CREATE TABLE t (x)"]).close()
    with pytest.raises(StoreError, match="namespace must be a non-empty string"):
        Store.open(path, namespace=None, migrations=["CREATE TABLE t (x)"])
    with pytest.raises(StoreError, match="not one string"):
        Store.open(path, namespace="n", migrations="CREATE TABLE t (x)")
    with pytest.raises(StoreError, match="migration 1 of namespace 'm' is int"):
        Store.open(path, namespace="m", migrations=[5])


def test_a_store_under_a_file_is_a_store_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot create its folder"):
        Store.open(tmp_path / "file" / "s.sqlite")


# ------------------------------------------------------------------ events


def test_an_event_the_outbox_cannot_store_is_refused_before_anything_is_recorded(tmp_path):
    outbox = tmp_path / "o.sqlite"
    loop: dict = {}
    loop["self"] = loop
    bad = [
        (Event(kind="k", message="m", payload={(1, 2): 3}), "not JSON-serialisable"),
        (Event(kind="k", message="m", payload=loop), "not JSON-serialisable"),
        (Event(kind=None, message="m"), "kind must be a non-empty string"),  # type: ignore[arg-type]
        (Event(kind="k", message="a\ud800"), "message holds U\\+D800"),
        (Event(kind="k", message="m", payload=[1]), "payload must be a dict"),  # type: ignore[arg-type]
    ]
    for event, message in bad:
        with pytest.raises(UserInputError, match=message):
            emit(event, ["stdout"], outbox=outbox)
    with pytest.raises(UserInputError, match="sinks must be a list"):
        emit(Event(kind="k", message="m"), "stdout", outbox=outbox)  # type: ignore[arg-type]
    assert list_deliveries(outbox) == []


def test_an_object_in_a_payload_is_refused_not_sent_as_its_repr(tmp_path):
    # It was sent as "<Model object at 0x...>" or "b'xy'": no data a receiver can use.
    import datetime

    import numpy as np

    outbox = tmp_path / "o.sqlite"

    class Model:
        pass

    for value in (Model(), b"xy"):
        with pytest.raises(UserInputError, match="not JSON-serialisable"):
            emit(Event(kind="k", message="m", payload={"v": value}), [], outbox=outbox)
    assert list_deliveries(outbox) == []
    plain = {"n": np.int64(3), "p": tmp_path, "t": datetime.date(2026, 12, 6), "s": {"b", "a"}}
    from tunesmith.events import strict_json

    assert strict_json(plain) == (
        f'{{"n": 3, "p": "{tmp_path}", "t": "2026-12-06", "s": ["a", "b"]}}'
    )


def test_retry_of_an_unknown_event_id_is_an_error_and_a_shown_prefix_works(tmp_path):
    outbox = tmp_path / "o.sqlite"

    class Down:
        sink_url = ""

        def send(self, event):
            raise OSError("down")

    down = Down()
    event = Event(kind="k", message="m")
    emit(event, [down], outbox=outbox, retry=RetryPolicy(tries=1, base_delay=0))
    with pytest.raises(UserInputError, match="no event with id 'nope'"):
        retry(outbox, event_ids=["nope"])
    with pytest.raises(UserInputError, match="list of ids"):
        retry(outbox, event_ids=event.id)  # type: ignore[arg-type]
    name = list_deliveries(outbox)[0].sink

    class Up:
        def send(self, event):
            pass

    (report,) = retry(outbox, event_ids=[event.id[:12]], sinks={name: Up()})
    assert report.event_id == event.id and report.delivered == [name]
