"""A knowledge-base directory: the vector index of its entries and what it was built from.

Layout of ``KB/``::

    kb.json            encoder, index folder, classifier, sources, FAQ columns, entry count
                       (written last, atomically: it is the KB's generation pointer, see
                       :mod:`tunesmith_support.kbgenerations`)
    index/             tunesmith.retrieval.VectorIndex: one vector per FAQ question, FAQ answer
                       and passage; payloads carry the entry (question, answer, category,
                       source, heading, content hash); ``index-gNNNNNN/`` once re-indexed or
                       trained
    encoders/gNNNNNN/  the tuned encoder of each `support train` (else the named model is used)
    classifier-gNNNNNN/  the intent classifier, after `support train --classifier`
                       (``classifier/`` in KBs trained before)
    bm25-gNNNNNN/      the keyword (BM25) index of the entries, built by `index`
                       (:mod:`tunesmith_support.kblexical`; none in KBs indexed before)
    sources-NNNNNN.json  the source files the index was built from (size, mtime, hash,
                       entry ids), so a re-index reads only changed files
                       (:mod:`tunesmith_support.sourcerecord`)
    calibration.json   confidence model and thresholds (`support calibrate` / `train`)

Re-indexing compares ids and content hashes with what the index holds: only new or changed
entries are encoded, removed ones are deleted; the changed index is saved into a new folder
and ``kb.json`` then points at it, so ``kb.json`` (its renamed ids, entry count, sources) and
the index never disagree, whenever the run is killed.

A tuned encoder is recorded relative to the KB (``kb:encoders/gNNNNNN``, the name the index
keeps too), so a KB folder can be moved or copied. Re-encoding with a tuned encoder writes a new
index folder next to the old one and then rewrites ``kb.json`` to point at both new folders in
one atomic step: a crash at any point leaves the KB on its old encoder and index, or on its new
ones, never in between. Folders no ``kb.json`` points at are removed by the next re-encoding.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.io import check_output_folder, read_json_object
from tunesmith.retrieval import Encoder, VectorIndex
from tunesmith_support.kb import Entry, FaqColumns, read_sources
from tunesmith_support.kbgenerations import (
    CALIBRATION as CALIBRATION,  # re-exported: where the other modules import it from
)
from tunesmith_support.kbgenerations import (
    CLASSIFIER_DIR,
    GENERATION,
    META,
    calibration_path,
    classifier_path,
    commit,
    language_path,
    next_generation,
    stage_file,
)
from tunesmith_support.kblexical import save_for as save_lexical
from tunesmith_support.kblexical import stored_folder as lexical_folder
from tunesmith_support.sourcerecord import NAME as RECORD_NAME
from tunesmith_support.sourcerecord import (
    SourceRecord,
    read_record,
    record_files,
    record_path,
    settings,
    stage_record,
)

INDEX_DIR = "index"
#: Where a KB trained before ``encoders/`` keeps its tuned encoder (still read).
ENCODER_DIR = "encoder"
ENCODERS_DIR = "encoders"
#: A model recorded as ``kb:<path>`` lives inside the KB, at ``<path>``.
IN_KB = "kb:"
_GENERATION = GENERATION


@dataclass
class IndexReport:
    """What one `support index` run changed."""

    added: int
    updated: int
    removed: int
    unchanged: int
    entries: int
    encoder: str
    #: Empty files of a source folder that were left out, each with why
    #: (``"faq/new.csv: the FAQ file has no rows"``).
    skipped: list[str] = field(default_factory=list)
    #: Entries that kept their content under a new id, old id -> new id (:func:`renamed_ids`).
    renamed: dict[str, str] = field(default_factory=dict)
    #: Source files read (opened and split), and files unchanged since the last index whose
    #: stored entries were kept (see :mod:`tunesmith_support.sourcerecord`).
    files_read: int = 0
    files_unchanged: int = 0

    def summary(self) -> str:
        text = (
            f"{self.entries} entries ({self.added} added, {self.updated} updated, "
            f"{self.removed} removed, {self.unchanged} unchanged); encoder {self.encoder}"
        )
        if self.files_unchanged:
            files = self.files_read + self.files_unchanged
            text += f"; {self.files_unchanged:,} of {files:,} files unchanged (not read again)"
        if self.skipped:
            text += f"; skipped {len(self.skipped)} empty file(s): {'; '.join(self.skipped)}"
        if self.renamed:
            shown = ", ".join(f"{a} -> {b}" for a, b in list(self.renamed.items())[:5])
            more = f" and {len(self.renamed) - 5} more" if len(self.renamed) > 5 else ""
            text += (
                f"; {len(self.renamed)} entries have new ids ({shown}{more}): feedback and "
                "labelled files naming the old ids are read as the new ones"
            )
        return text

    def to_dict(self) -> dict[str, Any]:
        """The report as plain values (`support index --json`)."""
        return asdict(self)


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


def in_kb(model: str | None) -> bool:
    """Whether a recorded model is a KB's own tuned encoder (not a model named at build time)."""
    return bool(model) and (model == ENCODER_DIR or str(model).startswith(IN_KB))


