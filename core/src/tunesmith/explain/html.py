"""A self-contained HTML heatmap of explanations. Every piece of user text is escaped."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 60rem; }
.card { border: 1px solid #ddd; border-radius: 8px; padding: 1rem; margin-bottom: 1rem; }
.meta { color: #555; font-size: 0.9rem; margin-bottom: 0.5rem; }
.text { line-height: 2; white-space: pre-wrap; }
.w { border-radius: 3px; padding: 0.1rem 0.05rem; }
.legend span { padding: 0.1rem 0.4rem; border-radius: 3px; }
"""


def _colour(score: float, scale: float) -> str:
    """Red for words that push towards the explained label, blue for those against."""
    strength = 0.0 if scale <= 0 else min(1.0, abs(score) / scale)
    rgb = "220, 38, 38" if score > 0 else "37, 99, 235"
    return f"rgba({rgb}, {0.85 * strength:.3f})"


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def highlighted_text(text: str, tokens: Sequence[Any]) -> str:
    """The text with each word in a coloured span; the gaps between words kept as they are."""
    scale = max((abs(t.score) for t in tokens), default=0.0)
    parts: list[str] = []
    cursor = 0
    located = all(getattr(t, "start", -1) >= 0 for t in tokens)
    for token in tokens:
        if located:
            if token.start > cursor:
                parts.append(html.escape(text[cursor : token.start]))
            cursor = max(cursor, token.end)
        elif parts:
            parts.append(" ")
        parts.append(
            f'<span class="w" style="background:{_colour(token.score, scale)}" '
            f'title="{html.escape(f"{token.score:+.4f}", quote=True)}">'
            f"{html.escape(token.word)}</span>"
        )
    if located and cursor < len(text):
        parts.append(html.escape(text[cursor:]))
    return "".join(parts)


def render_card(explanation: Any) -> str:
    """One explanation (classifier, entity or pair) as an HTML fragment."""
    if hasattr(explanation, "query_tokens"):  # a pair explanation
        meta = (
            f"similarity {_fmt(explanation.similarity)} · without the query "
            f"{_fmt(explanation.query_baseline_similarity)} · without the passage "
            f"{_fmt(explanation.passage_baseline_similarity)} · delta "
            f"{_fmt(explanation.delta, 5)}"
        )
        return (
            f'<div class="card"><div class="meta">{meta}</div>'
            f'<div class="meta">query</div><div class="text">'
            f"{highlighted_text(explanation.query, explanation.query_tokens)}</div>"
            f'<div class="meta">passage</div><div class="text">'
            f"{highlighted_text(explanation.passage, explanation.passage_tokens)}</div></div>"
        )
    if hasattr(explanation, "entity"):  # an entity of a tagger
        meta = (
            f"entity <b>{html.escape(explanation.entity)}</b> · "
            f"{html.escape(explanation.label)} · p={_fmt(explanation.probability)} · "
            f"delta {_fmt(explanation.delta, 5)}"
        )
    else:
        meta = (
            f"predicted <b>{html.escape(explanation.label)}</b> "
            f"(p={_fmt(explanation.probability)}) · explaining "
            f"<b>{html.escape(explanation.target)}</b> (p={_fmt(explanation.target_probability)})"
            f" · {html.escape(explanation.method)} · delta {_fmt(explanation.delta, 5)}"
            f" · comprehensiveness {_fmt(explanation.comprehensiveness)}"
            f" · sufficiency {_fmt(explanation.sufficiency)} (top {explanation.k} words)"
        )
        if explanation.truncated:
            meta += " · truncated to the model's limit"
    return (
        f'<div class="card"><div class="meta">{meta}</div>'
        f'<div class="text">{highlighted_text(explanation.text, explanation.tokens)}</div></div>'
    )


def page_header(title: str = "tunesmith explanations") -> str:
    """The start of a page; cards follow, then :func:`page_footer` (for streamed pages)."""
    legend = (
        '<p class="legend"><span style="background:rgba(220,38,38,0.6)">towards the label</span> '
        '<span style="background:rgba(37,99,235,0.6)">against it</span> · colour strength is '
        "relative within each text; hover a word for its score</p>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{legend}\n"
    )


def page_footer() -> str:
    return "</body></html>\n"


def render_html(explanations: Iterable[Any], *, title: str = "tunesmith explanations") -> str:
    """A complete HTML page with one card per explanation (classifier, entity or pair)."""
    cards = "\n".join(render_card(e) for e in explanations)
    return page_header(title) + cards + "\n" + page_footer()
