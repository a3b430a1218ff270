"""Stage 5c, nearest examples: the training texts' pooled embeddings stored with the model and
their per-label similarity mixed into its probabilities, the head's share chosen on held-out
data (few-shot single-label full fine-tuning with mean pooling, or ``--nearest on``)."""

from __future__ import annotations

from typing import Any

from tunesmith.engine import embeddings
from tunesmith.engine import nearest as nx
from tunesmith.engine.modeling import pooling_of
from tunesmith.engine.stages.state import Training
from tunesmith.engine.wise import choose_weight


def run(state: Training) -> None:
    """Attach the stored examples to ``state.model`` when wanted; set ``resolved.nearest`` and
    ``state.held_examples`` (the held-out texts as stored examples, for the measure stage)."""
    run, prepared = state.run, state.prepared
    if prepared.unlabelled:
        # Self-training reads the same pooled training texts as the nearest examples: embed once.
        state.train_pooled = embeddings.pooled_embeddings(
            state.model, state.train_ds.items, pad_id=state.pad_id
        )
    state.resolved.nearest, state.held_examples = _attach(state)
    if run.nearest == "on" and state.resolved.nearest["source"] == "not used":
        state.note(
            "--nearest on needs single-label data, mean pooling and --strategy full; not used"
        )


def _attach(state: Training) -> tuple[dict[str, Any], Any]:
    run, prepared, model, pad_id = state.run, state.prepared, state.model, state.pad_id
    held_ds = state.held_ds if state.has_eval else None
    has_held = held_ds is not None and len(held_ds) > 0
    wanted = nx.resolve_mode(
        run.nearest,
        task=prepared.task,
        pooling=pooling_of(model) if prepared.task != "ner" else None,
        strategy=state.strategy.kind,
        few_shot=prepared.few_shot,
        held_out=has_held,
        n_train=len(state.train_ds),
    )
    if not wanted:
        return {"weight": 1.0, "source": "off" if run.nearest == "off" else "not used"}, None
    memory = embeddings.build(
        model,
        state.train_ds.items,
        list(state.train_y),
        pad_id=pad_id,
        weight=1.0,
        pooled=state.train_pooled,
    )
    record: dict[str, Any]
    held_examples = None
    if has_held:
        import torch

        # The encoder is the same for every share: embed the held-out texts once and score
        # each share on the mixture alone (the held-out score is accuracy for this task).
        pooled = embeddings.pooled_embeddings(model, held_ds.items, pad_id=pad_id)
        truth = torch.as_tensor(list(state.held_y or []), dtype=torch.long, device=pooled.device)
        with torch.inference_mode():
            head = embeddings.head_logits(model, pooled)
        best, scores = choose_weight(
            lambda weight: memory.accuracy(head, pooled, truth, weight), nx.WEIGHT_GRID
        )
        record = {
            "source": "held-out score",
            "scores": {f"{w:g}": round(v, 6) for w, v in scores.items()},
        }
        held_examples = embeddings.build(
            model, held_ds.items, truth.tolist(), pad_id=pad_id, weight=1.0, pooled=pooled
        )
    else:
        best = nx.FEW_SHOT_WEIGHT
        record = {"source": "few-shot default (no held-out data)"}
    memory.weight = best
    nx.attach(model, memory if best < 1 else None)
    if best < 1:
        state.log(
            f"nearest-example scores mixed in (head share {best:g}, "
            f"{memory.keys.shape[0]:,} training texts)"
        )
    return {"weight": best, "temperature": memory.temperature, **record}, held_examples
