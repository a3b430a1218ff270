"""Retired items (``recommend retire`` / ``restore``): sold out, withdrawn or recalled.

A retired item stays in the model (its vector, its events, users' histories: it still says
what a user liked, and "because you liked X" may name it) but is never returned: not by
``for-user``, ``similar`` or ``search``. The set is ``retired.json`` in the model folder (ids,
in the order they were retired), written as ``add-items`` writes: a new version of the folder
with every other file linked (``folder_copy``), renamed over it under the run lock, so a
server following the folder (``reload.py``) sees the whole change or none. ``add-items`` and
``add-events`` link the file into their versions; ``train --force`` carries the retired ids
still in its catalogue into the model it writes (:func:`carried`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.errors import DataError, UserInputError

RETIRED = "retired.json"
#: Files an id list is read from one id a line (anything else goes through the data readers).
PLAIN_SUFFIXES = ("", ".txt", ".lst", ".ids")


def read_retired(path: Path) -> list[str]:
    """The model folder's retired ids, oldest first (none for a folder without the file)."""
    from tunesmith_recommend.model import read_part

    if not (path / RETIRED).exists():
        return []
    return [str(item) for item in read_part(path, RETIRED).get("ids", [])]


@dataclass(frozen=True)
class Named:
    """An id the user named and where: a file's row, or a ``--item`` flag."""

    item: str
    path: str | None = None
    row: int | None = None


def ids_from_file(file: Path, id_col: str) -> list[Named]:
    """The ids of ``file``: one a line for a plain text file (blank lines and ``#`` comments
    left out), else the ``id_col`` column of a CSV, JSONL, Parquet or Excel file."""
    from tunesmith_recommend.data import ROW, _check_columns, _read, _text

    file = Path(file)
    if file.suffix.lower() in PLAIN_SUFFIXES:
        if not file.is_file():
            raise DataError("no such file", path=file)
        try:
            lines = file.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as exc:
            raise DataError(f"not UTF-8 text ({exc.reason})", path=file) from exc
        return [
            Named(line.strip(), str(file), number)
            for number, line in enumerate(lines, start=1)
            if line.strip() and not line.strip().startswith("#")
        ]
    path, rows = _read(file, [id_col])
    _check_columns(path, rows, [id_col])
    return [Named(_text(row.get(id_col)), str(path), row[ROW]) for row in rows]


@dataclass
class Changed:
    """What ``retire``/``restore`` did: ``changed`` ids retired (or restored) now, ``unchanged``
    ones that already were, and ``retired`` in all after it."""

    action: str
    changed: int
    unchanged: int
    retired: int

    @property
    def unchanged_key(self) -> str:
        """What the ids that did not change were: retired already, or not retired."""
        return "already_retired" if self.action == "retired" else "not_retired"

    def to_json(self, model_dir: Path) -> dict[str, Any]:
        return {
            "model_dir": str(model_dir),
            self.action: self.changed,
            self.unchanged_key: self.unchanged,
            "retired_items": self.retired,
        }


def change_retired(model_dir: str | Path, named: list[Named], *, restore: bool = False) -> Changed:
    """Retire (or ``restore``) the ``named`` items of the model folder: rewritten atomically
    under its run lock, and not at all when nothing changes. An id not in the catalogue is one
    line naming it (and its file and row)."""
    from tunesmith.locks import writing_into

    if not named:
        raise UserInputError("name the items: --items FILE or --item ID (repeatable)")
    with writing_into(model_dir, [], flag="--model"):
        return _change_locked(Path(model_dir), named, restore)


def _change_locked(path: Path, named: list[Named], restore: bool) -> Changed:
    from tunesmith_recommend.model import read_catalogue, read_meta
    from tunesmith_recommend.nouns import item_nouns

    meta = read_meta(path)
    known = read_catalogue(path).position
    for name in named:
        if name.item not in known:
            what = f"{item_nouns(meta)[0]} {name.item!r} is not in this model's catalogue"
            if name.path is None:
                raise UserInputError(what)
            raise DataError(what, path=name.path, row=name.row)
    retired = read_retired(path)
    now = dict.fromkeys(retired)
    wanted = dict.fromkeys(n.item for n in named)
    if restore:
        changed = [item for item in wanted if item in now]
        for item in changed:
            del now[item]
    else:
        changed = [item for item in wanted if item not in now]
        now.update(dict.fromkeys(changed))
    action = "restored" if restore else "retired"
    done = Changed(action, len(changed), len(wanted) - len(changed), len(now))
    if changed:
        write_retired(path, list(now), meta)
    return done


def write_retired(
    path: Path, ids: list[str], meta: dict[str, Any], *, in_place: bool = False
) -> None:
    """A new version of the model folder ``path`` whose retired items are ``ids``, the rest
    of it linked (``folder_copy``) and renamed over it; ``in_place``: ``path`` is a folder
    being written (``train``'s temporary one), so its files are written directly."""
    from tunesmith.io import atomic_directory, atomic_write_json
    from tunesmith_recommend.folder_copy import link_unchanged

    if in_place:
        atomic_write_json(path / RETIRED, {"ids": ids})
        atomic_write_json(path / "meta.json", {**meta, "retired_items": len(ids)})
        return
    with atomic_directory(path, force=True) as tmp:
        link_unchanged(path, tmp, [RETIRED, "meta.json"])
        atomic_write_json(tmp / RETIRED, {"ids": ids})
        # meta.json is written by every rewrite: a server's change stamp reads it
        atomic_write_json(tmp / "meta.json", {**meta, "retired_items": len(ids)})


def carried(old_dir: Path, ids: list[str]) -> list[str]:
    """The retired ids of the model ``old_dir`` (replaced by ``train --force``) still in the
    new catalogue's ``ids``: a weekly train must not bring a recalled item back."""
    if not (old_dir / RETIRED).exists():
        return []
    try:
        old = read_retired(old_dir)
    except UserInputError:
        return []  # a damaged old folder: train replaces it whole
    present = set(ids)
    return [item for item in old if item in present]
