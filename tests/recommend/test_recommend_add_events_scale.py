"""`recommend add-events` at scale: a day's update costs the day, and counts as a recount of
every event would.

At a million stored events the update read, merged and sorted every stored event as Python
strings and float times, and deflated the co-occurrence matrix (7.4 s for 1,000 new events).
It now handles users as integer codes, sorts only the rows of the users the day touches, and
writes the matrix uncompressed; these tests pin that its results stay those of one recount of
all the events. Data sets are small, random and seeded; nothing is downloaded.
"""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tunesmith_recommend.data import Catalogue, Events, load_events

N_ITEMS = 40
CAP = 20  # cooc_max_history: the heavy user's 30 distinct items pass it
MIN_RATING = 4.0
T0 = 1_700_000_000
HALF_LIFE = 5 * 86400.0
FILES = ("events.npz", "histories.json", "rated_below.json", "signals.npz", "cooc.npz")


def _catalogue() -> Catalogue:
    ids = [f"i{i:02d}" for i in range(N_ITEMS - 1)] + ["livre-été"]
    return Catalogue(ids=ids, titles=ids, texts=ids)


def _write(path: Path, rows: list[tuple[str, str, int, int]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "rating", "timestamp"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The stored events, a day's file and every distinct event at once, as CSV files.

    The day brings later events of known users, the first ones of a new user, a late event
    (older than the stored newest), ratings below the threshold, events the model holds
    already and a row the file names twice. The heavy user's history passes the cap, with tied
    times; the stored file repeats one row (train counts it twice, and so does the update).
    """
    rng = np.random.default_rng(7)
    ids = _catalogue().ids
    users = [f"u{u:03d}" for u in range(150)] + ["zoë", 'o"neil']
    stored = []
    for user in users:
        for _ in range(int(rng.integers(2, 9))):
            item = ids[int(rng.integers(N_ITEMS))]
            stored.append(
                (user, item, int(rng.integers(1, 6)), T0 + int(rng.integers(0, 90 * 86400)))
            )
    heavy = rng.permutation(N_ITEMS)[:30]
    for k, item in enumerate(heavy.tolist()):
        # pairs of items at the same time: the cap keeps the newest, ties in item order
        stored.append(("heavy", ids[item], 5, T0 + 86400 * (k // 2)))
    stored.append(stored[3])
    newest = max(row[3] for row in stored)
    day = [
        ("u001", ids[5], 5, newest + 3600),
        ("u001", ids[6], 2, newest + 3700),  # rated below the threshold
        ("u002", ids[7], 4, newest - 30 * 86400),  # a late arrival
        ("heavy", ids[int(heavy[0])], 5, newest + 60),  # its oldest item comes back newest
        ("heavy", ids[int(rng.permutation(np.setdiff1d(np.arange(N_ITEMS), heavy))[0])], 5, newest),
        ("newbie", ids[1], 5, newest + 10),
        ("newbie", ids[-1], 5, newest + 20),
        ("newbie", ids[-1], 5, newest + 20),  # named twice
        ("zoë", ids[9], 1, newest + 30),  # rated below the threshold
        stored[0],  # in the model already
        stored[10],
    ]
    # every distinct event once, in the order add-events reads them: the stored rows (their
    # repeat too), then the day's that are new
    every, seen = list(stored), {(u, i, t) for u, i, _, t in stored}
    for user, item, rating, time in day:
        if (user, item, time) not in seen:
            every.append((user, item, rating, time))
            seen.add((user, item, time))
    base = tmp_path_factory.mktemp("shop")
    return {
        "stored": _write(base / "stored.csv", stored),
        "day": _write(base / "day.csv", day),
        "every": _write(base / "every.csv", every),
        "added": len(day) - 3,
    }


def _read(path: Path, *, allow_empty: bool = False) -> Events:
    return load_events(
        path,
        _catalogue(),
        rating_col="rating",
        min_rating=MIN_RATING,
        allow_empty=allow_empty,
    )


def _scale():
    from tunesmith_recommend.updates import ServingScale

    return ServingScale(
        half_life=HALF_LIFE, counts_total=1000.0, recent_total=100.0, cooc_max_history=CAP
    )


def _fitted():
    from tunesmith_recommend.ranker import Signals

    vectors = np.eye(N_ITEMS, 4)
    return Signals(vectors, None, None, None, np.ones(4), None, None)


def _save(out: Path, events: Events) -> Path:
    from tunesmith_recommend.updates import serving_signals, write_serving_state

    out.mkdir(parents=True)
    signals = serving_signals(_fitted(), events, N_ITEMS, _scale())
    write_serving_state(out, signals, events, _catalogue().ids)
    return out


def _update(model: Path, day: Path, out: Path):
    from tunesmith_recommend.updates import merge_events, read_events

    merged = merge_events(read_events(model), _read(day, allow_empty=True), N_ITEMS)
    _save(out, merged.events)
    return merged


def _naive_cooccurrence(events: Events) -> np.ndarray:
    """Item-item cosine of the users' latest CAP distinct items (ties: item order), by hand."""
    sets = []
    for items, times in events.sequences():
        latest: dict[int, float] = {}
        for item, time in zip(items.tolist(), times.tolist(), strict=True):
            latest[item] = max(time, latest.get(item, -np.inf))
        sets.append(sorted(latest, key=lambda i: (-latest[i], i))[:CAP])
    together = np.zeros((N_ITEMS, N_ITEMS))
    for kept in sets:
        together[np.ix_(kept, kept)] += 1
    norm = 1 / np.sqrt(np.maximum(np.diag(together), 1))
    sim = together * norm[:, None] * norm[None, :]
    np.fill_diagonal(sim, 0)
    return sim


def test_a_days_update_writes_what_one_recount_of_every_event_writes(shop, tmp_path):
    """Stored events, then the day merged into them and recounted, give the same files, byte
    for byte, as all the distinct events counted at once; and those counts are the by-hand
    ones (a history past the cap, a late event that does not move "now" back)."""
    model = _save(tmp_path / "model", _read(shop["stored"]))
    merged = _update(model, shop["day"], tmp_path / "updated")
    every = _read(shop["every"])
    reference = _save(tmp_path / "at_once", every)

    assert (merged.added, merged.known, merged.new_users) == (shop["added"], 3, 1)
    for name in FILES:
        assert (tmp_path / "updated" / name).read_bytes() == (reference / name).read_bytes(), name

    from scipy.sparse import load_npz

    cooc = load_npz(tmp_path / "updated" / "cooc.npz").toarray()
    assert np.allclose(cooc, _naive_cooccurrence(every), atol=1e-6)
    with np.load(tmp_path / "updated" / "signals.npz") as signals:
        counts, recent, age = signals["counts"], signals["recent"], signals["age"]
    now = every.times.max()
    by_hand = np.bincount(every.items, minlength=N_ITEMS).astype(float)
    decayed = np.bincount(every.items, 0.5 ** ((now - every.times) / HALF_LIFE), N_ITEMS)
    assert np.allclose(counts, by_hand * 1000.0 / by_hand.sum())
    assert np.allclose(recent, decayed * 100.0 / decayed.sum())
    latest = np.full(N_ITEMS, -np.inf)
    np.maximum.at(latest, every.items, every.times)
    assert np.array_equal(age, now - latest)


def test_merged_events_are_those_read_from_one_file(shop, tmp_path):
    """Users in id order, each user's events by time (a late one in its place), the ratings
    below the threshold per user in file order, the new user known."""
    model = _save(tmp_path / "model", _read(shop["stored"]))
    merged = _update(model, shop["day"], tmp_path / "updated").events
    every = _read(shop["every"])
    assert merged.user_ids == every.user_ids and "newbie" in merged.user_ids
    for name in ("users", "items", "times"):
        assert np.array_equal(getattr(merged, name), getattr(every, name)), name
    assert merged.rated_below == every.rated_below
    assert merged.rated_below_times == every.rated_below_times


def test_a_days_update_sorts_only_the_rows_of_the_users_it_touches(shop, tmp_path, monkeypatch):
    """Reading, merging and recounting sort by time only the day's users' rows (and the
    capped history's pairs), never every stored event: that sort was a second of every
    update at a million events."""
    model = _save(tmp_path / "model", _read(shop["stored"]))
    stored = len(np.load(model / "events.npz")["users"])
    sorted_rows: list[int] = []
    lexsort = np.lexsort

    def counting(keys, *args, **kwargs):
        sorted_rows.append(len(keys[-1]))
        return lexsort(keys, *args, **kwargs)

    monkeypatch.setattr(np, "lexsort", counting)
    _update(model, shop["day"], tmp_path / "updated")
    assert sorted_rows and max(sorted_rows) < stored / 4, (sorted_rows, stored)


def test_cooccurrence_is_stored_uncompressed(shop, tmp_path):
    """Deflating it was 1.4 s of an update at a million events, for 5 MB less on disk."""
    model = _save(tmp_path / "model", _read(shop["stored"]))
    with zipfile.ZipFile(model / "cooc.npz") as stored:
        assert {info.compress_type for info in stored.infolist()} == {zipfile.ZIP_STORED}


def test_histories_json_is_byte_for_byte_what_indented_json_writes(tmp_path):
    """Written by hand for speed, it stays the file ``atomic_write_json`` wrote: names and ids
    that need escaping, non-ASCII ones, a user with one item."""
    from tunesmith_recommend.updates import histories_json

    ids = ['say "hi"', "back\\slash", "été", "tab\there", "line\u2028sep"]
    names = ['o"neil', "zoë", "\\root", "solo"]
    events = Events(
        user_ids=names,
        users=np.asarray([0, 0, 0, 1, 1, 2, 3], dtype=np.int32),
        items=np.asarray([0, 1, 2, 3, 4, 1, 2], dtype=np.int32),
        times=np.arange(7, dtype=np.float64),
    )
    histories = {
        user: [ids[i] for i in items]
        for user, (items, _) in zip(names, events.sequences(), strict=True)
    }
    assert histories_json(events, ids) == json.dumps(histories, indent=2, ensure_ascii=False) + "\n"
    empty = Events(
        user_ids=[], users=np.zeros(0, np.int32), items=np.zeros(0, np.int32), times=np.zeros(0)
    )
    assert histories_json(empty, ids) == json.dumps({}, indent=2) + "\n"
