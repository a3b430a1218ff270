"""Attributions over many texts: the words that most drive each label.

The finance plugin explains an alert ("negative tweets about X surged") with the words that
pushed those tweets to their label.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


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
