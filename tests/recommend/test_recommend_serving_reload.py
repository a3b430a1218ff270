"""A long-lived process (a web app through `tunesmith_recommend.load`, the demo) follows the
model folder that an hourly `add-events` rewrites elsewhere: the new version is loaded off the
request path and swapped in whole; a version that fails to load leaves the old one serving.

The other process's update is `updates.add_events`, what `recommend add-events` runs (the
folder is renamed over the same way whoever writes it). Background loads are held back with
events, never waited for with sleeps.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from tunesmith_recommend.data import load_events, load_items, sample_paths

#: users of the day's file only: unknown to the model saved before it
NEW_USERS = ("u58", "u59", "u60")
CUT = "2026-04-01"
WAIT = 60  # seconds: only a broken test waits this long


def _write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def days(tmp_path_factory):
    """The sample's events cut in two: the training file and the day's file."""
    base = tmp_path_factory.mktemp("days")
    header, *rows = sample_paths()["events"].read_text(encoding="utf-8").splitlines()
    old = [r for r in rows if r.split(",")[0] not in NEW_USERS and r.split(",")[3] < CUT]
    new = [r for r in rows if r not in set(old)]
    return {"a": _write(base / "a.csv", header, old), "b": _write(base / "b.csv", header, new)}


@pytest.fixture(scope="module")
def saved(tiny_model, days, tmp_path_factory):
    """A model saved from the first part's events: copy it before changing it."""
    from tunesmith_recommend import model
    from tunesmith_recommend.pipeline import Settings, fit

    catalogue = load_items(sample_paths()["items"])
    events = load_events(days["a"], catalogue)
    settings = Settings(model=tiny_model, fine_tune=False, baselines=False, tower_epochs=1)
    fitted = fit(catalogue, events, tmp_path_factory.mktemp("work"), settings, say=lambda _: 0)
    return model.save(fitted, tmp_path_factory.mktemp("saved") / "model")


