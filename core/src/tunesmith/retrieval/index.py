"""VectorIndex: FAISS behind one small class, with stable string ids and a payload per id.

The class holds an index's state and locks and answers its API; the parts it is made of live
beside it:

- :mod:`~tunesmith.retrieval.backend`: the FAISS index, ``flat`` (exact) up to
  :data:`EXACT_LIMIT` vectors and ``ivf`` (approximate, ``nprobe`` tuned for recall) above it,
  and when to switch; :mod:`~tunesmith.retrieval.blas` the numpy matrix products it uses and
  :mod:`~tunesmith.retrieval.faiss_runtime` faiss's import and OpenMP threads.
- :mod:`~tunesmith.retrieval.payload_table`: the SQLite table ``items(rid, id, payload)`` mapping
  FAISS's int64 rowids to string ids and JSON payloads; :mod:`~tunesmith.retrieval.filters`
  the ``where`` filters on it.
- :mod:`~tunesmith.retrieval.generations`: the directory of immutable generations a save
  writes atomically, and :mod:`~tunesmith.retrieval.manifest` the ``meta.json`` of each
  (encoder name, dim and precision, kind, count, format), checked on load.

While an index is open, its FAISS index and payload table live in memory (the table in an
in-memory SQLite database), so both are always saved together, as one consistent snapshot.
Nothing is written before ``save()``.

Search is top-k by inner product (cosine for normalised vectors). ``where`` filters on payload
fields by equality (a list means "any of"); the filter becomes a FAISS ``IDSelector``, and for
IVF ``nprobe`` grows until k matches are found or every list was searched, so a filter never
loses results that exist.

Thread safety: any number of concurrent searches; add/upsert/delete/save/optimize take an
exclusive lock (a readers-writer lock, writers first), and calls on the shared SQLite
connection are serialised by a mutex.
"""

from __future__ import annotations

import json
import numbers
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.errors import DataError, UserInputError
from tunesmith.retrieval import payload_table
from tunesmith.retrieval.backend import (
    EXACT_LIMIT,
    TUNE_RECALL,
    build_ivf,
    ivf_add,
    kind_to_rebuild,
    new_flat_index,
    read_index,
    search_index,
    stored_vectors,
    tune_nprobe,
)
from tunesmith.retrieval.blas import nearest_centroid, spherical_kmeans, top_k_inner_product
from tunesmith.retrieval.faiss_runtime import load_faiss, max_threads, use_threads
from tunesmith.retrieval.filters import matching_rids, where_fields
from tunesmith.retrieval.generations import (
    POINTER,
    SAVE_LOCK,
    check_not_overtaken,
    current_generation,
    directory_lock,
    latest_generation,
    make_index_dir,
    read_current,
    read_meta,
    remove_old_generations,
    write_generation,
)
from tunesmith.retrieval.manifest import (
    FORMAT_VERSION,
    METRIC,
    EncoderLike,
    check_compatible,
    ivf_settings,
    make_manifest,
    parse_manifest,
    precision_of,
)
from tunesmith.retrieval.rwlock import RWLock

__all__ = [
    "EXACT_LIMIT",
    "FORMAT_VERSION",
    "METRIC",
    "TUNE_RECALL",
    "EncoderLike",
    "Hit",
    "VectorIndex",
    "build_ivf",
    "max_threads",
    "nearest_centroid",
    "spherical_kmeans",
    "top_k_inner_product",
    "tune_nprobe",
]

# The names these had when they lived here: benchmarks/retrieval_speed.py and
# tests/core/test_portability.py reach them through this module.
_faiss = load_faiss
_use_threads = use_threads
_directory_lock = directory_lock
_SAVE_LOCK = SAVE_LOCK

#: Filters whose matching rowids and FAISS selector are kept until the next write.
_WHERE_CACHE_SIZE = 64


