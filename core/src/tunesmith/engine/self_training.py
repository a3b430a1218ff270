"""Self-training on unlabelled text: confident predictions become extra examples.

Labelled text is scarce, unlabelled text usually is not (the tickets nobody has tagged yet). After
fine-tuning, the model predicts every unlabelled text; those it labels with probability at least
``threshold`` join the nearest-example memory (when the model has one) and the classifier head is
refitted by the linear probe on the labelled and the pseudo-labelled embeddings together. A second
round predicts again with the refitted head and the larger memory, and starts from the labelled
texts again (the pseudo-labels are re-chosen, not accumulated). The encoder is not trained again:
this costs one encoder pass over the unlabelled texts, not another fine-tuning run.

Measured on banking77, 10 labelled texts per intent, threshold and rounds chosen on development
texts: docs/benchmarks.md, "Self-training on unlabelled text".

With held-out data the self-trained model is kept only if its held-out accuracy is at least the
model's before; without any (few-shot runs) it is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tunesmith.engine.embeddings import head_logits
from tunesmith.engine.modeling import set_head_weights
from tunesmith.engine.probe import fit_linear_probe

#: Defaults of ``--pseudo-threshold`` and ``--pseudo-rounds`` (see the module docstring).
THRESHOLD = 0.8
ROUNDS = 2


def _predict(model: Any, memory: Any, pooled: Any) -> tuple[Any, Any]:
    """Top probability and label of each pooled row, through the head and the memory."""
    import torch

    with torch.inference_mode():
        logits = head_logits(model, pooled)
        if memory is not None:
            logits = memory.mix(logits, pooled)
        confidence, label = torch.softmax(logits.float(), dim=-1).max(dim=-1)
    return confidence, label


def self_train(
    model: Any,
    memory: Any,
    train_pooled: Any,
    train_labels: Any,
    unlabelled_pooled: Any,
    *,
    threshold: float = THRESHOLD,
    rounds: int = ROUNDS,
    seed: int = 0,
    max_memory: int | None = None,
    score: Callable[[], float] | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Pseudo-label ``unlabelled_pooled`` and refit ``model``'s head (and ``memory``) in place.

    ``train_pooled`` / ``train_labels`` are the labelled texts' pooled embeddings (as the head
    reads them) and label ids; ``memory`` is the model's :class:`NearestExamples` or ``None``.
    ``score()``, when given, measures the model on held-out data: if self-training lowers it,
    the head and memory are put back. At most ``max_memory`` pseudo-labelled texts (the most
    confident) join the memory, so that a huge file does not make every prediction slow.
    Returns what was done, for ``run_config.json``.
    """
    import torch

    head = model.classifier
    saved_head = (head.weight.detach().clone(), head.bias.detach().clone())
    labelled = (memory.keys, memory.labels) if memory is not None else None
    labels = torch.as_tensor(train_labels, dtype=torch.long)
    before = score() if score is not None else None
    record: dict[str, Any] = {
        "unlabelled_texts": int(unlabelled_pooled.shape[0]),
        "threshold": threshold,
        "rounds": [],
    }
    for number in range(1, rounds + 1):
        confidence, predicted = _predict(model, memory, unlabelled_pooled)
        keep = confidence >= threshold
        kept = int(keep.sum())
        if kept == 0:
            record["rounds"].append({"round": number, "pseudo_labelled": 0})
            log(f"self-training round {number}: no unlabelled text reached {threshold:g}")
            break
        features = torch.cat([train_pooled.float(), unlabelled_pooled[keep].float()])
        targets = torch.cat([labels, predicted[keep].cpu()])
        weight, bias, l2 = fit_linear_probe(
            features, targets.tolist(), "classification",
            num_labels=int(model.config.num_labels), seed=seed,
        )  # fmt: skip
        set_head_weights(model, weight, bias)
        summary = {
            "round": number,
            "pseudo_labelled": kept,
            "labels_covered": int(predicted[keep].unique().numel()),
            "l2": l2,
        }
        if memory is not None:
            chosen = keep.nonzero().squeeze(-1)
            if max_memory is not None and chosen.numel() > max_memory:
                chosen = chosen[confidence[chosen].argsort(descending=True)[:max_memory]]
                summary["joined_memory"] = int(chosen.numel())
            extra = torch.nn.functional.normalize(unlabelled_pooled[chosen].float(), dim=-1)
            memory.keys = torch.cat([labelled[0], extra.to(labelled[0].dtype)])
            memory.labels = torch.cat([labelled[1], predicted[chosen].cpu().long()])
        record["rounds"].append(summary)
        log(
            f"self-training round {number}: {kept:,} of {record['unlabelled_texts']:,} "
            f"unlabelled texts pseudo-labelled (probability >= {threshold:g}), head refitted"
        )
    if before is not None:
        after = score()
        record["held_out_accuracy"] = {"before": round(before, 6), "after": round(after, 6)}
        if after < before:
            set_head_weights(model, *saved_head)
            if memory is not None:
                memory.keys, memory.labels = labelled
            record["kept"] = False
            log(f"self-training lowered held-out accuracy ({before:.4f} -> {after:.4f}); undone")
            return record
    record["kept"] = record["rounds"][0]["pseudo_labelled"] > 0
    return record
