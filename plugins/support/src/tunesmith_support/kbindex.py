"""A knowledge-base directory: the vector index of its entries and what it was built from.

Layout of ``KB/``::

    kb.json            encoder, sources, FAQ columns, entry count (written last, atomically)
    index/             tunesmith.retrieval.VectorIndex: one vector per FAQ question, FAQ answer
                       and passage; payloads carry the entry (question, answer, category,
                       source, heading, content hash)
    encoder/           the tuned encoder, after `support train` (else the named model is used)
    classifier/        the intent classifier, after `support train --classifier`
    calibration.json   confidence model and thresholds (`support calibrate` / `train`)

Re-indexing compares ids and content hashes with what the index holds: only new or changed
entries are encoded, removed ones are deleted.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.io import atomic_write_json, read_json_object
from tunesmith_support.kb import Entry, FaqColumns, read_sources

META = "kb.json"
INDEX_DIR = "index"
ENCODER_DIR = "encoder"
CLASSIFIER_DIR = "classifier"
CALIBRATION = "calibration.json"


@dataclass
class IndexReport:
    """What one `support index` run changed."""

    added: int
    updated: int
    removed: int
    unchanged: int
    entries: int
    encoder: str

    def summary(self) -> str:
        return (
            f"{self.entries} entries ({self.added} added, {self.updated} updated, "
            f"{self.removed} removed, {self.unchanged} unchanged); encoder {self.encoder}"
        )


def read_meta(kb_dir: str | Path) -> dict[str, Any]:
    """``kb.json`` of a KB directory; a directory without one is not a KB."""
    kb_dir = Path(kb_dir)
    meta = read_json_object(kb_dir / META) if (kb_dir / META).exists() else None
    if meta is None:
        raise UserInputError(
            f"{kb_dir}: not a knowledge base (no {META}); build one with "
            "`tunesmith support index --kb SOURCES --out DIR`"
        )
    return meta


def model_location(kb_dir: str | Path, meta: dict[str, Any]) -> str:
    """The encoder a KB was built with: its own tuned copy, or the model named at build time."""
    if meta.get("model") == ENCODER_DIR:
        return str(Path(kb_dir) / ENCODER_DIR)
    return str(meta.get("model") or "default")


def load_encoder(kb_dir: str | Path, model: str | None = None) -> Any:
    """The encoder for a KB (``model`` overrides the recorded one; the index then checks that it
    is the one the vectors were made with)."""
    from tunesmith.retrieval import Encoder

    kb_dir = Path(kb_dir)
    if model is None:
        meta = read_meta(kb_dir) if (kb_dir / META).exists() else {}
        model = model_location(kb_dir, meta)
    return Encoder.load(model)


def open_index(kb_dir: str | Path, encoder: Any) -> Any:
    """The KB's vector index; an index built with another encoder is a one-line error."""
    from tunesmith.retrieval import VectorIndex

    path = Path(kb_dir) / INDEX_DIR
    try:
        return VectorIndex.load(path, encoder=encoder)
    except UserInputError as exc:
        raise UserInputError(
            f"{kb_dir}: this knowledge base was built with another encoder ({exc}); rebuild it "
            "with `tunesmith support index --out NEW_DIR` or use the encoder it was built with"
        ) from None


def stored_hashes(index: Any) -> dict[str, str]:
    """Entry id -> content hash, read back from the index payloads."""
    hashes: dict[str, str] = {}
    for vector_id in index.ids():
        payload = index.get(vector_id) or {}
        entry_id = payload.get("entry_id")
        if entry_id is not None:
            hashes[entry_id] = payload.get("hash", "")
    return hashes


def stored_entries(index: Any) -> list[Entry]:
    """Every entry of an index, once each, in index order."""
    seen: dict[str, Entry] = {}
    for vector_id in index.ids():
        payload = index.get(vector_id) or {}
        entry_id = payload.get("entry_id")
        if entry_id is not None and entry_id not in seen:
            seen[entry_id] = Entry.from_payload(payload)
    return list(seen.values())