@dataclass(frozen=True)
class Hit:
    """One search result: the string id, its inner-product score and its payload."""

    id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


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
        self._rw = RWLock()
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
        if not force and (path / POINTER).exists():
            raise UserInputError(
                f"{path} is an index already; load it, or pass force=True to replace it"
            )
        if path.exists() and not path.is_dir():
            raise UserInputError(f"cannot create an index at {path}: it is a file, not a folder")
        return cls(
            path,
            dim=int(dim),
            encoder_name=encoder_name,
            encoder=encoder,
            exact_limit=exact_limit,
            faiss_index=new_flat_index(int(dim)),
            kind="flat",
            db=payload_table.new_table(),
            # With force, the index on disk is replaced on purpose: saving over it is no loss.
            generation=current_generation(path),
            encoder_precision=precision_of(encoder),
        )

    @classmethod
    def exists(cls, path: str | Path) -> bool:
        """Whether a saved index is at ``path``."""
        return (Path(path) / POINTER).is_file()

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
        return read_current(
            path, lambda gen_name: cls._load_generation(path, gen_name, encoder, exact_limit)
        )

    @classmethod
    def _load_generation(
        cls,
        path: Path,
        gen_name: str,
        encoder: EncoderLike | None,
        exact_limit: int | None,
    ) -> VectorIndex:
        generation, gen_dir, meta = read_meta(path, gen_name)
        manifest = parse_manifest(meta, gen_dir / "meta.json")
        check_compatible(manifest, encoder, path)
        index = read_index(gen_dir / "index.faiss")
        db = payload_table.load_table(gen_dir / "payloads.sqlite")
        rows = payload_table.count_rows(db)
        count, dim = manifest.count, manifest.dim
        if index.ntotal != count or rows != count or index.d != dim:
            raise DataError(
                f"damaged index: meta says {count} vectors of dim {dim}, FAISS holds "
                f"{index.ntotal} of dim {index.d}, the payload table {rows}",
                path=gen_dir,
            )
        ivf = ivf_settings(meta, manifest.kind, gen_dir)
        return cls(
            path,
            dim=dim,
            encoder_name=manifest.encoder,
            encoder=encoder,
            exact_limit=int(exact_limit if exact_limit is not None else manifest.exact_limit),
            faiss_index=index,
            kind=manifest.kind,
            db=db,
            ivf_info=ivf,
            generation=generation,
            encoder_precision=manifest.encoder_precision,
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
        if not payload_table.storable(item_id):
            return False
        with self._rw.read(), self._db_lock:
            return payload_table.has_id(self._db, item_id)

    def get(self, item_id: str) -> dict[str, Any] | None:
        """The payload stored for ``item_id`` (``None`` when absent)."""
        if not payload_table.storable(item_id):
            return None
        with self._rw.read(), self._db_lock:
            payload = payload_table.payload_of(self._db, item_id)
        return None if payload is None else json.loads(payload)

    def vector(self, item_id: str) -> np.ndarray | None:
        """The stored vector of ``item_id`` (``None`` when absent), e.g. to find similar items."""
        if not payload_table.storable(item_id):
            return None
        with self._rw.read():
            with self._db_lock:
                rid = payload_table.rid_of(self._db, item_id)
            return (
                None if rid is None else np.asarray(self._index.reconstruct(rid), dtype=np.float32)
            )

    def ids(self) -> list[str]:
        """Every id, in insertion order."""
        with self._rw.read(), self._db_lock:
            return payload_table.all_ids(self._db)

    def items(self) -> list[tuple[str, dict[str, Any]]]:
        """Every ``(id, payload)``, in insertion order, read in one query: a caller walking the
        whole index (a re-index diffing 100,000 entries) took one locked query per id."""
        with self._rw.read(), self._db_lock:
            rows = payload_table.all_rows(self._db)
        return [(item_id, json.loads(payload)) for item_id, payload in rows]

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
                payload_table.delete_rids(self._db, rids)
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
        ids = payload_table.check_ids(ids)
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
            payload_table.payload_json(
                ids[i], payloads[i] if payloads else None, texts[i] if texts else None
            )
            for i in range(n)
        ]
        if n == 0:
            return
        use_threads(n)  # IVF assigns new vectors to lists by a search over the centroids
        with self._rw.write():
            existing = self._rids_of(ids)
            if existing and not replace:
                shown = ", ".join(repr(i) for i in list(existing)[:5])
                more = f" and {len(existing) - 5} more" if len(existing) > 5 else ""
                raise UserInputError(
                    f"ids already in index {self.path}: {shown}{more} (use upsert to replace)"
                )
            with self._db_lock:
                start = payload_table.next_rid(self._db)
                rids = np.arange(start, start + n, dtype=np.int64)
                try:
                    # One SQLite transaction: rolled back if FAISS fails, so the table never
                    # names vectors the index lacks.
                    with self._db:
                        if existing:
                            old = np.fromiter(
                                existing.values(), dtype=np.int64, count=len(existing)
                            )
                            payload_table.delete_rids(self._db, old)
                        payload_table.insert_rows(
                            self._db, rids.tolist(), ids, rows_json, start + n
                        )
                        if existing:
                            self._index.remove_ids(old)
                        if self._kind == "ivf":
                            ivf_add(self._index, vectors, rids)
                        else:
                            self._index.add_with_ids(vectors, rids)
                finally:
                    self._where_cache.clear()

    # ------------------------------------------------------------------ search

    def search(
        self, query: str | np.ndarray, k: int = 10, where: Mapping[str, Any] | None = None
    ) -> list[Hit]:
        """The ``k`` best items for one query (a text or a 1-d vector), best first."""
        return self.search_batch(_one_query(query), k=k, where=where)[0]

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
        matrix = self._query_matrix(_one_query(query), k)
        with self._rw.read():
            allowed, sel = self._allowed(where) if where else (None, None)
            scores, rids = self._search_rids(matrix, k, allowed, sel)
            with self._db_lock:
                names = payload_table.ids_of_rids(self._db, [r for r in rids[0].tolist() if r >= 0])
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

    def _search_rids(
        self, matrix: np.ndarray, k: int, allowed: np.ndarray | None, sel: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        use_threads(len(matrix))
        total = len(self) if allowed is None else len(allowed)
        k_eff = min(int(k), total)
        if k_eff == 0:
            empty = np.empty((len(matrix), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        return search_index(self._index, self._kind, self._ivf, matrix, k_eff, sel)

    def _allowed(self, where: Mapping[str, Any]) -> tuple[np.ndarray, Any]:
        """Sorted rids whose payload matches ``where`` and their FAISS selector (cached)."""
        fields = where_fields(where)
        # Keyed by the checked values, not by how ``where`` prints: the string "3" and
        # numpy's 3, or the set {1, 3} and the string "{1, 3}", are different filters.
        key = json.dumps(fields)
        with self._db_lock:
            cached = self._where_cache.get(key)
        if cached is not None:
            return cached
        with self._db_lock:
            rids = matching_rids(self._db, fields)
            entry = (rids, load_faiss().IDSelectorBatch(rids))
            if len(self._where_cache) >= _WHERE_CACHE_SIZE:
                self._where_cache.pop(next(iter(self._where_cache)))
            self._where_cache[key] = entry
        return entry

    def _hits(self, scores: np.ndarray, rids: np.ndarray) -> list[list[Hit]]:
        wanted = sorted({int(r) for r in rids.ravel() if r >= 0})
        with self._db_lock:
            rows = payload_table.rows_of_rids(self._db, wanted)
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
        kind = kind_to_rebuild(self._kind, n, self.exact_limit, self._ivf.get("trained_count", n))
        if kind is not None:
            self._rebuild(kind)

    def _rebuild(self, kind: str) -> None:
        use_threads()
        rids, vectors = stored_vectors(self._index, self._kind, self.dim)
        if kind == "flat":
            index = new_flat_index(self.dim)
            index.add_with_ids(vectors, rids)
            self._index, self._kind, self._ivf = index, "flat", {}
            return
        index, info = build_ivf(vectors, rids, self.dim)
        self._index, self._kind, self._ivf = index, "ivf", info

    def save(self) -> Path:
        """Write the index to its directory atomically (new generation, then pointer rename).

        Switches kind first when the size calls for it (see :meth:`optimize`). If saving fails
        midway, the previously saved index stays the one that loads. A :class:`UserInputError`
        when another process saved this directory after this copy was loaded or created.
        """
        with self._rw.write():
            self._optimize_locked()
            make_index_dir(self.path)
            # Two processes saving one directory would remove each other's generations and
            # temp folders: saves take turns, and one based on an outdated generation stops.
            with directory_lock(self.path):
                check_not_overtaken(self.path, self._generation)
                return self._save_locked()

    def _save_locked(self) -> Path:
        """Write a new generation and point CURRENT at it (the directory lock is held)."""
        generation = max(self._generation, latest_generation(self.path)) + 1
        name = write_generation(
            self.path,
            generation,
            faiss_index=self._index,
            db=self._db,
            db_lock=self._db_lock,
            meta=make_manifest(
                encoder_name=self.encoder_name,
                dim=self.dim,
                kind=self._kind,
                count=len(self),
                exact_limit=self.exact_limit,
                encoder_precision=self.encoder_precision,
                ivf=self._ivf,
            ),
        )
        self._generation = generation
        remove_old_generations(self.path, keep=name)
        return self.path

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
        with self._db_lock:
            return payload_table.rids_of(self._db, ids)


def _one_query(query: str | np.ndarray) -> list[str] | np.ndarray:
    """One query as a batch of one: a text in a list, a 1-d vector as a row; anything else is
    one :class:`UserInputError`."""
    if isinstance(query, str):
        return [query]
    vec = np.asarray(query)
    if vec.ndim != 1:
        raise UserInputError(f"search takes one text or a 1-d vector, got shape {vec.shape}")
    return vec[None, :]
