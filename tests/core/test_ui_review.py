"""The playground tab after a review in a real browser: an error is a line in the page.

Raised as ``gr.Error`` it was a toast over red "Error" boxes in place of the probabilities and
the words, the previous text's note ("Predicted negative (93%)") still showing beside them, and a
traceback in the server's terminal for a mistake as ordinary as an empty text box. The handlers
are called here as the page calls them, without a browser.
"""

from __future__ import annotations

import pytest

from tunesmith.errors import UserInputError
from tunesmith.ui import core_demos, model_access
from tunesmith.ui.markdown import plain_markdown
from tunesmith.ui.model_access import OUTSIDE_ROOTS


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "demo-models").mkdir(parents=True)
    model_access.set_model_roots([])
    yield
    model_access.set_model_roots([])


def _handler(name: str):
    """The function a button of the playground calls, and the ids of what it updates."""
    blocks = core_demos.build_playground()
    found = [f for f in blocks.fns.values() if f.name == name]
    assert found and len({f.fn for f in found}) == 1  # a button and the keyboard: one handler
    return found[0].fn, [o._id for o in found[0].outputs], blocks


def _note_id(blocks) -> int:
    import gradio as gr

    notes = [b for b in blocks.blocks.values() if isinstance(b, gr.Markdown)]
    return notes[-1]._id  # the first is the tab's own text


@pytest.mark.parametrize(
    ("directory", "text", "message"),
    [
        ("", "hello", "Train a model on sample data first, or enter a model directory."),
        ("/etc", "hello", OUTSIDE_ROOTS),
        ("/etc/../etc/passwd", "hello", OUTSIDE_ROOTS),
        ("anything", "   ", "Type a text to classify."),
    ],
)
def test_classify_errors_are_the_note_and_clear_the_results(directory, text, message, capsys):
    classify, _, _ = _handler("on_classify")
    probabilities, words, note = classify(directory, text)
    assert probabilities is None and words is None  # no stale result, no red "Error" box
    assert note == f"**{plain_markdown(message)}**"
    assert "Traceback" not in capsys.readouterr().err


def test_a_typed_name_quoted_back_is_escaped():
    classify, _, _ = _handler("on_classify")
    _, _, note = classify("<img src=x onerror=alert(1)>", "hello")
    assert "<img" not in note and "&lt;img src=x onerror=alert\\(1\\)&gt;" in note


def test_an_unexpected_failure_is_named_in_the_page_and_logged(monkeypatch, capsys):
    def broken(directory, text):
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(core_demos, "classify_text", broken)  # what the page's handler calls
    classify, _, _ = _handler("on_classify")
    assert classify("m", "hello") == (
        None,
        None,
        "**Something went wrong: RuntimeError: the disk went away**",
    )
    assert "Traceback" in capsys.readouterr().err  # for whoever runs the server


def test_train_reports_in_the_note_and_says_what_to_do_next(monkeypatch):
    on_train, outputs, blocks = _handler("on_train")
    assert _note_id(blocks) in outputs  # it had only the directory box to write to
    monkeypatch.setattr(core_demos, "train_on_sample", lambda name: "/models/" + name)
    directory, note, *_ = on_train("support_intents")
    assert directory == "/models/support_intents"
    assert "Type a text and press Enter (or **Classify**)" in note


def test_train_errors_are_the_note_and_keep_the_typed_directory(monkeypatch):
    def refused(name):
        raise UserInputError("no room left in /tmp")

    monkeypatch.setattr(core_demos, "train_on_sample", refused)
    on_train, _, _ = _handler("on_train")
    kept, note, *shown = on_train("support_intents")
    assert kept == {"__type__": "update"}  # the directory box is left as it is
    assert shown == [{"__type__": "update"}] * 2  # and the last result with it
    assert note == "**no room left in /tmp**"
    kept, note, *_ = on_train("")
    assert kept == {"__type__": "update"} and note == "**No sample data set is installed.**"


def test_plain_markdown_writes_autolink_characters_as_entities_for_every_demo():
    from tunesmith.ui.markdown import plain_markdown

    shown = plain_markdown("see http://x.io/a_b or www.evil.com, mail me@x.io")
    # Gradio's Markdown links http://, www. and e-mail addresses even in escaped text.
    assert "http://" not in shown and "www." not in shown and "@" not in shown
    assert "http&#58;//x.io/a\\_b" in shown and "www&#46;evil.com" in shown
    assert "me&#64;x.io" in shown


def test_the_keyboard_classifies_as_the_button_does():
    import gradio as gr

    blocks = core_demos.build_playground()
    found = {b.label: b for b in blocks.blocks.values() if isinstance(b, gr.Textbox)}
    boxes = {label: box._id for label, box in found.items()}
    button = next(
        b for b in blocks.blocks.values() if isinstance(b, gr.Button) and b.value == "Classify"
    )
    (fn,) = {f.fn for f in blocks.fns.values() if f.name == "on_classify"}
    triggers = {tuple(t) for f in blocks.fns.values() if f.fn is fn for t in f.targets}
    # Enter in the directory box, Shift+Enter in the (multi-line) text box did nothing.
    assert {
        (button._id, "click"),
        (boxes["Model directory"], "submit"),
        (boxes["Text"], "submit"),
    } <= triggers
    # At two lines Gradio submits the text on Shift+Enter only, Enter breaking the line.
    assert (found["Text"].lines, found["Text"].max_lines) == (1, 8)


