"""A full disk (ENOSPC) or a reached file size limit (EFBIG) in the middle of a write: one line
naming what was being written, a non-zero exit, the previous version still there, no temporary
files left, and the next run succeeds.

In-process tests make the write fail as the libraries do (an OSError without a file name, a
Rust error ending in ``(os error 28)``, a short write that says nothing of the cause); the
subprocess tests set a real ``RLIMIT_FSIZE`` with SIGXFSZ ignored, so writes past it fail with
EFBIG exactly as they would at that size on a small disk.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tunesmith.errors import DiskFullError, disk_full_errno
from tunesmith.io import atomic_directory, atomic_open, atomic_write_json
from tunesmith.store import Store, StoreError

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")

#: Runs argv[2:] with a file size limit of argv[1] bytes; a write past it fails with EFBIG.
WITH_FILE_SIZE_LIMIT = """
import os, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))
os.execv(sys.argv[2], sys.argv[2:])
"""


def _tunesmith(*args: str, limit: int | None = None, stdout=subprocess.PIPE):
    command = [str(Path(sys.executable).parent / "tunesmith"), *args]
    if limit is not None:
        command = [sys.executable, "-c", WITH_FILE_SIZE_LIMIT, str(limit), *command]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TUNESMITH_THREADS": "1"}
    env.pop("TUNESMITH_DEBUG", None)
    return subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, text=True, env=env)


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


class _FullFile:
    """A file handle whose writes fail as a full disk makes them: no file name in the error."""

    def __init__(self, handle, error: BaseException) -> None:
        self._handle, self._error = handle, error

    def write(self, data):
        self._handle.write(data[: len(data) // 2])
        self._handle.flush()
        raise self._error

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()


def _fill_disk_on_write(monkeypatch, error: BaseException) -> None:
    import tunesmith.io as io_module

    real_fdopen = os.fdopen
    monkeypatch.setattr(
        io_module.os, "fdopen", lambda *a, **k: _FullFile(real_fdopen(*a, **k), error)
    )


def test_an_atomic_json_write_on_a_full_disk_names_the_file_and_keeps_the_previous_one(
    tmp_path, monkeypatch
):
    path = tmp_path / "metrics.json"
    atomic_write_json(path, {"version": 1})
    _fill_disk_on_write(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(DiskFullError) as caught:
        atomic_write_json(path, {"version": 2, "padding": "x" * 10_000})
    assert str(caught.value).startswith(f"{path}: the disk is full (No space left on device)")
    assert "free some space and run again" in str(caught.value)
    assert isinstance(caught.value, OSError) and caught.value.errno == errno.ENOSPC
    assert json.loads(path.read_text()) == {"version": 1}
    assert _siblings(path) == []  # no temporary file for the next run to trip over
    monkeypatch.undo()
    atomic_write_json(path, {"version": 2})  # space freed: the next write succeeds
    assert json.loads(path.read_text()) == {"version": 2}


def test_a_short_write_that_names_no_cause_is_told_a_full_disk_when_the_disk_has_no_room(
    tmp_path, monkeypatch
):
    import tunesmith.io as io_module

    path = tmp_path / "vectors.npy"
    path.write_bytes(b"old")
    # numpy's words for a write cut short: no errno, so the disk itself is asked.
    _fill_disk_on_write(monkeypatch, OSError("100000 requested and 12484 written"))
    monkeypatch.setattr(
        io_module.shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10**9, 10**9, 0)
    )
    with (
        pytest.raises(DiskFullError, match="the disk is full"),
        atomic_open(path, binary=True) as f,
    ):
        f.write(b"new" * 1000)
    assert path.read_bytes() == b"old" and _siblings(path) == []


def test_a_file_cut_at_the_size_limit_is_told_the_size_limit_even_when_the_library_says_other(
    tmp_path, monkeypatch
):
    import tunesmith.io as io_module

    monkeypatch.setattr(io_module, "_file_size_limit", lambda: 1000)
    with pytest.raises(DiskFullError) as caught, atomic_open(tmp_path / "a.pt", binary=True) as f:
        f.write(b"x" * 1000)
        f.flush()
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576")
    assert caught.value.errno == errno.EFBIG
    assert "the file size limit was reached (File too large)" in str(caught.value)
    assert "raise the limit and run again" in str(caught.value)


def test_a_bug_during_a_write_is_not_put_down_to_the_disk(tmp_path, monkeypatch):
    import tunesmith.io as io_module

    monkeypatch.setattr(
        io_module.shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10**9, 10**9, 0)
    )
    with pytest.raises(TypeError), atomic_open(tmp_path / "a.json") as f:
        f.write(b"bytes into a text file")
    with pytest.raises(PermissionError), atomic_open(tmp_path / "b.json"):
        raise PermissionError(errno.EACCES, "Permission denied")


def test_a_model_directory_the_disk_had_no_room_for_names_the_output_and_keeps_the_old_one(
    tmp_path,
):
    out = tmp_path / "model"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"old weights")
    given = Path(os.path.relpath(out))  # named as the user gave it, never the temporary folder
    with pytest.raises(DiskFullError) as caught, atomic_directory(given, force=True) as tmp:
        (tmp / "model.safetensors").write_bytes(b"half")
        raise Exception(  # what safetensors (Rust) raises
            "Error while serializing: I/O error: No space left on device (os error 28)"
        )
    assert str(caught.value).startswith(f"{given}: the disk is full (No space left on device)")
    assert "not written (any previous version is unchanged)" in str(caught.value)
    assert (out / "model.safetensors").read_bytes() == b"old weights"
    assert _siblings(out) == []


def test_a_full_disk_inside_a_directory_write_names_the_directory_not_its_temporary_file(
    tmp_path, monkeypatch
):
    out = tmp_path / "model"
    with pytest.raises(DiskFullError) as caught, atomic_directory(out) as tmp:
        _fill_disk_on_write(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
        atomic_write_json(tmp / "run_config.json", {"x": "y" * 1000})
    assert str(caught.value).startswith(f"{out}: the disk is full")
    assert ".tmp" not in str(caught.value)
    assert not out.exists() and _siblings(out) == []


def test_a_failed_rename_into_place_puts_the_previous_directory_back(tmp_path, monkeypatch):
    import tunesmith.io as io_module

    out = tmp_path / "model"
    out.mkdir()
    (out / "weights").write_text("old")
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst) == out and ".tmp" in Path(src).name:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(io_module.os, "replace", replace)
    with pytest.raises(OSError), atomic_directory(out, force=True) as tmp:
        (tmp / "weights").write_text("new")
    assert (out / "weights").read_text() == "old"
    assert _siblings(out) == []


def _sqlite_error(sql: str) -> Exception:
    """The error raw sqlite3 raises for ``sql`` on a database with no room left."""
    import sqlite3

    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t(x)")
    db.execute("PRAGMA max_page_count = 2")  # a full disk, as SQLite reports it
    try:
        db.execute(sql)
    except sqlite3.Error as exc:
        return exc
    raise AssertionError("no error")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (Exception("Error while serializing: I/O error: File too large (os error 27)"), 27),
        (Exception("File too large (os error 27)"), 27),  # tokenizers
        (RuntimeError("write error in x/index.faiss: 1 != 2 (No space left on device)"), 28),
        (RuntimeError("unexpected pos 576 vs 534"), None),
        (_sqlite_error("INSERT INTO t VALUES (zeroblob(100000))"), 28),
        (ValueError("a line that mentions space"), None),
    ],
)
def test_library_errors_that_say_the_disk_is_full_are_recognised(error, code):
    assert disk_full_errno(error) == code


def _whole_checkpoint(folder: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    save_file({"w": np.zeros(4, dtype="float32")}, str(folder / "model.safetensors"))
    (folder / "trainer_state.json").write_text("{}")


def test_a_checkpoint_the_disk_had_no_room_for_is_removed_and_the_line_says_what_next(tmp_path):
    from tunesmith.engine.stages.fit import _train

    work, out = tmp_path / "model.work", tmp_path / "model"
    _whole_checkpoint(work / "checkpoints" / "checkpoint-5")

    class FullDiskTrainer:
        def train(self, resume_from_checkpoint=None):
            cut = work / "checkpoints" / "checkpoint-10"
            cut.mkdir()
            (cut / "config.json").write_text("{}")
            (cut / "model.safetensors").write_bytes(b"\0" * 100)
            raise Exception("Error while serializing: I/O error: File too large (os error 27)")

    with pytest.raises(DiskFullError) as caught:
        _train(FullDiskTrainer(), None, work, out)
    assert str(caught.value) == (
        f"{work}: the file size limit was reached (File too large); {out} is unchanged: "
        "raise the limit and run the same command with --resume"
    )
    assert sorted(p.name for p in (work / "checkpoints").iterdir()) == ["checkpoint-5"]


def test_a_model_directory_the_disk_had_no_room_for_points_to_resume_from_its_checkpoints(
    tmp_path, monkeypatch
):
    from types import SimpleNamespace

    from tunesmith.engine.stages import write

    work, out = tmp_path / "model.work", tmp_path / "model"
    _whole_checkpoint(work / "checkpoints" / "checkpoint-8")

    def no_room(state):
        raise DiskFullError(out, errno.ENOSPC)

    monkeypatch.setattr(write, "_write", no_room)
    state = SimpleNamespace(run=SimpleNamespace(work_path=work, out_dir=out))
    with pytest.raises(DiskFullError) as caught:
        write.run(state)
    assert str(caught.value) == (
        f"{out}: the disk is full (No space left on device); not written (any previous version "
        f"is unchanged) and the checkpoints in {work} are kept: free some space and run the "
        "same command with --resume"
    )


def test_an_error_no_command_caught_that_says_the_disk_is_full_is_one_line(
    cli, register_plugin, monkeypatch
):
    import tunesmith

    class Plugin:
        @tunesmith.hookimpl
        def tunesmith_cli(self, app):
            @app.command("save-index")
            def save_index() -> None:
                raise RuntimeError(
                    "Error in faiss::write_index at index_write.cpp:499: write error in "
                    "kb/index/index.faiss: 1 != 2\n(No space left on device)"
                )

            @app.command("write-nameless")
            def write_nameless() -> None:
                raise OSError(errno.EFBIG, "File too large")

    register_plugin(Plugin(), "disk-full-commands")
    monkeypatch.delenv("TUNESMITH_DEBUG", raising=False)
    result = cli("save-index")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: the disk is full (No space left on device): Error in faiss::write_index at "
        "index_write.cpp:499: write error in kb/index/index.faiss: 1 != 2 (No space left on "
        "device); free some space and run again"
    ]
    result = cli("write-nameless")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: the file size limit was reached (File too large) while writing; raise the "
        "limit and run again"
    ]


@posix_only
def test_a_store_write_past_the_file_size_limit_says_so_and_keeps_every_committed_row(tmp_path):
    script = """