@pytest.fixture
def model_dir(saved, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(saved, copy)
    return copy


def _add_day(model_dir: Path, days) -> None:
    """The hourly job, as another process runs it: the folder is renamed over."""
    from tunesmith_recommend.updates import EventColumns, add_events

    assert add_events(model_dir, days["b"], EventColumns()).new_users >= len(NEW_USERS)


def _fresh(model_dir: Path, user: str) -> list[dict]:
    """What a process that loads the folder now answers."""
    from tunesmith_recommend.model import Recommender

    return [r.to_json() for r in Recommender(model_dir).for_user(user, 10)]


@pytest.fixture
def hold_loads(monkeypatch):
    """``hold_loads()``: from now on, loads are held back until ``release`` is set, and a load
    in the thread of a request (the test's main thread) fails the test: the request would
    have paid it. Returns (``started``, ``release``)."""
    from tunesmith_recommend import reload

    real = reload.read_model
    started, release = threading.Event(), threading.Event()

    def held(path, device):
        assert threading.current_thread() is not threading.main_thread(), "a request paid the load"
        started.set()
        assert release.wait(WAIT)
        return real(path, device)

    def hold():
        monkeypatch.setattr(reload, "read_model", held)
        return started, release

    return hold


def test_a_loaded_model_answers_from_the_old_version_at_once_then_from_the_new_one_loaded_in_the_background(
    model_dir, days, hold_loads
):
    import tunesmith_recommend as recommend
    from tunesmith.errors import UserInputError

    model = recommend.load(model_dir)
    before = model.for_user("u01")
    _add_day(model_dir, days)
    after = _fresh(model_dir, "u01")
    assert after != before  # the day has later events of u01

    started, release = hold_loads()
    # The request that notices the update is answered at once, from the version it had.
    assert model.for_user("u01") == before
    assert started.wait(WAIT) and model.reload_status["loading"]
    assert model.for_user("u01") == before  # so are the requests while the new one loads
    with pytest.raises(UserInputError, match="'u58' has no events"):
        model.for_user("u58")
    release.set()
    model.refresh()  # waits for the background load (and finds nothing newer to load)
    assert model.reload_status["generation"] == 2 and not model.reload_status["loading"]
    assert model.for_user("u01") == after
    assert model.for_user("u58") == _fresh(model_dir, "u58")


def test_a_request_under_way_when_the_new_version_is_swapped_in_is_answered_wholly_from_the_old(
    model_dir, days
):
    import tunesmith_recommend as recommend

    model = recommend.load(model_dir)
    before = model.for_user("u01")
    old = model._current()
    inside, go_on = threading.Event(), threading.Event()
    real = old.for_user

    def slow(user, k, **options):  # the request stops half-way until the swap is done
        inside.set()
        assert go_on.wait(WAIT)
        return real(user, k, **options)

    old.for_user = slow
    answers: list = []
    request = threading.Thread(target=lambda: answers.append(model.for_user("u01")))
    request.start()
    assert inside.wait(WAIT)
    _add_day(model_dir, days)
    assert model.refresh() is True  # the new version swapped in under the running request
    go_on.set()
    request.join(WAIT)
    assert answers == [before]
    assert model.for_user("u01") == _fresh(model_dir, "u01") != before


def _new_version(saved: Path, tmp: Path) -> None:
    """``saved``'s files as an update writes them: ``meta.json`` written now (a copy keeps its
    time, and with the inodes of a removed version reused it looked like that version)."""
    shutil.copytree(saved, tmp, dirs_exist_ok=True)
    (tmp / "meta.json").unlink()
    (tmp / "meta.json").write_bytes((saved / "meta.json").read_bytes())


def test_a_version_that_fails_to_load_leaves_the_old_one_serving_and_is_said_once(
    model_dir, saved, capsys
):
    import tunesmith_recommend as recommend
    from tunesmith.io import atomic_directory

    model = recommend.load(model_dir)
    before = model.for_user("u01")
    with atomic_directory(model_dir, force=True) as tmp:  # a new version with a corrupt file
        _new_version(saved, tmp)
        (tmp / "signals.npz").write_bytes(b"not a numpy archive")
    for _ in range(3):
        assert model.for_user("u01") == before
        model.refresh()  # the background load has ended; the failed version is not tried again
    said = [line for line in capsys.readouterr().err.splitlines() if "could not load" in line]
    assert len(said) == 1, said
    assert str(model_dir) in said[0] and "still serving the version loaded at" in said[0]
    assert model.reload_status["error"] and model.reload_status["generation"] == 1

    with atomic_directory(model_dir, force=True) as tmp:  # the next good version loads
        _new_version(saved, tmp)
    model.for_user("u01")
    model.refresh()
    assert model.reload_status["generation"] == 2 and model.reload_status["error"] is None


def test_reload_call_loads_in_the_request_and_never_keeps_the_version_loaded(model_dir, days):
    import tunesmith_recommend as recommend
    from tunesmith.errors import UserInputError

    on_call = recommend.load(model_dir, reload="call")
    pinned = recommend.load(model_dir, reload="never")
    before = pinned.for_user("u01")
    _add_day(model_dir, days)
    assert on_call.for_user("u01") == _fresh(model_dir, "u01") != before
    assert pinned.for_user("u01") == before and pinned.refresh() is True
    assert pinned.for_user("u01") != before
    with pytest.raises(UserInputError, match="reload must be one of background, call, never"):
        recommend.load(model_dir, reload="sometimes")


def test_the_demo_serves_the_new_version_after_add_events_without_a_request_paying_the_load(
    model_dir, days, hold_loads, monkeypatch
):
    from tunesmith_recommend import demo

    monkeypatch.setattr(demo, "_loaded", {})
    model = str(model_dir)

    def ask(user: str) -> str:
        return demo.recommend(model, demo.MODES[0], user, None, "", False)[0]

    assert "is not a user of this model" in ask("u58")
    _add_day(model_dir, days)
    started, release = hold_loads()
    assert "is not a user of this model" in ask("u58")  # at once, from the old version
    assert started.wait(WAIT)
    release.set()
    demo.versions_for(model).refresh()
    assert ask("u58").startswith("### For u58")
