"""The limits a laptop hits, in real processes: a file size limit (``RLIMIT_FSIZE``, with
SIGXFSZ ignored, so a write past it fails with EFBIG as on a small disk), too few file
descriptors (``RLIMIT_NOFILE``) and memory run out. Each is one ``Error:`` line with exit code 1,
what was stored before is intact, and no temporary file is left.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="resource limits are POSIX")

#: Runs argv[2:] with a file size limit of argv[1] bytes; a write past it fails with EFBIG.
WITH_FILE_SIZE_LIMIT = """
import os, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))
os.execv(sys.argv[2], sys.argv[2:])
"""


def _run(command: list[str], limit: int | None = None) -> subprocess.CompletedProcess:
    if limit is not None:
        command = [sys.executable, "-c", WITH_FILE_SIZE_LIMIT, str(limit), *command]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TUNESMITH_THREADS": "1"}
    env.pop("TUNESMITH_DEBUG", None)
    return subprocess.run(command, capture_output=True, text=True, env=env)


def _tunesmith(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "tunesmith"), *args]


def _temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))


@posix_only
def test_finance_ingest_past_the_file_size_limit_exits_1_and_keeps_the_committed_batches(
    tmp_path, cli
):
    pytest.importorskip("torch")
    pytest.importorskip("tunesmith_finance")
    from tunesmith.testing import make_tiny_classifier
    from tunesmith_finance.sample import STREAM

    lines = STREAM.read_text(encoding="utf-8").splitlines(keepends=True)
    model = make_tiny_classifier(
        tmp_path / "model", ["negative", "neutral", "positive"], [json.loads(lines[0])["text"]]
    )
    db = tmp_path / "finance.sqlite"
    first = tmp_path / "first.jsonl"
    first.write_text("".join(lines[:100]), encoding="utf-8")
    ingest = ("finance", "ingest", "--model", str(model), "--db", str(db), "--batch-size", "50")
    # In-process where no limit is set: only the limited run needs a process of its own.
    assert cli(*ingest, str(first)).exit_code == 0

    done = _run(_tunesmith(*ingest, str(STREAM)), limit=150_000)
    # A full disk exits 1 wherever it happens; the store's said 2, as if the input were wrong.
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"Error: {db}: the file size limit was reached (File too large; SQLite: disk I/O "
        "error); this write was rolled back (what was committed before it is kept): raise the "
        "limit and run again"
    ]
    with contextlib.closing(sqlite3.connect(db)) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        kept = con.execute("SELECT COUNT(*) FROM finance_documents").fetchone()[0]
    assert 100 <= kept < len(lines)

    result = cli(*ingest, str(STREAM))  # the limit gone: it resumes and finishes
    assert result.exit_code == 0, result.output
    with contextlib.closing(sqlite3.connect(db)) as con:
        assert con.execute("SELECT COUNT(*) FROM finance_documents").fetchone()[0] == len(lines)


def test_a_store_out_of_room_is_a_disk_full_error_and_still_a_store_error():
    from tunesmith.errors import DiskFullError
    from tunesmith.store import StoreError, StoreFullError

    error = StoreFullError("a.sqlite", errno.ENOSPC, detail="SQLite: database or disk is full")
    assert isinstance(error, DiskFullError) and isinstance(error, StoreError)
    assert error.exit_code == DiskFullError.exit_code == 1
    assert str(error).startswith(
        "a.sqlite: the disk is full (No space left on device; SQLite: database or disk is full)"
    )


#: Saves an index with a small payload, then one past the file size limit of argv[2].
INDEX_SAVE = """
import resource, signal, sys
import numpy as np
from tunesmith.errors import DiskFullError
from tunesmith.retrieval.index import VectorIndex