import resource, signal, sys
from tunesmith.store import Store, StoreError
db = Store.open(sys.argv[1], namespace="t", migrations=["CREATE TABLE r(x TEXT)"])
db.execute("INSERT INTO r VALUES ('kept')")
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (30000, resource.RLIM_INFINITY))
try:
    with db.transaction() as tx:
        for _ in range(100):
            tx.execute("INSERT INTO r VALUES (?)", ("y" * 1000,))
except StoreError as exc:
    print(exc)
"""
    path = tmp_path / "records.sqlite"
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == (
        f"{path}: the file size limit was reached (File too large; SQLite: disk I/O error); "
        "this write was rolled back (what was committed before it is kept): raise the limit "
        "and run again"
    )
    with Store.open(path, namespace="t", migrations=["CREATE TABLE r(x TEXT)"]) as db:
        assert [row["x"] for row in db.query("SELECT x FROM r")] == ["kept"]
        db.execute("INSERT INTO r VALUES ('next run')")  # the limit gone, writes work again
        assert len(db.query("SELECT x FROM r")) == 2
    assert StoreError  # the type callers catch stays the same


@pytest.fixture
def tiny_model(tmp_path):
    pytest.importorskip("torch")
    from tunesmith.testing import make_tiny_classifier

    return make_tiny_classifier(tmp_path / "model", ["card", "refund"], ["card lost", "refund"])


@posix_only
def test_predict_into_a_full_file_names_standard_output_and_exits_1(tmp_path, tiny_model):
    texts = tmp_path / "texts.csv"
    texts.write_text("text\n" + "".join(f"my card number {i} was lost\n" for i in range(400)))
    out = tmp_path / "labels.jsonl"
    with out.open("w") as handle:
        done = _tunesmith(
            "predict", "--model", str(tiny_model), "--data", str(texts), "--json",
            limit=4000, stdout=handle,
        )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"Error: standard output ({out}): the file size limit was reached (File too large); "
        "what was written there is incomplete: raise the limit and run again"
    ]


@posix_only
def test_calibrate_past_the_file_size_limit_keeps_the_model_loadable_and_runs_again(
    tmp_path, tiny_model
):
    data = tmp_path / "eval.csv"
    data.write_text(
        "text,label\n" + "".join(f"card lost {i},card\nrefund {i},refund\n" for i in range(20))
    )
    (tiny_model / "calibration.json").write_text('{"method": "temperature", "temperature": 2.0}\n')
    before = {p.name: p.read_bytes() for p in tiny_model.iterdir()}
    done = _tunesmith("calibrate", "--model", str(tiny_model), "--data", str(data), limit=40)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"Error: {tiny_model}/calibration.json: the file size limit was reached (File too "
        "large); not written (any previous version is unchanged): raise the limit and run again"
    ]
    assert {p.name: p.read_bytes() for p in tiny_model.iterdir()} == before  # no temp files
    done = _tunesmith("calibrate", "--model", str(tiny_model), "--data", str(data))
    assert done.returncode == 0, done.stderr
    assert json.loads((tiny_model / "calibration.json").read_text())["temperature"] != 2.0


def test_a_feature_cache_the_disk_has_no_room_for_costs_the_run_nothing(
    tmp_path, tiny_model, monkeypatch
):
    import torch

    import tunesmith.io as io_module
    from tunesmith.engine import feature_cache
    from tunesmith.engine.modeling import load_classifier

    def short_write(obj, target):
        with contextlib.ExitStack() as stack:
            if isinstance(target, str | Path):
                target = stack.enter_context(open(target, "wb"))
            target.write(b"\0" * 100)  # torch's words for a write cut short name no cause
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 100")

    monkeypatch.setattr(torch, "save", short_write)
    monkeypatch.setattr(
        io_module.shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10**9, 10**9, 0)
    )
    model = load_classifier(tiny_model)
    encodings = [
        {"input_ids": ids, "attention_mask": [1] * len(ids)} for ids in ([2, 5, 6, 3], [2, 7, 3])
    ]
    features, hit = feature_cache.load_or_compute(
        model, encodings, model_fp="tiny", depth=1, pooled=True, pad_id=0, cache_dir=tmp_path / "c"
    )
    assert not hit and features.values.shape[0] == 2
    assert list((tmp_path / "c").rglob("*")) == [tmp_path / "c" / "frozen-features"]


@posix_only
def test_train_past_the_file_size_limit_keeps_the_old_model_and_the_next_run_succeeds(tmp_path):
    pytest.importorskip("torch")
    from tunesmith.testing import make_tiny_base_model, write_csv

    rows = [(f"{w} card lost", "card") for w in "abcdefgh"] + [
        (f"{w} refund please", "refund") for w in "abcdefgh"
    ]
    base = make_tiny_base_model(tmp_path / "base", [t for t, _ in rows])
    data = write_csv(tmp_path / "d.csv", rows)
    out = tmp_path / "model"
    out.mkdir()
    (out / "config.json").write_text("{}")  # the previous version, replaced only by a whole one
    args = ("train", "--data", str(data), "--eval", str(data), "--model", str(base),
            "--out", str(out), "--epochs", "1", "--force")  # fmt: skip
    done = _tunesmith(*args, limit=30_000)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"Error: {out}.work: the file size limit was reached (File too large); {out} is "
        "unchanged: raise the limit and run the same command again"
    )
    assert [p.name for p in out.iterdir()] == ["config.json"]
    assert not list((Path(f"{out}.work") / "checkpoints").iterdir())  # the cut one is gone
    done = _tunesmith(*args)
    assert done.returncode == 0, done.stderr
    assert (out / "model.safetensors").is_file() and not Path(f"{out}.work").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_an_index_save_the_disk_had_no_room_for_names_the_index_and_keeps_the_saved_one(
    tmp_path, monkeypatch
):
    import numpy as np

    from tunesmith.retrieval import generations
    from tunesmith.retrieval.index import VectorIndex

    vectors = np.eye(4, dtype="float32")
    index = VectorIndex.create(tmp_path / "ix", dim=4, encoder_name="vecs")
    index.add(["a", "b"], vectors=vectors[:2])
    index.save()
    index.add(["c"], vectors=vectors[2:3])
    real = generations.load_faiss()

    class FullDisk:
        def __getattr__(self, name):
            return getattr(real, name)

        def write_index(self, _index, path):
            raise RuntimeError(f"write error in {path}: 1 != 2 (No space left on device)")

    monkeypatch.setattr(generations, "load_faiss", lambda: FullDisk())
    with pytest.raises(DiskFullError) as caught:
        index.save()
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'ix'}: ") and ".tmp" not in message
    assert "the index on disk is the one saved before" in message and "\n" not in message
    assert [p.name for p in (tmp_path / "ix").iterdir() if p.name.endswith(".tmp")] == []
    monkeypatch.undo()
    assert VectorIndex.load(tmp_path / "ix").ids() == ["a", "b"]
