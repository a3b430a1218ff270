"""The catalogue's item files in two parts: as last written whole, and the items added since.

``add-items`` rewrote the whole ``vectors.npy`` and a whole index generation for a few new
items (at 100,000 items of MiniLM's width, 154 MB each, and FAISS writes its index whole).
Items added since ``train`` (or since the last merge) now go to their own files beside the
catalogue's, which stay hard links to the previous version's (``folder_copy``)::

    catalogue.json, vectors.npy, base_vectors.npy, index/     the items last written whole
    added_items.json, added_vectors.npy, added_base_vectors.npy, added_index/
                                                              the items added since, in order

Each ``add-items`` writes the added part afresh (every added item so far plus the new ones:
small), so the new version is still a whole folder renamed over the old one and a reader of
the old version keeps whole files. When the added items would pass :data:`MERGE_SHARE` of the
catalogue's own, everything is written whole again and the added part is left out: the cost of
the rewrites is spread over many updates (as a log-structured store merges its runs), and a
request searches two indexes, the added one small and exact. Readers join the parts: the
catalogue (``model.read_catalogue``), the vectors (:func:`read_vectors`) and the index
(:class:`ItemIndex`). A folder without an added part reads as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ADDED_CATALOGUE = "added_items.json"
ADDED_VECTORS = "added_vectors.npy"
ADDED_BASE_VECTORS = "added_base_vectors.npy"
ADDED_INDEX = "added_index"
#: The added part's files: left out of an update's links, since it writes them afresh.
ADDED_FILES = (ADDED_CATALOGUE, ADDED_VECTORS, ADDED_BASE_VECTORS, ADDED_INDEX)
#: The files written whole by a merge (with the added part's, which it leaves out); ``index/``
#: is linked and saved as a new generation, its old files untouched.
WHOLE_FILES = ("catalogue.json", "vectors.npy", "base_vectors.npy")
#: Added items are merged into the catalogue's own files when they would pass this share of
#: them: at 100,000 items, after about 10,000 added, so an hourly 300 rewrites 154 MB of
#: vectors once in 33 updates rather than every time.
MERGE_SHARE = 0.1


def must_merge(n_whole: int, n_added: int) -> bool:
    """Whether ``n_added`` added items (those there and the new ones) are merged into the
    ``n_whole`` items written whole (:data:`MERGE_SHARE`)."""
    return n_added > MERGE_SHARE * n_whole


def read_vectors(path: Path, name: str, added: str) -> np.ndarray | None:
    """The whole catalogue's vectors: ``name`` then, when there, ``added`` (None when
    ``name`` is absent). Each part is read into its rows of one array, so the catalogue's
    vectors are not held twice while they are joined."""
    whole = path / name
    if not whole.exists():
        return None
    extra = path / added
    if not extra.exists():
        return np.load(whole)
    first = np.load(whole, mmap_mode="r")
    second = np.load(extra, mmap_mode="r")
    out = np.empty((len(first) + len(second), first.shape[1]), dtype=first.dtype)
    out[: len(first)] = first
    out[len(first) :] = second
    del first, second  # the maps are closed before the file may be replaced
    return out


@dataclass
class AddedItems:
    """The items added since the catalogue was last written whole (``added_items.json``)."""

    ids: list[str]
    titles: list[str]
    texts: list[str]
    #: their fields for filters (``train --filter-cols``), as ``catalogue.json``'s
    fields: dict[str, list[Any]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> AddedItems:
        """The added part of the model folder ``path`` (empty when it has none)."""
        from tunesmith_recommend.model import read_part

        if not (path / ADDED_CATALOGUE).exists():
            return cls([], [], [])
        found = read_part(path, ADDED_CATALOGUE)
        return cls(
            list(found["ids"]),
            list(found["titles"]),
            list(found["texts"]),
            {name: list(cells) for name, cells in (found.get("fields") or {}).items()},
        )

    def __len__(self) -> int:
        return len(self.ids)

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"ids": self.ids, "titles": self.titles, "texts": self.texts}
        if self.fields:
            found["fields"] = self.fields
        return found


def write_added_part(
    source: Path,
    target: Path,
    added: AddedItems,
    vectors: np.ndarray,
    base: np.ndarray | None,
    encoder_name: str,
) -> None:
    """Write ``target``'s added part: ``source``'s added items followed by the new ones
    (``added`` holds both; ``vectors`` and ``base`` are the new ones')."""
    from tunesmith.io import atomic_write_json
    from tunesmith.retrieval import VectorIndex

    atomic_write_json(target / ADDED_CATALOGUE, added.to_json())
    every = _appended(source / ADDED_VECTORS, vectors)
    np.save(target / ADDED_VECTORS, every)
    if base is not None:
        np.save(target / ADDED_BASE_VECTORS, _appended(source / ADDED_BASE_VECTORS, base))
    index = VectorIndex.create(
        target / ADDED_INDEX, dim=every.shape[1], encoder_name=encoder_name, force=True
    )
    index.add(added.ids, payloads=[{"title": t} for t in added.titles], vectors=every)
    index.save()


def write_merged(
    source: Path,
    target: Path,
    catalogue: dict[str, Any],
    vectors: np.ndarray,
    base: np.ndarray | None,
    n_indexed: int,
) -> None:
    """Write ``target``'s catalogue, vectors and index whole: ``source``'s items (both parts)
    and the new ones (``catalogue`` holds every item, ``vectors`` and ``base`` are the new
    ones'). ``target/index`` is a linked copy of ``source``'s, holding its first ``n_indexed``
    items: the rest are added to it and saved as a new generation."""
    from tunesmith.io import atomic_write_json
    from tunesmith.retrieval import VectorIndex

    atomic_write_json(target / "catalogue.json", catalogue)
    every = np.concatenate([read_vectors(source, "vectors.npy", ADDED_VECTORS), vectors])
    np.save(target / "vectors.npy", every)
    if base is not None:
        old = read_vectors(source, "base_vectors.npy", ADDED_BASE_VECTORS)
        np.save(target / "base_vectors.npy", np.concatenate([old, base]))
    index = VectorIndex.load(target / "index")
    titles = catalogue["titles"][n_indexed:]
    index.add(
        catalogue["ids"][n_indexed:],
        payloads=[{"title": t} for t in titles],
        vectors=every[n_indexed:],
    )
    index.save()


def _appended(file: Path, rows: np.ndarray) -> np.ndarray:
    """``file``'s rows (when there) followed by ``rows``, as float32."""
    rows = np.asarray(rows, dtype=np.float32)
    return np.concatenate([np.load(file), rows]) if file.exists() else rows


class ItemIndex:
    """The catalogue's FAISS index: ``index/`` and, when items were added since it was
    written whole, ``added_index/``; a search asks both and keeps the best."""

    def __init__(self, whole: Any, added: Any | None) -> None:
        self.whole = whole
        self.added = added

    @classmethod
    def load(cls, path: Path) -> ItemIndex:
        """The index of the model folder ``path`` (both parts)."""
        from tunesmith.retrieval import VectorIndex

        added = path / ADDED_INDEX
        return cls(
            VectorIndex.load(path / "index"),
            VectorIndex.load(added) if VectorIndex.exists(added) else None,
        )

    @property
    def kind(self) -> str:
        """The kind of the catalogue's own index (``flat`` or ``ivf``; the added one is flat
        while it holds under FAISS's exact limit)."""
        return str(self.whole.kind)

    def __len__(self) -> int:
        return len(self.whole) + (len(self.added) if self.added is not None else 0)

    def search_ids(self, query: np.ndarray, k: int = 10) -> tuple[list[str], np.ndarray]:
        """The ``k`` nearest ids and their scores, best first, over both parts (a tie keeps
        the catalogue's own item first)."""
        ids, scores = self.whole.search_ids(query, k=k)
        if self.added is None or not len(self.added):
            return ids, scores
        more, more_scores = self.added.search_ids(query, k=k)
        every = list(ids) + list(more)
        joined = np.concatenate([scores, more_scores]).astype(np.float32)
        order = np.argsort(-joined, kind="stable")[:k]
        return [every[i] for i in order.tolist()], joined[order]
