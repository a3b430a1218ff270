"""Attributions over many texts: the words that most drive each label.

The finance plugin explains an alert ("negative tweets about X surged") with the words that
pushed those tweets to their label: ``aggregate_explanations(loaded, texts, target="negative")``.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.explain.attribute import TOKEN_TASKS, check_texts, explain_loaded
from tunesmith.explain.methods import DEFAULT_METHOD

#: Texts explained per call while aggregating: the progress bar moves at least this often, and
#: memory stays bounded, while each call still fills the method's batches.
AGGREGATE_CHUNK = 64


@dataclass
class WordImpact:
    """A word's total attribution towards one label over a set of texts."""

    word: str
    total: float
    mean: float
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"word": self.word, "total": self.total, "mean": self.mean, "count": self.count}


def _normalise(word: str) -> str:
    return word.strip().lower()


def top_words_by_label(
    explanations: Iterable[Any],
    k: int = 10,
    *,
    min_count: int = 1,
    words_only: bool = True,
) -> dict[str, list[WordImpact]]:
    """For each explained label, the ``k`` words with the largest total positive attribution.

    Words are compared lower-cased; a word's total is summed over all its occurrences in texts
    explained for that label, so frequent and strong words rank first. ``words_only`` skips
    tokens with no letter or digit (punctuation); ``min_count`` drops rare words.
    """
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for explanation in explanations:
        label = getattr(explanation, "target", None) or getattr(explanation, "label", None)
        if label is None:
            continue
        for token in explanation.tokens:
            word = _normalise(token.word)
            if not word or (words_only and not any(ch.isalnum() for ch in word)):
                continue
            totals[label][word] += float(token.score)
            counts[label][word] += 1
    result: dict[str, list[WordImpact]] = {}
    for label in sorted(totals):
        impacts = [
            WordImpact(word, total, total / counts[label][word], counts[label][word])
            for word, total in totals[label].items()
            if counts[label][word] >= min_count and total > 0
        ]
        impacts.sort(key=lambda w: (-w.total, w.word))
        result[label] = impacts[:k]
    return result


def aggregate_explanations(
    loaded: Any,
    texts: Sequence[str],
    *,
    target: str | None = None,
    k: int = 10,
    progress: Callable[[float], None] | None = None,
    members: Sequence[Any] = (),
) -> dict[str, list[WordImpact]]:
    """The ``k`` words that most drive each label across ``texts``, with the default method.

    ``loaded`` is a classifier from ``tunesmith.engine.loading.load_model``. With ``target``
    (a label name) every text is explained for that label's probability and the result has that
    one key; without it each text is explained for its predicted label. ``progress`` gets the
    number of texts done after each step; without it a tqdm bar is shown on a terminal.
    ``members``: a seed ensemble's other members, explained with ``loaded`` as the mean that
    ``predict`` scores (see :func:`~tunesmith.explain.attribute.explain_loaded`).
    """
    if str(getattr(loaded, "task", "") or "").lower() in TOKEN_TASKS:
        raise UserInputError("aggregate explanations need a classifier; this model is a tagger")
    if target is not None and target not in list(getattr(loaded, "labels", None) or []):
        raise UserInputError(
            f"unknown target label {target!r}; the model's labels are: "
            f"{', '.join(getattr(loaded, 'labels', None) or [])}"
        )
    texts = list(texts)
    check_texts(texts)  # before any work, naming the empty text's position in the whole list
    bar = None
    if progress is None:
        from tqdm import tqdm

        # disable=None: the bar shows on a terminal and stays silent in logs and pipes.
        bar = tqdm(total=len(texts), desc="explaining", unit="text", file=sys.stderr, disable=None)
        progress = bar.update
    explanations: list[Any] = []
    try:
        for start in range(0, len(texts), AGGREGATE_CHUNK):
            chunk = texts[start : start + AGGREGATE_CHUNK]
            done = [0.0]

            def step(amount: float, done: list[float] = done, size: int = len(chunk)) -> None:
                # Methods report fractional texts (IG rows / steps); never overshoot the chunk.
                amount = min(amount, size - done[0])
                done[0] += amount
                if amount > 0:
                    progress(amount)

            explanations += explain_loaded(
                loaded,
                chunk,
                target=target,
                method=DEFAULT_METHOD,
                with_faithfulness=False,
                progress=step,
                warn=None,
                members=members,
            )
            step(len(chunk) - done[0])
    finally:
        if bar is not None:
            bar.close()
    result = top_words_by_label(explanations, k=k)
    if target is not None:
        result.setdefault(target, [])  # the asked label is always a key, even with no words
    return result
