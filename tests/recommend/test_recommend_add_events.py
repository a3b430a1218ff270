"""`recommend add-events`: a day's new events reach a trained model without retraining it.

The sample's events are cut in two: the model is fitted on the older part (A) with three users
left out, and the rest (B: later events of known users, and the three users' whole histories)
arrives as a day's file. Models are tiny and built in-process (nothing is downloaded).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tunesmith_recommend.data import load_events, load_items, sample_paths

NEW_USERS = ("u58", "u59", "u60")
CUT = "2026-04-01"
#: the model counts ratings of 4 or more as positive: the rest go to rated_below.json
COLUMNS = {"rating_col": "rating", "min_rating": 4.0}


def run(*args):
    from tunesmith.cli import build_app

    return CliRunner().invoke(build_app(), [str(a) for a in args])


def _write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def days(tmp_path_factory):
    """The sample's events as the training file (A), the day's file (B) and both at once."""
    base = tmp_path_factory.mktemp("days")
    header, *rows = sample_paths()["events"].read_text(encoding="utf-8").splitlines()
    old = [r for r in rows if r.split(",")[0] not in NEW_USERS and r.split(",")[3] < CUT]
    new = [r for r in rows if r not in set(old)]
    return {
        "header": header,
        "a": _write(base / "a.csv", header, old),
        "b": _write(base / "b.csv", header, new),
        "ab": _write(base / "ab.csv", header, old + new),
    }


@pytest.fixture(scope="module")
def fitted(tiny_model, days, tmp_path_factory):
    """The pipeline fitted on A (pretrained tower, --min-rating 4)."""
    from tunesmith_recommend.pipeline import Settings, fit

    catalogue = load_items(sample_paths()["items"])
    events = load_events(days["a"], catalogue, **COLUMNS)
    settings = Settings(model=tiny_model, fine_tune=False, baselines=False, tower_epochs=1)
    work = tmp_path_factory.mktemp("work")
    return fit(catalogue, events, work, settings, say=lambda _: None)


def _save(fitted, out: Path) -> Path:
    from tunesmith_recommend import model

    # as `train --rating-col rating --min-rating 4` saves it (the columns come with the events)
    return model.save(fitted, out, extra_meta={"min_rating": 4.0})


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    """The model saved from A's events: copy it before changing it."""
    return _save(fitted, tmp_path_factory.mktemp("saved") / "model")