def test_the_pickers_own_updates_are_not_announced_as_actions():
    blocks = core_demos.build_playground()
    shown = {
        f.name: f.show_progress
        for f in blocks.fns.values()
        if f.name in ("on_sample", "on_open_picker", "on_pick")
    }
    # Gradio said "Complete" each time the Tab key crossed the picker (its list is re-read).
    assert shown == dict.fromkeys(("on_sample", "on_open_picker", "on_pick"), "hidden")


def test_the_intro_says_how_to_open_a_model_of_ones_own():
    import gradio as gr

    blocks = core_demos.build_playground()
    intro = next(b for b in blocks.blocks.values() if isinstance(b, gr.Markdown)).value
    # It promised "a model you trained with `tunesmith train`", which `make run` refuses.
    assert "tunesmith ui --models" in intro


def test_the_sample_data_box_says_what_the_chosen_set_holds():
    import gradio as gr

    sets = core_demos.sample_sets()
    blocks = core_demos.build_playground()
    box = next(b for b in blocks.blocks.values() if isinstance(b, gr.Dropdown))
    assert box.info == sets[box.value].description
    (on_sample,) = {f.fn for f in blocks.fns.values() if f.name == "on_sample"}
    other = next(name for name in sets if name != box.value)
    assert on_sample(other)["info"] == sets[other].description


def test_train_shows_the_sample_model_by_its_name_not_the_servers_path(monkeypatch):
    trained = model_access.demo_models_dir() / "support_intents"
    trained.mkdir()
    monkeypatch.setattr(core_demos, "train_on_sample", lambda name: str(trained))
    on_train, _, _ = _handler("on_train")
    directory, *_ = on_train("support_intents")
    # The page showed /home/USER/.cache/tunesmith/demo-models/support_intents to anyone.
    assert directory == "support_intents"
    assert model_access.resolve_model_dir(directory) == trained.resolve()  # Classify finds it


@pytest.mark.parametrize("typed", [".", "support", "support/sample-kb/.."])
def test_a_folder_that_is_no_model_is_named_as_typed_not_by_the_servers_path(typed):
    (model_access.demo_models_dir() / "support").mkdir()
    classify, _, _ = _handler("on_classify")
    probabilities, words, note = classify(typed, "hello")
    assert probabilities is None and words is None
    assert "is not a model directory" in note
    assert str(model_access.demo_models_dir()).replace("_", "\\_") not in note
    assert "demo\\-models" not in note and plain_markdown(typed) in note


def test_training_another_sample_clears_the_last_models_result(monkeypatch):
    monkeypatch.setattr(core_demos, "train_on_sample", lambda name: "/models/" + name)
    on_train, outputs, blocks = _handler("on_train")
    labels = {getattr(b, "label", None): b._id for b in blocks.blocks.values()}
    ids = {name: labels[name] for name in ("Probabilities", "Why")}
    # "card_lost 97%" stayed under "Trained on finance_sentences", read as the new model's.
    assert ids["Probabilities"] in outputs and ids["Why"] in outputs
    _, _, probabilities, words = on_train("finance_sentences")
    assert probabilities is None and words is None


def test_picking_a_found_model_fills_the_directory_and_the_list_is_made_anew(tmp_path):
    import gradio as gr

    blocks = core_demos.build_playground()
    picker = next(
        b
        for b in blocks.blocks.values()
        if isinstance(b, gr.Dropdown) and b.label == "Models found"
    )
    (on_pick,) = {f.fn for f in blocks.fns.values() if f.name == "on_pick"}
    (on_open,) = {f for f in blocks.fns.values() if f.name == "on_open_picker"}
    assert on_pick("runs/fin_ens") == "runs/fin_ens"
    assert (picker._id, "focus") in {tuple(t) for t in on_open.targets}
    # A model trained after the page was built shows when the list is next opened.
    (model_access.demo_models_dir() / "late").mkdir()
    (model_access.demo_models_dir() / "late" / "config.json").write_text("{}")
    assert on_open.fn()["choices"] == [("late (model)", "late")]


def test_the_unread_part_of_a_long_text_is_shown_word_by_word_so_it_wraps_between_words():
    from types import SimpleNamespace

    from tunesmith.ui.highlight import scores_to_highlights

    text = "card lost and I was charged twice"
    pieces = scores_to_highlights(text, [SimpleNamespace(word="card", score=1.0, start=0, end=4)])
    assert "".join(piece for piece, _ in pieces) == text
    # One piece "lost and I was charged twice" broke mid-word in the page ("was c / harged").
    assert pieces[1:] == [
        (part, None)
        for part in [" ", "lost", " ", "and", " ", "I", " ", "was", " ", "charged", " ", "twice"]
    ]
