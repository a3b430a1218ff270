"""Upgrading with a run interrupted under an earlier tunesmith that had `--save-steps`: then the
model was evaluated at every checkpoint (mid-epoch too), now only at each epoch's end. `--resume`
continues it, and says that the earlier evaluations (and the best checkpoint among them) stand
and how to get today's model instead."""

from __future__ import annotations

import json
from pathlib import Path

from tunesmith.engine.stages.fit import earlier_checkpoint_note


def _checkpoint(tmp_path: Path, step: int, evaluations: list[tuple[float, int]], **state) -> Path:
    """A checkpoint folder as the Trainer left it for an earlier tunesmith: its
    ``trainer_state.json``, no ``tunesmith_epoch_order.pth``."""
    folder = tmp_path / "work" / "checkpoints" / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    history = [{"epoch": e, "eval_loss": 0.1, "eval_score": 0.9, "step": s} for e, s in evaluations]
    trainer_state = {"global_step": step, "log_history": history, **state}
    (folder / "trainer_state.json").write_text(json.dumps(trainer_state), encoding="utf-8")
    return folder


def test_resume_of_a_run_evaluated_every_save_steps_says_those_evaluations_stand(tmp_path):
    best = tmp_path / "work" / "checkpoints" / "checkpoint-4"
    folder = _checkpoint(
        tmp_path, 12, [(0.4, 4), (0.8, 8), (1.2, 12)], eval_steps=4, best_model_checkpoint=str(best)
    )
    note = earlier_checkpoint_note(folder)
    assert "\n" not in note
    assert note.startswith("--resume: checkpoint-12 was written by an earlier tunesmith")
    assert "evaluated every 4 steps, as --save-steps did then" in note
    assert "(now checkpoint-4)" in note and "--force instead of --resume" in note


def test_resume_of_an_earlier_run_evaluated_per_epoch_only_speaks_of_the_data_order(tmp_path):
    folder = _checkpoint(tmp_path, 15, [(1.0, 10)], eval_steps=None)
    note = earlier_checkpoint_note(folder)
    assert "did not record its epoch's data order" in note
    assert "--save-steps" not in note and "--force" not in note


def test_an_unreadable_trainer_state_leaves_the_note_to_the_data_order(tmp_path):
    folder = _checkpoint(tmp_path, 3, [])
    (folder / "trainer_state.json").write_text("{not json", encoding="utf-8")
    assert earlier_checkpoint_note(folder).endswith("than the interrupted run's")
