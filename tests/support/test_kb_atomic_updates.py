"""`support train` and `support index` killed (SIGKILL) at any moment: the KB then loads and
answers exactly as before the run or exactly as after it, never a mix (the new index with the
old calibration, as a `train` killed after re-encoding left it)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from tunesmith.errors import UserInputError
from tunesmith_support.answer import Answerer
from tunesmith_support.sample import sample_paths

QUESTIONS = ["how much is delivery?", "can I return a tent", "will it rain tomorrow"]

#: Run in a subprocess: count the renames of one whole run on a copy, then for each rename a
#: forked child runs it again on its own copy and SIGKILLs itself just before that rename.
KILLER = textwrap.dedent(
    """
    import os, shutil, signal, sys
    from pathlib import Path

    kb, work, what = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

    def run(target):
        if what == "train":
            from tunesmith_support.learning import train_kb
            from tunesmith_support.sample import sample_paths
            train_kb(target, [sample_paths()["history"]], epochs=1.0, index_questions=True,
                     target_precision=0.5, device="cpu", log=lambda _m: None)
        else:
            from tunesmith_support.kbindex import build_index
            build_index(work / "sources", target)

    def counted(target, kill_at=None):
        calls = []
        real = os.replace, os.rename
        def wrap(fn):
            def inner(*args, **kwargs):
                calls.append(args)
                if len(calls) == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                return fn(*args, **kwargs)
            return inner
        os.replace, os.rename = wrap(real[0]), wrap(real[1])
        try:
            run(target)
        finally:
            os.replace, os.rename = real
        return len(calls)

    shutil.copytree(kb, work / "after")
    total = counted(work / "after")
    for n in range(1, total + 1):
        shutil.copytree(kb, work / f"kill{n}")
        pid = os.fork()
        if pid == 0:
            counted(work / f"kill{n}", kill_at=n)
            os._exit(0)  # not killed: the count was wrong
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), f"run {n} of {total} was not killed"
    print(total)
    """
)


def answers(kb):
    answerer = Answerer(kb)
    return [
        (a.decision, round(a.confidence, 4), [(c["id"], c["score"]) for c in a.candidates])
        for a in map(answerer.ask, QUESTIONS)
    ]


def kill_everywhere(kb, work, what):
    """Kill ``what`` (``train`` or ``index``) on copies of ``kb`` at each of its renames; the
    number of renames (each copy is ``work/killN``, a run not killed ``work/after``)."""
    done = subprocess.run(
        [sys.executable, "-c", KILLER, str(kb), str(work), what],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return int(done.stdout.split()[-1])


def check_old_or_new(kb, work, total, *, both_sides=True):
    before, after = answers(kb), answers(work / "after")
    assert before != after  # else the check below proves nothing
    seen = set()
    for n in range(1, total + 1):
        got = answers(work / f"kill{n}")
        assert got in (before, after), f"killed at rename {n} of {total}: {got}"
        seen.add("after" if got == after else "before")
    if both_sides:  # the kills fell both sides of the commit (`index` renames nothing after it)
        assert seen == {"before", "after"}


def test_train_killed_at_any_rename_leaves_the_old_kb_or_the_new_one(kb_copy, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    total = kill_everywhere(kb_copy, work, "train")
    assert total >= 6, total
    check_old_or_new(kb_copy, work, total)
    # The next run on a killed copy finishes and tidies what the killed one left.
    from tunesmith_support.kbindex import remove_unused
    from tunesmith_support.learning import train_kb

    killed = work / "kill2"
    train_kb(
        killed, [sample_paths()["history"]], epochs=1.0, target_precision=0.5, log=lambda _m: None
    )
    assert remove_unused(killed) == []
    assert not list(killed.glob("calibration-g*"))


def test_index_killed_at_any_rename_keeps_kb_json_and_the_index_together(kb_copy, tmp_path):
    work = tmp_path / "work"
    sources = work / "sources"
    shutil.copytree(sample_paths()["kb"], sources)
    faq = sources / "faq.csv"
    with faq.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rows[0]["answer"] = "Delivery is free on every order, whatever its size."
    del rows[1]
    with faq.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    total = kill_everywhere(kb_copy, work, "index")
    check_old_or_new(kb_copy, work, total, both_sides=False)
    for n in range(1, total + 1):
        kb = work / f"kill{n}"
        meta = json.loads((kb / "kb.json").read_text())
        assert meta["entries"] == len(Answerer(kb).entries), f"killed at rename {n}"


def test_a_calibration_older_than_the_tuned_encoder_is_refused_naming_what_to_run(
    kb_copy, tiny_model
):
    # What a `train` killed after re-encoding left before this version: kb.json on the new
    # encoder and index, calibration.json from the old one (written before `fitted_on`).
    from tunesmith_support.kbindex import (
        load_encoder,
        new_encoder_dir,
        open_index,
        reencode,
        stored_entries,
    )

    entries = stored_entries(open_index(kb_copy, load_encoder(kb_copy)))
    calibration = kb_copy / "calibration.json"
    data = json.loads(calibration.read_text())
    data.pop("fitted_on", None)
    old = calibration.read_text()
    target = new_encoder_dir(kb_copy)
    shutil.copytree(tiny_model, target)
    reencode(kb_copy, entries, target)
    calibration.write_text(json.dumps(data))
    day_ago = time.time() - 86400
    os.utime(calibration, (day_ago, day_ago))
    with pytest.raises(UserInputError, match=r"fitted on another encoder .* support train --kb"):
        Answerer(kb_copy)
    # The same file written by this version names its encoder: the mismatch is seen too.
    calibration.write_text(old)
    with pytest.raises(UserInputError, match="fitted on another encoder"):
        Answerer(kb_copy)
