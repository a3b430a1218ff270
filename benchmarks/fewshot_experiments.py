"""Recipe experiments for ``fewshot_dev.py --experiment NAME``, patched in from outside the engine.

Each one changes one thing about few-shot training without touching the engine's code, so an
idea can be measured on the development set before it earns a flag. They patch module
attributes of :mod:`tunesmith.engine.trainer_utils` and wrap the weight recorder; use one per
process. Results are in ``docs/benchmarks.md`` (none of them is a gain so far).

* ``hard-negatives``: contrastive batches of similar labels (nearest label centroids of the
  starting encoder) instead of random ones;
* ``frozen-word-embeddings``: the word-piece embeddings do not train;
* ``token-mask=RATE``: that share of word-pieces replaced by [MASK] afresh in every batch;
* ``contrastive-temperature=T``: the supervised contrastive loss at temperature T (default 0.1).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

#: How many of the most similar labels a hard-negative batch draws its other labels from.
HARD_POOL = 15


def hard_negative_order(
    labels: list[int], batch_size: int, similarity: list[list[float]], rng: random.Random
) -> list[int]:
    """Same-label pairs as in ``paired_order``, each batch's labels drawn near a random seed
    label (from its ``HARD_POOL`` most similar labels that still have pairs)."""
    from tunesmith.engine.trainer_utils import same_label_pairs

    by_label = same_label_pairs(labels, rng)
    per_batch = max(1, batch_size // 2)
    batches: list[list[int]] = []
    while any(by_label.values()):
        live = [label for label, pairs in by_label.items() if pairs]
        seed = rng.choice(live)
        near = sorted((x for x in live if x != seed), key=lambda x: -similarity[seed][x])
        pool = near[:HARD_POOL]
        chosen = [seed, *rng.sample(pool, min(per_batch - 1, len(pool)))]
        batches.append([i for label in chosen for i in by_label[label].pop()])
    rng.shuffle(batches)
    return [i for batch in batches for i in batch]


def _on_train_begin(recorder: Any, extra: Callable[[dict[str, Any]], None]) -> Any:
    """Wrap ``recorder.on_train_begin`` so that ``extra(kwargs)`` runs after it."""
    begin = recorder.on_train_begin

    def on_train_begin(args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        begin(args, state, control, **kwargs)
        extra(kwargs)

    recorder.on_train_begin = on_train_begin
    return recorder


def apply(experiment: str, make_recorder: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Patch the engine for ``experiment``; returns the recorder factory to use instead."""
    import torch

    from tunesmith.engine import trainer_utils as tu

    name, _, value = experiment.partition("=")
    if name == "hard-negatives":
        state: dict[str, Any] = {}

        def similarity(kwargs: dict[str, Any]) -> None:
            from tunesmith.engine.nearest import pooled_embeddings

            model, dataset = kwargs["model"], kwargs["train_dataloader"].dataset
            pooled = pooled_embeddings(model, dataset.items, pad_id=0)
            y = torch.tensor(list(dataset.labels))
            centroids = torch.stack([pooled[y == c].mean(0) for c in range(int(y.max()) + 1)])
            centroids = torch.nn.functional.normalize(centroids, dim=-1)
            state["similarity"] = (centroids @ centroids.T).tolist()
            model.train()

        def sampler(labels: list[int], lengths: list[int], batch_size: int) -> Any:
            from torch.utils.data import Sampler

            class HardNegativeSampler(Sampler):
                def __len__(self) -> int:
                    return len(labels)

                def __iter__(self) -> Any:
                    rng = random.Random(int(torch.randint(0, 2**31 - 1, ()).item()))
                    order = hard_negative_order(labels, batch_size, state["similarity"], rng)
                    return iter(order)

            return HardNegativeSampler()

        tu.make_pair_sampler = sampler
        return lambda folder: _on_train_begin(make_recorder(folder), similarity)
    if name == "frozen-word-embeddings":

        def freeze(kwargs: dict[str, Any]) -> None:
            # The optimizer exists already; a parameter without gradients is simply skipped.
            kwargs["model"].base_model.embeddings.word_embeddings.weight.requires_grad_(False)

        return lambda folder: _on_train_begin(make_recorder(folder), freeze)
    if name == "token-mask":
        rate, rng, collate = float(value), random.Random(0), tu.PaddingCollator.__call__
        mask_id = 103  # [MASK] in the default model's vocabulary

        def masked(self: Any, batch: list[dict[str, Any]]) -> dict[str, Any]:
            out = []
            for item in batch:
                ids = list(item["input_ids"])
                for i in range(1, len(ids) - 1):  # never [CLS] or [SEP]
                    if rng.random() < rate:
                        ids[i] = mask_id
                out.append({**item, "input_ids": ids})
            return collate(self, out)

        tu.PaddingCollator.__call__ = masked
        return make_recorder
    if name == "contrastive-temperature":
        temperature, loss = float(value), tu.supervised_contrastive_loss
        tu.supervised_contrastive_loss = lambda z, y, _t=0.1: loss(z, y, temperature)
        return make_recorder
    raise SystemExit(f"unknown --experiment {experiment!r}")
