"""Training orders in which examples come in same-label pairs, so that every batch has
positives for the supervised contrastive loss."""

from __future__ import annotations

from typing import Any


def same_label_pairs(labels: list[int], rng: Any) -> dict[int, list[list[int]]]:
    """Per label, its example indices shuffled and cut into pairs (a last single when odd)."""
    by_label: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    pairs: dict[int, list[list[int]]] = {}
    for label, members in by_label.items():
        rng.shuffle(members)
        pairs[label] = [members[k : k + 2] for k in range(0, len(members), 2)]
    return pairs


def paired_order(labels: list[int], lengths: list[int], batch_size: int, rng: Any) -> list[int]:
    """An epoch's order in which examples come in same-label pairs (so every batch has
    positives for the contrastive loss), pairs grouped by length to keep padding low."""
    pairs = [pair for group in same_label_pairs(labels, rng).values() for pair in group]
    rng.shuffle(pairs)
    # Length grouping as the Trainer does it: sort inside mega-batches of 50 batches.
    chunk = max(1, batch_size // 2) * 50
    ordered: list[int] = []
    for start in range(0, len(pairs), chunk):
        block = sorted(pairs[start : start + chunk], key=lambda p: -max(lengths[i] for i in p))
        ordered.extend(i for pair in block for i in pair)
    return ordered


def make_pair_sampler(labels: list[int], lengths: list[int], batch_size: int) -> Any:
    """A sampler yielding :func:`paired_order`; it draws from torch's global RNG when an epoch
    starts, which :func:`~tunesmith.engine.checkpoints.make_order_recorder` records for
    ``--resume``."""
    import random

    import torch
    from torch.utils.data import Sampler

    class PairedLabelSampler(Sampler):
        def __len__(self) -> int:
            return len(labels)

        def __iter__(self) -> Any:
            rng = random.Random(int(torch.randint(0, 2**31 - 1, ()).item()))
            return iter(paired_order(labels, lengths, batch_size, rng))

    return PairedLabelSampler()