@pytest.fixture
def model_dir(saved, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(saved, copy)
    return copy


def _files(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


def test_added_events_serve_exactly_as_a_model_saved_from_all_events_at_once(
    fitted, days, model_dir, tmp_path
):
    """The equivalence add-events promises: the same fitted towers and ranker, served from A
    then B added, rank every user as when saved from A and B at once (what `train` writes
    from the same fit). Retraining on A and B would refit the towers: not promised."""
    from tunesmith_recommend.model import Recommender
    from tunesmith_recommend.updates import EventColumns, add_events

    done = add_events(model_dir, days["b"], EventColumns())
    assert done.added > 0 and done.known == 0 and done.new_users >= len(NEW_USERS)
    catalogue = fitted.catalogue
    at_once = dataclasses.replace(fitted, events=load_events(days["ab"], catalogue, **COLUMNS))
    reference = _save(at_once, tmp_path / "at_once")

    for name in ("histories.json", "rated_below.json", "cooc.npz", "events.npz"):
        assert (model_dir / name).read_bytes() == (reference / name).read_bytes(), name
    updated, expected = Recommender(model_dir), Recommender(reference)
    for key in ("counts", "recent", "age", "prior"):
        assert np.array_equal(getattr(updated.signals, key), getattr(expected.signals, key)), key
    assert set(NEW_USERS) <= set(updated.histories)
    for user in sorted(expected.histories):
        got = [(r.item_id, r.score, r.because) for r in updated.for_user(user, k=10)]
        want = [(r.item_id, r.score, r.because) for r in expected.for_user(user, k=10)]
        assert got == want, user
    meta = json.loads((model_dir / "meta.json").read_text())
    assert meta["n_users"] == len(expected.histories)
    assert meta["serving_events"] == len(at_once.events)
    assert meta["added_events"] == done.added


def test_the_same_file_twice_adds_nothing_and_leaves_the_model_byte_for_byte(days, model_dir):
    from tunesmith_recommend.updates import EventColumns, add_events

    first = add_events(model_dir, days["b"], EventColumns())
    before = _files(model_dir)
    again = add_events(model_dir, days["b"], EventColumns())
    assert (again.added, again.known) == (0, first.added)
    assert _files(model_dir) == before


def test_an_event_is_its_user_item_and_time(days, model_dir, tmp_path):
    """A row repeated in the day's file, or one already in the model, counts once; the same
    user and item at another time is another event."""
    from tunesmith_recommend.model import Recommender
    from tunesmith_recommend.updates import EventColumns, add_events

    header = days["header"]
    known = days["a"].read_text().splitlines()[1]  # an event the model has
    user, item, _, _ = known.split(",")
    again = f"{user},{item},5,2026-04-25T10:00:00Z"
    day = _write(tmp_path / "day.csv", header, [known, again, again])
    done = add_events(model_dir, day, EventColumns())
    assert (done.added, done.known) == (1, 2)
    history = Recommender(model_dir).histories[user]
    assert history[-1] == item and history.count(item) >= 2


def test_new_users_become_known_and_bought_items_are_not_recommended_back(
    days, model_dir, tmp_path
):
    from tunesmith.errors import UserInputError
    from tunesmith_recommend.model import Recommender
    from tunesmith_recommend.updates import EventColumns, add_events

    with pytest.raises(UserInputError, match="no events in this model"):
        Recommender(model_dir).for_user("newbie")
    header = days["header"]
    rows = [
        "newbie,f001,5,2026-04-25T10:00:00Z",
        "newbie,f017,4,2026-04-25T10:05:00Z",
        "newbie,f042,2,2026-04-25T10:10:00Z",  # rated low: seen, never recommended back
    ]
    add_events(model_dir, _write(tmp_path / "day.csv", header, rows), EventColumns())
    recommender = Recommender(model_dir)
    assert recommender.histories["newbie"] == ["f001", "f017"]
    assert recommender.rated_below["newbie"] == ["f042"]
    shown = {r.item_id for r in recommender.for_user("newbie", k=len(recommender.ids))}
    assert shown and not shown & {"f001", "f017", "f042"}


def test_a_late_event_does_not_move_now_back(days, model_dir, tmp_path):
    """An event older than the model's newest (a late arrival) is counted, but recency and
    freshness stay measured from the newest event."""
    from tunesmith_recommend.model import Recommender
    from tunesmith_recommend.updates import EventColumns, add_events

    recommender = Recommender(model_dir)
    before = recommender.signals
    item = int(np.flatnonzero(before.counts == 0)[0])  # no event yet: its age is infinite
    row = f"u01,{recommender.ids[item]},5,2026-01-02T00:00:00Z"
    done = add_events(
        model_dir, _write(tmp_path / "late.csv", days["header"], [row]), EventColumns()
    )
    after = Recommender(model_dir).signals
    others = np.arange(len(before.age)) != item
    assert done.added == 1 and np.isfinite(after.age[item]) and after.age[item] > 0
    assert np.array_equal(after.age[others], before.age[others])
    # recent popularity is rescaled to the training split's total: every other item keeps its
    # share, so nothing was decayed by a "now" moved back to January
    ratio = after.recent[others] / np.where(before.recent[others] > 0, before.recent[others], 1)
    assert np.allclose(ratio[before.recent[others] > 0], ratio[before.recent[others] > 0][0])


def test_an_unknown_item_is_one_line_naming_file_row_and_column(days, model_dir, tmp_path):
    before = _files(model_dir)
    day = _write(
        tmp_path / "day.csv",
        days["header"],
        ["u01,f001,5,2026-04-25T10:00:00Z", "u01,n999,5,2026-04-25T11:00:00Z"],
    )
    result = run("recommend", "add-events", "-m", model_dir, "--events", day)
    assert result.exit_code == 2
    assert f"{day}:3, column 'item_id': item 'n999' is not in the model's catalogue" in (
        result.output
    )
    assert "add-items" in result.output
    assert _files(model_dir) == before


def test_cli_reads_the_columns_and_threshold_train_recorded_and_says_nothing_was_retrained(
    days, model_dir
):
    result = run("recommend", "add-events", "-m", model_dir, "--events", days["b"])
    assert result.exit_code == 0, result.output
    assert "new user(s)" in result.output and "not retrained" in result.output
    again = run("recommend", "add-events", "-m", model_dir, "--events", days["b"], "--json")
    payload = json.loads(again.output)
    assert payload["added"] == 0 and payload["retrained"] is False
    assert payload["already_in_model"] > 0


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--min-rating", "3"], "--min-rating 3: "),
        (["--kinds", "buy"], "--kinds buy: "),
    ],
)
def test_another_threshold_or_kinds_than_the_models_is_refused(days, model_dir, flags, said):
    result = run("recommend", "add-events", "-m", model_dir, "--events", days["b"], *flags)
    assert result.exit_code == 2 and said in result.output
    assert "trained with" in result.output or "trained without" in result.output