def model_location(kb_dir: str | Path, meta: dict[str, Any]) -> str:
    """The encoder a KB was built with: its own tuned copy, or the model named at build time."""
    model = str(meta.get("model") or "default")
    if model == ENCODER_DIR:
        return str(Path(kb_dir) / ENCODER_DIR)
    if model.startswith(IN_KB):
        return str(Path(kb_dir) / model[len(IN_KB) :])
    # A KB indexed before kb.json recorded a model folder absolute (see recorded_model) holds
    # it as typed, "runs/enc": from another working directory that named no folder, or another
    # one. The encoder's name recorded beside it is that folder, absolute.
    encoder = Path(str(meta.get("encoder") or ""))
    if not Path(model).expanduser().is_absolute() and encoder.is_absolute() and encoder.is_dir():
        return str(encoder)
    return model


def index_dir(kb_dir: str | Path, meta: dict[str, Any]) -> Path:
    """The index folder ``kb.json`` points at: a folder of the KB itself. A KB someone sent
    chose its kb.json, and `index` and `train` rewrite (and delete vectors of) this folder:
    ``"../other_kb/index"``, an absolute path or a symlink out would make them write there."""
    kb_dir = Path(kb_dir)
    name = str(meta.get("index") or INDEX_DIR)
    if name in (".", "..") or Path(name).name != name or "\\" in name:
        raise UserInputError(
            f"{kb_dir / META}: 'index' must name a folder of the knowledge base, got {name!r}"
        )
    where = kb_dir / name
    if where.is_symlink() and where.resolve().parent != kb_dir.resolve():
        raise UserInputError(
            f"{where}: the index folder is a link to {where.resolve()}, outside the knowledge base"
        )
    return where


def recorded_model(model: str | None) -> str:
    """What ``kb.json`` records for the model ``index --model`` named: ``default``, or a local
    directory by its absolute path (as ``sources`` is), so that every later command opens the
    KB from any working directory; a relative ``runs/enc`` was read from the caller's folder."""
    if not model or model == "default":
        return "default"
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_dir() else model


def _load(model: str, device: str = "cpu") -> Any:
    """``Encoder.load``, with a missing model said in the plugin's terms: the support commands
    have no ``--allow-network``, which the core's message would tell the user to pass."""
    from tunesmith.errors import ModelNotFoundError
    from tunesmith.models import DEFAULT_MODEL, network_allowed

    if model != DEFAULT_MODEL and not network_allowed() and not Path(model).expanduser().exists():
        raise ModelNotFoundError(
            f"model directory {model} does not exist; the support plugin's encoder is 'default' "
            "or a local model directory"
        )
    return Encoder.load(model, device=device)


