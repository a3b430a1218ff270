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

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.errors import UserInputError
from tunesmith.io import atomic_directory, atomic_write_json
from tunesmith_recommend import baselines as bl
from tunesmith_recommend.data import Catalogue, Events, load_events
from tunesmith_recommend.ranker import Signals, item_ages
from tunesmith_recommend.split import every_event

#: The events a model serves from (see the module docstring).
EVENTS_FILE = "events.npz"


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


def serving_signals(fitted: Signals, events: Events, n_items: int, scale: ServingScale) -> Signals:
    """``fitted``'s learned parts with popularity, recent popularity, freshness and
    co-occurrence counted on ``events`` (see ``pipeline.Fitted.serving_signals`` for why the
    counts are rescaled to the training split's totals). "Now" is the newest event, so an
    event older than it (a late arrival) does not move it back."""
    everything = every_event(events, n_items)
    counts = bl.item_counts(everything)
    recent = bl.decayed_counts(everything, scale.half_life)
    counts *= scale.counts_total / max(float(counts.sum()), 1e-12)
    recent *= scale.recent_total / max(float(recent.sum()), 1e-12)
    return Signals(
        item_vectors=fitted.item_vectors,
        tower=fitted.tower,
        counts=counts,
        recent=recent,
        prior=fitted.prior,
        cooc=bl.cooccurrence(everything, scale.cooc_max_history),
        age=item_ages(everything.n_items, everything.fit_items, everything.fit_times),
        base_vectors=fitted.base_vectors,
    )


def write_serving_state(out: Path, signals: Signals, events: Events, ids: list[str]) -> None:
    """Write what serving reads of the events: ``signals.npz``, ``cooc.npz``,
    ``histories.json``, ``rated_below.json`` and the events themselves (``events.npz``)."""
    from scipy.sparse import save_npz

    np.savez(
        out / "signals.npz",
        counts=signals.counts,
        recent=signals.recent,
        age=signals.age,
        prior=signals.prior,
    )
    save_npz(out / "cooc.npz", signals.cooc)
    histories = {
        user: [ids[i] for i in items]
        for user, (items, _) in zip(events.user_ids, events.sequences(), strict=True)
    }
    atomic_write_json(out / "histories.json", histories)
    # Items rated below --min-rating are not positive events, but the user has seen them: a
    # film rated 3/10 came back in the top ten of 179 of 945 such users on MovieTweetings.
    atomic_write_json(
        out / "rated_below.json",
        {user: [ids[i] for i in items] for user, items in sorted(events.rated_below.items())},
    )
    _write_events(out / EVENTS_FILE, events)


def _rows(events: Events) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Every event as (user names, items, times, positive): the positive events in their
    order, then each user's ratings below the threshold in file order."""
    names = [events.user_ids[u] for u in events.users.tolist()]
    items = [np.asarray(events.items, dtype=np.int64)]
    times = [np.asarray(events.times, dtype=np.float64)]
    for user in sorted(events.rated_below):
        below = events.rated_below[user]
        names += [user] * len(below)
        items.append(np.asarray(below, dtype=np.int64))
        times.append(np.asarray(events.rated_below_times.get(user, []), dtype=np.float64))
    positive = np.zeros(len(names), dtype=bool)
    positive[: len(events)] = True
    return names, np.concatenate(items), np.concatenate(times), positive


def _write_events(path: Path, events: Events) -> None:
    names, items, times, positive = _rows(events)
    distinct = sorted(set(names))
    number = {name: i for i, name in enumerate(distinct)}
    # user ids as one UTF-8 blob and its ends: a fixed-width string array is as wide as the
    # longest id for every user
    encoded = [name.encode("utf-8") for name in distinct]
    np.savez(
        path,
        names=np.frombuffer(b"".join(encoded), dtype=np.uint8),
        name_ends=np.cumsum([len(e) for e in encoded], dtype=np.int64),
        users=np.asarray([number[n] for n in names], dtype=np.int32),
        items=items.astype(np.int32),
        times=times,
        positive=positive,
    )


def read_events(model_dir: Path) -> Events | None:
    """The events a model directory serves from; None for a model saved before they were
    kept."""
    path = model_dir / EVENTS_FILE
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        blob, ends = data["names"].tobytes(), data["name_ends"].tolist()
        users, items, times, positive = (
            data["users"],
            data["items"],
            data["times"],
            data["positive"],
        )
    starts = [0, *ends[:-1]]
    distinct = [blob[s:e].decode("utf-8") for s, e in zip(starts, ends, strict=True)]
    names = [distinct[u] for u in users.tolist()]
    return _events_from_rows(names, items, times, positive)


