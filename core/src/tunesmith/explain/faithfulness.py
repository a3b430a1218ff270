"""Faithfulness of an explanation: does removing its top words change the model's mind?

ERASER-style scores (DeYoung et al., 2020), with words deleted from the token sequence:

- comprehensiveness = p(target | text) - p(target | text without the top-k words); high when
  the explanation found words the prediction depends on.
- sufficiency = p(target | text) - p(target | only the top-k words); low when those words alone
  carry the prediction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from tunesmith.explain.encoding import EncodedText
from tunesmith.explain.scoring import DEFAULT_MAX_TOKENS, score_sequences

#: Share of a text's words counted as its "top" words.
TOP_FRACTION = 0.2


def top_k_count(n_words: int, fraction: float = TOP_FRACTION) -> int:
    """How many words are the top words: ``fraction`` of them, rounded, at least one."""
    if n_words <= 0:
        return 0
    return min(n_words, max(1, int(math.floor(fraction * n_words + 0.5))))


def top_words(scores: Sequence[float], k: int) -> list[int]:
    """Indices of the ``k`` highest-scoring words (ties broken by position)."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return sorted(order[:k])


def top_sets(
    encoded: Sequence[EncodedText], word_scores: Sequence[Sequence[float]], fraction: float
) -> tuple[list[int], list[list[int]]]:
    """Per text, ``k`` and its ``k`` top words (the words the two scores remove or keep)."""
    ks = [top_k_count(enc.n_words, fraction) for enc in encoded]
    return ks, [top_words(scores, k) for scores, k in zip(word_scores, ks, strict=True)]


def removal_scores(
    model: Any,
    encoded: Sequence[EncodedText],
    word_sets: Sequence[Sequence[int]],
    score_fn: Callable[[Any, Any], Any],
    *,
    pad_id: int,
    keep: bool = False,
    max_tokens: int | None = None,
) -> list[float]:
    """The explained score of each text with its word set removed (or, with ``keep``, kept alone)."""
    sequences = [
        enc.ids_keeping(words) if keep else enc.ids_without(words)
        for enc, words in zip(encoded, word_sets, strict=True)
    ]
    return score_sequences(
        model,
        sequences,
        list(range(len(encoded))),
        score_fn,
        pad_id=pad_id,
        max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
    )


def faithfulness(
    model: Any,
    encoded: Sequence[EncodedText],
    word_scores: Sequence[Sequence[float]],
    full_scores: Sequence[float],
    score_fn: Callable[[Any, Any], Any],
    *,
    pad_id: int,
    fraction: float = TOP_FRACTION,
    max_tokens: int | None = None,
) -> list[tuple[float | None, float | None, int]]:
    """``(comprehensiveness, sufficiency, k)`` per text; ``None`` for a text with no words."""
    ks, tops = top_sets(encoded, word_scores, fraction)
    # One batch for both: removed variants first, kept-only variants after.
    sequences = [enc.ids_without(top) for enc, top in zip(encoded, tops, strict=True)]
    sequences += [enc.ids_keeping(top) for enc, top in zip(encoded, tops, strict=True)]
    owners = list(range(len(encoded))) * 2
    values = score_sequences(
        model,
        sequences,
        owners,
        score_fn,
        pad_id=pad_id,
        max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
    )
    return from_values(full_scores, values, ks)


def from_values(
    full_scores: Sequence[float], values: Sequence[float], ks: Sequence[int]
) -> list[tuple[float | None, float | None, int]]:
    """``(comprehensiveness, sufficiency, k)`` per text from the explained score of each text as
    it is (``full_scores``) and, in ``values``, with its top words removed (the first ``n``)
    and with only them kept (the next ``n``); ``None`` for a text with no words."""
    n = len(full_scores)
    out: list[tuple[float | None, float | None, int]] = []
    for i in range(n):
        if ks[i] == 0:
            out.append((None, None, 0))
            continue
        out.append(
            (float(full_scores[i] - values[i]), float(full_scores[i] - values[n + i]), ks[i])
        )
    return out


def faithfulness_figures(explanation: Any) -> list[tuple[str, str, str]]:
    """A classifier explanation's faithfulness figures as ``tunesmith explain`` prints them:
    ``(name, value, meaning)`` in its order (delta, comprehensiveness, sufficiency), the value
    as the command writes it and the meaning in one line for a reader who does not know the
    terms. A figure the explanation lacks (no delta without integrated gradients, no scores
    for a text without words) is left out."""
    figures: list[tuple[str, str, str]] = []
    if explanation.delta is not None:
        figures.append(
            (
                "delta",
                f"{explanation.delta:+.5f}",
                "how far the word scores miss adding up to the probability's change from the "
                "text blanked out (near 0: they add up, the attribution converged)",
            )
        )
    if explanation.comprehensiveness is not None:
        k = explanation.k
        words = "top word is" if k == 1 else f"top {k} words are"
        them = "it" if k == 1 else "them"
        figures.append(
            (
                "comprehensiveness",
                f"{explanation.comprehensiveness:.3f}",
                f"how much the probability drops when its {words} removed (higher: the "
                f"prediction depends on {them})",
            )
        )
        figures.append(
            (
                "sufficiency",
                f"{explanation.sufficiency:.3f} (top {k} words)",
                f"how much it drops when only {'that word is' if k == 1 else 'those words are'} "
                f"kept (near 0 or below: {'it carries' if k == 1 else 'they carry'} the "
                "prediction alone)",
            )
        )
    return figures
