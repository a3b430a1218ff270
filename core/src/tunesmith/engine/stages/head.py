"""Stage 3, initialise the head: from a linear probe on the frozen pooled features (LP-FT) when
the encoder allows it, and the starting point WiSE-FT later blends back towards."""

from __future__ import annotations

import time

from tunesmith.engine import feature_cache as fc
from tunesmith.engine.modeling import set_head_weights
from tunesmith.engine.probe import fit_linear_probe
from tunesmith.engine.stages.state import Training
from tunesmith.engine.wise import snapshot


def run(state: Training) -> None:
    """Set ``resolved.head_init`` (and ``probe``), the probed head, and ``state.wise_start``."""
    run, task, model = state.run, state.prepared.task, state.model
    head_init = run.head_init
    probe_ok = task != "ner" and fc.cache_supported(model, task)
    if head_init == "auto":
        head_init = "probe" if probe_ok else "random"
    elif head_init == "probe" and not probe_ok:
        state.note("--head-init probe needs a BERT-style encoder; used random")
        head_init = "random"
    if head_init == "probe":
        started = time.perf_counter()
        state.pooled_train = state.features_for(state.train_ds.items, fc.num_layers(model), True)
        weight, bias, l2 = fit_linear_probe(
            state.pooled_train.values,
            state.train_y,
            task,
            num_labels=len(state.prepared.labels),
            seed=run.seed,
        )
        set_head_weights(model, weight, bias)
        state.resolved.probe = {"l2": l2, "seconds": round(time.perf_counter() - started, 2)}
        state.log(f"head initialised from a linear probe (l2 {l2:g})")
    state.resolved.head_init = head_init
    # WiSE-FT blends back towards this point: only full fine-tuning has one (WiSE-FT needs the
    # probed head to make it a good one).
    if state.strategy.kind == "full" and head_init == "probe" and run.wise_ft != 1:
        state.wise_start = snapshot(model)