def load_encoder(
    kb_dir: str | Path,
    model: str | None = None,
    *,
    device: str = "cpu",
    meta: dict[str, Any] | None = None,
) -> Any:
    """The encoder for a KB (``model`` overrides the recorded one; the index then checks that it
    is the one the vectors were made with), on ``device`` (``--device``). A KB's own tuned encoder is named by its place in
    the KB (``kb:encoders/g000001``), not by an absolute path, so a moved KB still opens.
    ``meta``: the ``kb.json`` to read (a generation `train` has not committed yet)."""
    kb_dir = Path(kb_dir)
    if model is not None:
        return _load(model, device)
    # Read first: a folder that is not a KB is said so before a model is loaded for nothing.
    meta = read_meta(kb_dir) if meta is None else meta
    encoder = _load(model_location(kb_dir, meta), device)
    recorded = str(meta.get("model") or "default")
    if in_kb(recorded):
        encoder.name = recorded if recorded.startswith(IN_KB) else IN_KB + ENCODER_DIR
    return encoder


def _same_encoder(recorded: str, encoder: Any) -> bool:
    """Whether an index's recorded encoder name is ``encoder``'s. A KB trained before encoders
    were named relative to the KB recorded ``/abs/path/KB/encoder``: that still matches its
    own ``kb:encoder`` wherever the KB now is."""
    name = str(encoder.name)
    if recorded == name:
        return True
    old = Path(recorded)
    return name == IN_KB + ENCODER_DIR and old.is_absolute() and old.name == ENCODER_DIR


def open_index(kb_dir: str | Path, encoder: Any, meta: dict[str, Any] | None = None) -> Any:
    """The KB's vector index (the folder ``kb.json``, or ``meta``, points at); an index built
    with another encoder is a one-line error."""
    kb_dir = Path(kb_dir)
    index = VectorIndex.load(index_dir(kb_dir, read_meta(kb_dir) if meta is None else meta))
    _attach_encoder(kb_dir, index, encoder)
    return index


def _attach_encoder(kb_dir: Path, index: Any, encoder: Any) -> None:
    """Give ``index`` its encoder, after checking that the vectors were made with it."""
    if not _same_encoder(index.encoder_name, encoder) or int(encoder.dim) != index.dim:
        raise UserInputError(
            f"{kb_dir}: this knowledge base was built with another encoder (index built with "
            f"'{index.encoder_name}' (dim {index.dim}), not '{encoder.name}' (dim "
            f"{encoder.dim})); rebuild it with `tunesmith support index --out NEW_DIR` or use "
            "the encoder it was built with"
        )
    index.encoder = encoder


def kb_entries(kb_dir: str | Path) -> list[Entry]:
    """Every entry of a KB, read from its index's payloads without loading its encoder: the
    commands that only need the entry ids (`calibrate` and `export-feedback` checking the ids
    they read) spent seconds importing torch and transformers for a model they never ran."""
    kb_dir = Path(kb_dir)
    return stored_entries(VectorIndex.load(index_dir(kb_dir, read_meta(kb_dir))))


def stored_versions(index: Any) -> dict[str, tuple[str, str]]:
    """Entry id -> (content hash, source file), read back from the index payloads in one pass."""
    versions: dict[str, tuple[str, str]] = {}
    for _vector_id, payload in index.items():
        entry_id = payload.get("entry_id")
        if entry_id is not None:
            versions[entry_id] = (payload.get("hash", ""), payload.get("source", ""))
    return versions


def stored_entries(index: Any) -> list[Entry]:
    """Every entry of an index, once each, in index order (one pass over its payloads: a
    server's start and each reload read all of them)."""
    seen: dict[str, Entry] = {}
    for _vector_id, payload in index.items():
        entry_id = payload.get("entry_id")
        if entry_id is not None and entry_id not in seen:
            seen[entry_id] = Entry.from_payload(payload)
    return list(seen.values())


def _refresh_payloads(index: Any, entries: list[Entry], vector_ids: dict[str, list[str]]) -> None:
    """Rewrite the payloads of entries whose content is unchanged but whose source file moved
    (a renamed FAQ file, a document moved to another folder), keeping their stored vectors:
    nothing is encoded again, but answers name the file the entry now comes from."""
    import numpy as np

    ids, payloads, vectors = [], [], []
    for entry in entries:
        for vector_id in vector_ids.get(entry.id, []):
            old = index.get(vector_id) or {}
            ids.append(vector_id)
            payloads.append({**old, **entry.payload(old.get("field", "a"))})
            vectors.append(index.vector(vector_id))
    if ids:
        index.upsert(ids, payloads=payloads, vectors=np.stack(vectors).astype(np.float32))


