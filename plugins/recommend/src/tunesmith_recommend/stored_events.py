"""The events a model serves from as ``events.npz`` keeps them, and a day's events merged into
them (``add-events``).

Events are handled as rows whose user is an integer code into a sorted list of the distinct user
names. At a million stored events a Python string per row (building, hashing and sorting them)
was most of an update's time: reading and merging took 3.1 s of 7.4 s, now 0.4 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tunesmith_recommend.data import Events

#: The events a model serves from (see ``updates``' module docstring).
EVENTS_FILE = "events.npz"


@dataclass(frozen=True)
class Rows:
    """Events as rows: each row's user (a code into ``names``, sorted and distinct), item,
    time and whether it is positive (else rated below the threshold)."""

    names: list[str]
    users: np.ndarray  # int64
    items: np.ndarray  # int64
    times: np.ndarray  # float64
    positive: np.ndarray  # bool


def rows_of(events: Events) -> Rows:
    """Every event as rows: the positive events in their order, then each user's ratings below
    the threshold (users in name order, each user's in file order)."""
    below_users = sorted(user for user, items in events.rated_below.items() if len(items))
    with_events = np.zeros(len(events.user_ids), dtype=bool)
    with_events[np.asarray(events.users, dtype=np.int64)] = True
    positive_users = [events.user_ids[u] for u in np.flatnonzero(with_events).tolist()]
    names = sorted(set(positive_users) | set(below_users))
    number = {name: code for code, name in enumerate(names)}
    code_of = np.asarray([number.get(name, -1) for name in events.user_ids], dtype=np.int64)
    users = [code_of[np.asarray(events.users, dtype=np.int64)]]
    items = [np.asarray(events.items, dtype=np.int64)]
    times = [np.asarray(events.times, dtype=np.float64)]
    for user in below_users:
        below = events.rated_below[user]
        users.append(np.full(len(below), number[user], dtype=np.int64))
        items.append(np.asarray(below, dtype=np.int64))
        times.append(np.asarray(events.rated_below_times.get(user, []), dtype=np.float64))
    positive = np.zeros(sum(len(u) for u in users), dtype=bool)
    positive[: len(events)] = True
    return Rows(
        names, np.concatenate(users), np.concatenate(items), np.concatenate(times), positive
    )


def by_user_then_time(users: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The order ``np.lexsort((np.arange(n), times, users))`` gives (by user, then time, then
    row), sorting by time only the users whose rows are not in time order already: a model's
    stored rows are, and a day's file touches few users (sorting a million float times was a
    second of every update)."""
    order = np.argsort(users, kind="stable")
    by_user, at = users[order], times[order]
    back = (by_user[1:] == by_user[:-1]) & (at[1:] < at[:-1])
    if back.any():
        rows = np.flatnonzero(np.isin(by_user, np.unique(by_user[1:][back])))
        # those users' rows are whole runs, in user order: sorted among themselves they stay
        # in their places
        order[rows] = order[rows][np.lexsort((order[rows], at[rows], by_user[rows]))]
    return order


def to_events(rows: Rows) -> Events:
    """Rows (in file order) as :class:`Events`, as ``data.load_events`` orders them: users in
    id order, each user's events by time, then row order; ratings below the threshold per
    user in row order."""
    keep = np.flatnonzero(rows.positive)
    codes = rows.users[keep]
    present = np.zeros(len(rows.names), dtype=bool)
    present[codes] = True
    # names are sorted, so the users with positive events keep their order when renumbered
    renumber = np.cumsum(present) - 1
    users = renumber[codes].astype(np.int32)
    order = by_user_then_time(users, rows.times[keep])
    rated_below: dict[str, list[int]] = {}
    rated_below_times: dict[str, list[float]] = {}
    below = np.flatnonzero(~rows.positive)
    for code, item, time in zip(
        rows.users[below].tolist(),
        rows.items[below].tolist(),
        rows.times[below].tolist(),
        strict=True,
    ):
        rated_below.setdefault(rows.names[code], []).append(item)
        rated_below_times.setdefault(rows.names[code], []).append(time)
    return Events(
        user_ids=[rows.names[c] for c in np.flatnonzero(present).tolist()],
        users=users[order],
        items=np.asarray(rows.items[keep], dtype=np.int32)[order],
        times=np.asarray(rows.times[keep], dtype=np.float64)[order],
        rated_below=rated_below,
        rated_below_times=rated_below_times,
    )


def write_events(path: Path, events: Events) -> None:
    """``events`` as ``events.npz`` (:func:`rows_of`'s rows)."""
    rows = rows_of(events)
    # user ids as one UTF-8 blob and its ends: a fixed-width string array is as wide as the
    # longest id for every user
    encoded = [name.encode("utf-8") for name in rows.names]
    np.savez(
        path,
        names=np.frombuffer(b"".join(encoded), dtype=np.uint8),
        name_ends=np.cumsum([len(e) for e in encoded], dtype=np.int64),
        users=rows.users.astype(np.int32),
        items=rows.items.astype(np.int32),
        times=rows.times,
        positive=rows.positive,
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
    names = [blob[s:e].decode("utf-8") for s, e in zip(starts, ends, strict=True)]
    codes = np.asarray(users, dtype=np.int64)
    if names != sorted(names):  # written sorted; a file that is not gets renumbered
        rank = np.empty(len(names), dtype=np.int64)
        rank[sorted(range(len(names)), key=names.__getitem__)] = np.arange(len(names))
        names, codes = sorted(names), rank[codes]
    return to_events(
        Rows(names, codes, np.asarray(items, dtype=np.int64), np.asarray(times), positive)
    )


@dataclass
class Merged:
    """Stored and new events together, and what the new file brought."""

    events: Events
    added: int  # new events kept (positive and rated below the threshold)
    added_positive: int
    known: int  # new events that were in the model already (or named twice in the file)
    new_users: int  # users with positive events now who had none before


def _recoded(rows: Rows, number: dict[str, int]) -> np.ndarray:
    """``rows``' user codes as codes into the names ``number`` numbers."""
    return np.asarray([number[name] for name in rows.names], dtype=np.int64)[rows.users]


def merge_events(stored: Events, new: Events, n_items: int) -> Merged:
    """``stored`` and the events of ``new`` that are not in it yet, an event being its
    (user, item, time); the result orders them as reading ``stored``'s rows, then ``new``'s,
    from one file would."""
    old, day = rows_of(stored), rows_of(new)
    names = sorted(set(old.names) | set(day.names))
    number = {name: code for code, name in enumerate(names)}
    users = np.concatenate([_recoded(old, number), _recoded(day, number)])
    items = np.concatenate([old.items, day.items])
    times = np.concatenate([old.times, day.times])
    positive = np.concatenate([old.positive, day.positive])
    fresh = np.zeros(len(users), dtype=bool)
    fresh[len(old.users) :] = True
    key = users * np.int64(max(n_items, 1)) + items
    # Only a new row can be dropped, and only as a repeat of a row of the same user: sort the
    # rows of the day's users alone, equal (user, item, time) side by side, the earlier row
    # first. A new row equal to the one before it is an event seen already (duplicates among
    # the stored rows stay, as train kept them).
    touched = np.zeros(len(names), dtype=bool)
    touched[users[fresh]] = True
    rows = np.flatnonzero(touched[users])
    order = rows[np.lexsort((rows, times[rows], key[rows]))]
    repeat = np.zeros(len(users), dtype=bool)
    repeat[order[1:]] = (key[order[1:]] == key[order[:-1]]) & (
        times[order[1:]] == times[order[:-1]]
    )
    drop = repeat & fresh
    keep = np.flatnonzero(~drop)
    merged = to_events(Rows(names, users[keep], items[keep], times[keep], positive[keep]))
    kept_new = fresh & ~drop
    return Merged(
        events=merged,
        added=int(kept_new.sum()),
        added_positive=int((kept_new & positive).sum()),
        known=int(drop.sum()),
        new_users=len(set(merged.user_ids) - set(stored.user_ids)),
    )
