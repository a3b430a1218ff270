"""Stage 5b, WiSE-FT: the fine-tuned weights blended with the starting point, the weight chosen
on held-out data (full fine-tuning from a probed head only)."""

from __future__ import annotations

from typing import Any

from tunesmith.engine import wise
from tunesmith.engine.stages.state import Training


def run(state: Training) -> None:
    """Blend ``state.model`` in place and set ``resolved.wise_ft``."""
    if state.wise_start is not None:
        state.resolved.wise_ft = _blend(state)
    elif state.strategy.kind == "full":
        state.resolved.wise_ft = {"weight": 1.0, "source": "off"}


def _blend(state: Training) -> dict[str, Any]:
    """Blend the fine-tuned weights with the start, weight chosen on held-out data; returns
    what was done, for ``run_config.json``."""
    run, model, start, trainer = state.run, state.model, state.wise_start, state.trainer
    held_set = state.held_set if state.has_eval else None
    finetuned = wise.snapshot(model)
    record: dict[str, Any]
    if run.wise_ft is not None:
        weight, record = run.wise_ft, {"source": "--wise-ft"}
    elif held_set is not None and len(held_set) > 0:

        def score(candidate: float) -> float:
            wise.blend(model, start, finetuned, candidate)
            return trainer.predict(held_set).metrics["test_score"]

        weight, scores = wise.choose_weight(score)
        record = {
            "source": "held-out score",
            "scores": {f"{w:g}": round(v, 6) for w, v in scores.items()},
        }
    else:
        weight, record = wise.FEW_SHOT_WEIGHT, {"source": "few-shot default (no held-out data)"}
    wise.blend(model, start, finetuned, weight)
    if weight < 1:
        state.log(f"weights blended with the starting point (WiSE-FT, weight {weight:g})")
    return {"weight": weight, **record}
