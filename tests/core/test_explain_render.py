"""Rendering and aggregating explanations: the HTML page (escaped), the Gradio value, top words."""

from __future__ import annotations

import pytest

from tunesmith.explain.types import EntityExplanation, Explanation, PairExplanation, WordScore


def make_explanation(text: str, scores: list[float], target: str = "positive") -> Explanation:
    words, spans, cursor = [], [], 0
    for word in text.split():
        start = text.index(word, cursor)
        words.append(word)
        spans.append((start, start + len(word)))
        cursor = start + len(word)
    return Explanation(
        text=text,
        label=target,
        probability=0.9,
        target=target,
        target_probability=0.9,
        tokens=[WordScore(w, s, a, b) for w, s, (a, b) in zip(words, scores, spans, strict=True)],
        method="ig",
        delta=0.001,
        comprehensiveness=0.5,
        sufficiency=0.1,
        k=1,
    )


def test_html_shows_a_script_tag_in_user_text_as_text():
    from tunesmith.explain.html import render_html

    exp = make_explanation('hello <script>alert("x")</script> & bye', [0.5, -0.2, 0.1, 0.0])
    exp.label = exp.target = "<b>pos</b>"
    page = render_html([exp], title="<i>title</i>")
    assert "<script>" not in page and "<b>pos</b>" not in page and "<i>title</i>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert ">&amp;</span>" in page
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_html_colours_words_towards_the_label_red_and_against_it_blue():
    import re

    from tunesmith.explain.html import render_html

    page = render_html([make_explanation("good bad", [1.0, -0.5])])
    spans = dict(
        (word, colour)
        for colour, word in re.findall(r'background:(rgba\([^)]*\))"[^>]*>(\w+)<', page)
    )
    assert spans == {"good": "rgba(220, 38, 38, 0.850)", "bad": "rgba(37, 99, 235, 0.425)"}


def test_html_renders_entity_and_pair_explanations():
    from tunesmith.explain.html import render_html

    entity = EntityExplanation(
        text="acme <corp>",
        entity="acme",
        label="ORG",
        start=0,
        end=4,
        probability=0.8,
        tokens=[WordScore("acme", 0.3, 0, 4)],
    )
    pair = PairExplanation(
        query="lost card",
        passage="block a <lost> card",
        similarity=0.7,
        query_tokens=[WordScore("lost", 0.2, 0, 4), WordScore("card", 0.1, 5, 9)],
        passage_tokens=[WordScore("card", 0.3, 15, 19)],
        delta=0.0,
    )
    page = render_html([entity, pair])
    assert "entity <b>acme</b>" in page and "ORG" in page
    assert "&lt;corp&gt;" in page and "&lt;lost&gt;" in page
    assert "similarity 0.700" in page


def test_highlight_value_covers_the_text_with_scores_scaled_to_one():
    from tunesmith.ui.highlight import explanation_to_highlights

    exp = make_explanation("good,  bad movie", [2.0, -1.0, 0.0])
    value = explanation_to_highlights(exp)
    assert "".join(piece for piece, _ in value) == "good,  bad movie"
    assert value[0] == ("good,", 1.0)
    assert ("bad", -0.5) in value and ("  ", None) in value


def test_highlight_value_for_each_side_of_a_pair():
    from tunesmith.ui.highlight import explanation_to_highlights

    pair = PairExplanation(
        query="lost card",
        passage="card",
        similarity=0.7,
        query_tokens=[WordScore("lost", 0.2, 0, 4), WordScore("card", -0.4, 5, 9)],
        passage_tokens=[WordScore("card", 0.3, 0, 4)],
        delta=0.0,
    )
    assert explanation_to_highlights(pair, side="query") == [
        ("lost", 0.5),
        (" ", None),
        ("card", -1.0),
    ]
    assert explanation_to_highlights(pair, side="passage") == [("card", 1.0)]


def test_highlight_component_is_a_gradio_highlighted_text():
    gr = pytest.importorskip("gradio")
    from tunesmith.ui.highlight import explanation_to_highlights, highlight_component

    with gr.Blocks():
        component = highlight_component(label="Why")
    assert isinstance(component, gr.HighlightedText)
    value = component.postprocess(explanation_to_highlights(make_explanation("ok", [1.0])))
    assert value.root[0].token == "ok" and value.root[0].class_or_confidence == 1.0


def test_top_words_by_label_ranks_words_by_total_positive_attribution():
    from tunesmith.explain.aggregate import top_words_by_label

    explanations = [
        make_explanation("Profit up , great", [0.5, 0.3, 0.9, 0.1], "positive"),
        make_explanation("profit rise", [0.4, 0.2], "positive"),
        make_explanation("loss down", [0.6, -0.1], "negative"),
    ]
    top = top_words_by_label(explanations, k=2)
    assert list(top) == ["negative", "positive"]
    assert [(w.word, w.count) for w in top["positive"]] == [("profit", 2), ("up", 1)]
    assert top["positive"][0].total == pytest.approx(0.9)
    assert [w.word for w in top["negative"]] == ["loss"]  # "down" pushed against, left out
    assert "," not in [w.word for w in top_words_by_label(explanations, k=10)["positive"]]