def test_a_model_saved_before_events_were_kept_whose_events_file_is_gone_is_refused_in_one_line(
    days, model_dir, tmp_path
):
    # with its training file in place, such a model is updated from it instead
    # (test_recommend_add_events_old_models.py)
    (model_dir / "events.npz").unlink()
    meta = json.loads((model_dir / "meta.json").read_text())
    (model_dir / "meta.json").write_text(json.dumps({**meta, "events_path": str(tmp_path / "x")}))
    result = run("recommend", "add-events", "-m", model_dir, "--events", days["b"])
    assert result.exit_code == 2
    assert "keeps no events" in result.output and "recommend train" in result.output


def test_add_events_is_refused_while_another_process_writes_the_model(days, model_dir):
    from tunesmith.locks import run_lock

    with run_lock(model_dir):
        result = run("recommend", "add-events", "-m", model_dir, "--events", days["b"])
    assert result.exit_code != 0 and "pid" in result.output


def test_added_items_then_their_events_are_no_longer_new(days, model_dir, tmp_path):
    """add-items then add-events: the item's first events make it a known item."""
    from tunesmith_recommend.data import load_items as read_items
    from tunesmith_recommend.model import Recommender, add_items

    new = tmp_path / "new.csv"
    new.write_text(
        "item_id,title,genres,description\nn001,Harbour of Stars,space opera,A rebel pilot.\n"
    )
    add_items(model_dir, read_items(new, min_items=1))
    assert Recommender(model_dir).cold[-1] == 1
    day = _write(tmp_path / "day.csv", days["header"], ["u01,n001,5,2026-04-25T10:00:00Z"])
    result = run("recommend", "add-events", "-m", model_dir, "--events", day)
    assert result.exit_code == 0, result.output
    recommender = Recommender(model_dir)
    assert recommender.cold[-1] == 0 and recommender.histories["u01"][-1] == "n001"


# ---------------------------------------------------------------- what an update writes


def _held(path: Path, side: Path) -> dict[str, Path]:
    """A hard link to each of ``path``'s files, kept in ``side``: the old version's files
    as they were, whatever happens to the folder's names."""
    held = {}
    for number, file in enumerate(sorted(p for p in path.rglob("*") if p.is_file())):
        side.mkdir(exist_ok=True)
        held[str(file.relative_to(path))] = side / str(number)
        (side / str(number)).hardlink_to(file)
    return held


def _unchanged(held: dict[str, Path], before: dict[str, bytes]) -> bool:
    return all(link.read_bytes() == before[name] for name, link in held.items())


def test_add_events_writes_only_the_counts_and_links_the_rest(days, model_dir, tmp_path):
    """A day's events change the counts: the vectors, index, encoder and towers were copied
    whole on every update (565 MB of a 1,000,000-event, 100,000-item model's 730 MB written).
    They are now hard links to the previous version's files, whose bytes stay as they were."""
    from tunesmith_recommend.updates import SERVING_FILES, EventColumns, add_events

    before = _files(model_dir)
    held = _held(model_dir, tmp_path / "held")
    add_events(model_dir, days["b"], EventColumns())
    rewritten = {*SERVING_FILES, "meta.json"}
    for name, link in held.items():
        assert (model_dir / name).samefile(link) is (name not in rewritten), name
    assert {"vectors.npy", "user_tower.npz", "catalogue.json"} <= set(held) - rewritten
    assert any(name.startswith("index/") for name in held)
    assert _unchanged(held, before)


def test_add_events_reads_the_counts_not_the_whole_model(days, model_dir, monkeypatch):
    """Loading the model (vectors, index, user tower, histories) took 1.4 s of CPU and half of
    add-events' 1.2 GB at 100,000 items, for parts it never used."""
    from tunesmith_recommend import model as model_module
    from tunesmith_recommend.updates import EventColumns, add_events

    def no_load(self):
        raise AssertionError("add-events loaded the whole model")

    monkeypatch.setattr(model_module.Recommender, "_load", no_load)
    assert add_events(model_dir, days["b"], EventColumns()).added > 0


