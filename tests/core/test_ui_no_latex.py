"""Users' text in every demo is shown as text: no LaTeX from a pair of "$$".

Gradio's Markdown (and Chatbot) read everything between two "$$" as LaTeX by default, wherever
they fall in the source: one customer's "charged $$ twice" and a later "refund my $$ now" became
one formula that hid every line between them. Two layers stop it, both pinned here: the demos'
components render no LaTeX (``markdown_box``), and ``plain_markdown`` breaks every "$$" pair.
The browser step is in tests/browser/test_suite_in_browser.py.
"""

from __future__ import annotations

import html

import pytest

ATTACK = "charged $$ twice [a](javascript:alert(1)) <img src=x onerror=alert(1)> **bold** $x$"


def test_plain_markdown_leaves_no_dollar_pair_and_shows_each_dollar_as_typed():
    from markdown_it import MarkdownIt

    from tunesmith.ui.markdown import plain_markdown

    shown = plain_markdown(ATTACK) + "\n\n" + plain_markdown("refund my $$ now")
    assert "$$" not in shown  # what Gradio's LaTeX reader looks for in the source
    rendered = MarkdownIt().render(shown)
    assert "<a" not in rendered and "<img" not in rendered and "<strong>" not in rendered
    assert html.unescape(rendered).count("$$") == 2 and "$x$" in html.unescape(rendered)


def test_markdown_box_renders_no_latex_and_sanitises_html():
    import gradio as gr

    from tunesmith.ui.markdown import markdown_box

    with gr.Blocks():
        box = markdown_box("**note**", elem_id="n")
    assert isinstance(box, gr.Markdown) and box.value == "**note**" and box.elem_id == "n"
    assert box.latex_delimiters == [] and box.sanitize_html


@pytest.mark.parametrize("name", ["playground", "support", "finance", "recommend"])
def test_no_component_of_a_demo_renders_latex(name, tmp_path, monkeypatch):
    import gradio as gr

    from tunesmith.plugins import collect_by_name

    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path))
    blocks = collect_by_name("tunesmith_demos")[name].build()
    shown = [b for b in blocks.blocks.values() if isinstance(b, gr.Markdown | gr.Chatbot)]
    assert shown, "no Markdown found: the demo's layout changed"
    latex = [(type(b).__name__, b.elem_id) for b in shown if b.latex_delimiters]
    assert latex == []
    # A table shows its cells as text unless a column is Markdown or HTML.
    for table in (b for b in blocks.blocks.values() if isinstance(b, gr.Dataframe)):
        types = table.datatype if isinstance(table.datatype, list) else [table.datatype]
        assert not {"markdown", "html"} & set(types) or table.latex_delimiters == []


def test_recommendations_with_dollars_in_their_titles_keep_every_item_in_the_list():
    from types import SimpleNamespace

    from tunesmith_recommend.demo import results_markdown

    recs = [
        SimpleNamespace(item_id=f"i{n}", title=title, score=0.5, because=[])
        for n, title in enumerate(["Money $$ Money", "Plain film", "Cash $$ Out"])
    ]
    shown = results_markdown(recs, "For u01")
    # "$$" in the first title and the third made the second one part of a formula.
    assert "$$" not in shown and "Plain film" in shown
