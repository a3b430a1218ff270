"""Why an item was recommended: which liked items led to it, and which of its words matched.

"Because you liked X": the user vector is an attention-weighted mean of the history's item
vectors, so the two-tower score splits (before the residual layer) into one share per history
item: its attention weight times its cosine with the recommended item. The largest positive
shares name the items. Word attributions come from the core's pair explanations
(:func:`tunesmith.explain.pair.explain_encoder_pair`) between the history's text and the item's
text, pooled and truncated as the encoder embeds them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tunesmith.explain.pair import explain_encoder_pair


def because_you_liked(
    item_vectors: np.ndarray,
    history: np.ndarray,
    weights: np.ndarray,
    item: int,
    ids: Sequence[str],
    titles: Sequence[str],
    *,
    top: int = 3,
) -> list[dict[str, Any]]:
    """The history items that contributed most to ``item``'s score, with their share (0-1)."""
    history = np.asarray(history)[-len(weights) :]
    contributions = weights * (item_vectors[history] @ item_vectors[item])
    positive = np.maximum(contributions, 0.0)
    total = float(positive.sum())
    if total <= 0:
        return []
    best: dict[int, float] = {}
    for position, value in zip(history.tolist(), positive.tolist(), strict=True):
        best[position] = best.get(position, 0.0) + value  # an item liked twice counts once
    ranked = sorted(best.items(), key=lambda pair: -pair[1])[:top]
    return [
        {"item_id": ids[p], "title": titles[p], "share": round(v / total, 3)}
        for p, v in ranked
        if v > 0
    ]


def percents(shares: Sequence[float]) -> list[int]:
    """Whole percents for ``shares`` (0-1) that add up to the rounded percent of their sum
    (largest remainders get the leftover points), so "55%, 46%" of one whole reads "54%, 46%"."""
    exact = [100.0 * float(s) for s in shares]
    floors = [math.floor(e) for e in exact]
    left = round(sum(exact)) - sum(floors)
    order = sorted(range(len(exact)), key=lambda i: (floors[i] - exact[i], i))
    for i in order[: max(0, left)]:
        floors[i] += 1
    return floors


def history_text(texts: Sequence[str], items: Sequence[int], *, limit: int = 3) -> str:
    """The texts of (up to ``limit``) history items, joined: the query side of a pair explanation."""
    return " | ".join(texts[i] for i in list(items)[:limit])


def word_attributions(encoder: Any, query: str, passage: str, *, n_steps: int = 32) -> Any:
    """Word attributions for the match between a history text and an item's text."""
    return explain_encoder_pair(encoder, query, passage, n_steps=n_steps)


def explain_recommendation(recommender: Any, because: list[dict[str, Any]], item_id: str) -> Any:
    """Pair explanation between the items a recommendation came from and the item itself."""
    liked = [recommender.position[b["item_id"]] for b in because] or []
    if not liked:
        return None
    query = history_text(recommender.texts, liked)
    passage = recommender.texts[recommender.position[item_id]]
    return word_attributions(recommender.encoder, query, passage)


def explain_first(recommender: Any, first: Any, query: str | None = None) -> Any:
    """Word attributions for a first recommendation: against the liked items it came from, or
    else against the text query it answers; None when there is neither to explain it by."""
    if first.because:
        return explain_recommendation(recommender, first.because, first.item_id)
    if query and query.strip():
        passage = recommender.texts[recommender.position[first.item_id]]
        return word_attributions(recommender.encoder, query, passage)
    return None


def matched_words(explanation: Any, *, top: int = 8) -> list[str]:
    """The passage words that raised the match most; only positive scores (a word with a
    negative score pulled the two texts apart, so it did not match), each word once, and no
    punctuation (the full stops and commas between an item's fields were listed as matched
    words: "Drama, Argo, Biography, 2012, ., ,, ., ,")."""
    words: list[str] = []
    for token in sorted(explanation.passage_tokens, key=lambda w: -w.score):
        if len(words) == top or token.score <= 0:
            break
        if any(ch.isalnum() for ch in token.word) and token.word not in words:
            words.append(token.word)
    return words
