"""New events for a trained model without retraining it (``tunesmith recommend add-events``).

A model directory keeps the events it serves from in ``events.npz`` (every positive event and
every rating below ``--min-rating``, each with its user, item and time). ``add-events`` appends
a file of new ones and recounts, from all of them, what serving reads of the events: the
histories (new users become known users), popularity, recent popularity, freshness,
co-occurrence and the items rated below the threshold. ``train`` writes the same files through
the same functions (:func:`serving_signals`, :func:`write_serving_state`), so a model updated
this way serves exactly as one saved from all the events at once with the same fitted towers
and ranker. The learned parts (item vectors, user tower, content prior, the ranker's weights)
are left as they were.

An event is its (user, item, time): one already in the model, or named twice in the new file,
is counted once, so adding the same file twice adds nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.errors import UserInputError
from tunesmith.io import atomic_directory, atomic_write_json, atomic_write_text
from tunesmith_recommend import baselines as bl
from tunesmith_recommend.data import Catalogue, Events, load_events
from tunesmith_recommend.ranker import Signals, item_ages
from tunesmith_recommend.split import every_event
from tunesmith_recommend.stored_events import (
    EVENTS_FILE,
    merge_events,
    read_events,
    write_events,
)


@dataclass(frozen=True)
class ServingScale:
    """How serving's counts are made from the events: recent popularity's half-life (seconds,
    chosen on validation), the training split's totals the counts and recency-weighted counts
    are rescaled to (the ranker's weights were fitted at that scale), and co-occurrence's cap
    of one user's items."""

    half_life: float
    counts_total: float
    recent_total: float
    cooc_max_history: int | None

    def to_json(self) -> dict[str, float]:
        """``meta.json``'s ``serving_scale`` (``cooc_max_history`` has its own key there)."""
        return {
            "half_life": float(self.half_life),
            "counts_total": float(self.counts_total),
            "recent_total": float(self.recent_total),
        }

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> ServingScale | None:
        """The scale a model was saved with; None for a model saved before it was recorded."""
        found = meta.get("serving_scale")
        if not isinstance(found, dict):
            return None
        return cls(
            half_life=float(found["half_life"]),
            counts_total=float(found["counts_total"]),
            recent_total=float(found["recent_total"]),
            cooc_max_history=meta.get("cooc_max_history"),
        )


@dataclass(frozen=True)
class ServedCounts:
    """What serving reads of the events, counted (as :class:`Signals` holds it), with the
    content prior that ``signals.npz`` keeps beside the counts."""

    counts: np.ndarray
    recent: np.ndarray
    age: np.ndarray
    cooc: Any  # scipy sparse [n, n]
    prior: np.ndarray


def serving_counts(
    events: Events, n_items: int, scale: ServingScale, prior: np.ndarray
) -> ServedCounts:
    """Popularity, recent popularity, freshness and co-occurrence counted on ``events`` (see
    ``pipeline.Fitted.serving_signals`` for why the counts are rescaled to the training split's
    totals). "Now" is the newest event, so an event older than it (a late arrival) does not
    move it back."""
    everything = every_event(events, n_items)
    counts = bl.item_counts(everything)
    recent = bl.decayed_counts(everything, scale.half_life)
    counts *= scale.counts_total / max(float(counts.sum()), 1e-12)
    recent *= scale.recent_total / max(float(recent.sum()), 1e-12)
    return ServedCounts(
        counts=counts,
        recent=recent,
        age=item_ages(everything.n_items, everything.fit_items, everything.fit_times),
        cooc=bl.cooccurrence(everything, scale.cooc_max_history),
        prior=prior,
    )


def serving_signals(fitted: Signals, events: Events, n_items: int, scale: ServingScale) -> Signals:
    """``fitted``'s learned parts with the counts of :func:`serving_counts` on ``events``."""
    counted = serving_counts(events, n_items, scale, fitted.prior)
    return Signals(
        item_vectors=fitted.item_vectors,
        tower=fitted.tower,
        counts=counted.counts,
        recent=counted.recent,
        prior=fitted.prior,
        cooc=counted.cooc,
        age=counted.age,
        base_vectors=fitted.base_vectors,
    )


#: The files :func:`write_serving_state` writes: all that ``add-events`` changes but
#: ``meta.json`` (the rest of the folder is linked, not copied: ``folder_copy``).
SERVING_FILES = ("signals.npz", "cooc.npz", "histories.json", "rated_below.json", EVENTS_FILE)


def write_serving_state(
    out: Path, signals: Signals | ServedCounts, events: Events, ids: list[str]
) -> None:
    """Write what serving reads of the events (:data:`SERVING_FILES`): ``signals.npz``,
    ``cooc.npz``, ``histories.json``, ``rated_below.json`` and the events themselves
    (``events.npz``)."""
    from scipy.sparse import save_npz

    np.savez(
        out / "signals.npz",
        counts=signals.counts,
        recent=signals.recent,
        age=signals.age,
        prior=signals.prior,
    )
    # uncompressed: deflating a million events' co-occurrence took 1.4 s of every add-events
    # and only halved the file (10 MB); stored, it also loads 5 times as fast
    save_npz(out / "cooc.npz", signals.cooc, compressed=False)
    atomic_write_text(out / "histories.json", histories_json(events, ids))
    # Items rated below --min-rating are not positive events, but the user has seen them: a
    # film rated 3/10 came back in the top ten of 179 of 945 such users on MovieTweetings.
    atomic_write_json(
        out / "rated_below.json",
        {user: [ids[i] for i in items] for user, items in sorted(events.rated_below.items())},
    )
    write_events(out / EVENTS_FILE, events)


def histories_json(events: Events, ids: list[str]) -> str:
    """Each user's items, oldest first, as ``atomic_write_json`` writes them (indented, its
    bytes exactly): ``json``'s indented writer is pure Python, 1.5 s for a million events."""
    if not events.user_ids:
        return "{}\n"
    quote = json.JSONEncoder(ensure_ascii=False).encode
    quoted = [quote(item) for item in ids]
    users = []
    for user, (items, _) in zip(events.user_ids, events.sequences(), strict=True):
        listed = ",\n    ".join([quoted[i] for i in items.tolist()])
        users.append(f"  {quote(user)}: " + (f"[\n    {listed}\n  ]" if listed else "[]"))
    return "{\n" + ",\n".join(users) + "\n}\n"


@dataclass
class EventColumns:
    """How a file of events is read: its columns and which events are positive."""

    user: str | None = None  # None: the column train read (user_id, item_id, timestamp)
    item: str | None = None
    time: str | None = None
    rating: str | None = None
    min_rating: float | None = None
    kind: str | None = None
    kinds: list[str] | None = None

    def read(self, path: Path, catalogue: Catalogue, **options: Any) -> Events:
        """The positive events of ``path`` read with these columns (``columns_for`` filled
        them in); ``options``: ``data.load_events``' others (``not_in``, ``allow_empty``)."""
        assert self.user and self.item and self.time  # filled in by columns_for
        return load_events(
            path,
            catalogue,
            user_col=self.user,
            item_col=self.item,
            time_col=self.time,
            rating_col=self.rating,
            min_rating=self.min_rating,
            kind_col=self.kind,
            kinds=self.kinds,
            **options,
        )

    def recorded(self) -> dict[str, Any]:
        """As ``meta.json``'s ``event_columns`` (``data.load_events``' ``columns``)."""
        return {
            "user": self.user,
            "item": self.item,
            "time": self.time,
            "rating": self.rating,
            "kind": self.kind,
            "kinds": self.kinds,
        }


def columns_for(meta: dict[str, Any], given: EventColumns, model_dir: Path) -> EventColumns:
    """The columns to read new events with: those given, else those ``train`` read
    (``meta.json``). Which events are positive cannot change: the model's histories and counts
    hold positive events by its threshold and kinds, so another ``--min-rating`` or
    ``--kinds`` is refused rather than mixed in."""
    used = meta.get("event_columns") or {}
    threshold = meta.get("min_rating")
    kinds = used.get("kinds")
    if not used:
        # A model saved before the columns were recorded: its kinds are not known, so those
        # given are taken (add-events checks them against its histories, legacy_events), and a
        # rating column must be named rather than guessed.
        kinds = given.kinds
        if threshold is not None and not given.rating:
            raise UserInputError(
                f"{model_dir} was trained with --min-rating {threshold:g} before the rating "
                "column was recorded; name it with --rating-col"
            )
    if given.min_rating is not None and given.min_rating != threshold:
        raise UserInputError(
            f"--min-rating {given.min_rating:g}: {model_dir} was trained "
            + (
                f"with --min-rating {threshold:g}"
                if threshold is not None
                else "without --min-rating (every event is positive)"
            )
            + "; new events are counted the same way, so leave --min-rating out "
            "(train again to change it)"
        )
    if threshold is None and given.rating:
        raise UserInputError(
            f"--rating-col {given.rating}: {model_dir} was trained without --min-rating, so "
            "every event is positive; leave --rating-col out (train again to use ratings)"
        )
    if given.kinds and set(given.kinds) != set(kinds or ()):
        raise UserInputError(
            f"--kinds {','.join(given.kinds)}: {model_dir} was trained "
            + (f"with --kinds {','.join(kinds)}" if kinds else "without --kinds")
            + "; new events are counted the same way, so leave --kinds out (train again to "
            "change it)"
        )
    if not kinds and given.kind:
        raise UserInputError(
            f"--kind-col {given.kind}: {model_dir} was trained without --kinds, so events of "
            "every kind count; leave --kind-col out"
        )
    return EventColumns(
        user=given.user or used.get("user") or "user_id",
        item=given.item or used.get("item") or "item_id",
        time=given.time or used.get("time") or "timestamp",
        rating=(given.rating or used.get("rating")) if threshold is not None else None,
        min_rating=threshold,
        kind=(given.kind or used.get("kind")) if kinds else None,
        kinds=list(kinds) if kinds else None,
    )


@dataclass
class Added:
    """What ``add-events`` did."""

    added: int
    added_positive: int
    known: int
    new_users: int
    users: int  # users with positive events now
    events: int  # positive events served from now
    newest: float  # the newest event's time: "now" for recent popularity and freshness
    #: the training events file the stored events were read from again (a model saved
    #: before train kept them in events.npz); None when the model keeps them
    rebuilt_from: Path | None = None

    def to_json(self, model_dir: Path) -> dict[str, Any]:
        return {
            "model_dir": str(model_dir),
            "added": self.added,
            "added_positive": self.added_positive,
            "already_in_model": self.known,
            "new_users": self.new_users,
            "users": self.users,
            "events": self.events,
            "newest_event": newest_text(self.newest),
            "retrained": False,
            "events_rebuilt_from": str(self.rebuilt_from) if self.rebuilt_from else None,
        }


def newest_text(seconds: float) -> str:
    """A time as ISO 8601 in UTC (``2026-03-02T10:00:00Z``)."""
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def add_events(model_dir: str | Path, events_path: str | Path, given: EventColumns) -> Added:
    """Add the events of ``events_path`` to a trained model directory (see the module
    docstring); rewritten atomically, under the directory's run lock (as ``add-items``), and
    not at all when every event is in it already."""
    from tunesmith.locks import writing_into

    with writing_into(model_dir, [], flag="--model"):
        return _add_locked(Path(model_dir), Path(events_path), given)


def _add_locked(model_dir: Path, events_path: Path, given: EventColumns) -> Added:
    from tunesmith_recommend.folder_copy import link_unchanged
    from tunesmith_recommend.model import read_catalogue, read_meta

    # Only the parts the counts are made from: loading the whole model (vectors, index, user
    # tower, histories) took 1.4 s of CPU and half of the 1.2 GB at 100,000 items, for parts
    # it never used.
    meta = read_meta(model_dir)
    catalogue = read_catalogue(model_dir)
    n_items = len(catalogue.ids)
    scale = ServingScale.from_meta(meta)
    stored = read_events(model_dir) if scale is not None else None
    columns = columns_for(meta, given, model_dir)
    rebuilt_from: Path | None = None
    if stored is None or scale is None:
        # a model saved before train kept its events: read them again from the file it records,
        # checked against what the whole model serves
        from tunesmith_recommend.legacy_events import rebuild_events
        from tunesmith_recommend.model import Recommender

        current = Recommender(model_dir)
        rebuilt_from, stored, scale = rebuild_events(model_dir, current, catalogue, columns)
    new = columns.read(
        events_path,
        catalogue,
        not_in=f"the model's catalogue (add new items first: tunesmith recommend add-items "
        f"--items FILE -m {model_dir})",
        allow_empty=True,
    )
    merged = merge_events(stored, new, n_items)
    events = merged.events
    done = Added(
        added=merged.added,
        added_positive=merged.added_positive,
        known=merged.known,
        new_users=merged.new_users,
        users=len(events.user_ids),
        events=len(events),
        newest=float(events.times.max()),
        rebuilt_from=rebuilt_from,
    )
    if not merged.added:
        return done  # nothing new: the directory stays as it was, byte for byte
    with np.load(model_dir / "signals.npz") as data:
        prior = data["prior"]
    counted = serving_counts(events, n_items, scale, prior)
    with atomic_directory(model_dir, force=True) as tmp:
        # the vectors, index, encoder and towers are the same files: linked, not copied
        link_unchanged(model_dir, tmp, [*SERVING_FILES, "meta.json"])
        write_serving_state(tmp, counted, events, catalogue.ids)
        meta = {**meta, "n_users": len(events.user_ids), "serving_events": len(events)}
        meta["added_events"] = int(meta.get("added_events", 0)) + merged.added
        if rebuilt_from is not None:
            # the model now keeps its events (events.npz) and how they are counted, as a model
            # saved by today's train: the next add-events reads neither file again
            meta["serving_scale"] = scale.to_json()
            meta["event_columns"] = columns.recorded()
        atomic_write_json(tmp / "meta.json", meta)
    return done