index = VectorIndex.create(sys.argv[1], dim=4, encoder_name="vecs")
index.add(["a"], vectors=np.eye(4, dtype="float32")[:1], payloads=[{"text": "kept"}])
index.save()
ids = [f"n{i}" for i in range(200)]
vectors = np.random.default_rng(0).random((200, 4), dtype="float32")
index.add(ids, vectors=vectors, payloads=[{"text": "x" * 1000} for _ in ids])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.RLIM_INFINITY))
try:
    index.save()
except DiskFullError as exc:
    print(exc)
"""


@posix_only
def test_an_index_whose_payloads_reach_the_file_size_limit_names_the_index_and_keeps_the_old(
    tmp_path,
):
    from tunesmith.retrieval.index import VectorIndex

    path = tmp_path / "ix"
    # The vectors (FAISS) fit; the payload table (an SQLite copy) is cut at the limit. Its
    # rollback journal emptied the file, so nothing showed the limit and "disk I/O error"
    # came out as a traceback.
    done = _run([sys.executable, "-c", INDEX_SAVE, str(path), "60000"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{path}: the file size limit was reached (File too large); the index on disk is the "
        "one saved before: raise the limit and save again"
    ]
    assert _temp_files(path) == []
    index = VectorIndex.load(path)
    assert index.ids() == ["a"] and index.get("a") == {"text": "kept"}


#: The CLI with a limit of 64 open files, running a command that opens files and keeps them
#: (a folder of documents read at once, a leak): the 65th open fails with EMFILE.
WITH_FEW_FILES = """
import resource, sys
import tunesmith
from tunesmith.cli import build_app
from tunesmith.plugins import get_plugin_manager

class Plugin:
    @tunesmith.hookimpl
    def tunesmith_cli(self, app):
        @app.command("open-all")
        def open_all() -> None:
            kept = [open(sys.argv[1], "rb") for _ in range(1000)]

get_plugin_manager().register(Plugin(), name="opens-files")
app = build_app()
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
app(["open-all"], prog_name="tunesmith")
"""


@posix_only
def test_too_many_open_files_is_one_line_with_the_limit_and_how_to_raise_it(tmp_path):
    data = tmp_path / "doc.txt"
    data.write_text("a document")
    done = _run([sys.executable, "-c", WITH_FEW_FILES, str(data)])
    assert done.returncode == 1, done.stderr
    # It said "[Errno 24] Too many open files: '<the file>'" as if that file were at fault, or
    # named a module folder of transformers that an import could not open.
    assert done.stderr.splitlines() == [
        "Error: too many open files: this process may have 64 open (`ulimit -n`) and needed "
        f"more (opening {data}); raise the limit (`ulimit -n 4096`) and run again"
    ]


def _huge_torch_tensor() -> None:
    import torch

    torch.empty(10**13)  # 40 TB: the allocator refuses it, as for a huge batch


def _huge_numpy_array() -> None:
    import numpy as np

    np.ones((10**6, 10**7))


def _huge_bytes() -> None:
    bytearray(10**15)


@pytest.mark.parametrize(
    ("allocate", "said"),
    [
        (
            _huge_torch_tensor,
            " (DefaultCPUAllocator: can't allocate memory: you tried to allocate "
            "40000000000000 bytes. Error code 12 (Cannot allocate memory))",
        ),
        (
            _huge_numpy_array,
            " (Unable to allocate 72.8 TiB for an array with shape (1000000, 10000000) and "
            "data type float64)",
        ),
        (_huge_bytes, ""),
    ],
)
def test_running_out_of_memory_is_one_line_not_a_traceback(
    cli, register_plugin, monkeypatch, allocate, said
):
    import tunesmith

    if allocate is _huge_torch_tensor:
        pytest.importorskip("torch")

    class Plugin:
        @tunesmith.hookimpl
        def tunesmith_cli(self, app):
            app.command("encode-everything")(allocate)

    register_plugin(Plugin(), "out-of-memory-command")
    monkeypatch.delenv("TUNESMITH_DEBUG", raising=False)
    result = cli("encode-everything")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: out of memory{said}; close other programs or process less at once (a "
        "smaller --batch-size, where the command has one) and run again"
    ]
