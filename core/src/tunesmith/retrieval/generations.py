"""A saved index on disk: a directory of immutable generations and a pointer to the current one::

    my_index/
      CURRENT              "gen-000003" (replaced atomically by rename)
      gen-000003/
        meta.json          encoder name and precision (int8, float32), dim, metric, kind, count,
                           format and tunesmith version (see :mod:`tunesmith.retrieval.manifest`)
        index.faiss        the FAISS index; its int64 ids are the rowids of the payload table
        payloads.sqlite    items(rid, id, payload): the string id and JSON payload of each vector

A save writes a new generation into a temporary folder, renames it into place and only then
renames a new ``CURRENT`` over the old one, so a crash at any point leaves the previous
generation loadable and the directory is never half-written. Saves of one directory from
several processes take turns (an ``flock`` on the folder), and a save based on a generation
that another process has since replaced is refused rather than dropping that process's
changes; a load that races a save reads the new generation.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from tunesmith.errors import DataError, DiskFullError, UserInputError, room_hint
from tunesmith.io import (
    atomic_write_json,
    atomic_write_text,
    no_room_as_error,
    no_room_errno,
    publish_mode,
    read_json_object,
)
from tunesmith.retrieval.faiss_runtime import load_faiss
from tunesmith.retrieval.payload_table import save_table

_T = TypeVar("_T")

POINTER = "CURRENT"
#: Reads of CURRENT when a concurrent save removed the generation being loaded.
_LOAD_ATTEMPTS = 5
GEN_RE = re.compile(r"^gen-(\d{6,})$")
#: The lock file of an index folder where a folder cannot be locked itself (Windows).
SAVE_LOCK = ".save.lock"


# ---------------------------------------------------------------------- loading


def read_current(path: Path, read_generation: Callable[[str], _T]) -> _T:
    """``read_generation`` of the generation ``CURRENT`` names.

    A save in another process may replace that generation (and remove it) while it is read:
    then ``CURRENT`` names a newer one, which is read instead.
    """
    pointer = path / POINTER
    if not pointer.is_file():
        raise UserInputError(f"no vector index at {path} (no {POINTER} file)")
    gen_name = read_pointer(pointer)
    for _ in range(_LOAD_ATTEMPTS):
        try:
            return read_generation(gen_name)
        except DataError:
            newer = read_pointer(pointer) if pointer.is_file() else gen_name
            if newer == gen_name:
                raise
            gen_name = newer
    return read_generation(gen_name)


def read_meta(path: Path, gen_name: str) -> tuple[int, Path, dict[str, Any]]:
    """(number, folder, ``meta.json`` contents) of generation ``gen_name`` of the index at
    ``path``; a :class:`DataError` when it or its ``meta.json`` is missing."""
    match = GEN_RE.match(gen_name)
    gen_dir = path / gen_name
    if not match or not gen_dir.is_dir():
        raise DataError(f"points to a missing generation '{gen_name}'", path=path / POINTER)
    meta = read_json_object(gen_dir / "meta.json")  # None too when a save just removed it
    if meta is None:
        raise DataError("missing meta.json", path=gen_dir)
    return int(match.group(1)), gen_dir, meta


def read_pointer(pointer: Path) -> str:
    """The generation name ``CURRENT`` holds (a DataError when it is not text)."""
    try:
        return pointer.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise DataError("not a generation name (not UTF-8 text)", path=pointer) from None


def current_generation(path: Path) -> int:
    """The generation number ``CURRENT`` names; 0 when there is none (or it is unreadable)."""
    pointer = path / POINTER
    if not pointer.is_file():
        return 0
    try:
        match = GEN_RE.match(read_pointer(pointer))
    except DataError:  # a damaged pointer: create(force=True) and save() must replace it
        return 0
    return int(match.group(1)) if match else 0


def latest_generation(path: Path) -> int:
    """The highest generation number among the folders at ``path`` (0 when none)."""
    numbers = [int(m.group(1)) for p in path.iterdir() if (m := GEN_RE.match(p.name))]
    return max(numbers, default=0)


# ---------------------------------------------------------------------- saving


def make_index_dir(path: Path) -> None:
    """Make the index folder (refused when ``path`` is a file)."""
    if path.exists() and not path.is_dir():
        raise UserInputError(f"cannot save the index at {path}: it is a file, not a folder")
    path.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def directory_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on the index folder itself, waited for: no lock file is left behind,
    and the kernel releases it when a process dies. Windows opens no folder as a file: there
    the lock is on ``.save.lock`` inside it, which stays (never read, and no generation)."""
    from tunesmith.locks import O_BINARY, fcntl, holding_lock

    if fcntl is not None:
        fd = os.open(path, os.O_RDONLY)
    else:
        fd = os.open(path / SAVE_LOCK, os.O_RDWR | os.O_CREAT | O_BINARY)
    try:
        with holding_lock(fd):
            yield
    finally:
        os.close(fd)


def check_not_overtaken(path: Path, generation: int) -> None:
    """Refuse to save over a generation another process saved after ``generation`` was read:
    that would silently drop its changes."""
    current = current_generation(path)
    if current and current != generation:
        raise UserInputError(
            f"index {path} was saved by another process (generation {current}) "
            f"after this copy was loaded (generation {generation}); saving would "
            "drop those changes: load it again and redo yours"
        )


def write_generation(
    path: Path,
    generation: int,
    *,
    faiss_index: Any,
    db: sqlite3.Connection,
    db_lock: threading.Lock,
    meta: dict[str, Any],
) -> str:
    """Write generation ``generation`` and point CURRENT at it; returns its folder's name.

    The caller holds :func:`directory_lock`; ``db_lock`` guards the payload table's connection
    while it is copied.
    """
    faiss = load_faiss()
    name = f"gen-{generation:06d}"
    with no_room_as_error(path):
        tmp = Path(tempfile.mkdtemp(dir=path, prefix=f".{name}.", suffix=".tmp"))
    try:
        publish_mode(tmp, path / name, directory=True)
        faiss.write_index(faiss_index, str(tmp / "index.faiss"))
        with db_lock:
            save_table(db, tmp / "payloads.sqlite")
        atomic_write_json(tmp / "meta.json", meta)
        fsync_dir(tmp)
        os.replace(tmp, path / name)
        fsync_dir(path)
        atomic_write_text(path / POINTER, name + "\n")
        fsync_dir(path)
    except BaseException as exc:
        # Measured before the folder goes (a file cut at the size limit tells EFBIG); the
        # error names the index, not the temporary file FAISS or SQLite was writing.
        code = no_room_errno(exc, tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        if code is not None:
            outcome = f"the index on disk is the one saved before: {room_hint(code, 'save again')}"
            raise DiskFullError(path, code, outcome=outcome) from exc
        raise
    return name


def remove_old_generations(path: Path, *, keep: str) -> None:
    """Best effort: older generations and temporary folders left by crashed saves."""
    for entry in path.iterdir():
        if entry.name == keep or not entry.is_dir():
            continue
        if GEN_RE.match(entry.name) or (
            entry.name.startswith(".gen-") and entry.name.endswith(".tmp")
        ):
            shutil.rmtree(entry, ignore_errors=True)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries to disk (best effort: not every platform can)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
