"""Re-encoding a KB with a tuned encoder: crash-safe, and the KB folder can be moved after."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tunesmith_support.answer import Answerer
from tunesmith_support.kbindex import (
    load_encoder,
    new_encoder_dir,
    open_index,
    reencode,
    remove_unused,
    stored_entries,
)


class Crash(BaseException):
    """A simulated kill: BaseException, so no `except Exception` cleanup runs."""


def tuned_copy(kb, tiny_model):
    """A stand-in for a freshly tuned encoder: the tiny model copied into the KB."""
    target = new_encoder_dir(kb)
    shutil.copytree(tiny_model, target)
    return target


def recalibrate(kb):
    """What `support train` does after re-encoding: a calibration fitted on the new encoder
    (the old one's is refused as a mix). Questions for entries the KB lacks are out of scope."""
    import csv

    from tunesmith_support.learning import Labelled, calibrate_kb
    from tunesmith_support.sample import sample_paths

    known = ids_of(kb)
    with sample_paths()["history"].open(encoding="utf-8") as handle:
        rows = [
            Labelled(r["question"], r["answer_id"] if r["answer_id"] in known else "", "", 0)
            for r in csv.DictReader(handle)
        ]
    calibrate_kb(kb, rows, target_precision=0.5)


def ids_of(kb):
    return {e.id for e in stored_entries(open_index(kb, load_encoder(kb)))}


def renames_in(kb, tiny_model, entries):
    """How many renames a whole re-encoding makes (each one a point a crash can hit)."""
    calls = []
    real = os.replace, os.rename

    def count(real_fn):
        def wrapper(*args, **kwargs):
            calls.append(args)
            return real_fn(*args, **kwargs)

        return wrapper

    os.replace, os.rename = count(real[0]), count(real[1])
    try:
        reencode(kb, entries, tuned_copy(kb, tiny_model))
    finally:
        os.replace, os.rename = real
    return len(calls)


def test_reencode_killed_at_any_rename_leaves_a_kb_that_opens(kb_copy, tiny_model, monkeypatch):
    before = {e.id for e in stored_entries(open_index(kb_copy, load_encoder(kb_copy)))}
    # A few entries keep each re-encoding quick, and tell the new index from the old one.
    entries = stored_entries(open_index(kb_copy, load_encoder(kb_copy)))[:6]
    after = {e.id for e in entries}
    probe = kb_copy.parent / "probe"
    shutil.copytree(kb_copy, probe)
    total = renames_in(probe, tiny_model, entries)
    assert total >= 3, total
    for crash_at in range(1, total + 1):
        kb = kb_copy.parent / f"crash{crash_at}"
        shutil.copytree(kb_copy, kb)
        seen = []

        def crashing(real_fn, crash_at=crash_at, seen=seen):
            def wrapper(*args, **kwargs):
                seen.append(args)
                if len(seen) == crash_at:
                    raise Crash(f"killed at rename {crash_at}")
                return real_fn(*args, **kwargs)

            return wrapper

        with monkeypatch.context() as patch:
            patch.setattr(os, "replace", crashing(os.replace))
            patch.setattr(os, "rename", crashing(os.rename))
            with pytest.raises(Crash):
                reencode(kb, entries, tuned_copy(kb, tiny_model))
        # Killed before kb.json points at the new index: the old KB; after: the new one.
        assert ids_of(kb) in (before, after), f"killed at rename {crash_at} of {total}"
    # The next training after a kill finishes and tidies what the killed one left.
    reencode(kb, entries, tuned_copy(kb, tiny_model))
    assert ids_of(kb) == after
    recalibrate(kb)
    assert Answerer(kb).ask("how much is shipping").candidates
    meta = json.loads((kb / "kb.json").read_text())
    assert sorted(p.name for p in (kb / "encoders").iterdir()) == [meta["model"].split("/")[-1]]
    assert sorted(p.name for p in kb.glob("index*")) == [meta["index"]]
    assert remove_unused(kb) == []


def test_trained_kb_still_opens_after_its_folder_is_moved(kb_copy, tiny_model, tmp_path):
    entries = stored_entries(open_index(kb_copy, load_encoder(kb_copy)))
    reencode(kb_copy, entries, tuned_copy(kb_copy, tiny_model))
    meta = json.loads((kb_copy / "kb.json").read_text())
    # Relative to the KB (the generation number is whatever is next: `index` took one too).
    assert meta["model"] == f"kb:encoders/{next(kb_copy.glob('encoders/g*')).name}"
    assert str(kb_copy) not in (kb_copy / "kb.json").read_text().replace(meta["sources"], "")
    moved = tmp_path / "elsewhere" / "kb"
    moved.parent.mkdir()
    shutil.move(str(kb_copy), str(moved))
    recalibrate(moved)
    answer = Answerer(moved).ask("how much is shipping")
    assert answer.candidates and str(moved) in str(load_encoder(moved).model.name_or_path)
