"""Leave-last-out per user in time order: the last event is test, the one before it validation.

Users with fewer than ``min_events`` events keep all of them for training (they have no history
to be judged on). Models are fitted on the training events only. A validation request sees the
user's training events as history; a test request sees those plus the validation event, as it
would in use (the validation event is never a training example).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tunesmith_recommend.data import Events


@dataclass
class Requests:
    """One recommendation request per user: who, the history so far, and the held-out item."""

    users: np.ndarray  # int32 [m], indices into Events.user_ids
    targets: np.ndarray  # int32 [m], catalogue positions
    histories: list[np.ndarray]  # items seen before the target, oldest first
    history_times: list[np.ndarray]
    #: per request, the items rated below --min-rating before the held-out event (empty list:
    #: none anywhere): not history, but seen, so ranked out like the history, as serving does
    rated_below: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.users)

    @classmethod
    def none(cls) -> Requests:
        """No request at all (a split of training events only)."""
        return cls(
            users=np.zeros(0, dtype=np.int32),
            targets=np.zeros(0, dtype=np.int32),
            histories=[],
            history_times=[],
        )

    def subset(self, mask: np.ndarray) -> Requests:
        """The requests where ``mask`` is true."""
        keep = np.flatnonzero(mask)
        return Requests(
            users=self.users[keep],
            targets=self.targets[keep],
            histories=[self.histories[i] for i in keep],
            history_times=[self.history_times[i] for i in keep],
            rated_below=[self.rated_below[i] for i in keep] if self.rated_below else [],
        )

    def sample(self, max_requests: int | None, seed: int) -> Requests:
        """These requests, or a seeded sample of ``max_requests`` of them (in their order)."""
        if max_requests is None or len(self) <= max_requests:
            return self
        keep = np.zeros(len(self), dtype=bool)
        keep[np.random.default_rng(seed).choice(len(self), max_requests, replace=False)] = True
        return self.subset(keep)

    def seen(self) -> list[np.ndarray]:
        """Each request's items never to rank: its history and the items rated below
        --min-rating before the held-out event."""
        if not self.rated_below:
            return self.histories
        return [
            np.concatenate([h, below]).astype(h.dtype, copy=False)
            for h, below in zip(self.histories, self.rated_below, strict=True)
        ]


@dataclass
class Split:
    """Training events, validation and test requests."""

    n_items: int
    n_users: int
    fit_users: np.ndarray
    fit_items: np.ndarray
    fit_times: np.ndarray
    fit_sequences: list[tuple[np.ndarray, np.ndarray]]  # per user, the training part only
    val: Requests
    test: Requests

    @property
    def end_time(self) -> float:
        """The time of the last training event: "now" for recency features."""
        return float(self.fit_times.max())


def every_event(events: Events, n_items: int) -> Split:
    """All of ``events`` as training events, with no validation or test request: what a saved
    model serves from (its popularity, freshness and co-occurrence), never what it is judged on."""
    empty = Requests.none()
    return Split(
        n_items=n_items,
        n_users=len(events.user_ids),
        fit_users=np.asarray(events.users, dtype=np.int32),
        fit_items=np.asarray(events.items),
        fit_times=np.asarray(events.times, dtype=np.float64),
        fit_sequences=events.sequences(),
        val=empty,
        test=empty,
    )


def leave_last_out(events: Events, n_items: int, *, min_events: int = 3) -> Split:
    """Split ``events`` per user in time order (see the module docstring)."""
    if min_events < 3:
        raise ValueError("min_events must be at least 3 (history, validation, test)")
    fit_lengths: list[int] = []
    fit_items: list[np.ndarray] = []
    fit_times: list[np.ndarray] = []
    fit_sequences: list[tuple[np.ndarray, np.ndarray]] = []
    val: tuple[list, ...] = ([], [], [], [], [])
    test: tuple[list, ...] = ([], [], [], [], [])
    # A user who rated nothing low shares one empty array (an array per user for 100,000
    # readers was most of the split's time)
    nothing = np.zeros(0, dtype=events.items.dtype)
    no_times = np.zeros(0, dtype=np.float64)
    for user, (items, times) in enumerate(events.sequences()):
        cut = len(items) - 2 if len(items) >= min_events else len(items)
        fit_sequences.append((items[:cut], times[:cut]))
        fit_lengths.append(cut)
        fit_items.append(items[:cut])
        fit_times.append(times[:cut])
        if cut == len(items):
            continue
        name = events.user_ids[user]
        below, below_times = nothing, no_times
        if name in events.rated_below:
            below = np.asarray(events.rated_below[name], dtype=items.dtype)
            below_times = np.asarray(events.rated_below_times[name], dtype=np.float64)
        for bucket, end in ((val, cut), (test, cut + 1)):
            bucket[0].append(user)
            bucket[1].append(items[end])
            bucket[2].append(items[:end])
            bucket[3].append(times[:end])
            # rated low before this request: seen by then, as a history item is (a rating
            # made after it is the future, and is left in)
            bucket[4].append(below[below_times < times[end]])

    any_below = bool(events.rated_below)

    def requests(bucket: tuple[list, ...]) -> Requests:
        return Requests(
            users=np.asarray(bucket[0], dtype=np.int32),
            targets=np.asarray(bucket[1], dtype=np.int32),
            histories=bucket[2],
            history_times=bucket[3],
            rated_below=bucket[4] if any_below else [],
        )

    return Split(
        n_items=n_items,
        n_users=len(events.user_ids),
        fit_users=np.repeat(np.arange(len(fit_lengths), dtype=np.int32), fit_lengths),
        fit_items=np.concatenate(fit_items),
        fit_times=np.concatenate(fit_times),
        fit_sequences=fit_sequences,
        val=requests(val),
        test=requests(test),
    )
