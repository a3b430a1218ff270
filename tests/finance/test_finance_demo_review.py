"""The dashboard's "Score a text" box as a user meets it: a mistake is said on the page (no red
"Error" over the panels, no traceback in the terminal), and a pasted book is cut and said so."""

from __future__ import annotations

import gradio as gr
import pytest

from tunesmith_finance import demo


@pytest.fixture(scope="module")
def board(tiny_model, tmp_path_factory):
    from tunesmith_finance.scoring import SentimentModel

    folder = tmp_path_factory.mktemp("board")
    board = demo.Dashboard(model=str(tiny_model), db=str(folder / "demo.sqlite"))
    board._model = SentimentModel.load(tiny_model)  # loaded, without the sample replay
    return board


@pytest.mark.parametrize("text", ["", "   \n"])
def test_an_empty_text_is_said_in_the_note_not_raised(text, tmp_path):
    board = demo.Dashboard(model=str(tmp_path / "m"), db=str(tmp_path / "demo.sqlite"))
    with pytest.warns(UserWarning):  # gr.Warning outside a page: the toast's text
        probabilities, words, note = demo.score_text(board, text)
    assert probabilities is None and words is None
    assert note.startswith("**Not scored:**") and "Paste a headline" in note


def test_scoring_before_the_model_is_ready_is_said_in_the_note(tmp_path):
    board = demo.Dashboard(model=str(tmp_path / "m"), db=str(tmp_path / "demo.sqlite"))
    with pytest.warns(UserWarning):
        _, _, note = demo.score_text(board, "Helix Bank <b>plunges</b>")
    assert "not ready yet" in note


def test_a_lone_surrogate_in_the_pasted_text_is_said_in_the_note_not_a_crash(board):
    with pytest.warns(UserWarning):  # it was the tokenizer's TypeError: a red "Error" box
        probabilities, words, note = demo.score_text(board, "Helix Bank \ud800 plunges")
    assert probabilities is None and words is None
    assert note.startswith("**Not scored:**") and "lone surrogate" in note


def test_a_huge_pasted_text_is_cut_like_ingest_and_the_note_says_so(board):
    from tunesmith_finance.documents import DEFAULT_MAX_CHARS

    text = "Helix Bank shares plunge on deposit worries. " * 3000  # 135,000 characters
    probabilities, words, note = demo.score_text(board, text)
    assert set(probabilities) == {"negative", "neutral", "positive"}
    shown = "".join(piece for piece, _ in words)
    assert shown == text[:DEFAULT_MAX_CHARS]  # was the whole text, drawn word by word
    assert f"The text had {len(text):,} characters; only the first {DEFAULT_MAX_CHARS:,}" in note


def test_a_short_text_is_scored_whole_without_a_cut_note(board):
    text = "Helix Bank <img src=x onerror=alert(1)> shares plunge"
    probabilities, words, note = demo.score_text(board, text)
    assert "".join(piece for piece, _ in words) == text
    assert "characters" not in note and "Score **" in note


def test_the_score_button_no_longer_raises_gradio_errors(tmp_path, monkeypatch):
    board = demo.Dashboard(model=str(tmp_path / "m"), db=str(tmp_path / "demo.sqlite"))
    monkeypatch.setattr(gr, "Warning", lambda message: None)
    try:
        demo.score_text(board, "")
    except gr.Error:  # pragma: no cover - the bug
        pytest.fail("an empty text raised gr.Error (a traceback and red Error badges)")


def test_shift_enter_in_the_text_box_scores_as_the_button_does(tmp_path):
    blocks = demo.build_demo(
        model=str(tmp_path / "m"), db=str(tmp_path / "demo.sqlite"), autostart=False
    )
    box = next(
        b
        for b in blocks.blocks.values()
        if isinstance(b, gr.Textbox) and b.label == "Headline or sentence"
    )
    button = next(
        b for b in blocks.blocks.values() if isinstance(b, gr.Button) and b.value == "Score"
    )

    def outputs_of(target):
        found = [f for f in blocks.fns.values() if target in map(tuple, f.targets)]
        return [[o._id for o in f.outputs] for f in found]

    # A multi-line box submits on Shift+Enter only when a submit event is wired: it was not.
    assert outputs_of((box._id, "submit")) == outputs_of((button._id, "click")) != []


def test_the_chart_label_promises_the_interval_only_where_it_is_drawn(tmp_path):
    blocks = demo.build_demo(str(tmp_path / "m"), str(tmp_path / "x.sqlite"), autostart=False)
    (chart,) = [b for b in blocks.blocks.values() if isinstance(b, gr.Plot)]
    # "with 95% interval" over the default top-six chart, which draws none.
    assert "95% band for one chosen key" in chart.label


def test_the_chart_caption_is_above_it_not_a_badge_over_its_title(tmp_path):
    blocks = demo.build_demo(str(tmp_path / "m"), str(tmp_path / "x.sqlite"), autostart=False)
    (chart,) = [b for b in blocks.blocks.values() if isinstance(b, gr.Plot)]
    assert chart.show_label is False
    captions = [b for b in blocks.blocks.values() if isinstance(b, gr.Markdown)]
    assert any(str(b.value).startswith(chart.label) for b in captions)


def test_the_page_offers_a_time_zone_starting_at_the_dashboards(tmp_path):
    blocks = demo.build_demo(
        str(tmp_path / "m"), str(tmp_path / "x.sqlite"), autostart=False, tz="Asia/Tokyo"
    )
    (zone,) = [
        b for b in blocks.blocks.values()
        if isinstance(b, gr.Dropdown) and b.label.startswith("Time zone")
    ]  # fmt: skip
    assert zone.value == "Asia/Tokyo" and zone.allow_custom_value
    (table,) = [b for b in blocks.blocks.values() if isinstance(b, gr.Dataframe)]
    assert table.headers[0] == "window (Asia/Tokyo)"  # it said "window (UTC)" whatever the zone
