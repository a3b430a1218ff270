"""Hold out part of a data set for evaluation, keeping each label's share."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import TypeVar

from tunesmith.data.records import TextDataset, TokenDataset
from tunesmith.errors import DataError, UserInputError

D = TypeVar("D", TextDataset, TokenDataset)


def _check_fraction(fraction: float) -> None:
    if not 0.0 < fraction < 1.0:
        raise UserInputError(f"the held-out fraction must be between 0 and 1, got {fraction}")


def _random_split(n: int, fraction: float, rng: random.Random) -> tuple[list[int], list[int]]:
    order = list(range(n))
    rng.shuffle(order)
    k = min(n - 1, max(1, round(n * fraction)))
    return sorted(order[k:]), sorted(order[:k])


def stratified_split(dataset: D, fraction: float, seed: int) -> tuple[D, D]:
    """Split into ``(train, held_out)`` with about ``fraction`` of each label held out.

    Single-label data: every label needs at least 2 examples, one on each side, or a
    ``DataError`` names the label and its count. Multi-label data is stratified on each row's
    first label; rows whose first label is unique stay in train. Token and unlabelled data
    are split at random. Both parts keep the file order.
    """
    _check_fraction(fraction)
    rng = random.Random(seed)
    n = len(dataset)
    if n < 2:
        raise DataError(
            f"{n} example{'s' if n != 1 else ''} cannot be split into train and held-out parts",
            path=dataset.source,
        )
    if isinstance(dataset, TokenDataset) or not dataset.has_labels:
        train_idx, held_idx = _random_split(n, fraction, rng)
        return dataset.subset(train_idx), dataset.subset(held_idx)

    by_label: dict[str, list[int]] = defaultdict(list)
    for i, labels in enumerate(dataset.labels):
        by_label[labels[0]].append(i)
    train_idx: list[int] = []
    held_idx: list[int] = []
    for label in sorted(by_label):
        members = by_label[label]
        if len(members) < 2:
            if dataset.multilabel:
                train_idx.extend(members)
                continue
            raise DataError(
                f"label '{label}' has only {len(members)} example; at least 2 are needed to hold "
                "some out (add examples, drop the label, or give a separate eval file)",
                path=dataset.source,
                row=dataset.rows[members[0]],
            )
        rng.shuffle(members)
        k = min(len(members) - 1, max(1, round(len(members) * fraction)))
        held_idx.extend(members[:k])
        train_idx.extend(members[k:])
    return dataset.subset(sorted(train_idx)), dataset.subset(sorted(held_idx))