def test_an_interrupted_add_events_leaves_the_old_model_whole(days, model_dir, monkeypatch):
    """The new version's files are links to the old one's until the switch: a failure while
    writing it must leave every old file's bytes, and the folder, as they were."""
    from tunesmith_recommend import updates

    before = _files(model_dir)
    real = updates.write_events

    def fail_midway(path, events):
        real(path, events)  # signals, co-occurrence and histories are written by now
        raise OSError("killed")

    monkeypatch.setattr(updates, "write_events", fail_midway)
    with pytest.raises(OSError, match="killed"):
        updates.add_events(model_dir, days["b"], updates.EventColumns())
    assert _files(model_dir) == before
    assert [p.name for p in model_dir.parent.iterdir()] == [model_dir.name]


def test_without_hard_links_add_events_copies_and_gives_the_same_model(
    days, saved, model_dir, tmp_path, monkeypatch
):
    """A file system without hard links gets copies: the same files as with links."""
    import os

    from tunesmith_recommend.updates import EventColumns, add_events

    linked = tmp_path / "linked"
    shutil.copytree(saved, linked)
    add_events(linked, days["b"], EventColumns())

    def no_links(*args, **kwargs):
        raise OSError("no hard links here")

    monkeypatch.setattr(os, "link", no_links)
    add_events(model_dir, days["b"], EventColumns())
    got, want = _files(model_dir), _files(linked)
    assert got.keys() == want.keys()
    assert all(got[name] == want[name] for name in got if name != "meta.json")


def test_add_items_links_what_new_items_do_not_change(model_dir, tmp_path, monkeypatch):
    """add-items copied the whole folder, loaded the whole model (a million events'
    histories too) and rewrote co-occurrence, deflated (125 MB and 12 s of CPU at 100,000
    items). The events, histories, user tower and co-occurrence are now links; serving pads
    co-occurrence to the catalogue, so an added item liked with others ranks as before."""
    from tunesmith_recommend import model as model_module
    from tunesmith_recommend.data import load_items as read_items

    liked = ["f001", "f017"]
    want = [(r.item_id, r.score) for r in model_module.Recommender(model_dir).for_liked(liked)]
    before = _files(model_dir)
    held = _held(model_dir, tmp_path / "held")
    new = tmp_path / "new.csv"
    new.write_text(
        "item_id,title,genres,description\nn001,Harbour of Stars,space opera,A rebel pilot.\n"
    )
    real_load = model_module.Recommender._load

    def no_load(self):
        raise AssertionError("add-items loaded the whole model")

    monkeypatch.setattr(model_module.Recommender, "_load", no_load)
    assert model_module.add_items(model_dir, read_items(new, min_items=1)) == 1
    monkeypatch.setattr(model_module.Recommender, "_load", real_load)
    for name in ("events.npz", "histories.json", "user_tower.npz", "cooc.npz", "ranker.json"):
        assert (model_dir / name).samefile(held[name]), name
    for name in model_module.ADD_ITEMS_REWRITES:
        assert name not in held or not (model_dir / name).samefile(held[name]), name
    assert _unchanged(held, before)
    served = model_module.Recommender(model_dir)
    assert served.signals.cooc.shape == (151, 151) and served.cold[-1] == 1
    got = served.for_liked([*liked, "n001"], k=151)
    assert {r.item_id for r in got} == set(served.ids) - {*liked, "n001"}
    assert [(r.item_id, r.score) for r in served.for_liked(liked)] == want


def _new_items(path: Path, first: int, count: int) -> Path:
    rows = [
        f"n{k:03d},New film {k},space opera|horror,A rebel pilot under a haunted lake {k}."
        for k in range(first, first + count)
    ]
    return _write(path, "item_id,title,genres,description", rows)


def _serves_the_same(one: Path, other: Path, new_ids: list[str]) -> None:
    """Two model folders serve the same catalogue, vectors, lists and neighbours."""
    from tunesmith_recommend.model import Recommender

    a, b = Recommender(one), Recommender(other)
    assert a.ids == b.ids and a.titles == b.titles and a.texts == b.texts
    assert np.array_equal(a.signals.item_vectors, b.signals.item_vectors)
    assert len(a.index) == len(b.index) == len(a.ids)

    def listed(found):
        return [(r.item_id, round(r.score, 9)) for r in found]

    for user in a.histories:
        assert listed(a.for_user(user)) == listed(b.for_user(user)), user
    assert listed(a.for_liked(["f001", new_ids[0]])) == listed(b.for_liked(["f001", new_ids[0]]))
    for item in (new_ids[0], "f001"):
        assert listed(a.similar(item, k=20)) == listed(b.similar(item, k=20)), item