def _vector_ids(index: Any) -> dict[str, list[str]]:
    by_entry: dict[str, list[str]] = {}
    for vector_id in index.ids():
        entry_id = vector_id.rsplit("::", 1)[0]
        by_entry.setdefault(entry_id, []).append(vector_id)
    return by_entry


def upsert_entries(index: Any, entries: list[Entry], *, batch: int = 512) -> None:
    """Encode and store every vector of ``entries`` (in batches, one bar over all)."""
    rows = [(vid, text, e.payload(f)) for e in entries for vid, f, text in e.vectors()]
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        index.upsert(
            [r[0] for r in chunk],
            texts=[r[1] for r in chunk],
            payloads=[r[2] for r in chunk],
        )


def build_index(
    sources: str | Path,
    out: str | Path,
    *,
    columns: FaqColumns = FaqColumns(),
    model: str | None = None,
    progress: Any = None,
) -> IndexReport:
    """Create or update the KB at ``out`` from the files at ``sources``.

    Sources are read and checked before anything is written, so a bad file leaves the existing
    KB as it was. ``progress(done, total)`` is told about entries encoded.
    """
    from tunesmith.retrieval import VectorIndex

    entries = read_sources(sources, columns)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserInputError(f"{out}: exists and is not a directory")
    existing = (out / META).exists()
    if out.exists() and not existing and any(out.iterdir()):
        raise UserInputError(f"{out}: exists, is not empty and is not a knowledge base")
    meta = read_meta(out) if existing else {}
    encoder = load_encoder(out, model) if existing else load_encoder(out, model or "default")
    if existing:
        index = open_index(out, encoder)
        old = stored_hashes(index)
    else:
        out.mkdir(parents=True, exist_ok=True)
        index = VectorIndex.create(out / INDEX_DIR, encoder=encoder)
        old = {}

    new_ids = {e.id for e in entries}
    changed = [e for e in entries if old.get(e.id) != e.content_hash]
    removed = [entry_id for entry_id in old if entry_id not in new_ids]
    vector_ids = _vector_ids(index) if existing else {}
    # A changed entry may have lost a vector (an FAQ row turned into a passage): drop its old ones.
    stale = [vid for e in changed for vid in vector_ids.get(e.id, [])]
    stale += [vid for entry_id in removed for vid in vector_ids.get(entry_id, [])]
    if stale:
        index.delete(stale)
    for start in range(0, len(changed), 256):
        upsert_entries(index, changed[start : start + 256])
        if progress is not None:
            progress(min(start + 256, len(changed)), len(changed))
    index.save()
    meta.update(
        {
            "format": 1,
            "model": meta.get("model") or (model or "default"),
            "encoder": encoder.name,
            "dim": int(encoder.dim),
            "sources": str(Path(sources).resolve()),
            "columns": columns.to_dict(),
            "entries": len(entries),
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    )
    atomic_write_json(out / META, meta)
    added = sum(1 for e in changed if e.id not in old)
    return IndexReport(
        added=added,
        updated=len(changed) - added,
        removed=len(removed),
        unchanged=len(entries) - len(changed),
        entries=len(entries),
        encoder=encoder.name,
    )


def reencode(kb_dir: str | Path, entries: list[Entry], encoder_dir: str | Path) -> None:
    """Re-encode ``entries`` with a new encoder into a fresh index swapped in by renames (an
    interrupted run leaves the old index in place)."""
    from tunesmith.retrieval import Encoder, VectorIndex

    kb_dir = Path(kb_dir)
    meta = read_meta(kb_dir)
    encoder = Encoder.load(encoder_dir)
    tmp = kb_dir / (INDEX_DIR + ".new")
    shutil.rmtree(tmp, ignore_errors=True)
    index = VectorIndex.create(tmp, encoder=encoder)
    upsert_entries(index, entries)
    index.save()
    old = kb_dir / (INDEX_DIR + ".old")
    shutil.rmtree(old, ignore_errors=True)
    (kb_dir / INDEX_DIR).rename(old)
    tmp.rename(kb_dir / INDEX_DIR)
    shutil.rmtree(old, ignore_errors=True)
    meta.update({"encoder": encoder.name, "dim": int(encoder.dim)})
    atomic_write_json(kb_dir / META, meta)
