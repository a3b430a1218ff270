"""Stage 6, measure: the final model's logits on the held-out data; then the held-out split
carved from the training file joins the stored nearest examples (after everything chosen or
measured on it: ``metrics.json`` describes the model before)."""

from __future__ import annotations

from tunesmith.engine import nearest as nx
from tunesmith.engine.stages.state import Training


def run(state: Training) -> None:
    """Fill ``state.held_logits`` (``None`` without held-out data)."""
    if not state.has_eval:
        return
    prediction = state.trainer.predict(state.held_set)
    held_logits = prediction.predictions
    state.held_logits = held_logits[0] if isinstance(held_logits, tuple) else held_logits
    if state.held_examples is not None and not state.run.eval_data:
        _remember_held_out(state)


def _remember_held_out(state: Training) -> None:
    memory = nx.attached(state.model)
    if memory is None:  # the held-out split chose the head alone
        return
    memory.extend(state.held_examples)
    nx.attach(state.model, memory)  # refreshes the example count in config.json
    count = int(state.held_examples.keys.shape[0])
    state.resolved.nearest["held_out_added"] = count
    state.log(f"the {count:,} held-out texts joined the nearest examples")
