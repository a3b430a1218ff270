"""The model directory ``tunesmith recommend train`` writes, and serving from it.

Layout (written inside a temporary directory that replaces the target only when complete)::

    meta.json        format, encoder (a sub-directory or a name), sizes, validation metrics,
                     what an item is called (``item_noun``, ``item_noun_plural``; --item-noun)
                     and the --min-rating it was trained with (``min_rating``, null for none)
    encoder/         the fine-tuned item encoder (absent when the pretrained one is used)
    catalogue.json   item ids, titles, texts and the fields --where filters on (``fields``;
                     train --filter-cols, their types in meta.json's ``item_fields``)
    vectors.npy      item tower output, float32 [n, dim]
    base_vectors.npy the pretrained encoder's vectors (only when the item tower was fine-tuned)
    base_encoder/    with them, a copy of a --model directory (add-items encodes new items with it)
    index/           tunesmith.retrieval.VectorIndex of the same vectors (candidates)
    added_*          the items add-items added since the above were written whole: their
                     catalogue entries, vectors and index (item_parts; absent when none)
    user_tower.npz   user tower weights
    signals.npz      counts, recency-weighted counts and item ages on every event (the counts
                     scaled to the training split's totals), content prior; add-items leaves
                     it as it was (its items have no events), and it is padded when read
    cooc.npz         item-item co-occurrence on every event (scipy sparse; add-items leaves it
                     as it was, and it is padded to the catalogue when read)
    ranker.json      the ranker's weights and scales, and the shift of items added after
                     training (catalogue positions from ``trained_items`` on: add-items
                     appends; a ranker.json without them serves as before: no shift)
    histories.json   each known user's items, oldest first
    rated_below.json each user's items rated below --min-rating: seen, so never recommended back
    retired.json     items never to return (recommend retire; absent when none: retire.py)
    events.npz       every event the above are counted from (user, item, time; positive or
                     rated below), for add-events to recount them with a day's new events

Serving needs no torch: the user tower runs in numpy, candidates come from the FAISS index
(two-tower neighbours, and the history's text neighbours) plus the best items by the ranker's
item-only part plus the history's co-occurrence neighbours, and the ranker re-scores only those
candidates.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.errors import DataError, UserInputError
from tunesmith.io import atomic_directory, atomic_write_json, being_replaced, read_json_object
from tunesmith.models import DEFAULT_MODEL
from tunesmith.retrieval import Encoder, VectorIndex
from tunesmith_recommend.baselines import history_matrix, mean_history_vectors
from tunesmith_recommend.data import Catalogue
from tunesmith_recommend.explain import because_you_liked
from tunesmith_recommend.filters import Condition, ItemFields, NothingMatches, described
from tunesmith_recommend.item_parts import (
    ADDED_BASE_VECTORS,
    ADDED_FILES,
    ADDED_VECTORS,
    WHOLE_FILES,
    AddedItems,
    ItemIndex,
    must_merge,
    read_vectors,
    write_added_part,
    write_merged,
)

# ITEM_NOUN and item_noun_meta re-exported: the CLI, the demo and tests read them from here
from tunesmith_recommend.nouns import ITEM_NOUN as ITEM_NOUN
from tunesmith_recommend.nouns import item_noun_meta as item_noun_meta
from tunesmith_recommend.nouns import item_nouns
from tunesmith_recommend.ranker import Ranker, Signals, cosines
from tunesmith_recommend.retire import read_retired
from tunesmith_recommend.two_tower import MAX_HISTORY, UserTower
from tunesmith_recommend.updates import write_serving_state

FORMAT = "tunesmith-recommend/1"
#: candidates taken from each source before re-ranking (fewer from the index: its hits are the
#: two-tower's neighbours alone; ids only, see VectorIndex.search_ids, so no payload is read)
CANDIDATES = 200
INDEX_CANDIDATES = 50
#: A filtered request that leaves at most this many items ranks them all (exact, and cheaper
#: than widening the candidate pools); above it, the pools are taken as usual plus the filter's
#: best items by the item-only part, and the index is asked for more hits (:func:`_widened`).
FILTERED_FULL_RANK = 5_000
#: The most hits a filtered request asks the index for.
MAX_INDEX_HITS = 1_000
#: A text query states the taste outright: its text match leads, and the ranker's item-only part
#: (popularity, freshness, content prior) counts this much, both standardised over the candidates.
#: There is no validation data for queries to choose it on, so it is a stated choice.
QUERY_PRIOR_WEIGHT = 0.5
#: Items whose events are things a user watched: their history without --min-rating is what they
#: "watched" (the sample's films), not what they "liked".
WATCHED_NOUNS = frozenset({"film", "movie", "video", "show", "series", "episode"})


@dataclass(frozen=True)
class HistoryWords:
    """How a user's history is named: ``who`` ("For u01, who liked A, B"), ``because`` (a
    reason, ``{}`` the titles: "because you liked A (62%)"), ``count`` ("u01 (10 liked)") and
    ``source`` (the demo's first line: "Recommends books from their text and what users
    liked")."""

    who: str
    because: str
    count: str
    source: str


#: The words for items the user said they liked (``--liked``), or a history of ratings at or
#: above ``--min-rating``.
LIKED_WORDS = HistoryWords("who liked", "because you liked {}", "liked", "what users liked")


def history_words(meta: dict[str, Any] | None) -> HistoryWords:
    """What a known user's history is, in words true of the model's ``meta.json``: "liked" only
    when it was trained with ``--min-rating`` (``min_rating``); without one every event counted,
    a 1-star rating too, so "watched" for films and "in your history" for other items. A model
    saved before ``min_rating`` was recorded gets the same neutral words."""
    rating = (meta or {}).get("min_rating")
    if isinstance(rating, (int, float)) and not isinstance(rating, bool):
        return LIKED_WORDS
    one, _many = item_nouns(meta)
    if one.casefold() in WATCHED_NOUNS:
        return HistoryWords(
            "who watched", "because you watched {}", "watched", "what users watched"
        )
    return HistoryWords(
        "whose history has", "because of {} in your history", "in history", "users' histories"
    )


@dataclass
class Recommendation:
    """One recommended item, its score and why."""

    item_id: str
    title: str
    score: float
    because: list[dict[str, Any]] = field(default_factory=list)  # history items, share

    def to_json(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "title": self.title,
            "score": round(self.score, 6),
            "because": self.because,
        }


def _loadable(name: str) -> str:
    """``name`` as serving can load it from any working directory and offline: ``default`` as
    it is, a local directory (``--model ./enc``) or a downloaded hub model by its absolute path."""
    from tunesmith.models import resolve_model

    return name if name == DEFAULT_MODEL else resolve_model(name).location


def _local_model_dir(name: str) -> Path | None:
    """``name`` as a local model folder, or None for ``default`` and hub ids. ``default`` is a
    name, never a path (as for the core's ``resolve_model``): a folder called "default" in the
    working directory is not the encoder."""
    if name == DEFAULT_MODEL:
        return None
    path = Path(name).expanduser()
    return path if path.is_dir() else None


def _training_caps(fitted: Any) -> dict[str, Any]:
    """The caps ``train`` applied: the user tower's examples and the ranker's validation
    requests (the flag's value and how many were used)."""
    settings = getattr(fitted, "settings", None)
    if settings is None:
        return {}
    return {
        "tower_max_examples": settings.tower_max_examples,
        "ranker_max_requests": settings.ranker_max_requests,
        "ranker_validation_requests": getattr(fitted, "ranker_requests", None),
        "validation_requests": len(fitted.split.val),
    }


def save(fitted: Any, out: str | Path, *, extra_meta: dict[str, Any] | None = None) -> Path:
    """Write a fitted pipeline into ``out`` (an empty directory: the caller makes it atomic)."""
    import shutil

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    kept = out / "encoder"
    if getattr(fitted, "item_tower", "fine-tuned") == "pretrained" and kept.is_dir():
        # a fine-tuned encoder that validation did not choose (fitted in this directory)
        shutil.rmtree(kept)
    # A --model directory is copied in whether or not fine-tuning was tried first: the model
    # directory must not depend on a folder the user may move or delete.
    encoder_dir = _local_model_dir(fitted.encoder_dir)
    if encoder_dir is not None and encoder_dir.resolve() != kept.resolve():
        shutil.copytree(encoder_dir, kept)
    encoder = "encoder" if kept.is_dir() else _loadable(fitted.encoder_dir)
    catalogue = fitted.catalogue
    # Served from every event, at the training split's scale (Fitted.serving_signals says
    # why); an object without the method (the latency benchmark's) is served as it is.
    serving = getattr(fitted, "serving_signals", None)
    signals = serving() if serving is not None else fitted.signals
    base_model = getattr(fitted, "base_model", DEFAULT_MODEL)
    base_dir = _local_model_dir(base_model)
    if signals.base_vectors is not None and base_dir is not None:
        # add-items encodes new items with the pretrained encoder too (for base_vectors.npy):
        # kept like encoder/, or moving the --model folder broke add-items
        shutil.copytree(base_dir, out / "base_encoder")
        base_model = "base_encoder"
    else:
        base_model = _loadable(base_model)
    atomic_write_json(out / "catalogue.json", catalogue_json(catalogue))
    vectors = np.ascontiguousarray(signals.item_vectors, dtype=np.float32)
    np.save(out / "vectors.npy", vectors)
    index = VectorIndex.create(out / "index", dim=vectors.shape[1], encoder_name=str(encoder))
    index.add(catalogue.ids, payloads=[{"title": t} for t in catalogue.titles], vectors=vectors)
    index.save()
    signals.tower.save(out / "user_tower.npz")
    if signals.base_vectors is not None:
        np.save(out / "base_vectors.npy", np.asarray(signals.base_vectors, dtype=np.float32))
    # what serving reads of the events, written as add-events rewrites it
    write_serving_state(out, signals, fitted.events, catalogue.ids)
    atomic_write_json(out / "ranker.json", fitted.ranker.to_json())
    # how the counts were made from the events, for add-events to recount them the same way
    # (None for an object without it: the latency benchmark's)
    scale = getattr(fitted, "serving_scale", None)
    meta = {
        "format": FORMAT,
        "encoder": encoder,
        "n_items": len(catalogue),
        "n_users": len(fitted.events.user_ids),
        "dim": int(vectors.shape[1]),
        "validation_ndcg10": round(fitted.val_ndcg, 6),
        "item_tower": getattr(fitted, "item_tower", "pretrained"),
        "base_model": base_model,
        "item_tower_validation_ndcg10": getattr(fitted, "tower_scores", {}),
        # set when the fine-tuned tower collapsed and was left out: each tower's mean cosine
        "item_tower_collapsed": getattr(fitted, "collapsed_tower", None),
        "ranker_weights": fitted.ranker.weights,
        "items_path": catalogue.path,
        # add-items reads new items from the same columns unless told otherwise
        "item_columns": catalogue.columns,
        # the fields --where filters on (train --filter-cols) and their types; add-items reads
        # new items' from the same columns
        "item_fields": catalogue.field_types,
        "events_path": fitted.events.path,
        # add-events reads a day's events from the same columns unless told otherwise
        "event_columns": getattr(fitted.events, "columns", None) or None,
        # popularity, freshness and co-occurrence count every event; the ranker was fitted on
        # the training split's (the counts are scaled to its totals: Fitted.serving_signals)
        "serving_events": len(fitted.events),
        # co-occurrence counted at most this many of one user's items (train --cooc-max-history)
        "cooc_max_history": getattr(fitted, "cooc_max_history", None),
        "serving_scale": scale().to_json() if scale is not None else None,
        # what else the model was trained with, so eval and a reader know (train's caps)
        **_training_caps(fitted),
        **(extra_meta or {}),
    }
    atomic_write_json(out / "meta.json", meta)
    return out


def read_part(path: Path, name: str) -> dict[str, Any]:
    """A JSON file of the model directory ``path``; a damaged one is one line naming it, not a
    JSONDecodeError traceback."""
    data = read_json_object(path / name)
    if data is None:
        raise UserInputError(
            f"{path} has no {name}: the model directory is incomplete; train it again"
        )
    return data


def read_meta(path: Path) -> dict[str, Any]:
    """The model directory's ``meta.json``; a folder that is not a model is one line."""
    meta = read_json_object(path / "meta.json")
    if not meta or meta.get("format") != FORMAT:
        raise UserInputError(
            f"{path} is not a recommend model directory (make one with `tunesmith recommend train`)"
        )
    return meta


def catalogue_json(catalogue: Catalogue) -> dict[str, Any]:
    """What ``catalogue.json`` holds: ids, titles, texts and, when the model keeps any, the
    fields for filters (``fields``: column -> one cell per item)."""
    found: dict[str, Any] = {
        "ids": catalogue.ids,
        "titles": catalogue.titles,
        "texts": catalogue.texts,
    }
    if catalogue.fields:
        found["fields"] = catalogue.fields
    return found


def read_catalogue(path: Path) -> Catalogue:
    """The model directory's items: ``catalogue.json``, then those added since it was written
    whole (``added_items.json``, see :mod:`~tunesmith_recommend.item_parts`)."""
    catalogue = read_part(path, "catalogue.json")
    added = AddedItems.read(path)
    kept = catalogue.get("fields") or {}
    return Catalogue(
        ids=catalogue["ids"] + added.ids,
        titles=catalogue["titles"] + added.titles,
        texts=catalogue["texts"] + added.texts,
        fields={name: list(cells) + added.fields.get(name, []) for name, cells in kept.items()},
    )


def read_cooc(path: Path, n_items: int) -> Any:
    """``cooc.npz`` as a CSR matrix over the whole catalogue: ``add-items`` leaves the file as
    it was, so the items added since (at its end) get empty rows and columns here."""
    from scipy.sparse import load_npz

    cooc = load_npz(path / "cooc.npz").tocsr()
    if cooc.shape[0] < n_items:
        cooc.resize((n_items, n_items))
    return cooc


def read_signals(path: Path, n_items: int) -> dict[str, np.ndarray]:
    """``signals.npz``'s counts, recency-weighted counts and ages over the whole catalogue,
    and the content prior. ``add-items`` leaves the file as it was (an hourly update rewrote
    its 2.4 MB at 100,000 items for zeros): the items added since, at its end, have no events
    (counts 0, age infinite) and are padded here, as :func:`read_cooc` pads co-occurrence.
    ``add-events`` counts them with the rest."""
    with np.load(path / "signals.npz") as data:
        found = {name: data[name] for name in ("counts", "recent", "age", "prior")}
    missing = n_items - len(found["counts"])
    if missing > 0:
        found["counts"] = np.concatenate([found["counts"], np.zeros(missing)])
        found["recent"] = np.concatenate([found["recent"], np.zeros(missing)])
        found["age"] = np.concatenate([found["age"], np.full(missing, np.inf)])
    return found


def model_location(path: Path, name: str) -> str:
    """An encoder named in ``meta.json``: a folder inside the model directory (``encoder``,
    ``base_encoder``), else a name or path as stored."""
    return str(path / name) if (path / name).is_dir() else name


def _z(values: np.ndarray) -> np.ndarray:
    """Standardised values (zero mean, unit deviation; constant values give zeros)."""
    std = float(values.std())
    return (values - values.mean()) / std if std > 1e-12 else np.zeros_like(values)


def query_scores(match: np.ndarray, prior: np.ndarray, cold: np.ndarray) -> np.ndarray:
    """A text query's ranking: the text match, plus :data:`QUERY_PRIOR_WEIGHT` times the item
    prior, both standardised over the candidates. An item without events (``cold``) gets the
    warm candidates' median prior: nothing is known of its popularity either way, and as the
    least popular item it ranked below weaker matches (a new item matching a query word for
    word came 16th on the sample catalogue)."""
    prior = np.array(prior, dtype=np.float64)
    if cold.any() and (~cold).any():
        prior[cold] = np.median(prior[~cold])
    return _z(match) + QUERY_PRIOR_WEIGHT * _z(prior)


def _best(values: np.ndarray, count: int) -> np.ndarray:
    """The positions of the ``count`` largest ``values`` (any order; all when fewer)."""
    count = min(count, len(values))
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    return np.argpartition(-values, count - 1)[:count].astype(np.int64)


def _widened(k: int, share: float, n: int) -> int:
    """How many index hits to ask for so that about ``k`` pass a filter letting ``share`` of
    the catalogue through (at most :data:`MAX_INDEX_HITS`, at most the catalogue)."""
    return int(min(n, max(k, min(MAX_INDEX_HITS, np.ceil(k / share)))))


def _lookup(keys: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """``values`` at ``wanted`` positions of the sorted ``keys``; 0 where a key is absent."""
    if len(keys) == 0:
        return np.zeros(len(wanted))
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[at] == wanted, values[at], 0.0)


def add_items(path: str | Path, new: Any, *, device: str = "cpu") -> int:
    """Add items (a :class:`~tunesmith_recommend.data.Catalogue`) to a trained model directory.

    They are encoded by the item tower and become recommendable at once from their text alone
    (no events yet: zero counts, never seen). The directory is rewritten atomically: a copy is
    changed and renamed over the old one only when complete. Returns the number of items added.
    The directory's run lock is held throughout: two processes adding items at once each read
    the model and renamed their copy over it, and the first one's items were lost. ``device``:
    where the encoders run (:func:`tunesmith.devices.resolve_device`'s choices).
    """
    from tunesmith.locks import writing_into

    with writing_into(path, [], flag="--model"):
        return _add_items_locked(Path(path), new, device)


#: What ``add-items`` writes afresh: the added part (:mod:`~tunesmith_recommend.item_parts`)
#: and ``meta.json``. The rest of the folder (the
#: catalogue, vectors and index as last written whole, events, histories, user tower,
#: encoders) is linked into the new version, not copied (``folder_copy``): rewriting the
#: vectors and an index generation was 310 MB of a 300-item update at 100,000 items.
#: ``cooc.npz`` stays as it was: new items co-occur with nothing, and serving pads it to the
#: catalogue (:func:`read_cooc`; rewriting it was 125 MB of that update), and so does
#: ``signals.npz``: the new items' counts are zeros, padded when read (:func:`read_signals`).
ADD_ITEMS_REWRITES = (*ADDED_FILES, "meta.json")
#: What an ``add-items`` that merges the added part writes afresh (:func:`item_parts.must_merge`).
MERGE_REWRITES = (*ADD_ITEMS_REWRITES, *WHOLE_FILES)


def _add_items_locked(path: Path, new: Any, device: str) -> int:
    from tunesmith_recommend.folder_copy import link_unchanged

    # Only the parts new items change: a whole Recommender also read the histories (a million
    # events' JSON), the user tower and the index twice, for nothing add-items uses.
    meta = read_meta(path)
    catalogue = read_catalogue(path)
    if set(new.fields) != set(catalogue.fields):
        # the caller reads new items with the model's --filter-cols (workflow.add_items_from)
        raise UserInputError(
            f"the new items carry the fields {sorted(new.fields)}, the model "
            f"{sorted(catalogue.fields)}"
        )
    for index, item in enumerate(new.ids):
        if item in catalogue.position:
            raise DataError(
                f"{item_nouns(meta)[0]} {item!r} is in the model already",
                path=new.path or None,
                row=new.rows[index] if new.rows else None,
            )
    encoder = Encoder.load(model_location(path, meta["encoder"]), device=device)
    vectors = encoder.encode(list(new.texts)).astype(np.float32)
    base_file = path / "base_vectors.npy"
    base = None
    if base_file.exists():
        base_model = model_location(path, meta.get("base_model", DEFAULT_MODEL))
        base = Encoder.load(base_model, device=device).encode(list(new.texts))
    n_old, n_new = len(catalogue.ids), len(new.ids)
    added = AddedItems.read(path)
    n_whole = n_old - len(added)
    merge = must_merge(n_whole, len(added) + n_new)
    with atomic_directory(path, force=True) as tmp:
        link_unchanged(path, tmp, MERGE_REWRITES if merge else ADD_ITEMS_REWRITES)
        if merge:
            every = catalogue_json(
                Catalogue(
                    ids=catalogue.ids + list(new.ids),
                    titles=catalogue.titles + list(new.titles),
                    texts=catalogue.texts + list(new.texts),
                    fields={k: v + list(new.fields[k]) for k, v in catalogue.fields.items()},
                )
            )
            write_merged(path, tmp, every, vectors, base, n_indexed=n_whole)
        else:
            added = AddedItems(
                added.ids + list(new.ids),
                added.titles + list(new.titles),
                added.texts + list(new.texts),
                {k: added.fields.get(k, []) + list(v) for k, v in new.fields.items()},
            )
            write_added_part(path, tmp, added, vectors, base, encoder_name=str(meta["encoder"]))
        meta = {**meta, "n_items": n_old + n_new}
        meta["added_items"] = int(meta.get("added_items", 0)) + n_new
        atomic_write_json(tmp / "meta.json", meta)
    return n_new


#: Loads of a model directory when a writer replaced it while it was read.
_LOAD_TRIES = 5


def _identity(path: Path) -> tuple[int, int] | None:
    """The directory's device and inode: a rewrite (an atomic rename of a new copy) changes
    them; ``None`` while it is missing (between the two renames of a rewrite)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


class Recommender:
    """A loaded model directory: for-user, for liked items, for a text, similar items, search.
    ``device``: where the item encoder runs when a text query loads it (nothing else uses torch).
    """

    def __init__(self, path: str | Path, *, device: str = "cpu"):
        self.path = Path(path)
        self.device = device
        # add-items and train --force replace the whole directory by renames while a reader
        # may be reading it file by file: a load that saw the directory change under it (its
        # catalogue of one generation, its vectors or index of the next) is done again, as
        # VectorIndex.load does, instead of serving mixed parts or failing on their shapes.
        for attempt in range(_LOAD_TRIES):
            before = _identity(self.path)
            try:
                self._load()
            except Exception:
                # Missing both times: gone, or caught between the two renames of a rewrite
                # (the old copy then waits beside it as .<name>.old-<pid>).
                midway = before is None and being_replaced(self.path)
                if attempt + 1 == _LOAD_TRIES or (_identity(self.path) == before and not midway):
                    raise
                time.sleep(0.02 * (attempt + 1))
                continue
            if _identity(self.path) == before:
                return
        raise UserInputError(
            f"{self.path} kept being rewritten while it was read; try again when the "
            "add-items or train writing it has finished"
        )

    def _load(self) -> None:
        """Read every part of the model directory (see ``__init__`` for why it may repeat)."""

        self.meta = read_meta(self.path)
        catalogue = read_catalogue(self.path)
        self.ids: list[str] = catalogue.ids
        self.titles: list[str] = catalogue.titles
        self.texts: list[str] = catalogue.texts
        self.position = catalogue.position
        self.histories: dict[str, list[str]] = read_part(self.path, "histories.json")
        # absent in a model trained before it was written: nothing more to exclude
        below = self.path / "rated_below.json"
        self.rated_below: dict[str, list[str]] = (
            read_part(self.path, "rated_below.json") if below.exists() else {}
        )
        counted = read_signals(self.path, len(self.ids))
        self.signals = Signals(
            item_vectors=read_vectors(self.path, "vectors.npy", ADDED_VECTORS),
            tower=UserTower.load(self.path / "user_tower.npz"),
            counts=counted["counts"],
            recent=counted["recent"],
            prior=counted["prior"],
            cooc=read_cooc(self.path, len(self.ids)),
            age=counted["age"],
            base_vectors=read_vectors(self.path, "base_vectors.npy", ADDED_BASE_VECTORS),
        )
        self.ranker = Ranker.from_json(read_part(self.path, "ranker.json"))
        self.item_part = self.ranker.item_part(self.signals.item_features())
        self.cold = self.signals.item_features()["cold"]
        self.added = self.ranker.added_items(self.cold)
        # retired items (recommend retire) are never returned; the rest of the model keeps them
        self.retired = np.zeros(len(self.ids), dtype=bool)
        self.retired[[self.position[i] for i in read_retired(self.path) if i in self.position]] = (
            True
        )
        self.top_items = _best(np.where(self.retired, -np.inf, self.item_part), CANDIDATES)
        self.fields = ItemFields(
            catalogue.fields, self.meta.get("item_fields") or {}, len(self.ids)
        )
        self.index = ItemIndex.load(self.path)
        self._encoder: Any = None

    # ------------------------------------------------------------------ helpers

    @property
    def encoder(self) -> Any:
        """The item encoder, loaded on first use (only text queries need it)."""
        if self._encoder is None:
            self._encoder = Encoder.load(self.location(self.meta["encoder"]), device=self.device)
        return self._encoder

    def location(self, name: str) -> str:
        """An encoder named in ``meta.json``: a folder inside the model directory (``encoder``,
        ``base_encoder``), else a name or path as stored."""
        return model_location(self.path, name)

    def positions(self, item_ids: list[str]) -> np.ndarray:
        """Catalogue positions; an unknown id is one clear error."""
        missing = [i for i in item_ids if i not in self.position]
        if missing:
            one, _many = item_nouns(self.meta)
            raise UserInputError(f"{one} {missing[0]!r} is not in this model's catalogue")
        return np.asarray([self.position[i] for i in item_ids], dtype=np.int64)

    def history_of(self, user: str) -> np.ndarray:
        """A known user's history; a user without events is one clear error."""
        if user not in self.histories:
            if user in self.rated_below:
                raise UserInputError(
                    f"user {user!r} rated every item below --min-rating, so has no positive "
                    "events in this model; recommend from liked items (--liked ITEM) or a text "
                    "(--query TEXT) instead"
                )
            raise UserInputError(
                f"user {user!r} has no events in this model; recommend from liked items "
                "(--liked ITEM) or a text (--query TEXT) instead"
            )
        return self.positions(self.histories[user])

    def _usable(
        self, where: list[Condition], exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The items a request may return (not retired, not in ``exclude``, allowed by
        ``where``) as a mask, and the filter's own mask (None without one). Nothing left under
        a filter is one line saying why, not an empty list."""
        usable = ~self.retired  # a new array, changed in place below
        allowed = None
        if where:
            allowed = self.fields.mask(where)
            usable &= allowed
        if exclude is not None and len(exclude):
            usable[exclude] = False
        if where and not usable.any():
            _one, many = item_nouns(self.meta)
            said = described(where)
            if not allowed.any():
                why = f"no {many} match --where {said}"
            elif not (allowed & ~self.retired).any():
                why = f"every one of the {many} matching --where {said} is retired"
            else:
                why = f"every one of the {many} matching --where {said} is retired or seen"
            raise NothingMatches(why)
        return usable, allowed

    def _hits(self, vector: np.ndarray, k: int, share: float, searched: bool = True) -> np.ndarray:
        """The catalogue positions of the index's neighbours of ``vector``: ``k`` of them, as
        many more as a filter letting ``share`` through leaves out (:func:`_widened`); none
        when not ``searched``. Ids only: the re-ranker keeps its own item data, so payloads
        would be read for nothing."""
        if not searched:
            return np.zeros(0, dtype=np.int64)
        n = len(self.ids)
        ids, _ = self.index.search_ids(vector.astype(np.float32), k=_widened(k, share, n))
        return np.asarray([self.position[i] for i in ids], dtype=np.int64)

    def _filtered_pool(self, usable: np.ndarray, allowed: np.ndarray | None) -> list[np.ndarray]:
        """With a filter, the candidates it lets through may be too few, or not the best it
        allows: its items when they are few enough to rank them all, else its best by the
        ranker's item-only part."""
        if allowed is None:
            return []
        left = np.flatnonzero(usable)
        if len(left) <= FILTERED_FULL_RANK:
            return [left]
        return [left[_best(self.item_part[left], CANDIDATES)]]

    def _rank(
        self,
        user_vector: np.ndarray,
        history: np.ndarray,
        k: int,
        exclude: np.ndarray,
        where: list[Condition] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates from the index, the item prior and co-occurrence; re-ranked; top k."""
        n = len(self.ids)
        usable, allowed = self._usable(where or [], exclude)
        share = 1.0 if allowed is None else max(float(usable.mean()), 1e-9)
        # a filter leaving few items ranks them all: the index's neighbours would add nothing
        searched = allowed is None or int(usable.sum()) > FILTERED_FULL_RANK
        sources = [self._hits(user_vector, INDEX_CANDIDATES, share, searched), self.top_items]
        sources += self._filtered_pool(usable, allowed)
        if len(history) and searched:
            # The history's text neighbours too (the index's nearest items to the mean of its
            # item vectors, what the ranker's text match and `similar` read): an item added by
            # add-items has no events, so no prior or co-occurrence to bring it in, and the
            # user tower's neighbours left out an added sequel of the liked films that the full
            # ranking put in their top ten (MovieTweetings, Star Wars liked).
            mean = self.signals.item_vectors[history].mean(0)
            mean /= max(float(np.linalg.norm(mean)), 1e-12)
            sources.append(self._hits(mean, INDEX_CANDIDATES, share, searched))
        # Co-occurrence with the (distinct) history items, kept sparse: the items
        # that co-occur and their summed cosines (a dense pass over a large catalogue costs more
        # than the rest of the request). The same sparse product as the evaluation's
        # (``Signals.user_inputs``), so the sums are the same to the last bit.
        cooc_items = np.zeros(0, dtype=np.int64)
        cooc_values = np.zeros(0)
        if len(history):
            sums = history_matrix([history], n) @ self.signals.cooc
            sums.sort_indices()
            cooc_items, cooc_values = sums.indices, sums.data
            best = np.arange(len(cooc_items))
            if len(best) > CANDIDATES:
                best = np.argpartition(-cooc_values, CANDIDATES - 1)[:CANDIDATES]
            sources.append(cooc_items[best].astype(np.int64))
        candidates = np.unique(np.concatenate(sources))
        # the history, rated-below, retired and filtered-out items, as one mask
        candidates = candidates[usable[candidates]]
        if len(candidates) < min(k, int(usable.sum())):
            # -k beyond the candidate pools (or a history that covers them): rank every unseen
            # item rather than return fewer than asked while the catalogue has more
            candidates = np.flatnonzero(usable)
        # float64 products, as the evaluation's (ranker.cosines): in float32 the last bits
        # depended on the product's shape and swapped two items of a top ten
        features = {
            "two_tower": cosines(user_vector[None], self.signals.item_vectors[candidates])[0],
            "cooccurrence": np.log1p(_lookup(cooc_items, cooc_values, candidates)),
            "text_similarity": np.zeros(len(candidates)),
        }
        if len(history):
            base = self.signals.base_vectors
            base = self.signals.item_vectors if base is None else base
            mean = mean_history_vectors(base, [history])
            features["text_similarity"] = cosines(mean, base[candidates])[0]
        scores = self.ranker.combine(
            features,
            self.item_part[candidates],
            cold=self.cold[candidates],
            added=self.added[candidates],
        )
        order = np.argsort(-scores)[:k]
        return candidates[order], scores[order]

    def _reasons(self, item: int, history: np.ndarray, weights: np.ndarray) -> list[dict[str, Any]]:
        return because_you_liked(
            self.signals.item_vectors, history, weights, item, self.ids, self.titles
        )

    def _results(
        self,
        items: np.ndarray,
        scores: np.ndarray,
        history: np.ndarray | None = None,
        weights: np.ndarray | None = None,
    ) -> list[Recommendation]:
        out = []
        for item, score in zip(items.tolist(), scores.tolist(), strict=True):
            because = (
                self._reasons(item, history, weights)
                if history is not None and weights is not None and len(history)
                else []
            )
            out.append(Recommendation(self.ids[item], self.titles[item], float(score), because))
        return out

    # ------------------------------------------------------------------ public

    def conditions(self, where: Sequence[str] | None) -> list[Condition]:
        """``--where`` texts parsed against this model's fields (one line for a mistake)."""
        return self.fields.parse(where or [])

    def for_history(
        self,
        history: np.ndarray,
        k: int = 10,
        *,
        seen: np.ndarray | None = None,
        where: Sequence[str] | None = None,
    ) -> list[Recommendation]:
        """Recommendations for a history of catalogue positions, oldest first; ``seen`` are
        more items never to recommend (seen but not liked: rated below --min-rating);
        ``where``: filters on the items' fields (:mod:`~tunesmith_recommend.filters`)."""
        conditions = self.conditions(where)
        history = np.asarray(history, dtype=np.int64)
        user, weights = self.signals.tower.encode_one(self.signals.item_vectors[history])
        exclude = history if seen is None else np.concatenate([history, seen]).astype(np.int64)
        items, scores = self._rank(user, history, k, exclude=exclude, where=conditions)
        return self._results(items, scores, history[-MAX_HISTORY:], weights)

    def for_user(
        self, user: str, k: int = 10, *, where: Sequence[str] | None = None
    ) -> list[Recommendation]:
        """Recommendations for a known user: nothing they have liked or rated below the
        threshold (nor a retired item, nor one ``where`` leaves out)."""
        history = self.history_of(user)
        seen = self.positions(self.rated_below.get(user, []))
        return self.for_history(history, k, seen=seen, where=where)

    def for_liked(
        self, item_ids: list[str], k: int = 10, *, where: Sequence[str] | None = None
    ) -> list[Recommendation]:
        """Recommendations for a new user from a few liked items (in the order they were liked;
        a retired one too: it still says what they like)."""
        if not item_ids:
            raise UserInputError("name at least one liked item")
        return self.for_history(self.positions(item_ids), k, where=where)

    def for_query(
        self, text: str, k: int = 10, *, where: Sequence[str] | None = None
    ) -> list[Recommendation]:
        """Recommendations for a new user who describes what they want."""
        conditions = self.conditions(where)
        if not text.strip():
            raise UserInputError("the query text is empty")
        usable, allowed = self._usable(conditions)
        share = 1.0 if allowed is None else max(float(usable.mean()), 1e-9)
        searched = allowed is None or int(usable.sum()) > FILTERED_FULL_RANK
        vector = self.encoder.encode([text])[0]
        hits = self._hits(vector, 2 * INDEX_CANDIDATES, share, searched)
        candidates = np.unique(
            np.concatenate([hits, self.top_items, *self._filtered_pool(usable, allowed)])
        )
        candidates = candidates[usable[candidates]]
        if len(candidates) < min(k, int(usable.sum())):
            candidates = np.flatnonzero(usable)  # -k beyond the candidate pools: every item
        scores = query_scores(
            self.signals.item_vectors[candidates] @ vector,
            self.item_part[candidates],
            self.cold[candidates] > 0,
        )
        order = np.argsort(-scores)[:k]
        return self._results(candidates[order], scores[order])

    def _nearest(
        self, vector: np.ndarray, k: int, usable: np.ndarray, restricted: bool
    ) -> list[Recommendation]:
        """The ``k`` usable items nearest ``vector`` in the index, best first. The index knows
        nothing of retired items and filters, so it is asked for more hits, as many more as
        the share it would leave out (then four times as many, up to :data:`MAX_INDEX_HITS`);
        when still too few pass, the usable items are scored exactly (cheap when a filter
        leaves few)."""
        n = len(self.ids)
        query = np.asarray(vector, dtype=np.float32)
        left = int(usable.sum())
        ask = k if not restricted else _widened(k, left / max(n, 1), n)
        while not restricted or left > FILTERED_FULL_RANK:
            ids, scores = self.index.search_ids(query, k=ask)
            hits = [
                (self.position[i], float(s))
                for i, s in zip(ids, scores, strict=True)
                if usable[self.position[i]]
            ]
            if len(hits) >= min(k, left) or ask >= n:
                return [Recommendation(self.ids[p], self.titles[p], s) for p, s in hits[:k]]
            if ask >= MAX_INDEX_HITS:
                break
            ask = min(n, MAX_INDEX_HITS, 4 * ask)
        if left > n // 2:  # one product over the catalogue, not a copy of most of its vectors
            exact = (self.signals.item_vectors @ query).astype(np.float64)
            exact[~usable] = -np.inf
            positions = _best(exact, k)
            positions = positions[np.argsort(-exact[positions], kind="stable")]
            positions = positions[np.isfinite(exact[positions])]  # k beyond the usable items
            chosen = exact[positions]
        else:
            found = np.flatnonzero(usable)
            scored = self.signals.item_vectors[found] @ query
            order = np.argsort(-scored, kind="stable")[:k]
            positions, chosen = found[order], scored[order]
        return [
            Recommendation(self.ids[p], self.titles[p], float(s))
            for p, s in zip(positions.tolist(), chosen.tolist(), strict=True)
        ]

    def similar(
        self, item_id: str, k: int = 10, *, where: Sequence[str] | None = None
    ) -> list[Recommendation]:
        """Items whose item-tower vectors are closest to this one's (a retired item may be
        asked about: what to offer instead of it)."""
        conditions = self.conditions(where)
        position = int(self.positions([item_id])[0])
        usable, _ = self._usable(conditions, np.asarray([position]))
        restricted = bool(conditions) or bool(self.retired.any())
        if not restricted:
            ids, scores = self.index.search_ids(self.signals.item_vectors[position], k=k + 1)
            hits = [(i, float(s)) for i, s in zip(ids, scores, strict=True) if i != item_id][:k]
            return [Recommendation(i, self.titles[self.position[i]], s) for i, s in hits]
        return self._nearest(self.signals.item_vectors[position], k, usable, True)

    def search(
        self, text: str, k: int = 10, *, where: Sequence[str] | None = None
    ) -> list[Recommendation]:
        """Items whose text matches a query, by the item encoder alone."""
        conditions = self.conditions(where)
        if not text.strip():
            raise UserInputError("the search text is empty")
        usable, _ = self._usable(conditions)
        restricted = bool(conditions) or bool(self.retired.any())
        return self._nearest(self.encoder.encode([text])[0], k, usable, restricted)
