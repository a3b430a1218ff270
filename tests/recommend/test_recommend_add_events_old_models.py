"""`recommend add-events` on a model saved by a train from before it kept its events (no
``events.npz``, no ``serving_scale`` or ``event_columns`` in ``meta.json``): the events are read
again from the file train recorded, checked against the model, and the model is upgraded.

A tiny model is fitted in-process on the sample's older events and saved; the "old" copy has
what an older train did not write taken out.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tunesmith_recommend.data import load_events, load_items, sample_paths

CUT = "2026-04-01"
COLUMNS = {"rating_col": "rating", "min_rating": 4.0}


def run(*args):
    from tunesmith.cli import build_app

    return CliRunner().invoke(build_app(), [str(a) for a in args])


@pytest.fixture(scope="module")
def days(tmp_path_factory):
    """The sample's events before CUT (the training file) and after it (a day's file)."""
    base = tmp_path_factory.mktemp("days")
    header, *rows = sample_paths()["events"].read_text(encoding="utf-8").splitlines()
    old = [r for r in rows if r.split(",")[3] < CUT]
    new = [r for r in rows if r.split(",")[3] >= CUT]
    for name, part in (("a", old), ("b", new)):
        (base / f"{name}.csv").write_text("\n".join([header, *part]) + "\n", encoding="utf-8")
    return {"a": base / "a.csv", "b": base / "b.csv"}


@pytest.fixture(scope="module")
def saved(tiny_model, days, tmp_path_factory):
    """A model saved from the training file by today's code (it keeps events.npz)."""
    from tunesmith_recommend import model
    from tunesmith_recommend.pipeline import Settings, fit

    catalogue = load_items(sample_paths()["items"])
    events = load_events(days["a"], catalogue, **COLUMNS)
    settings = Settings(model=tiny_model, fine_tune=False, baselines=False, tower_epochs=1)
    fitted = fit(catalogue, events, tmp_path_factory.mktemp("work"), settings, say=lambda _: None)
    return model.save(fitted, tmp_path_factory.mktemp("saved") / "model", extra_meta=COLUMNS)


def _copy(saved: Path, to: Path, *, old: bool) -> Path:
    shutil.copytree(saved, to)
    if old:  # as a train from before add-events saved it
        (to / "events.npz").unlink()
        meta = json.loads((to / "meta.json").read_text(encoding="utf-8"))
        del meta["serving_scale"], meta["event_columns"]
        (to / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return to


def _meta(path: Path) -> dict:
    return json.loads((path / "meta.json").read_text(encoding="utf-8"))


def _files(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


def test_add_events_on_a_model_without_events_npz_serves_as_one_that_kept_them(
    saved, days, tmp_path
):
    from tunesmith_recommend.model import Recommender
    from tunesmith_recommend.updates import EventColumns, add_events

    old = _copy(saved, tmp_path / "old", old=True)
    kept = _copy(saved, tmp_path / "kept", old=False)
    done = add_events(old, days["b"], EventColumns(rating="rating"))
    reference = add_events(kept, days["b"], EventColumns())
    assert done.rebuilt_from == days["a"] and reference.rebuilt_from is None
    assert (done.added, done.new_users, done.events) == (
        reference.added,
        reference.new_users,
        reference.events,
    )
    for name in ("histories.json", "rated_below.json", "cooc.npz", "events.npz"):
        assert (old / name).read_bytes() == (kept / name).read_bytes(), name
    # upgraded: the next add-events reads events.npz and the recorded scale, not the file
    for key in ("event_columns", "n_users", "serving_events", "added_events"):
        assert _meta(old)[key] == _meta(kept)[key], key
    # the totals are the stored counts' sums (their last bit may differ), the half-life exact
    assert _meta(old)["serving_scale"] == pytest.approx(_meta(kept)["serving_scale"], rel=1e-12)
    updated, expected = Recommender(old), Recommender(kept)
    for key in ("counts", "recent", "age"):
        np.testing.assert_allclose(
            getattr(updated.signals, key), getattr(expected.signals, key), rtol=1e-12
        )
    for user in sorted(expected.histories):
        got = [(r.item_id, r.because) for r in updated.for_user(user, k=10)]
        assert got == [(r.item_id, r.because) for r in expected.for_user(user, k=10)], user


def test_old_model_trained_with_min_rating_asks_for_the_rating_column_in_one_line(
    saved, days, tmp_path
):
    old = _copy(saved, tmp_path / "old", old=True)
    before = _files(old)
    result = run("recommend", "add-events", "--events", days["b"], "-m", old)
    assert result.exit_code != 0
    assert "trained with --min-rating 4 before the rating column was recorded" in result.output
    assert "--rating-col" in result.output and len(result.output.strip().splitlines()) == 1
    assert _files(old) == before


def test_old_model_whose_training_file_changed_is_refused_and_left_as_it_was(saved, days, tmp_path):
    old = _copy(saved, tmp_path / "old", old=True)
    grown = tmp_path / "events.csv"
    # the daily export the model was trained on, appended to since
    grown.write_text(
        days["a"].read_text(encoding="utf-8") + "u01,f017,5,2026-03-31T09:00:00Z\n",
        encoding="utf-8",
    )
    meta = _meta(old)
    meta["events_path"] = str(grown)
    (old / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    before = _files(old)
    result = run(
        "recommend", "add-events", "--events", days["b"], "-m", old, "--rating-col", "rating"
    )
    assert result.exit_code != 0
    assert f"{grown} is not the events it was trained on" in result.output
    assert "user 'u01'" in result.output and "--force" in result.output
    assert _files(old) == before


def test_old_model_whose_training_file_is_gone_says_what_to_rerun(saved, days, tmp_path):
    old = _copy(saved, tmp_path / "old", old=True)
    meta = _meta(old)
    meta["events_path"] = str(tmp_path / "moved.csv")
    (old / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    result = run(
        "recommend", "add-events", "--events", days["b"], "-m", old, "--rating-col", "rating"
    )
    assert result.exit_code != 0
    assert "moved.csv, is gone" in result.output
    assert f"tunesmith recommend train ... --out {old} --force" in result.output