def test_add_items_writes_the_new_items_alone_and_links_the_catalogues_files(
    model_dir, tmp_path, monkeypatch
):
    """add-items rewrote the whole vectors.npy and a whole index generation for a few new
    items (310 MB of a 300-item update at 100,000 items). They now go to an added part of
    their own (added_items.json, added_vectors.npy, added_index/); the catalogue's own files
    stay links to the old version's, and the model serves as one written whole."""
    from tunesmith_recommend import item_parts
    from tunesmith_recommend import model as model_module
    from tunesmith_recommend.data import load_items as read_items

    whole = tmp_path / "whole"
    shutil.copytree(model_dir, whole)
    before = _files(model_dir)
    held = _held(model_dir, tmp_path / "held")
    for first in (0, 2):  # two updates: the second keeps the first's items in the added part
        new = read_items(_new_items(tmp_path / f"new{first}.csv", first, 2), min_items=1)
        assert model_module.add_items(model_dir, new) == 2
    for name, link in held.items():
        if name.startswith("index/") or name in ("vectors.npy", "catalogue.json"):
            assert (model_dir / name).samefile(link), name
    assert _unchanged(held, before)
    assert np.load(model_dir / item_parts.ADDED_VECTORS).shape[0] == 4
    assert json.loads((model_dir / "catalogue.json").read_text())["ids"][-1] == "f150"
    assert json.loads((model_dir / "meta.json").read_text())["n_items"] == 154

    monkeypatch.setattr(item_parts, "MERGE_SHARE", 0.0)  # every add written whole, as before
    model_module.add_items(whole, read_items(_new_items(tmp_path / "all.csv", 0, 4), min_items=1))
    assert not (whole / item_parts.ADDED_CATALOGUE).exists()
    _serves_the_same(model_dir, whole, ["n000", "n003"])


def test_added_items_past_a_tenth_of_the_catalogue_are_written_whole_again(model_dir, tmp_path):
    """The added part is rewritten by each add-items and searched beside the index: past a
    tenth of the catalogue's own items (15 of the sample's 150) it is merged into the
    catalogue's files, and the model serves as before."""
    from tunesmith_recommend import item_parts
    from tunesmith_recommend import model as model_module
    from tunesmith_recommend.data import load_items as read_items

    first = read_items(_new_items(tmp_path / "a.csv", 0, 15), min_items=1)
    model_module.add_items(model_dir, first)
    assert len(item_parts.AddedItems.read(model_dir)) == 15
    kept = tmp_path / "kept"
    shutil.copytree(model_dir, kept)
    model_module.add_items(
        model_dir, read_items(_new_items(tmp_path / "b.csv", 15, 1), min_items=1)
    )
    for name in item_parts.ADDED_FILES:
        assert not (model_dir / name).exists(), name
    assert len(json.loads((model_dir / "catalogue.json").read_text())["ids"]) == 166
    assert np.load(model_dir / "vectors.npy").shape[0] == 166
    # the same item added to the copy that still has its added part: served the same
    item_parts_share = item_parts.MERGE_SHARE
    try:
        item_parts.MERGE_SHARE = 1.0
        model_module.add_items(kept, read_items(_new_items(tmp_path / "c.csv", 15, 1), min_items=1))
    finally:
        item_parts.MERGE_SHARE = item_parts_share
    assert len(item_parts.AddedItems.read(kept)) == 16
    _serves_the_same(model_dir, kept, ["n015", "n000"])


def test_the_demo_offers_items_added_since_the_catalogue_was_written_whole(model_dir, tmp_path):
    """The demo's item list read catalogue.json alone: items in the added part were missing
    from its "liked items" choices."""
    from tunesmith_recommend import model as model_module
    from tunesmith_recommend.data import load_items as read_items
    from tunesmith_recommend.demo import choices

    model_module.add_items(model_dir, read_items(_new_items(tmp_path / "n.csv", 0, 2), min_items=1))
    _, items = choices(str(model_dir))
    assert {"n000", "n001"} <= {value for _, value in items}
