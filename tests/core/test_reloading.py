"""`tunesmith.reloading.Reloading`: a value reloaded off the request path when its files'
stamp changes. Plain values and a stamp in a dict stand for a model and its folder; loads are
held back with events, never waited for with sleeps."""

from __future__ import annotations

import threading

import pytest

from tunesmith.errors import UserInputError
from tunesmith.reloading import Reloading

WAIT = 30


class Files:
    """A stand-in for a model folder: its stamp, and the version a load reads."""

    def __init__(self) -> None:
        self.stamp: int | None = 1
        self.version = "v1"
        self.loads: list[str] = []  # the thread of each load
        self.gate: threading.Event | None = None
        self.started = threading.Event()
        self.broken = False

    def load(self) -> str:
        self.loads.append(threading.current_thread().name)
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(WAIT)
        if self.broken:
            raise ValueError("bad file")
        return self.version

    def update(self, version: str) -> None:
        self.stamp = (self.stamp or 0) + 1
        self.version = version


def _reloading(files: Files, mode: str = "background", log=None) -> Reloading[str]:
    said = log if log is not None else (lambda _: None)
    return Reloading("v1", 1, files.load, lambda: files.stamp, mode=mode, log=said)


def test_background_mode_answers_from_the_old_value_until_the_new_one_is_loaded_in_a_thread():
    files = Files()
    versions = _reloading(files)
    assert versions.get() == "v1" and files.loads == []  # unchanged: nothing loaded
    files.update("v2")
    files.gate = threading.Event()
    assert versions.get() == "v1"  # the call that noticed is not held up
    assert files.started.wait(WAIT) and versions.loading
    assert versions.get() == "v1" and len(files.loads) == 1  # one load, not one per call
    files.gate.set()
    assert versions.wait(WAIT)
    assert versions.get() == "v2" and versions.status()["generation"] == 2
    assert files.loads == ["tunesmith-reload"]


def test_call_mode_loads_in_the_call_and_never_mode_only_when_refreshed():
    files = Files()
    on_call, pinned = _reloading(files, "call"), _reloading(files, "never")
    files.update("v2")
    assert on_call.get() == "v2" and files.loads == [threading.current_thread().name]
    assert pinned.get() == "v1" and len(files.loads) == 1
    assert pinned.refresh() is True and pinned.get() == "v2"
    with pytest.raises(UserInputError, match="reload must be one of background, call, never"):
        _reloading(files, "hourly")


def test_a_failed_load_keeps_the_old_value_is_said_once_and_is_tried_again_when_files_change():
    files, said = Files(), []
    versions = _reloading(files, log=said.append)
    files.update("v2")
    files.broken = True
    for _ in range(3):
        assert versions.get() == "v1"
        assert versions.wait(WAIT)
    assert len(files.loads) == 1 and len(said) == 1
    assert "ValueError: bad file" in said[0] and "still serving" in said[0]
    assert versions.status()["error"] == "ValueError: bad file"
    files.broken = False
    files.update("v3")
    versions.get()
    assert versions.wait(WAIT) and versions.get() == "v3" and versions.status()["error"] is None


def test_a_load_overtaken_by_a_rewrite_is_not_a_failure_and_the_newer_files_are_loaded_at_once():
    """A load that failed because the files were renamed over while it read them waited for
    the next check (a whole --reload-every on a server) before the newer files were loaded."""
    files, said = Files(), []
    versions = _reloading(files, mode="call", log=said.append)
    files.update("v2")
    files.broken = True
    real = files.load

    def overtaken() -> str:
        files.update("v3")  # the folder was renamed over while it was read
        files.broken = False
        files.load = real
        raise ValueError("half read")

    files.load = overtaken
    versions._load = lambda: files.load()
    assert versions.get() == "v3" and said == []  # not recorded as failed
    assert versions.status()["error"] is None and versions.generation == 2


def test_a_load_that_succeeded_across_a_rewrite_is_not_swapped_in_and_the_newer_files_are():
    """A load that read some files before a rewrite and some after may hold two versions: it
    was swapped in, to be replaced only at the next check."""
    files, swapped = Files(), []
    versions = Reloading(
        "v1", 1, lambda: files.load(), lambda: files.stamp, mode="never", on_swap=swapped.append
    )
    files.update("v2")
    real = files.load

    def read_across_a_rewrite() -> str:
        files.load = real
        files.update("v3")
        return "v2 and v3"

    files.load = read_across_a_rewrite
    assert versions.refresh() is True
    assert versions.value == "v3" and swapped == ["v3"] and versions.generation == 2


def test_rewrites_overtaking_every_load_stop_after_tries_and_leave_the_rest_to_the_next_check():
    files, said = Files(), []
    versions = Reloading(
        "v1", 1, files.load, lambda: files.stamp, mode="never", log=said.append, tries=2
    )
    real = files.load

    def always_overtaken() -> str:
        version = real()
        files.update("newer")
        return version

    versions._load = always_overtaken
    files.update("v2")
    assert versions.refresh() is False and len(files.loads) == 2
    assert versions.value == "v1" and versions.error is None and said == []
    versions._load = real
    assert versions.refresh() is True and versions.value == "newer"


def test_a_writer_starting_during_a_load_makes_it_overtaken_and_nothing_is_tried_meanwhile():
    """``current_stamp`` is None while a writer is at work (support's run lock)."""
    files = Files()
    writer = {"at_work": False}
    versions = Reloading(
        "v1",
        1,
        lambda: writer.update(at_work=True) or files.load(),
        lambda: None if writer["at_work"] else files.stamp,
        mode="never",
    )
    files.update("v2")
    assert versions.refresh() is False and len(files.loads) == 1  # not tried again mid-write
    assert versions.value == "v1" and versions.error is None
    writer["at_work"] = False
    versions._load = files.load
    assert versions.refresh() is True and versions.value == "v2"


def test_on_swap_is_told_of_each_new_version_once_it_serves_and_never_of_a_failed_one():
    files, told = Files(), []
    versions: Reloading[str]

    def on_swap(value: str) -> None:
        told.append((value, versions.value, versions.generation))

    versions = Reloading(
        "v1", 1, files.load, lambda: files.stamp, log=lambda _: None, on_swap=on_swap
    )
    files.update("v2")
    versions.get()
    assert versions.wait(WAIT) and told == [("v2", "v2", 2)]
    files.broken = True
    files.update("v3")
    assert versions.refresh() is False and len(told) == 1
    files.broken = False
    files.update("v4")
    assert versions.refresh() is True and told[-1] == ("v4", "v4", 3)


def test_a_failed_load_is_said_in_the_callers_wording_and_when_it_failed_is_kept():
    files, said = Files(), []
    versions = Reloading(
        "v1",
        1,
        files.load,
        lambda: files.stamp,
        mode="never",
        what="the knowledge base kb",
        log=said.append,
        failure="could not reload {what} ({error}); answering from the copy of {loaded_at}",
    )
    files.update("v2")
    files.broken = True
    assert versions.refresh() is False
    assert said == [
        f"could not reload the knowledge base kb (ValueError: bad file); answering from the "
        f"copy of {versions.loaded_at}"
    ]
    assert versions.error_at is not None and versions.error_at >= versions.loaded_at
    files.broken = False
    files.update("v3")
    assert versions.refresh() is True and versions.error is None and versions.error_at is None
