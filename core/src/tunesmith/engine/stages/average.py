"""Stage 5a, epoch averaging (``--average-epochs N``): the mean of the weights at the end of the
last N epochs replaces the trained weights, kept only if it scores at least as well on the
held-out data (full fine-tuning)."""

from __future__ import annotations

from typing import Any

from tunesmith.engine.averaging import load_weights, mean_weights
from tunesmith.engine.stages.state import Training
from tunesmith.engine.wise import snapshot


def run(state: Training) -> None:
    """Average ``state.model``'s last epochs in place when asked; set ``resolved.average``."""
    wanted = state.run.average_epochs
    if not wanted:
        return
    snapshots = list(state.epoch_snapshots or [])
    if len(snapshots) < 2:
        state.resolved.average = {"epochs": len(snapshots), "kept": False,
                                  "source": "fewer than 2 epochs ended in this process"}  # fmt: skip
        state.note(
            f"--average-epochs {wanted}: fewer than 2 epochs ended in this process; not averaged"
        )
        return
    state.resolved.average = _average(state, snapshots)


def _average(state: Training, snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    model, trainer = state.model, state.trainer
    mean = mean_weights(snapshots)
    record: dict[str, Any] = {"epochs": len(snapshots)}
    held_set = state.held_set if state.has_eval else None
    if held_set is None or len(held_set) == 0:
        load_weights(model, mean)
        state.log(f"weights averaged over the last {len(snapshots)} epochs")
        return {**record, "kept": True, "source": "no held-out data"}
    trained = snapshot(model)
    before = float(trainer.predict(held_set).metrics["test_score"])
    load_weights(model, mean)
    after = float(trainer.predict(held_set).metrics["test_score"])
    kept = after >= before
    if not kept:
        load_weights(model, trained)
    state.log(
        f"weights averaged over the last {len(snapshots)} epochs: held-out score {after:.4f} "
        f"against {before:.4f} for the trained weights; "
        + ("kept the average" if kept else "kept the trained weights")
    )
    return {**record, "kept": kept, "source": "held-out score",
            "scores": {"trained": round(before, 6), "average": round(after, 6)}}  # fmt: skip
