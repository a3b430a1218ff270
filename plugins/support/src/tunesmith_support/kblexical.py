"""The KB's keyword (BM25) index, built once by `support index` and saved with its generation.

Building BM25 over 100,000 passages takes about 9 s (folding and splitting every entry's text,
then scoring every word): a server paid it at its start and at each reload after a re-index,
and `support ask` at each run. `index` now builds it once, into a ``bm25-gNNNNNN`` folder that
``kb.json`` names (``lexical``) and switches with the index, so a load reads it instead.

The folder records what it was built from (``lexical.json``: the languages, whose stop words
it left out, and a digest of the entries' ids and content hashes in index order). A load uses
it only when both match the KB it loads; anything else (a KB written before, a
``language.json`` edited by hand since, a folder that cannot be read) builds the index as
before. ``train`` re-encodes the same entries under the same folder; ``calibrate`` reads it
too.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunesmith.io import atomic_write_json, read_json_object
from tunesmith_support.kbgenerations import next_generation, own_name

if TYPE_CHECKING:
    from tunesmith_support.kb import Entry
    from tunesmith_support.scoring import Lexical

#: ``kb.json``'s key naming the saved BM25 folder.
KEY = "lexical"
#: The folder's record of what it was built from, written last.
MANIFEST = "lexical.json"
FORMAT = 1


def digest(entries: Sequence[Entry], languages: Sequence[str]) -> str:
    """What a BM25 index is built from, in one string: the entries' ids and content hashes in
    order (a document's row in the index is its position) and the languages."""
    h = hashlib.sha256("\t".join(languages).encode("utf-8"))
    for e in entries:
        h.update(f"\n{e.id}\t{e.content_hash}".encode())
    return h.hexdigest()


def stored_folder(kb_dir: str | Path, meta: dict[str, Any]) -> Path | None:
    """The BM25 folder ``meta`` names; ``None`` when it names none (a KB written before)."""
    if not meta.get(KEY):
        return None
    return own_name(Path(kb_dir), meta, KEY, "")


def _matches(folder: Path, entries: Sequence[Entry], languages: Sequence[str]) -> bool:
    manifest = read_json_object(folder / MANIFEST) or {}
    return manifest.get("format") == FORMAT and manifest.get("digest") == digest(entries, languages)


def save_for(
    kb_dir: str | Path,
    meta: dict[str, Any],
    entries: Sequence[Entry],
    languages: Sequence[str],
) -> bool:
    """Make sure the generation ``meta`` describes has a BM25 index of ``entries`` (in index
    order) in ``languages``: the folder it names when built from them, else a new folder,
    named in ``meta`` (nothing served changes until ``meta`` is committed). True when built."""
    from tunesmith_support.scoring import Lexical  # scoring imports kbindex, which imports us

    kb_dir = Path(kb_dir)
    folder = stored_folder(kb_dir, meta)
    if folder is not None and folder.is_dir() and _matches(folder, entries, languages):
        return False
    target = kb_dir / f"bm25-{next_generation(kb_dir)}"
    shutil.rmtree(target, ignore_errors=True)  # left by a killed run: never named
    Lexical(list(entries), languages).save(target)
    # Last: a folder without it (a run killed while writing) is never read.
    atomic_write_json(
        target / MANIFEST,
        {"format": FORMAT, "languages": list(languages), "entries": len(entries),
         "digest": digest(entries, languages)},
    )  # fmt: skip
    meta[KEY] = target.name
    return True


def load_for(
    kb_dir: str | Path,
    meta: dict[str, Any],
    entries: list[Entry],
    languages: Sequence[str],
    *,
    built: Lexical | None = None,
) -> Lexical:
    """The BM25 index of ``entries`` in ``languages``: ``built`` (the copy serving) when made
    from them, else the one saved in the KB when made from them, else built now."""
    from tunesmith_support.scoring import Lexical

    if built is not None and built.built_for == Lexical.key(entries, languages):
        return built
    try:
        folder = stored_folder(kb_dir, meta)
        if folder is not None and _matches(folder, entries, languages):
            return Lexical.load(folder, entries, languages)
    except Exception:  # noqa: BLE001 - unreadable or cut short: building it gives the same index
        pass
    return Lexical(entries, languages)
