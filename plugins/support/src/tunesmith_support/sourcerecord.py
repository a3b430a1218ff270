"""The record of the source files a KB's index was built from, so that a re-index reads and
splits only the files that changed.

For each file read: its size, ``mtime_ns``, the SHA-256 of its bytes, the stem its passage
ids start with, and the ids (and lines) of its entries. A file whose size and mtime are the
recorded ones is not opened; one whose size or mtime moved but whose bytes hash the same (a
``touch``, a fresh checkout, a copy that kept the bytes) is hashed, not split. Either way its
entries are the index's stored ones under this file's name. The record holds only while what
turns a file into entries is the same (:func:`settings`: the FAQ columns, the passage length,
the code that reads and splits): otherwise every file is read again.

The record is a file of its own for each run that changes it (``sources-NNNNNN.json``,
numbered apart from the KB's generations, whose names users and tests know), that
``kb.json`` names under :data:`KEY`, written before the commit: a killed re-index leaves the old record with the old
index or the new with the new, never a record of files the served index does not hold.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

from tunesmith.data.readers import data_file
from tunesmith.io import atomic_write_text
from tunesmith_support.kb import Entry, FaqColumns

#: ``kb.json``'s key naming the record file, and the names record files have.
KEY = "source_files"
NAME = re.compile(r"^sources-(\d{6})\.json$")
FORMAT = 1
#: A file changed this close to when it was looked at may change again within the same mtime
#: tick (coarse file systems keep 1-2 s): its size and mtime are not trusted next time.
RACY_NS = 2_000_000_000


def settings(columns: FaqColumns) -> str:
    """A digest of everything besides a file's bytes, name and stem that decides its entries.
    The reading and splitting code is part of it: an upgrade that names headings another way
    or cuts passages elsewhere must re-split every file, and a version number someone forgot
    to raise would keep the old ids without a word."""
    from tunesmith.data import readers
    from tunesmith_support import documents, kb

    digest = hashlib.sha256()
    digest.update(json.dumps([FORMAT, columns.to_dict(), sorted(columns.required)]).encode())
    digest.update(json.dumps([documents.MAX_WORDS, documents.HEADING_WORDS]).encode())
    for module in (documents, kb, readers):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()


def _with(entry: Entry, source: str, row: int) -> Entry:
    """``entry`` as read from ``source`` at ``row``, its stored content hash kept (a reused
    file's entries are not hashed again)."""
    entry.content_hash  # noqa: B018 - made (or stored) now, so that the copy carries it
    # A copy of the fields, not dataclasses.replace: 100,000 of these ran 2 s under __init__.
    moved = object.__new__(Entry)
    moved.__dict__.update(entry.__dict__, source=source, row=row)
    return moved


class SourceRecord:
    """The record a re-index starts from (``previous``) and the one it writes; see the module."""

    def __init__(
        self, settings: str, previous: dict[str, Any] | None, stored: dict[str, Entry]
    ) -> None:
        self.settings = settings
        usable = isinstance(previous, dict) and previous.get("settings") == settings
        old_files = previous.get("files") if usable and previous else None
        self._old: dict[str, Any] = old_files if isinstance(old_files, dict) else {}
        self._stored = stored
        self._files: dict[str, dict[str, Any]] = {}
        self._pending: dict[str, dict[str, Any]] = {}
        #: Files opened and split (or parsed), and files whose stored entries were kept.
        self.read = 0
        self.reused = 0

    def reuse(self, file: Path, source: str, stem: str | None) -> list[Entry] | None:
        """The entries of ``file`` (named ``source``) if it is unchanged since the record,
        else ``None``: read it, then call :meth:`add`."""
        path = data_file(file)  # book.xlsx#Sheet: the workbook
        info = path.stat()
        now = {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "stem": stem}
        if time.time_ns() - info.st_mtime_ns < RACY_NS:
            now["mtime_ns"] = None
        old = self._old.get(source)
        same = isinstance(old, dict) and old.get("stem") == stem
        if same and now["mtime_ns"] is not None and _stat_matches(old, now):
            found = self._entries(source, old)
            if found is not None:
                self._files[source] = {**old, "stem": stem}
                self.reused += 1
                return found
        now["sha256"] = _file_hash(path)
        if same and old.get("sha256") == now["sha256"]:
            found = self._entries(source, old)
            if found is not None:
                self._files[source] = {**old, **now}
                self.reused += 1
                return found
        self._pending[source] = now
        return None

    def add(self, source: str, entries: list[Entry]) -> None:
        """Record ``entries`` as what the file ``source`` (just read) holds."""
        self.read += 1
        now = self._pending.pop(source, None)
        if now is not None:
            self._files[source] = {**now, "entries": [[e.id, e.row] for e in entries]}

    def _entries(self, source: str, old: dict[str, Any]) -> list[Entry] | None:
        """The stored entries an unchanged file gave; ``None`` if the index lacks one."""
        found = []
        for item in old.get("entries") or []:
            if not (isinstance(item, list) and len(item) == 2):
                return None
            entry = self._stored.get(str(item[0]))
            if entry is None:
                return None
            found.append(_with(entry, source, int(item[1] or 0)))
        return found or None

    def changed(self) -> bool:
        """Whether the record to write differs from the one read."""
        return self._files != self._old

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "settings": self.settings, "files": self._files}


def _stat_matches(old: dict[str, Any], now: dict[str, Any]) -> bool:
    return old.get("size") == now["size"] and old.get("mtime_ns") == now["mtime_ns"]


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_record(kb_dir: Path, meta: dict[str, Any]) -> dict[str, Any] | None:
    """The record ``kb.json`` names, or ``None`` (none yet, or unreadable: it only saves
    work, so a damaged one means every file is read again)."""
    name = meta.get(KEY)
    if not isinstance(name, str) or Path(name).name != name or name in (".", ".."):
        return None
    try:
        data = json.loads((kb_dir / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def stage_record(kb_dir: Path, meta: dict[str, Any], record: SourceRecord) -> None:
    """Write ``record`` as a new generation file and name it in ``meta`` (nothing served
    changes until ``meta`` is committed); an unchanged record keeps its file."""
    if meta.get(KEY) and not record.changed():
        return
    used = [int(m.group(1)) for p in kb_dir.iterdir() if (m := NAME.match(p.name))]
    staged = kb_dir / f"sources-{max(used, default=0) + 1:06d}.json"
    # Compact: 100,000 entries' ids, where the indented form was three times the size.
    atomic_write_text(staged, json.dumps(record.to_dict(), separators=(",", ":")))
    meta[KEY] = staged.name


def record_path(kb_dir: Path, meta: dict[str, Any]) -> Path | None:
    """The record file ``kb.json`` names (kept by :func:`kbindex.remove_unused`)."""
    name = meta.get(KEY)
    return kb_dir / name if isinstance(name, str) and Path(name).name == name else None


def record_files(kb_dir: Path) -> list[Path]:
    """Every record file in the KB folder (those ``kb.json`` does not name are left by
    earlier runs, or by one killed before its commit)."""
    return [p for p in kb_dir.iterdir() if NAME.match(p.name)]
