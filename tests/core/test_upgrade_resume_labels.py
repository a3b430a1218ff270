"""Upgrading with an interrupted run: `train --resume` of a run that an earlier tunesmith
started keeps the label order its checkpoints were trained with."""

from __future__ import annotations

import json
from pathlib import Path

from tunesmith.engine.config import RunConfig
from tunesmith.engine.stages import prepare
from tunesmith.engine.stages.state import Training
from tunesmith.engine.workdir import INPUTS_KEY, WORK_MARKER, _resume_settings, input_hashes

BY_NUMBER = [str(n) for n in range(12)]
AS_TEXT = sorted(BY_NUMBER)  # "0", "1", "10", "11", "2", ...: how labels were ordered before


def _run(tmp_path: Path, *, resume: bool) -> RunConfig:
    data = tmp_path / "d.csv"
    if not data.exists():
        rows = [f"word{n} text {k},{n}" for n in range(12) for k in range(3)]
        data.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return RunConfig(
        data=str(data), out=str(tmp_path / "model"), epochs=1, max_length=8, resume=resume
    ).validate()


def _prepared_labels(run: RunConfig) -> list[str]:
    state = Training(run=run, log=lambda _line: None)
    prepare.run(state)
    assert state.prepared is not None
    assert state.resolved.labels == state.prepared.labels  # what the saved model records
    return state.prepared.labels


def test_resume_of_a_run_started_when_labels_were_ordered_as_text_keeps_that_order(tmp_path):
    run = _run(tmp_path, resume=True)
    run.work_path.mkdir()
    # The marker an earlier tunesmith wrote: settings and input hashes, no label order.
    marker = {"settings": _resume_settings(run), INPUTS_KEY: input_hashes(run), "out": run.out}
    (run.work_path / WORK_MARKER).write_text(json.dumps(marker), encoding="utf-8")
    # Its checkpoints' outputs follow the text order: output 2 is label "10", not "2".
    assert _prepared_labels(run) == AS_TEXT


def test_a_new_run_orders_whole_number_labels_by_number_and_resume_keeps_it(tmp_path):
    assert _prepared_labels(_run(tmp_path, resume=False)) == BY_NUMBER
    run = _run(tmp_path, resume=True)
    recorded = json.loads((run.work_path / WORK_MARKER).read_text(encoding="utf-8"))
    assert recorded["labels"] == BY_NUMBER
    assert _prepared_labels(run) == BY_NUMBER
