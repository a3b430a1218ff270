"""The one Gradio component every demo uses to show an explanation: highlighted text on a
continuous colour scale (positive scores towards the label, negative against).

Gradio is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any


def explanation_to_highlights(
    explanation: Any, *, side: str = "text"
) -> list[tuple[str, float | None]]:
    """The ``gr.HighlightedText`` value for an explanation: ``(piece, score)`` pairs.

    Scores are scaled into [-1, 1] by the largest absolute score in the text (Gradio draws
    such floats on a continuous scale); text between words gets ``None``. For a pair
    explanation, ``side`` is ``"query"`` or ``"passage"``.
    """
    if side == "query":
        text, tokens = explanation.query, explanation.query_tokens
    elif side == "passage":
        text, tokens = explanation.passage, explanation.passage_tokens
    else:
        text, tokens = explanation.text, explanation.tokens
    return scores_to_highlights(text, tokens)


def scores_to_highlights(text: str, tokens: Sequence[Any]) -> list[tuple[str, float | None]]:
    """``(piece, score)`` pairs covering ``text``; words located by their character offsets."""
    scale = max((abs(t.score) for t in tokens), default=0.0) or 1.0
    pieces: list[tuple[str, float | None]] = []
    cursor = 0
    located = all(getattr(t, "start", -1) >= 0 for t in tokens)
    for token in tokens:
        value = round(float(token.score) / scale, 4)
        if not located:
            if pieces:
                pieces.append((" ", None))
            pieces.append((token.word, value))
            continue
        if token.start > cursor:
            pieces.append((text[cursor : token.start], None))
        pieces.append((text[token.start : token.end], value))
        cursor = max(cursor, token.end)
    if located and cursor < len(text):
        # Word by word: Gradio breaks a piece anywhere ("was c / harged") but wraps between
        # pieces, and the part of a long text the model did not read is one long piece.
        pieces.extend((part, None) for part in re.findall(r"\S+|\s+", text[cursor:]))
    return pieces


#: Words named each way in :func:`words_summary`.
SUMMARY_WORDS = 5
#: Scaled scores below this are left out of the summary: a tenth of the strongest word is
#: barely tinted in the picture either.
SUMMARY_FLOOR = 0.1


def strongest_words(
    pieces: Sequence[tuple[str, float | None]] | None, count: int = SUMMARY_WORDS
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """``(positive, negative)``: the ``count`` words of :func:`scores_to_highlights` pieces with
    the largest scores each way, strongest first (punctuation left out); a word said twice is
    named once, with its stronger score."""
    best: dict[str, float] = {}
    for piece, score in pieces or []:
        word = piece.strip()
        # Punctuation too: "full stop +0.40" read aloud says nothing of the text.
        if score is None or abs(score) < SUMMARY_FLOOR or not any(c.isalnum() for c in word):
            continue
        if abs(score) > abs(best.get(word, 0.0)):
            best[word] = float(score)
    ranked = sorted(best.items(), key=lambda item: -abs(item[1]))
    positive = [(w, s) for w, s in ranked if s > 0][:count]
    negative = [(w, s) for w, s in ranked if s < 0][:count]
    return positive, negative


def words_summary(
    pieces: Sequence[tuple[str, float | None]] | None,
    towards: str = "towards it",
    against: str = "away from it",
    lead: str = "Strongest words",
) -> str:
    """The highlighted words' colours in words, as Markdown (words escaped): "Strongest words
    towards it: **cut** (+1.00), **fell** (+0.77); away from it: **Shares** (-0.14)."; empty
    when no word scores. The colour scale alone said nothing to a screen reader, nor to
    someone who cannot tell its red from its purple."""
    from tunesmith.ui.markdown import plain_markdown

    positive, negative = strongest_words(pieces)

    def listed(words: list[tuple[str, float]]) -> str:
        return ", ".join(f"**{plain_markdown(w)}** ({s:+.2f})" for w, s in words)

    parts = [f"{towards}: {listed(positive)}" if positive else ""]
    parts.append(f"{against}: {listed(negative)}" if negative else "")
    said = "; ".join(p for p in parts if p)
    return f"{lead} {said}." if said else ""


def highlight_component(label: str = "Why the model decided", **kwargs: Any) -> Any:
    """A ``gr.HighlightedText`` set up for explanation values (call inside a Blocks context)."""
    import gradio as gr

    options: dict[str, Any] = {
        "label": label,
        "combine_adjacent": False,
        "show_legend": True,
        "show_inline_category": False,
    }
    options.update(kwargs)
    return gr.HighlightedText(**options)
