"""Stage 5d, self-training (``--unlabelled``): confident predictions on unlabelled texts become
pseudo-labelled examples, the head is refitted on them and they join the nearest examples."""

from __future__ import annotations

import time
from pathlib import Path

from tunesmith.engine import embeddings
from tunesmith.engine import nearest as nx
from tunesmith.engine import self_training as st
from tunesmith.engine.encoding import encode_texts
from tunesmith.engine.stages.state import Training


def run(state: Training) -> None:
    """With ``--unlabelled``: refit ``state.model``'s head and set ``resolved.self_training``."""
    if not state.prepared.unlabelled:
        return
    import torch

    run, model, pad_id = state.run, state.model, state.pad_id
    held_ds = state.held_ds if state.has_eval else None
    started = time.perf_counter()
    texts = state.prepared.unlabelled or []
    unlabelled = embeddings.pooled_embeddings(
        model, encode_texts(state.tokenizer, texts, state.max_length), pad_id=pad_id
    )
    memory = nx.attached(model)
    score = None
    if held_ds is not None and len(held_ds) > 0:
        held_pooled = embeddings.pooled_embeddings(model, held_ds.items, pad_id=pad_id)
        truth = torch.as_tensor(list(state.held_y or []), dtype=torch.long)

        def score() -> float:
            with torch.inference_mode():
                logits = embeddings.head_logits(model, held_pooled)
            if memory is not None:
                return memory.accuracy(logits, held_pooled, truth, memory.weight)
            return float((logits.argmax(-1).cpu() == truth).float().mean())

    # Looked up on the module at call time, so a test can replace it.
    record = st.self_train(
        model, memory, state.train_pooled, list(state.train_y), unlabelled,
        threshold=run.pseudo_threshold, rounds=run.pseudo_rounds, seed=run.seed, score=score,
        max_memory=max(0, nx.AUTO_MAX_EXAMPLES - len(state.train_ds)), log=state.log,
    )  # fmt: skip
    if memory is not None:
        nx.attach(model, memory)  # refreshes the example count in config.json
    seconds = round(time.perf_counter() - started, 1)
    state.resolved.self_training = {
        "file": Path(run.unlabelled or "").name,
        **record,
        "seconds": seconds,
    }