def _events_from_rows(
    names: list[str], items: np.ndarray, times: np.ndarray, positive: np.ndarray
) -> Events:
    """Rows (in file order) as :class:`Events`, as ``data.load_events`` orders them: users in
    id order, each user's events by time, then row order; ratings below the threshold per
    user in row order."""
    keep = np.flatnonzero(positive)
    user_ids = sorted({names[i] for i in keep.tolist()})
    number = {name: i for i, name in enumerate(user_ids)}
    users = np.asarray([number[names[i]] for i in keep.tolist()], dtype=np.int32)
    order = np.lexsort((np.arange(len(keep)), times[keep], users))
    rated_below: dict[str, list[int]] = {}
    rated_below_times: dict[str, list[float]] = {}
    for row in np.flatnonzero(~positive).tolist():
        rated_below.setdefault(names[row], []).append(int(items[row]))
        rated_below_times.setdefault(names[row], []).append(float(times[row]))
    return Events(
        user_ids=user_ids,
        users=users[order],
        items=np.asarray(items[keep], dtype=np.int32)[order],
        times=np.asarray(times[keep], dtype=np.float64)[order],
        rated_below=rated_below,
        rated_below_times=rated_below_times,
    )


@dataclass
class Merged:
    """Stored and new events together, and what the new file brought."""

    events: Events
    added: int  # new events kept (positive and rated below the threshold)
    added_positive: int
    known: int  # new events that were in the model already (or named twice in the file)
    new_users: int  # users with positive events now who had none before


def merge_events(stored: Events, new: Events, n_items: int) -> Merged:
    """``stored`` and the events of ``new`` that are not in it yet, an event being its
    (user, item, time); the result orders them as reading ``stored``'s rows, then ``new``'s,
    from one file would."""
    old_names, old_items, old_times, old_positive = _rows(stored)
    new_names, new_items, new_times, new_positive = _rows(new)
    names = old_names + new_names
    items = np.concatenate([old_items, new_items])
    times = np.concatenate([old_times, new_times])
    positive = np.concatenate([old_positive, new_positive])
    fresh = np.zeros(len(names), dtype=bool)
    fresh[len(old_names) :] = True
    number: dict[str, int] = {}
    user = np.fromiter((number.setdefault(n, len(number)) for n in names), np.int64, len(names))
    key = user * np.int64(max(n_items, 1)) + items
    # equal (user, item, time) side by side, the earlier row first: a new row equal to the
    # one before it is an event seen already (duplicates among the stored rows stay, as train
    # kept them)
    order = np.lexsort((np.arange(len(names)), times, key))
    repeat = np.zeros(len(names), dtype=bool)
    repeat[order[1:]] = (key[order][1:] == key[order][:-1]) & (
        times[order][1:] == times[order][:-1]
    )
    drop = repeat & fresh
    keep = np.flatnonzero(~drop)
    merged = _events_from_rows(
        [names[i] for i in keep.tolist()], items[keep], times[keep], positive[keep]
    )
    kept_new = fresh & ~drop
    return Merged(
        events=merged,
        added=int(kept_new.sum()),
        added_positive=int((kept_new & positive).sum()),
        known=int(drop.sum()),
        new_users=len(set(merged.user_ids) - set(stored.user_ids)),
    )


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
    from tunesmith_recommend.model import Recommender

    current = Recommender(model_dir)
    scale = ServingScale.from_meta(current.meta)
    stored = read_events(model_dir) if scale is not None else None
    columns = columns_for(current.meta, given, model_dir)
    catalogue = Catalogue(ids=current.ids, titles=current.titles, texts=current.texts)
    assert columns.user and columns.item and columns.time  # filled in by columns_for
    rebuilt_from: Path | None = None
    if stored is None or scale is None:
        # a model saved before train kept its events: read them again from the file it records
        from tunesmith_recommend.legacy_events import rebuild_events

        rebuilt_from, stored, scale = rebuild_events(model_dir, current, catalogue, columns)
    new = load_events(
        events_path,
        catalogue,
        user_col=columns.user,
        item_col=columns.item,
        time_col=columns.time,
        rating_col=columns.rating,
        min_rating=columns.min_rating,
        kind_col=columns.kind,
        kinds=columns.kinds,
        not_in=f"the model's catalogue (add new items first: tunesmith recommend add-items "
        f"--items FILE -m {model_dir})",
        allow_empty=True,
    )
    merged = merge_events(stored, new, len(current.ids))
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
    signals = serving_signals(current.signals, events, len(current.ids), scale)
    with atomic_directory(model_dir, force=True) as tmp:
        shutil.copytree(model_dir, tmp, dirs_exist_ok=True)
        write_serving_state(tmp, signals, events, current.ids)
        meta = {**current.meta, "n_users": len(events.user_ids), "serving_events": len(events)}
        meta["added_events"] = int(current.meta.get("added_events", 0)) + merged.added
        if rebuilt_from is not None:
            # the model now keeps its events (events.npz) and how they are counted, as a model
            # saved by today's train: the next add-events reads neither file again
            meta["serving_scale"] = scale.to_json()
            meta["event_columns"] = columns.recorded()
        atomic_write_json(tmp / "meta.json", meta)
    return done
