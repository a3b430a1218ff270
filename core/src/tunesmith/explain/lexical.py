"""The lexical share in an explanation: what ``--lexical W`` adds to a classifier's words.

A model trained with ``--lexical W`` predicts ``(1 - W) * p_transformer + W * p_lexical`` (then
the mix's own temperature, which keeps each row's order). Explaining the transformer alone
showed a label and words that ``tunesmith predict`` does not: with the finance benchmark's model
(share 0.3) the transformer's label differs from the mix's on 38 of valid.csv's 2,388 tweets, and
an alert's words left out the n-grams behind 30% of its scores. So an explanation of such a model
explains the mix:

- its label and probabilities are the mixed, calibrated ones ``predict`` gives;
- a word's score is ``(1 - W) * transformer score + W * lexical score``, where the lexical score
  is exact occlusion: the regression's probability of the target with the text as it is, minus
  with that word deleted (the regression is cheap, so no approximation is needed);
- comprehensiveness and sufficiency delete (or keep) the same words from both models' inputs
  and read the mixed, calibrated probability, as ``predict`` would.

Measured on 300 of those tweets with the default method, both word lists judged on the mixed
probability ``predict`` shows: comprehensiveness 0.237 with the transformer's words, 0.295 with
the mix's (paired difference +0.058, 95% interval 0.043 to 0.072); sufficiency 0.068 against
0.015 (-0.053, -0.070 to -0.037). An alert window of 500 tweets takes 9.8 s instead of 8.5 s.

``lexical`` here is the engine's ``LexicalModel`` (``weight``, ``probabilities(texts)``,
``deletion_probabilities(texts, spans)``, ``mix(probs, texts, lexical_probs=)``); this module
needs nothing else of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from tunesmith.explain.encoding import EncodedText
from tunesmith.explain.faithfulness import TOP_FRACTION, from_values, top_sets
from tunesmith.explain.scoring import DEFAULT_MAX_TOKENS, classifier_probabilities


def has_spans(encoded: EncodedText) -> bool:
    """Whether the words carry character spans (a fast tokenizer's); without them no word can
    be deleted from the text the regression reads."""
    return all(start >= 0 and end >= start for start, end in encoded.spans)


def text_without(encoded: EncodedText, drop: Iterable[int]) -> str:
    """The full text with the words ``drop`` deleted (each replaced by one space, so that its
    neighbours do not merge into a new word). Words past a truncation stay: the regression reads
    the whole text, as it does in ``predict``."""
    text = encoded.text
    if not has_spans(encoded):
        return text
    pieces: list[str] = []
    at = 0
    for index in sorted(set(drop)):
        start, end = encoded.spans[index]
        pieces += [text[at:start], " "]
        at = end
    pieces.append(text[at:])
    return "".join(pieces)


def text_keeping(encoded: EncodedText, keep: Iterable[int]) -> str:
    """Only the words ``keep``, in order, separated by spaces."""
    if not has_spans(encoded):
        return encoded.text
    return " ".join(encoded.text[s:e] for s, e in (encoded.spans[i] for i in sorted(set(keep))))


def lexical_word_scores(
    lexical: Any,
    encoded: Sequence[EncodedText],
    targets: Sequence[int],
    lexical_probs: np.ndarray,
) -> list[list[float]]:
    """Per text, per word: the regression's probability of the target minus that probability
    with the word deleted (``lexical_probs``: its probabilities of the texts as they are).
    Zeros for a text whose words have no spans."""
    spans = [list(enc.spans) if has_spans(enc) else [] for enc in encoded]
    deleted = lexical.deletion_probabilities([enc.text for enc in encoded], spans)
    scores = []
    for i, (enc, probs) in enumerate(zip(encoded, deleted, strict=True)):
        if not len(probs):
            scores.append([0.0] * enc.n_words)
            continue
        target = targets[i]
        scores.append([float(lexical_probs[i, target] - p) for p in probs[:, target]])
    return scores


def combine(
    transformer: Sequence[Sequence[float]], lexical: Sequence[Sequence[float]], weight: float
) -> list[list[float]]:
    """Word scores of the linear pool: ``(1 - weight) * transformer + weight * lexical``."""
    return [
        [(1.0 - weight) * t + weight * v for t, v in zip(ts, vs, strict=True)]
        for ts, vs in zip(transformer, lexical, strict=True)
    ]


def ensemble_faithfulness(
    members: Sequence[Any],
    encoded: Sequence[EncodedText],
    word_scores: Sequence[Sequence[float]],
    targets: Sequence[int],
    full_scores: Sequence[float],
    *,
    pad_id: int,
    multilabel: bool = False,
    fraction: float = TOP_FRACTION,
    max_tokens: int | None = None,
) -> list[tuple[float | None, float | None, int]]:
    """``(comprehensiveness, sufficiency, k)`` per text, on a seed ensemble's probability of its
    target (or one model's with its lexical share: a list of one): the mean over ``members`` (each with ``model``, ``temperature`` and ``lexical``,
    which may be ``None``) of their calibrated probabilities, each mixed with its lexical part,
    as ``predict`` scores an ensemble (``full_scores``: that mean for the texts as they are)."""
    ks, tops = top_sets(encoded, word_scores, fraction)
    sequences = [enc.ids_without(top) for enc, top in zip(encoded, tops, strict=True)]
    sequences += [enc.ids_keeping(top) for enc, top in zip(encoded, tops, strict=True)]
    variants = [text_without(enc, top) for enc, top in zip(encoded, tops, strict=True)]
    variants += [text_keeping(enc, top) for enc, top in zip(encoded, tops, strict=True)]
    total: np.ndarray | None = None
    for member in members:
        rows = classifier_probabilities(
            member.model,
            sequences,
            pad_id=pad_id,
            multilabel=multilabel,
            temperature=member.temperature,
            max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
        )
        if member.lexical is not None:
            rows = member.lexical.mix(rows, variants)
        rows = np.asarray(rows, dtype=np.float64)
        total = rows if total is None else total + rows
    assert total is not None, "an ensemble has at least one member"
    mean = total / len(members)
    own = np.asarray(list(targets) * 2)  # each variant's text's target
    return from_values(full_scores, mean[np.arange(len(mean)), own], ks)
