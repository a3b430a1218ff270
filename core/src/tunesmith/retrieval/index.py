"""VectorIndex: FAISS behind one small class, with stable string ids and a payload per id.

On disk an index is a directory of immutable generations and a pointer to the current one::

    my_index/
      CURRENT              "gen-000003" (replaced atomically by rename)
      gen-000003/
        meta.json          encoder name and precision (int8, float32), dim, metric, kind, count,
                           format and tunesmith version
        index.faiss        the FAISS index; its int64 ids are the rowids of the payload table
        payloads.sqlite    items(rid, id, payload): the string id and JSON payload of each vector

``save()`` writes a new generation into a temporary folder, renames it into place and only then
renames a new ``CURRENT`` over the old one, so a crash at any point leaves the previous
generation loadable and the directory is never half-written. While an index is open, its FAISS
index and payload table live in memory (the table in an in-memory SQLite database), so both are
always saved together, as one consistent snapshot.

Two kinds of FAISS index, chosen by size:

- ``flat`` (``IndexIDMap2(IndexFlatIP)``): exact search, used up to :data:`EXACT_LIMIT` vectors.
- ``ivf`` (``IndexIVFFlat``, inner product, with a hashtable direct map): approximate search
  above it. IVF removes and adds single vectors in place, so add, upsert and delete never need a
  rebuild (unlike HNSW, which cannot remove). ``nprobe`` is tuned when the index is built: the
  smallest value whose recall@10 against exact search reaches :data:`TUNE_RECALL` on a sample
  of stored vectors. The coarse centroids are retrained on ``save()``/``optimize()`` once the
  index has grown or shrunk 4x since they were trained.

Search is top-k by inner product (cosine for normalised vectors). ``where`` filters on payload
fields by equality (a list means "any of"); the filter becomes a FAISS ``IDSelector``, and for
IVF ``nprobe`` grows until k matches are found or every list was searched, so a filter never
loses results that exist. Values compare as SQLite's ``json_extract`` returns them: ``true``
equals 1, and ``None`` matches a missing or null field.

Batched exact search, k-means and list assignment multiply matrices with numpy's BLAS (see
:func:`top_k_inner_product`); single queries and IVF searches run in FAISS.

Thread safety: any number of concurrent searches; add/upsert/delete/save/optimize take an
exclusive lock (a readers-writer lock, writers first). Between processes, saves of one directory
take turns (an ``flock`` on the folder), and a save based on a generation that another process
has since replaced is refused rather than dropping that process's changes; a load that races a
save reads the new generation.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import re
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tunesmith import __version__
from tunesmith.data.limits import lone_surrogate
from tunesmith.engine.threads import busy_share_now, machine_is_busy, physical_cores
from tunesmith.errors import DataError, UserInputError
from tunesmith.io import atomic_write_json, atomic_write_text, publish_mode, read_json_object

#: Up to this many vectors the index is exact (flat); above it ``save()``/``optimize()`` switch
#: to IVF. Exact search over 60,000 x 384 float32 took 7 ms per single query on one core here.
EXACT_LIMIT = 50_000
#: IVF turns back into flat only below half the limit, so a size near the limit does not flap.
_FLAT_AGAIN_SHARE = 0.5
#: recall@10 against exact search that the tuned ``nprobe`` must reach on stored vectors.
TUNE_RECALL = 0.97
#: Stored vectors used as queries when tuning ``nprobe``.
_TUNE_QUERIES = 256
#: Retrain the IVF centroids when the count moved this factor from the trained count.
_RETRAIN_FACTOR = 4.0
#: Training points per IVF list (FAISS warns below 39).
_TRAIN_PER_LIST = 50
FORMAT_VERSION = 1
METRIC = "inner_product"

_POINTER = "CURRENT"
#: Reads of CURRENT when a concurrent save removed the generation being loaded.
_LOAD_ATTEMPTS = 5
_GEN_RE = re.compile(r"^gen-(\d{6,})$")
_SQL_CHUNK = 500
_SQLITE_INT_MIN, _SQLITE_INT_MAX = -(2**63), 2**63 - 1
_WHERE_CACHE_SIZE = 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    rid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class EncoderLike(Protocol):
    """What the index needs of an encoder (``tunesmith.retrieval.Encoder`` fits)."""

    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray: ...


def _precision_of(encoder: EncoderLike | None) -> str | None:
    """``"int8"`` or ``"float32"`` for an encoder that says whether it is quantised
    (``Encoder.quantized``); ``None`` for one that does not."""
    quantized = getattr(encoder, "quantized", None)
    if not isinstance(quantized, bool):
        return None
    return "int8" if quantized else "float32"


@dataclass(frozen=True)
class Hit:
    """One search result: the string id, its inner-product score and its payload."""

    id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


_faiss_module: Any = None
#: Searches of fewer queries than this run on one OpenMP thread (see :func:`_use_threads`).
_PARALLEL_MIN_QUERIES = 8
#: From this many queries a search goes through numpy's BLAS (see top_k_inner_product); a
#: single query is faster on FAISS's own SIMD loop (50,000 x 384: 59 against 25 queries/s).
_BLAS_MIN_QUERIES = 8
#: Tiles of the numpy searches: queries x stored vectors, and floats per assignment block.
_QUERY_TILE = 256
_BASE_TILE = 32_768
_SCORE_CHUNK = 16 * 1024 * 1024


def _faiss() -> Any:
    """faiss, imported on first use.

    As ``tunesmith.engine.threads`` does for torch, OpenMP's passive wait policy is chosen when
    other processes already keep the cores busy (and the user set none): spinning threads that
    wait for a descheduled sibling are ruinous on a shared machine. It must be set before
    faiss's OpenMP runtime loads, hence here.
    """
    global _faiss_module
    if _faiss_module is None:
        if not os.environ.get("OMP_WAIT_POLICY", "").strip():
            share = busy_share_now(0.05)
            if share is not None and machine_is_busy(share * physical_cores(), physical_cores()):
                os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        import faiss

        _faiss_module = faiss
    return _faiss_module


def max_threads() -> int:
    """FAISS threads for big work: ``TUNESMITH_FAISS_THREADS``, else one per physical core."""
    wanted = os.environ.get("TUNESMITH_FAISS_THREADS", "").strip()
    if wanted:
        try:
            return max(1, int(wanted))
        except ValueError:
            raise UserInputError(
                f"TUNESMITH_FAISS_THREADS must be a whole number, not {wanted!r}"
            ) from None

    return physical_cores()


def _use_threads(n_queries: int | None = None) -> None:
    """Set the OpenMP threads of the calling thread for the next FAISS call.

    OpenMP keeps this setting per thread, so each server thread sets its own. A few queries
    run on one thread: FAISS splits a search over queries, and a team of threads only adds
    start-up and, on a busy machine, waiting (one query over 60,000 vectors on our loaded
    2-core machine: 7 ms on one thread, 48 ms on two).
    """
    small = n_queries is not None and n_queries < _PARALLEL_MIN_QUERIES
    _faiss().omp_set_num_threads(1 if small else max_threads())


class _RWLock:
    """Many readers or one writer; a waiting writer blocks new readers (no writer starvation)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class VectorIndex:
    """A FAISS index with stable string ids and a JSON payload per id, saved atomically.

    Build one with :meth:`create`, open one with :meth:`load`. Nothing is written to disk
    before :meth:`save`.
    """

    def __init__(
        self,
        path: Path,
        *,
        dim: int,
        encoder_name: str,
        encoder: EncoderLike | None,
        exact_limit: int,
        faiss_index: Any,
        kind: str,
        db: sqlite3.Connection,
        ivf_info: dict[str, int] | None = None,
        generation: int = 0,
        encoder_precision: str | None = None,
    ) -> None:
        self.path = path
        self.dim = dim
        self.encoder_name = encoder_name
        #: ``"int8"`` or ``"float32"``: how the encoder that made the vectors ran (``None`` when
        #: not known: vectors given by the caller, or an index saved before it was recorded).
        self.encoder_precision = encoder_precision
        self.encoder = encoder
        self.exact_limit = exact_limit
        self._index = faiss_index
        self._kind = kind
        self._db = db
        self._ivf = dict(ivf_info or {})
        self._generation = generation
        self._rw = _RWLock()
        # One SQLite connection shared by threads: its calls are serialised by this mutex.
        self._db_lock = threading.Lock()
        # where-filter -> (matching rids, their FAISS selector); cleared by every write.
        self._where_cache: dict[str, tuple[np.ndarray, Any]] = {}

    # ------------------------------------------------------------------ construction

    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        encoder: EncoderLike | None = None,
        dim: int | None = None,
        encoder_name: str | None = None,
        exact_limit: int = EXACT_LIMIT,
        force: bool = False,
    ) -> VectorIndex:
        """A new, empty index that will be saved at ``path``.

        Give an ``encoder`` (its ``name``, ``dim`` and precision, int8 or float32, are recorded,
        and texts are encoded with it), or ``dim`` and ``encoder_name`` for vectors you encode
        yourself. An existing index
        at ``path`` is an error unless ``force``; it is replaced only on :meth:`save`.
        """
        path = Path(path)
        if encoder is not None:
            if dim is not None and dim != encoder.dim:
                raise UserInputError(
                    f"dim={dim} differs from encoder '{encoder.name}' dim {encoder.dim}"
                )
            dim, encoder_name = int(encoder.dim), str(encoder.name)
        if dim is None or encoder_name is None:
            raise UserInputError(
                "VectorIndex.create needs an encoder, or both dim and encoder_name"
            )
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim <= 0:
            raise UserInputError(f"dim must be a positive integer, got {dim!r}")
        if exact_limit < 1:
            raise UserInputError(f"exact_limit must be at least 1, got {exact_limit}")
        if not force and (path / _POINTER).exists():
            raise UserInputError(
                f"{path} is an index already; load it, or pass force=True to replace it"
            )
        if path.exists() and not path.is_dir():
            raise UserInputError(f"cannot create an index at {path}: it is a file, not a folder")
        faiss = _faiss()
        return cls(
            path,
            dim=int(dim),
            encoder_name=encoder_name,
            encoder=encoder,
            exact_limit=exact_limit,
            faiss_index=faiss.IndexIDMap2(faiss.IndexFlatIP(int(dim))),
            kind="flat",
            db=_new_db(),
            # With force, the index on disk is replaced on purpose: saving over it is no loss.
            generation=_current_generation(path),
            encoder_precision=_precision_of(encoder),
        )

    @classmethod
    def exists(cls, path: str | Path) -> bool:
        """Whether a saved index is at ``path``."""
        return (Path(path) / _POINTER).is_file()

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        encoder: EncoderLike | None = None,
        exact_limit: int | None = None,
    ) -> VectorIndex:
        """Open the index saved at ``path``.

        With an ``encoder`` its name and dim must be those the index was built with (else one
        :class:`UserInputError` naming the index and both encoders), and so must its precision
        (``Encoder.load(..., quantize="int8")`` or not) when the index recorded it. A missing or damaged index
        is a :class:`UserInputError`/:class:`DataError` naming the path.
        """
        path = Path(path)
        pointer = path / _POINTER
        if not pointer.is_file():
            raise UserInputError(f"no vector index at {path} (no {_POINTER} file)")
        gen_name = _read_pointer(pointer)
        # A save in another process may replace the generation (and remove this one) while it
        # is read: then CURRENT names a newer one, which is read instead.
        for _ in range(_LOAD_ATTEMPTS):
            try:
                return cls._load_generation(path, gen_name, encoder, exact_limit)
            except DataError:
                newer = _read_pointer(pointer) if pointer.is_file() else gen_name
                if newer == gen_name:
                    raise
                gen_name = newer
        return cls._load_generation(path, gen_name, encoder, exact_limit)

    @classmethod
    def _load_generation(
        cls,
        path: Path,
        gen_name: str,
        encoder: EncoderLike | None,
        exact_limit: int | None,
    ) -> VectorIndex:
        match = _GEN_RE.match(gen_name)
        gen_dir = path / gen_name
        if not match or not gen_dir.is_dir():
            raise DataError(f"points to a missing generation '{gen_name}'", path=path / _POINTER)
        meta = read_json_object(gen_dir / "meta.json")  # None too when a save just removed it
        if meta is None:
            raise DataError("missing meta.json", path=gen_dir)
        try:
            dim, name, kind, count = (
                int(meta["dim"]),
                str(meta["encoder"]),
                str(meta["kind"]),
                int(meta["count"]),
            )
            fmt = int(meta.get("format", 1))
            precision = meta.get("encoder_precision")
            precision = None if precision is None else str(precision)
            saved_limit = int(meta.get("exact_limit", EXACT_LIMIT))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"meta.json lacks a valid field ({exc})", path=gen_dir / "meta.json"
            ) from None
        if fmt > FORMAT_VERSION:
            raise UserInputError(
                f"index {path} has format {fmt}; this tunesmith reads up to {FORMAT_VERSION}: upgrade tunesmith"
            )
        if encoder is not None and (str(encoder.name) != name or int(encoder.dim) != dim):
            raise UserInputError(
                f"index {path} was built with encoder '{name}' (dim {dim}), not '{encoder.name}' "
                f"(dim {encoder.dim}): load it with that encoder or rebuild the index"
            )
        given = _precision_of(encoder)
        if precision is not None and given is not None and given != precision:
            # Same weights, other arithmetic: the query vectors would not be the stored ones'.
            quantize = "quantize='int8'" if precision == "int8" else "no quantize"
            raise UserInputError(
                f"index {path} holds {precision} vectors of encoder '{name}', and the encoder "
                f"given runs in {given}: load the encoder with {quantize}, or rebuild the index"
            )
        faiss = _faiss()
        try:
            index = faiss.read_index(str(gen_dir / "index.faiss"))
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
            raise DataError(
                f"cannot read the FAISS index ({first})", path=gen_dir / "index.faiss"
            ) from None
        db = _load_db(gen_dir / "payloads.sqlite")
        rows = db.execute("SELECT COUNT(*) FROM items").fetchone()[0]
        if index.ntotal != count or rows != count or index.d != dim:
            raise DataError(
                f"damaged index: meta says {count} vectors of dim {dim}, FAISS holds "
                f"{index.ntotal} of dim {index.d}, the payload table {rows}",
                path=gen_dir,
            )
        ivf = {k: int(meta[k]) for k in ("nlist", "nprobe", "trained_count") if k in meta}
        if kind not in ("flat", "ivf") or (kind == "ivf" and len(ivf) != 3):
            raise DataError(
                f"meta.json: unknown kind '{kind}' or IVF settings missing", path=gen_dir
            )
        return cls(
            path,
            dim=dim,
            encoder_name=name,
            encoder=encoder,
            exact_limit=int(exact_limit if exact_limit is not None else saved_limit),
            faiss_index=index,
            kind=kind,
            db=db,
            ivf_info=ivf,
            generation=int(match.group(1)),
            encoder_precision=precision,
        )

    # ------------------------------------------------------------------ reading

    @property
    def kind(self) -> str:
        """``"flat"`` (exact) or ``"ivf"`` (approximate)."""
        return self._kind

    @property
    def nprobe(self) -> int | None:
        """IVF lists searched per query (tuned on build); ``None`` for a flat index."""
        return self._ivf.get("nprobe") if self._kind == "ivf" else None

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        if self._kind != "ivf":
            raise UserInputError(f"index {self.path} is {self._kind}: nprobe applies to ivf only")
        with self._rw.write():
            self._ivf["nprobe"] = max(1, min(int(value), self._ivf["nlist"]))

    @property
    def nlist(self) -> int | None:
        """Number of IVF lists; ``None`` for a flat index."""
        return self._ivf.get("nlist") if self._kind == "ivf" else None

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def __contains__(self, item_id: object) -> bool:
        if not _storable(item_id):
            return False
        with self._rw.read(), self._db_lock:
            return (
                self._db.execute("SELECT 1 FROM items WHERE id = ?", (item_id,)).fetchone()
                is not None
            )

    def get(self, item_id: str) -> dict[str, Any] | None:
        """The payload stored for ``item_id`` (``None`` when absent)."""
        if not _storable(item_id):
            return None
        with self._rw.read(), self._db_lock:
            row = self._db.execute("SELECT payload FROM items WHERE id = ?", (item_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def vector(self, item_id: str) -> np.ndarray | None:
        """The stored vector of ``item_id`` (``None`` when absent), e.g. to find similar items."""
        if not _storable(item_id):
            return None
        with self._rw.read():
            with self._db_lock:
                row = self._db.execute("SELECT rid FROM items WHERE id = ?", (item_id,)).fetchone()
            return (
                None
                if row is None
                else np.asarray(self._index.reconstruct(int(row[0])), dtype=np.float32)
            )

    def ids(self) -> list[str]:
        """Every id, in insertion order."""
        with self._rw.read(), self._db_lock:
            return [r[0] for r in self._db.execute("SELECT id FROM items ORDER BY rid")]

    def __repr__(self) -> str:
        return f"VectorIndex({str(self.path)!r}, kind={self._kind}, count={len(self)}, encoder={self.encoder_name!r})"

    # ------------------------------------------------------------------ writing

    def add(
        self,
        ids: Sequence[str],
        texts: Sequence[str] | None = None,
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        vectors: np.ndarray | None = None,
    ) -> None:
        """Add new items; an id already in the index is an error (use :meth:`upsert`)."""
        self._write(ids, texts, payloads, vectors, replace=False)

    def upsert(
        self,
        ids: Sequence[str],
        texts: Sequence[str] | None = None,
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        vectors: np.ndarray | None = None,
    ) -> None:
        """Add items or replace existing ones (vector and payload), without a rebuild.

        ``texts`` are encoded with the attached encoder unless ``vectors`` (float32
        ``[len(ids), dim]``) are given. A payload is a JSON-serialisable dict; when a text is
        given it is stored in the payload as ``"text"`` unless the payload has that key.
        """
        self._write(ids, texts, payloads, vectors, replace=True)

    def delete(self, ids: Iterable[str]) -> int:
        """Remove these ids (absent ones are ignored); returns how many were removed."""
        if isinstance(ids, str):
            raise UserInputError("delete takes a list of ids, not one string")
        wanted = list(dict.fromkeys(ids))
        with self._rw.write():
            found = self._rids_of(wanted)
            if not found:
                return 0
            rids = np.fromiter(found.values(), dtype=np.int64, count=len(found))
            with self._db_lock, self._db:
                self._db.executemany("DELETE FROM items WHERE rid = ?", [(int(r),) for r in rids])
                self._index.remove_ids(rids)
            self._where_cache.clear()
            return len(found)

    def _write(
        self,
        ids: Sequence[str],
        texts: Sequence[str] | None,
        payloads: Sequence[Mapping[str, Any] | None] | None,
        vectors: np.ndarray | None,
        *,
        replace: bool,
    ) -> None:
        ids = _check_ids(ids)
        n = len(ids)
        if texts is not None:
            if isinstance(texts, str):
                raise UserInputError("texts must be a list of strings, not one string")
            texts = list(texts)
            if len(texts) != n:
                raise UserInputError(f"{len(texts)} texts for {n} ids")
        if payloads is not None:
            payloads = list(payloads)
            if len(payloads) != n:
                raise UserInputError(f"{len(payloads)} payloads for {n} ids")
        if vectors is None:
            if texts is None:
                raise UserInputError("give texts (encoded by the index's encoder) or vectors=")
            vectors = self._encode(texts)
        vectors = self._check_matrix(vectors, rows=n, what="vectors")
        rows_json = [
            _payload_json(ids[i], payloads[i] if payloads else None, texts[i] if texts else None)
            for i in range(n)
        ]
        if n == 0:
            return
        _use_threads(n)  # IVF assigns new vectors to lists by a search over the centroids
        with self._rw.write():
            existing = self._rids_of(ids)
            if existing and not replace:
                shown = ", ".join(repr(i) for i in list(existing)[:5])
                more = f" and {len(existing) - 5} more" if len(existing) > 5 else ""
                raise UserInputError(
                    f"ids already in index {self.path}: {shown}{more} (use upsert to replace)"
                )
            with self._db_lock:
                start = self._next_rid()
                rids = np.arange(start, start + n, dtype=np.int64)
                try:
                    # One SQLite transaction: rolled back if FAISS fails, so the table never
                    # names vectors the index lacks.
                    with self._db:
                        if existing:
                            old = np.fromiter(
                                existing.values(), dtype=np.int64, count=len(existing)
                            )
                            self._db.executemany(
                                "DELETE FROM items WHERE rid = ?", [(int(r),) for r in old]
                            )
                        self._db.executemany(
                            "INSERT INTO items (rid, id, payload) VALUES (?, ?, ?)",
                            zip(rids.tolist(), ids, rows_json, strict=True),
                        )
                        self._db.execute(
                            "INSERT OR REPLACE INTO state (key, value) VALUES ('next_rid', ?)",
                            (start + n,),
                        )
                        if existing:
                            self._index.remove_ids(old)
                        if self._kind == "ivf":
                            _ivf_add(self._index, vectors, rids)
                        else:
                            self._index.add_with_ids(vectors, rids)
                finally:
                    self._where_cache.clear()

    # ------------------------------------------------------------------ search

    def search(
        self, query: str | np.ndarray, k: int = 10, where: Mapping[str, Any] | None = None
    ) -> list[Hit]:
        """The ``k`` best items for one query (a text or a 1-d vector), best first."""
        if isinstance(query, str):
            return self.search_batch([query], k=k, where=where)[0]
        vec = np.asarray(query)
        if vec.ndim != 1:
            raise UserInputError(f"search takes one text or a 1-d vector, got shape {vec.shape}")
        return self.search_batch(vec[None, :], k=k, where=where)[0]

    def search_batch(
        self,
        queries: Sequence[str] | np.ndarray,
        k: int = 10,
        where: Mapping[str, Any] | None = None,
    ) -> list[list[Hit]]:
        """The ``k`` best items for each query (texts or a 2-d array), best first.

        ``where={"field": value}`` keeps items whose payload field equals the value (a list or
        tuple means any of them; several fields must all match). Fewer than ``k`` hits come back
        only when fewer items match.
        """
        matrix = self._query_matrix(queries, k)
        if len(matrix) == 0:
            return []
        with self._rw.read():
            allowed, sel = self._allowed(where) if where else (None, None)
            scores, rids = self._search_rids(matrix, k, allowed, sel)
            return self._hits(scores, rids)

    def search_ids(
        self, query: str | np.ndarray, k: int = 10, where: Mapping[str, Any] | None = None
    ) -> tuple[list[str], np.ndarray]:
        """Like :meth:`search` for one query, but only (ids, scores), best first.

        No payload JSON is read or parsed, so a caller that keeps its own item data (a
        re-ranker looking candidates up by id) skips the payload cost of every hit.
        """
        if isinstance(query, str):
            matrix = self._query_matrix([query], k)
        else:
            vec = np.asarray(query)
            if vec.ndim != 1:
                raise UserInputError(
                    f"search takes one text or a 1-d vector, got shape {vec.shape}"
                )
            matrix = self._query_matrix(vec[None, :], k)
        with self._rw.read():
            allowed, sel = self._allowed(where) if where else (None, None)
            scores, rids = self._search_rids(matrix, k, allowed, sel)
            names = self._ids_of_rids([r for r in rids[0].tolist() if r >= 0])
            keep = [i for i, r in enumerate(rids[0].tolist()) if r in names]
            return [names[int(rids[0][i])] for i in keep], scores[0][keep].astype(np.float32)

    def _query_matrix(self, queries: Sequence[str] | np.ndarray, k: int) -> np.ndarray:
        """Check ``k`` and turn texts or vectors into a checked query matrix."""
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise UserInputError(f"k must be a positive integer, got {k!r}")
        if isinstance(queries, np.ndarray):
            return self._check_matrix(queries, rows=None, what="queries")
        if isinstance(queries, str):  # else each character would be searched as a query
            raise UserInputError("search_batch takes a list of texts; use search for one text")
        texts = list(queries)
        if not all(isinstance(t, str) for t in texts):
            raise UserInputError("queries must be texts or a 2-d array of vectors")
        if not texts:  # nothing to encode: no encoder needed
            return np.empty((0, self.dim), dtype=np.float32)
        return self._check_matrix(self._encode(texts), rows=len(texts), what="encoded queries")

    def _ids_of_rids(self, rids: Sequence[int]) -> dict[int, str]:
        """The string id of each stored rowid (rowids no longer stored are left out)."""
        wanted = sorted(set(rids))
        out: dict[int, str] = {}
        with self._db_lock:
            for start in range(0, len(wanted), _SQL_CHUNK):
                chunk = wanted[start : start + _SQL_CHUNK]
                sql = f"SELECT rid, id FROM items WHERE rid IN ({', '.join('?' * len(chunk))})"
                out.update(self._db.execute(sql, chunk))
        return out

    def _search_rids(
        self, matrix: np.ndarray, k: int, allowed: np.ndarray | None, sel: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        _use_threads(len(matrix))
        total = len(self) if allowed is None else len(allowed)
        k_eff = min(int(k), total)
        if k_eff == 0:
            empty = np.empty((len(matrix), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        batched = len(matrix) >= _BLAS_MIN_QUERIES
        if self._kind == "flat":
            if sel is None and batched:
                flat = faiss.downcast_index(self._index.index)
                scores, positions = top_k_inner_product(matrix, _flat_vectors(flat), k_eff)
                return scores, faiss.vector_to_array(self._index.id_map)[positions]
            params = faiss.SearchParameters(sel=sel) if sel is not None else None
            return self._index.search(matrix, k_eff, params=params)
        nlist = self._ivf["nlist"]
        nprobe = self._ivf["nprobe"]
        while True:
            params = (
                faiss.SearchParametersIVF(nprobe=nprobe, sel=sel)
                if sel is not None
                else faiss.SearchParametersIVF(nprobe=nprobe)
            )
            # FAISS's own coarse search here: for IVF batches it was 2.5x faster than lists
            # chosen by numpy and passed to search_preassigned (small products, more overhead).
            scores, rids = self._index.search(matrix, k_eff, params=params)
            # The probed lists may hold fewer than k (matching) vectors: search more lists,
            # up to all of them, which is exact.
            if nprobe >= nlist or bool((rids[:, -1] >= 0).all()):
                return scores, rids
            nprobe = min(nlist, nprobe * 4)

    def _allowed(self, where: Mapping[str, Any]) -> tuple[np.ndarray, Any]:
        """Sorted rids whose payload matches ``where`` and their FAISS selector (cached)."""
        fields = _where_fields(where)
        # Keyed by the checked values, not by how ``where`` prints: the string "3" and
        # numpy's 3, or the set {1, 3} and the string "{1, 3}", are different filters.
        key = json.dumps(fields)
        with self._db_lock:
            cached = self._where_cache.get(key)
        if cached is not None:
            return cached
        clauses, params = [], []
        for name, values in fields:
            path = f'$."{name}"'
            parts = []
            plain = [v for v in values if v is not None]
            if plain:
                parts.append(f"json_extract(payload, ?) IN ({', '.join('?' * len(plain))})")
                params.extend([path, *plain])
            if len(plain) != len(values):
                parts.append("json_extract(payload, ?) IS NULL")
                params.append(path)
            clauses.append("(" + " OR ".join(parts) + ")" if parts else "0")
        sql = "SELECT rid FROM items WHERE " + " AND ".join(clauses) + " ORDER BY rid"
        with self._db_lock:
            rids = np.fromiter((r[0] for r in self._db.execute(sql, params)), dtype=np.int64)
            entry = (rids, _faiss().IDSelectorBatch(rids))
            if len(self._where_cache) >= _WHERE_CACHE_SIZE:
                self._where_cache.pop(next(iter(self._where_cache)))
            self._where_cache[key] = entry
        return entry

    def _hits(self, scores: np.ndarray, rids: np.ndarray) -> list[list[Hit]]:
        wanted = sorted({int(r) for r in rids.ravel() if r >= 0})
        rows: dict[int, tuple[str, str]] = {}
        with self._db_lock:
            for start in range(0, len(wanted), _SQL_CHUNK):
                chunk = wanted[start : start + _SQL_CHUNK]
                sql = f"SELECT rid, id, payload FROM items WHERE rid IN ({', '.join('?' * len(chunk))})"
                for rid, item_id, payload in self._db.execute(sql, chunk):
                    rows[rid] = (item_id, payload)
        out = []
        for row_scores, row_rids in zip(scores, rids, strict=True):
            hits = []
            for score, rid in zip(row_scores.tolist(), row_rids.tolist(), strict=True):
                if rid < 0 or rid not in rows:
                    continue
                item_id, payload = rows[rid]
                hits.append(Hit(item_id, float(score), json.loads(payload)))
            out.append(hits)
        return out

    # ------------------------------------------------------------------ kind and save

    def optimize(self) -> str:
        """Switch to the kind the size calls for (flat up to ``exact_limit``, IVF above it).

        An IVF index is also rebuilt when its count moved 4x from the count its centroids were
        trained on. Returns the kind. ``save()`` calls this first.
        """
        with self._rw.write():
            self._optimize_locked()
            return self._kind

    def _optimize_locked(self) -> None:
        n = len(self)
        if self._kind == "flat":
            if n > self.exact_limit:
                self._rebuild("ivf")
            return
        trained = max(1, self._ivf.get("trained_count", n))
        if n < self.exact_limit * _FLAT_AGAIN_SHARE:
            self._rebuild("flat")
        elif n > trained * _RETRAIN_FACTOR or n * _RETRAIN_FACTOR < trained:
            self._rebuild("ivf")

    def _rebuild(self, kind: str) -> None:
        faiss = _faiss()
        _use_threads()
        rids, vectors = self._all_vectors()
        if kind == "flat":
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
            index.add_with_ids(vectors, rids)
            self._index, self._kind, self._ivf = index, "flat", {}
            return
        index, info = build_ivf(vectors, rids, self.dim)
        self._index, self._kind, self._ivf = index, "ivf", info

    def _all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (rid, vector) in the index, read straight from FAISS's storage.

        For a flat index the vectors are a view of its storage, not a copy (1.5 GB at 1M x
        384), valid while that index lives; the rebuild replaces it only when done.
        """
        faiss = _faiss()
        n = len(self)
        if n == 0:
            return np.empty(0, np.int64), np.empty((0, self.dim), np.float32)
        if self._kind == "flat":
            rids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
            return rids, _flat_vectors(faiss.downcast_index(self._index.index))
        invlists = self._index.invlists
        rids = np.empty(n, dtype=np.int64)
        vectors = np.empty((n, self.dim), dtype=np.float32)
        at = 0
        for lst in range(invlists.nlist):
            size = invlists.list_size(lst)
            if not size:
                continue
            rids[at : at + size] = faiss.rev_swig_ptr(invlists.get_ids(lst), size)
            codes = faiss.rev_swig_ptr(invlists.get_codes(lst), size * self.dim * 4)
            vectors[at : at + size] = codes.view(np.float32).reshape(size, self.dim)
            at += size
        return rids, vectors

    def save(self) -> Path:
        """Write the index to its directory atomically (new generation, then pointer rename).

        Switches kind first when the size calls for it (see :meth:`optimize`). If saving fails
        midway, the previously saved index stays the one that loads. A :class:`UserInputError`
        when another process saved this directory after this copy was loaded or created.
        """
        with self._rw.write():
            self._optimize_locked()
            _make_index_dir(self.path)
            # Two processes saving one directory would remove each other's generations and
            # temp folders: saves take turns, and one based on an outdated generation stops.
            with _directory_lock(self.path):
                self._check_not_overtaken()
                return self._save_locked()

    def _check_not_overtaken(self) -> None:
        """Refuse to save over a generation another process saved after this one was read:
        that would silently drop its changes."""
        current = _current_generation(self.path)
        if current and current != self._generation:
            raise UserInputError(
                f"index {self.path} was saved by another process (generation {current}) "
                f"after this copy was loaded (generation {self._generation}); saving would "
                "drop those changes: load it again and redo yours"
            )

    def _save_locked(self) -> Path:
        """Write a new generation and point CURRENT at it (the directory lock is held)."""
        faiss = _faiss()
        generation = max(self._generation, _latest_generation(self.path)) + 1
        name = f"gen-{generation:06d}"
        tmp = Path(tempfile.mkdtemp(dir=self.path, prefix=f".{name}.", suffix=".tmp"))
        try:
            publish_mode(tmp, self.path / name, directory=True)
            faiss.write_index(self._index, str(tmp / "index.faiss"))
            with self._db_lock:
                target = sqlite3.connect(tmp / "payloads.sqlite")
                try:
                    self._db.backup(target)
                finally:
                    target.close()
            atomic_write_json(tmp / "meta.json", self._meta())
            _fsync_dir(tmp)
            os.replace(tmp, self.path / name)
            _fsync_dir(self.path)
            atomic_write_text(self.path / _POINTER, name + "\n")
            _fsync_dir(self.path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._generation = generation
        _remove_old_generations(self.path, keep=name)
        return self.path

    def _meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "tunesmith_version": __version__,
            "encoder": self.encoder_name,
            "dim": self.dim,
            "metric": METRIC,
            "kind": self._kind,
            "count": len(self),
            "exact_limit": self.exact_limit,
        }
        if self.encoder_precision is not None:
            meta["encoder_precision"] = self.encoder_precision
        if self._kind == "ivf":
            meta.update(self._ivf)
        return meta

    # ------------------------------------------------------------------ helpers

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self.encoder is None:
            raise UserInputError(
                f"index {self.path} has no encoder attached: pass encoder= to create/load, or give vectors"
            )
        if not all(isinstance(t, str) for t in texts):
            raise UserInputError("texts must be strings")
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.asarray(self.encoder.encode(texts), dtype=np.float32)

    def _check_matrix(self, matrix: Any, *, rows: int | None, what: str) -> np.ndarray:
        matrix = np.asarray(matrix)
        # Complex values would lose their imaginary part and strings fail deep in numpy.
        if matrix.dtype.kind not in "biuf":
            raise UserInputError(f"{what} must be real numbers, got dtype {matrix.dtype}")
        if matrix.ndim != 2 or matrix.shape[1] != self.dim:
            raise UserInputError(
                f"{what} must have shape [n, {self.dim}], got {list(matrix.shape)}"
            )
        if rows is not None and len(matrix) != rows:
            raise UserInputError(f"{len(matrix)} {what} for {rows} ids")
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        if not np.isfinite(matrix).all():
            raise UserInputError(f"{what} contain NaN or infinite values")
        return matrix

    def _rids_of(self, ids: list[str]) -> dict[str, int]:
        # An id SQLite cannot hold (not a string, a lone surrogate) is in no index.
        ids = [i for i in ids if _storable(i)]
        found: dict[str, int] = {}
        with self._db_lock:
            for start in range(0, len(ids), _SQL_CHUNK):
                chunk = ids[start : start + _SQL_CHUNK]
                sql = f"SELECT id, rid FROM items WHERE id IN ({', '.join('?' * len(chunk))})"
                found.update(self._db.execute(sql, chunk).fetchall())
        return found

    def _next_rid(self) -> int:
        # rids are never reused, so a stale rid can never name another item.
        row = self._db.execute("SELECT value FROM state WHERE key = 'next_rid'").fetchone()
        return int(row[0]) if row else 1


def build_ivf(
    vectors: np.ndarray, rids: np.ndarray, dim: int, *, seed: int = 0
) -> tuple[Any, dict[str, int]]:
    """An ``IndexIVFFlat`` (inner product) over ``vectors`` with ``nprobe`` tuned for recall.

    nlist is about 4 sqrt(n) rounded down to a power of two (at most n / 39 so k-means has
    enough points); the centroids come from spherical k-means (10 rounds) on up to 50 points
    per list. ``nprobe`` is the smallest value whose recall@10 against exact search reaches
    :data:`TUNE_RECALL` on stored vectors used as queries (their own id left out).
    """
    faiss = _faiss()
    n = len(vectors)
    nlist = 2 ** int(math.log2(max(1.0, 4 * math.sqrt(n))))
    nlist = max(1, min(nlist, 65536, n // 39 or 1))
    rng = np.random.default_rng(seed)
    sample = vectors
    if n > nlist * _TRAIN_PER_LIST:
        sample = vectors[np.sort(rng.choice(n, nlist * _TRAIN_PER_LIST, replace=False))]
    centroids = spherical_kmeans(sample, nlist, rng=rng)
    quantizer = faiss.IndexFlatIP(dim)
    quantizer.add(centroids)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quantizer.this.disown()  # the IVF index frees its quantizer now
    # A hashtable direct map lets remove_ids and reconstruct work on single ids in place.
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    _ivf_add(index, vectors, rids)
    nprobe = tune_nprobe(index, vectors, rids, rng=rng)
    return index, {"nlist": nlist, "nprobe": nprobe, "trained_count": n}


def tune_nprobe(
    index: Any, vectors: np.ndarray, rids: np.ndarray, *, rng: np.random.Generator, k: int = 10
) -> int:
    """The smallest nprobe with recall@k >= TUNE_RECALL on sampled stored vectors."""
    faiss = _faiss()
    n = len(vectors)
    if n <= k + 1:
        return index.nlist
    picks = rng.choice(n, min(_TUNE_QUERIES, n), replace=False)
    queries = np.ascontiguousarray(vectors[picks])
    _, truth_pos = top_k_inner_product(queries, vectors, k + 1)
    truth = [set(rids[row[row != p]][:k].tolist()) for row, p in zip(truth_pos, picks, strict=True)]
    own = rids[picks]
    candidates = sorted(
        {1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512} | {index.nlist}
    )
    for nprobe in (c for c in candidates if c <= index.nlist):
        _, found = index.search(queries, k + 1, params=faiss.SearchParametersIVF(nprobe=nprobe))
        hits = sum(
            len(t & set(row[row != o][:k].tolist()))
            for t, row, o in zip(truth, found, own, strict=True)
        )
        if hits / sum(len(t) for t in truth) >= TUNE_RECALL:
            return nprobe
    return index.nlist


# Matrix products run on numpy's BLAS, not FAISS's: the BLAS bundled with faiss-cpu 1.15 was
# 3-7x slower here (100 queries over 100,000 x 384: FAISS 14-22 queries/s, numpy 103-151).


def top_k_inner_product(
    queries: np.ndarray, base: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` rows of ``base`` by inner product for each query: (scores, positions).

    Works in tiles (256 queries x 32,768 rows, 32 MB of scores) keeping a running top-k, so
    memory stays small at any size and each pass over ``base`` serves many queries.
    """
    n = len(base)
    k = min(k, n)
    scores = np.empty((len(queries), k), dtype=np.float32)
    positions = np.empty((len(queries), k), dtype=np.int64)
    for q_start in range(0, len(queries), _QUERY_TILE):
        chunk = queries[q_start : q_start + _QUERY_TILE]
        best_s = np.empty((len(chunk), 0), dtype=np.float32)
        best_i = np.empty((len(chunk), 0), dtype=np.int64)
        for b_start in range(0, n, _BASE_TILE):
            block = chunk @ base[b_start : b_start + _BASE_TILE].T
            width = block.shape[1]
            if width > k:  # this tile's own top k first: the merge then sorts 2k columns
                part = np.argpartition(block, width - k, axis=1)[:, -k:]
                block = np.take_along_axis(block, part, axis=1)
            else:
                part = np.broadcast_to(np.arange(width), block.shape)
            cand_s = np.concatenate([best_s, block], axis=1)
            cand_i = np.concatenate([best_i, part + b_start], axis=1)
            if cand_s.shape[1] > k:
                keep = np.argpartition(cand_s, cand_s.shape[1] - k, axis=1)[:, -k:]
                cand_s = np.take_along_axis(cand_s, keep, axis=1)
                cand_i = np.take_along_axis(cand_i, keep, axis=1)
            best_s, best_i = cand_s, cand_i
        order = np.argsort(-best_s, axis=1, kind="stable")
        rows = slice(q_start, q_start + len(chunk))
        scores[rows] = np.take_along_axis(best_s, order, axis=1)
        positions[rows] = np.take_along_axis(best_i, order, axis=1)
    return scores, positions


def nearest_centroid(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the centroid with the largest inner product, for each vector."""
    out = np.empty(len(vectors), dtype=np.int64)
    rows = max(1, _SCORE_CHUNK // max(1, len(centroids)))
    for start in range(0, len(vectors), rows):
        out[start : start + rows] = (vectors[start : start + rows] @ centroids.T).argmax(axis=1)
    return out


def spherical_kmeans(
    sample: np.ndarray, k: int, *, rng: np.random.Generator, rounds: int = 10
) -> np.ndarray:
    """``k`` unit-length centroids by k-means under inner product; an emptied cluster is
    re-seeded with a random sample point."""
    centroids = np.ascontiguousarray(sample[rng.choice(len(sample), k, replace=False)])
    centroids = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    for _ in range(rounds):
        assign = nearest_centroid(sample, centroids)
        order = np.argsort(assign, kind="stable")
        counts = np.bincount(assign, minlength=k)
        filled = np.flatnonzero(counts)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))[filled]
        sums = np.add.reduceat(sample[order], starts, axis=0)
        norms = np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        centroids[filled] = sums / norms
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            centroids[empty] = sample[rng.choice(len(sample), len(empty), replace=False)]
    return np.ascontiguousarray(centroids, dtype=np.float32)


def _flat_vectors(flat: Any) -> np.ndarray:
    """A view (no copy) of an ``IndexFlat``'s stored vectors, valid while it lives."""
    faiss = _faiss()
    return faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d)


def _ivf_add(index: Any, vectors: np.ndarray, rids: np.ndarray) -> None:
    """Add to an IVF index with the list assignment computed by numpy."""
    faiss = _faiss()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    rids = np.ascontiguousarray(rids, dtype=np.int64)
    assign = nearest_centroid(vectors, _flat_vectors(faiss.downcast_index(index.quantizer)))
    index.add_core(
        len(vectors), faiss.swig_ptr(vectors), faiss.swig_ptr(rids), faiss.swig_ptr(assign)
    )


def _new_db() -> sqlite3.Connection:
    # check_same_thread=False: the index serialises access with its own lock.
    db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    db.executescript(_SCHEMA)
    db.isolation_level = ""  # back to implicit transactions, so `with db:` commits or rolls back
    return db


def _load_db(file: Path) -> sqlite3.Connection:
    if not file.is_file():
        raise DataError("missing payloads.sqlite", path=file.parent)
    db = _new_db()
    try:
        # A percent-encoded URI: a raw "#", "?" or "%" in the folder name would cut the path
        # short, and SQLite would open (and create) another file.
        source = sqlite3.connect(f"{file.absolute().as_uri()}?mode=ro", uri=True)
        try:
            source.backup(db)
        finally:
            source.close()
        db.execute("SELECT rid, id, payload FROM items LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        db.close()
        raise DataError(f"damaged payload table ({exc})", path=file) from None
    return db


def _check_ids(ids: Sequence[str]) -> list[str]:
    if isinstance(ids, str):
        raise UserInputError("ids must be a list of strings, not one string")
    ids = list(ids)
    for item_id in ids:
        if not isinstance(item_id, str) or not item_id:
            raise UserInputError(f"ids must be non-empty strings, got {item_id!r}")
        if found := lone_surrogate(item_id):
            raise UserInputError(
                f"id {item_id!r} holds U+{found[1]:04X}, a lone surrogate that is not a "
                "character (SQLite cannot store it)"
            )
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dupes = [i for i in ids if i in seen or seen.add(i)]  # type: ignore[func-returns-value]
        shown = ", ".join(repr(i) for i in list(dict.fromkeys(dupes))[:5])
        raise UserInputError(f"duplicate ids in one call: {shown}")
    return ids


def _where_fields(where: Mapping[str, Any]) -> list[tuple[str, list[Any]]]:
    """``where`` checked, as (field, values) sorted by field; numpy scalars become plain
    Python values, as they compare in SQLite (a numpy integer is no ``int``)."""
    if not isinstance(where, Mapping):
        raise UserInputError(
            f"where must be a dict of payload field -> value, got {type(where).__name__}"
        )
    fields = []
    for name, value in where.items():
        if not isinstance(name, str):
            raise UserInputError(f"where field must be a non-empty name, got {name!r}")
        # SQLite's JSON path compares a quoted field with the key as JSON writes it, so a
        # name JSON escapes (a quote, a backslash, a control character) would match nothing.
        if not name or json.dumps(name, ensure_ascii=False)[1:-1] != name or lone_surrogate(name):
            raise UserInputError(
                "where field must be a non-empty name without quotes, backslashes or "
                f"control characters, got {name!r}"
            )
        values = list(value) if isinstance(value, list | tuple | set | frozenset) else [value]
        values = [v.item() if isinstance(v, np.generic) else v for v in values]
        for v in values:
            if v is not None and not isinstance(v, str | int | float | bool):
                raise UserInputError(
                    f"where['{name}'] values must be str, number, bool or None, got {v!r}"
                )
            if isinstance(v, str) and lone_surrogate(v):
                raise UserInputError(
                    f"where['{name}'] value {v!r} holds a lone surrogate, not a character"
                )
            if isinstance(v, int) and not _SQLITE_INT_MIN <= v <= _SQLITE_INT_MAX:
                # SQLite stores 64-bit integers; binding a larger one raises OverflowError.
                raise UserInputError(
                    f"where['{name}'] value {v} is outside the 64-bit integer range"
                )
        fields.append((name, values))
    return sorted(fields, key=lambda field: field[0])


def _payload_json(item_id: str, payload: Mapping[str, Any] | None, text: str | None) -> str:
    if payload is not None and not isinstance(payload, Mapping):
        raise UserInputError(
            f"payload for id {item_id!r} must be a dict, got {type(payload).__name__}"
        )
    data = dict(payload or {})
    if text is not None:
        data.setdefault("text", text)
    try:
        encoded = json.dumps(data, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise UserInputError(
            f"payload for id {item_id!r} is not JSON-serialisable ({exc})"
        ) from None
    if found := lone_surrogate(encoded):
        what = "text" if text is not None and lone_surrogate(text) else "payload"
        raise UserInputError(
            f"{what} for id {item_id!r} holds U+{found[1]:04X}, a lone surrogate that is not "
            "a character (SQLite cannot store it)"
        )
    return encoded


def _storable(item_id: object) -> bool:
    """Whether ``item_id`` could be a stored id: a string SQLite can hold."""
    return isinstance(item_id, str) and lone_surrogate(item_id) is None


def _make_index_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise UserInputError(f"cannot save the index at {path}: it is a file, not a folder")
    path.mkdir(parents=True, exist_ok=True)


#: The lock file of an index folder where a folder cannot be locked itself (Windows).
_SAVE_LOCK = ".save.lock"


@contextlib.contextmanager
def _directory_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on the index folder itself, waited for: no lock file is left behind,
    and the kernel releases it when a process dies. Windows opens no folder as a file: there
    the lock is on ``.save.lock`` inside it, which stays (never read, and no generation)."""
    from tunesmith.locks import O_BINARY, fcntl, holding_lock

    if fcntl is not None:
        fd = os.open(path, os.O_RDONLY)
    else:
        fd = os.open(path / _SAVE_LOCK, os.O_RDWR | os.O_CREAT | O_BINARY)
    try:
        with holding_lock(fd):
            yield
    finally:
        os.close(fd)


def _current_generation(path: Path) -> int:
    """The generation number ``CURRENT`` names; 0 when there is none (or it is unreadable)."""
    pointer = path / _POINTER
    if not pointer.is_file():
        return 0
    try:
        match = _GEN_RE.match(_read_pointer(pointer))
    except DataError:  # a damaged pointer: create(force=True) and save() must replace it
        return 0
    return int(match.group(1)) if match else 0


def _read_pointer(pointer: Path) -> str:
    """The generation name ``CURRENT`` holds (a DataError when it is not text)."""
    try:
        return pointer.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise DataError("not a generation name (not UTF-8 text)", path=pointer) from None


def _latest_generation(path: Path) -> int:
    numbers = [int(m.group(1)) for p in path.iterdir() if (m := _GEN_RE.match(p.name))]
    return max(numbers, default=0)


def _remove_old_generations(path: Path, *, keep: str) -> None:
    """Best effort: older generations and temporary folders left by crashed saves."""
    for entry in path.iterdir():
        if entry.name == keep or not entry.is_dir():
            continue
        if _GEN_RE.match(entry.name) or (
            entry.name.startswith(".gen-") and entry.name.endswith(".tmp")
        ):
            shutil.rmtree(entry, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