def _vector_ids(index: Any) -> dict[str, list[str]]:
    by_entry: dict[str, list[str]] = {}
    for vector_id in index.ids():
        entry_id = vector_id.rsplit("::", 1)[0]
        by_entry.setdefault(entry_id, []).append(vector_id)
    return by_entry


#: Texts per call of the encoder (the progress bar moves once per call).
ENCODE_CHUNK = 256
#: Vectors stored per write into the index.
STORE_CHUNK = 8192


def upsert_entries(
    index: Any, entries: list[Entry], *, batch: int = ENCODE_CHUNK, progress: Any = None
) -> None:
    """Encode and store every vector of ``entries``; ``progress(done, total)`` is told the
    entries encoded (after every ``batch`` texts).

    The texts are encoded shortest first, so that each batch the encoder runs holds texts of
    about one length (a batch pads to its longest), and stored in entry order. The payload
    holds the entry, not the text encoded (its heading and answer again): that doubled the
    payload table, which every save writes and every load reads."""
    import numpy as np

    rows = [(vid, text, e.payload(f)) for e in entries for vid, f, text in e.vectors()]
    if not rows:
        return
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][1]))
    if progress is not None:
        progress(0, len(entries))  # the total, as soon as the sources are read
    vectors = np.empty((len(rows), int(index.dim)), dtype=np.float32)
    for start in range(0, len(order), batch):
        picked = order[start : start + batch]
        vectors[picked] = index.encoder.encode([rows[i][1] for i in picked], progress=False)
        if progress is not None:
            done = start + len(picked)
            progress(len(entries) * done // len(rows), len(entries))
    for start in range(0, len(rows), STORE_CHUNK):
        chunk = rows[start : start + STORE_CHUNK]
        index.upsert(
            [r[0] for r in chunk],
            payloads=[r[2] for r in chunk],
            vectors=vectors[start : start + STORE_CHUNK],
        )


#: Field of a past question indexed as another way to ask for its entry (`train --index-questions`).
PAST_QUESTION = "h"


def index_past_questions(
    kb_dir: str | Path,
    questions: list[tuple[str, str]],
    *,
    device: str = "cpu",
    meta: dict[str, Any] | None = None,
) -> int:
    """Index past ``(question, entry id)`` pairs as extra question vectors of their entries, so
    a new question also matches the past questions an entry answered. Re-indexing drops them
    for entries that changed (train again to add them back). Returns the number indexed.
    ``device``: where they are encoded (``train --device``).

    With ``meta`` (the generation `train` builds, committed later) they go into its index, in
    a new folder if it is still the one ``kb.json`` points at (``meta["index"]`` is then
    updated); without, into the KB's, committed at once."""
    import hashlib

    kb_dir = Path(kb_dir)
    staged = meta
    meta = read_meta(kb_dir) if staged is None else staged
    index = open_index(kb_dir, load_encoder(kb_dir, device=device, meta=meta), meta)
    entries = {e.id: e for e in stored_entries(index)}
    rows: dict[str, tuple[str, dict[str, Any]]] = {}
    for question, entry_id in questions:
        if entry_id not in entries:
            continue
        digest = hashlib.sha1(" ".join(question.lower().split()).encode("utf-8")).hexdigest()
        payload = entries[entry_id].payload(PAST_QUESTION)
        rows[f"{entry_id}::{PAST_QUESTION}-{digest[:12]}"] = (question, payload)
    ids = list(rows)
    for start in range(0, len(ids), 512):
        chunk = ids[start : start + 512]
        index.upsert(chunk, texts=[rows[i][0] for i in chunk], payloads=[rows[i][1] for i in chunk])
    save_new_generation(kb_dir, index, meta)
    if staged is None:
        commit(kb_dir, meta)
        remove_unused(kb_dir)
    return len(ids)


def save_new_generation(kb_dir: Path, index: Any, meta: dict[str, Any]) -> None:
    """Save ``index`` for the generation ``meta`` describes: into a new ``index-gN`` folder
    (``meta["index"]`` set to it) when ``meta`` still names the folder ``kb.json`` serves, so
    that nothing served changes before ``kb.json`` is switched."""
    served = read_meta(kb_dir) if (kb_dir / META).exists() else {}
    if served and index_dir(kb_dir, meta).resolve() == index_dir(kb_dir, served).resolve():
        target = kb_dir / f"index-{next_generation(kb_dir)}"
        # The index saves into ``path``: its current contents become the new folder's first
        # generation (no copy of the old folder's history).
        index.path = target
        meta["index"] = target.name
    index.save()


def faq_columns(
    out: str | Path,
    *,
    question: str | None = None,
    answer: str | None = None,
    id: str | None = None,  # noqa: A002 - the flag's name
    category: str | None = None,
) -> FaqColumns:
    """The FAQ columns for (re-)indexing into ``out``: each flag given, else the column the KB
    was built with (``kb.json``), else the default. A re-run without the flags of the first
    run must not read the files differently: without ``--id-col`` every id would silently be
    derived from its question, and every stored entry, rating and correction would point at
    ids that no longer exist. An id or category column named by a flag, now or then, must be
    there."""
    recorded: dict[str, Any] = {}
    if (Path(out) / META).is_file():
        columns = read_meta(out).get("columns")
        recorded = columns if isinstance(columns, dict) else {}
    defaults = FaqColumns()

    def pick(role: str, flag: str | None) -> str:
        value = flag or recorded.get(role) or getattr(defaults, role)
        return str(value)

    required = frozenset(
        role
        for role, flag in (("id", id), ("category", category))
        if flag or pick(role, None) != getattr(defaults, role)
    )
    return FaqColumns(
        question=pick("question", question),
        answer=pick("answer", answer),
        id=pick("id", id),
        category=pick("category", category),
        required=required,
    )


def _clear_unfinished_first_build(out: Path) -> None:
    """Remove what a first ``index`` killed before writing ``kb.json`` left (its index folder
    and the languages it staged), so that running it again works; any other content is
    refused, never deleted."""
    contents = {p.name for p in out.iterdir()}
    staged = {
        name
        for name in contents
        if (name.startswith(("language-", "bm25-")) and GENERATION.match(name))
        or RECORD_NAME.match(name)
    }
    if contents - staged - {INDEX_DIR}:
        raise UserInputError(f"{out}: exists, is not empty and is not a knowledge base")
    for name in staged:
        if (out / name).is_dir():
            shutil.rmtree(out / name)
        else:
            (out / name).unlink(missing_ok=True)
    if INDEX_DIR in contents:
        shutil.rmtree(out / INDEX_DIR)


def build_index(
    sources: str | Path,
    out: str | Path,
    *,
    columns: FaqColumns = FaqColumns(),
    model: str | None = None,
    progress: Any = None,
    device: str = "cpu",
    languages: list[str] | None = None,
    log: Any = None,
) -> IndexReport:
    """Create or update the KB at ``out`` from the files at ``sources``; ``languages``
    (`--language`) become the KB's languages in the same switch of ``kb.json`` as the index.

    Sources are read and checked before anything is written, so a bad file leaves the existing
    KB as it was. ``progress(done, total)`` is told about entries encoded. ``device``
    (``--device``) is where the encoder runs; it is not recorded, and what is "changed" is
    decided by ids and content hashes only, so re-indexing on another device encodes only what
    changed. Files unchanged since the last run are not read again (their record,
    :mod:`tunesmith_support.sourcerecord`, is switched with the index). ``log(line)`` is told
    about a long save.
    """
    out = Path(out)
    skipped: list[str] = []
    # --out first: a folder of the user's own files is refused before a large source is read.
    if out.exists() and not out.is_dir():
        raise UserInputError(f"{out}: exists and is not a directory")
    check_output_folder(out, "--out")  # under a file: one line, not a mkdir traceback
    existing = (out / META).exists()
    if out.exists() and not existing:
        _clear_unfinished_first_build(out)
    meta = read_meta(out) if existing else {}
    stored: dict[str, Entry] = {}
    # A re-index loads the KB's encoder only when there is something to encode (or --model
    # names one to check): a sync that found nothing changed took seconds importing torch
    # and transformers for a model it never ran.
    encoder = None
    if existing:
        index = VectorIndex.load(index_dir(out, meta))
        if model is not None:
            # Checked before the sources are read: another encoder was refused only after
            # 20,000 files were read and split (two minutes).
            encoder = load_encoder(out, model, device=device)
            _attach_encoder(out, index, encoder)
        # One pass over the payloads: the diff below and the unchanged files' entries.
        stored = {e.id: e for e in stored_entries(index)}
    record = SourceRecord(settings(columns), read_record(out, meta) if existing else None, stored)
    entries = read_sources(sources, columns, exclude=out, skipped=skipped, record=record)
    if existing:
        old = {entry_id: e.content_hash for entry_id, e in stored.items()}
        old_sources = {entry_id: e.source for entry_id, e in stored.items()}
    else:
        encoder = load_encoder(out, model or "default", device=device)
        out.mkdir(parents=True, exist_ok=True)
        index = VectorIndex.create(out / INDEX_DIR, encoder=encoder)
        old, old_sources = {}, {}

    new_ids = {e.id for e in entries}
    changed = [e for e in entries if old.get(e.id) != e.content_hash]
    # Same content from another file: the hash leaves the source out (moving a file should
    # not re-encode it), but the payload must name where the entry now comes from.
    moved = [
        e
        for e in entries
        if e.id in old and old[e.id] == e.content_hash and old_sources.get(e.id) != e.source
    ]
    removed = [entry_id for entry_id in old if entry_id not in new_ids]
    if changed and encoder is None:
        encoder = load_encoder(out, device=device)
        _attach_encoder(out, index, encoder)
    vector_ids = _vector_ids(index) if existing else {}
    # A changed entry may have lost a vector (an FAQ row turned into a passage): drop its old ones.
    stale = [vid for e in changed for vid in vector_ids.get(e.id, [])]
    stale += [vid for entry_id in removed for vid in vector_ids.get(entry_id, [])]
    if stale:
        index.delete(stale)
    _refresh_payloads(index, moved, vector_ids)
    upsert_entries(index, changed, progress=progress)
    if not existing or changed or moved or stale:
        with _saving(index, log):
            if not existing:
                index.save()  # nothing served yet: kb.json, written last, makes it a KB
            else:
                save_new_generation(out, index, meta)
    # Not loaded: the KB keeps the encoder it records (the one its vectors were made with).
    encoder_name = (
        str(meta.get("encoder") or index.encoder_name) if encoder is None else encoder.name
    )
    meta.update(
        {
            "format": 1,
            "model": meta.get("model") or recorded_model(model),
            "encoder": encoder_name,
            "dim": int(index.dim if encoder is None else encoder.dim),
            "sources": str(Path(sources).resolve()),
            "columns": columns.to_dict(),
            "entries": len(entries),
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    )
    renamed = _renamed(entries, old, old_sources, removed)
    if renamed:
        # Earlier renames follow this one (a -> b, then b -> c: a -> c).
        earlier = {a: renamed.get(b, b) for a, b in renamed_ids(out).items()}
        meta[RENAMED_KEY] = {**earlier, **renamed}
    stage_record(out, meta, record)
    from tunesmith_support.languages import read_language_config, with_languages

    config = with_languages(out, languages, meta) if languages else read_language_config(out, meta)
    if languages:
        # Staged and switched with the index: written after the switch, a kill between the
        # two left the new index with the old languages.
        stage_file(out, meta, "language", config.to_dict())
    # Built here once, not by every server at its start and reload (9 s at 100,000 entries).
    save_lexical(out, meta, _in_index_order(index, entries), config.languages)
    commit(out, meta)  # the commit point: the KB is the old one until here
    if existing:
        remove_unused(out)
    added = sum(1 for e in changed if e.id not in old)
    return IndexReport(
        added=added,
        updated=len(changed) - added + len(moved),
        removed=len(removed),
        unchanged=len(entries) - len(changed) - len(moved),
        entries=len(entries),
        encoder=encoder_name,
        skipped=skipped,
        renamed=renamed,
        files_read=record.read,
        files_unchanged=record.reused,
    )


def _in_index_order(index: Any, entries: list[Entry]) -> list[Entry]:
    """``entries`` in the order a load reads them (:func:`stored_entries`: the index's
    insertion order), from the index's ids alone; a re-index appends what it changed."""
    by_id = {e.id: e for e in entries}
    order = dict.fromkeys(vector_id.rsplit("::", 1)[0] for vector_id in index.ids())
    return [by_id[entry_id] for entry_id in order if entry_id in by_id]


#: From this many vectors a save is told to ``log`` (below it, it takes a second or two).
LOG_SAVE_FROM = 20_000


@contextmanager
def _saving(index: Any, log: Any) -> Iterator[None]:
    """Tell ``log`` that a large index is being saved, and how long it took: after the
    encoding bar, the first save of a 100,000-passage KB ran half a minute in silence
    (building its approximate index)."""
    count = len(index)
    if log is None or count < LOG_SAVE_FROM:
        yield
        return
    # The first save above the exact-search limit builds the approximate (IVF) index.
    builds = index.kind != "ivf" and count > index.exact_limit
    what = "; building its approximate index first (k-means, once)" if builds else ""
    log(f"saving the index: {count:,} vectors{what}")
    started = time.perf_counter()
    yield
    log(f"saved the index in {time.perf_counter() - started:.0f} s")


#: ``kb.json``'s record of entries that kept their content under a new id (old -> new).
RENAMED_KEY = "renamed_ids"


def _renamed(
    entries: list[Entry], old: dict[str, str], old_sources: dict[str, str], removed: list[str]
) -> dict[str, str]:
    """Old id -> new id of each removed entry whose content (and file) came back under exactly
    one new id: a heading id made by a newer rule (``garantie#gr-e`` -> ``garantie#größe``)."""
    gone: dict[tuple[str, str], list[str]] = {}
    for entry_id in removed:
        gone.setdefault((old[entry_id], old_sources.get(entry_id, "")), []).append(entry_id)
    came: dict[tuple[str, str], list[str]] = {}
    for e in entries:
        if e.id not in old:
            came.setdefault((e.content_hash, e.source), []).append(e.id)
    return {
        ids[0]: came[key][0]
        for key, ids in gone.items()
        if len(ids) == 1 and len(came.get(key, [])) == 1
    }


def renamed_ids(kb_dir: str | Path) -> dict[str, str]:
    """Old id -> new id of the KB's entries that a re-index gave new ids (``kb.json``), so that
    feedback and labelled files written before are read with the ids the KB has now."""
    path = Path(kb_dir) / META
    return renamed_in(read_json_object(path)) if path.exists() else {}


def renamed_in(meta: dict[str, Any]) -> dict[str, str]:
    """:func:`renamed_ids` from a ``kb.json`` already read (a server's loaded copy of the KB)."""
    recorded = meta.get(RENAMED_KEY)
    if not isinstance(recorded, dict):
        return {}
    return {str(a): str(b) for a, b in recorded.items() if isinstance(b, str)}


def new_encoder_dir(kb_dir: str | Path) -> Path:
    """A fresh folder name under ``KB/encoders/`` for a newly tuned encoder (not created)."""
    return Path(kb_dir) / ENCODERS_DIR / next_generation(kb_dir)


def _past_questions(index: Any, keep: set[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(vector id, text, payload)`` of the past questions an index holds for the entries in
    ``keep`` (`train --index-questions`; the index stores each text in its payload)."""
    found = []
    for vector_id, payload in index.items():
        if (
            payload.get("field") == PAST_QUESTION
            and payload.get("entry_id") in keep
            and payload.get("text")
        ):
            found.append((vector_id, str(payload["text"]), payload))
    return found


def reencode(
    kb_dir: str | Path, entries: list[Entry], encoder_dir: str | Path, *, device: str = "cpu"
) -> None:
    """Re-encode ``entries`` with the tuned encoder at ``encoder_dir`` (a folder made by
    :func:`new_encoder_dir`) into a new index folder, then point ``kb.json`` at both in one
    atomic write, then remove the folders nothing points at. A crash before that write leaves
    the KB on its old encoder and index; after it, on the new ones. ``device``: where it
    encodes. (`support train` commits this with its calibration: :func:`reencode_staged`.)"""
    meta = reencode_staged(kb_dir, read_meta(kb_dir), entries, encoder_dir, device=device)
    commit(kb_dir, meta)  # the commit point
    remove_unused(kb_dir)


def reencode_staged(
    kb_dir: str | Path,
    meta: dict[str, Any],
    entries: list[Entry],
    encoder_dir: str | Path,
    *,
    device: str = "cpu",
) -> dict[str, Any]:
    """:func:`reencode` up to its commit: the new index folder is written, and the returned
    copy of ``meta`` names it and the encoder; nothing served changes."""
    kb_dir = Path(kb_dir)
    encoder_dir = Path(encoder_dir)
    if encoder_dir.parent.resolve() != (kb_dir / ENCODERS_DIR).resolve():
        raise UserInputError(f"{encoder_dir}: a KB's tuned encoder belongs in {ENCODERS_DIR}/")
    meta = dict(meta)
    encoder = Encoder.load(encoder_dir, device=device)
    encoder.name = f"{IN_KB}{ENCODERS_DIR}/{encoder_dir.name}"
    past = _past_questions(VectorIndex.load(index_dir(kb_dir, meta)), {e.id for e in entries})
    new_index = kb_dir / f"index-{encoder_dir.name}"
    shutil.rmtree(new_index, ignore_errors=True)  # left by a crashed run: never pointed at
    index = VectorIndex.create(new_index, encoder=encoder)
    upsert_entries(index, entries)
    # Past questions indexed by an earlier `train --index-questions` are re-encoded too: the
    # entries alone would drop them without a word whenever the encoder is tuned again.
    for start in range(0, len(past), 512):
        chunk = past[start : start + 512]
        index.upsert(
            [c[0] for c in chunk], texts=[c[1] for c in chunk], payloads=[c[2] for c in chunk]
        )
    index.save()
    meta.update(
        {
            "model": encoder.name,
            "index": new_index.name,
            "encoder": encoder.name,
            "dim": int(encoder.dim),
        }
    )
    return meta


def remove_unused(kb_dir: str | Path) -> list[Path]:
    """Remove the index, encoder and classifier folders and calibration and languages files
    ``kb.json`` does not point at (left by an earlier run, or by one killed before its commit); returns what
    was removed."""
    kb_dir = Path(kb_dir)
    meta = read_meta(kb_dir)
    keep = {
        index_dir(kb_dir, meta).resolve(),
        Path(model_location(kb_dir, meta)).resolve(),
        classifier_path(kb_dir, meta).resolve(),
        calibration_path(kb_dir, meta).resolve(),
        language_path(kb_dir, meta).resolve(),
    }
    lexical = lexical_folder(kb_dir, meta)
    if lexical is not None:
        keep.add(lexical.resolve())
    record = record_path(kb_dir, meta)
    if record is not None:
        keep.add(record.resolve())
    candidates = [kb_dir / INDEX_DIR, kb_dir / ENCODER_DIR, kb_dir / (ENCODER_DIR + ".new")]
    candidates += [kb_dir / CLASSIFIER_DIR]
    candidates += [p for p in kb_dir.glob("*-g*") if _GENERATION.match(p.name)]
    candidates += record_files(kb_dir)
    if (kb_dir / ENCODERS_DIR).is_dir():
        candidates += list((kb_dir / ENCODERS_DIR).iterdir())
    removed = []
    for path in candidates:
        if path.exists() and path.resolve() not in keep:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed
