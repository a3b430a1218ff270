"""The support demo's buttons as a user meets them: a mistake is a note on the page, never a
``gr.Error`` (a traceback in the terminal and a red "Error" over every output of the event,
the stored-feedback table and the conversation included), and nothing shown is left over from
an earlier answer or an earlier knowledge base."""

from __future__ import annotations

import gradio as gr
import pytest

from tunesmith_support import demo

SKIP = gr.skip()


@pytest.fixture
def home(home, monkeypatch):
    """test_demo's home (a private TUNESMITH_HOME, the demo's services closed), and no toast:
    there is no page to show it."""
    monkeypatch.setattr(gr, "Warning", lambda message: None)
    return home


def test_an_empty_question_is_a_note_and_changes_nothing_else(kb_copy, home):
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    out = demo.ask_turn("   ", history, str(kb_copy), "conv-1")
    chat, box, kb, conv, last, decision, source, fb, ask_note, why_note, qw, ew = out
    assert "the question is empty" in ask_note and ask_note.startswith("**Not done:**")
    # The conversation, the question box (to be corrected) and the panels stay as they were.
    assert [chat, box, kb, conv, last, decision, source, fb, why_note, qw, ew] == [SKIP] * 11


def test_a_new_answer_clears_the_explanation_of_the_one_before(kb_copy, home):
    out = demo.ask_turn("How much does shipping cost?", [], str(kb_copy), None)
    chat, box, kb, conv, last, decision, source, fb, ask_note, why_note, qw, ew = out
    assert len(chat) == 2 and box == "" and last["turn_id"] and "Decision" in decision
    assert (ask_note, why_note, qw, ew) == ("", "", None, None)
    assert demo.reset_conversation()[-3:] == ("", None, None)


def test_rating_before_asking_keeps_the_stored_feedback_table(kb_copy, home):
    note, table = demo.rate_turn(str(kb_copy), {}, True)
    assert "Ask a question first" in note and table == SKIP


def test_rating_twice_stores_both_and_shows_them_newest_first(kb_copy, home):
    out = demo.ask_turn("How much does shipping cost?", [], str(kb_copy), None)
    last = out[4]
    demo.rate_turn(str(kb_copy), last, True)
    note, table = demo.rate_turn(str(kb_copy), last, False)
    assert note == f"Feedback stored: turn {last['turn_id']} rated not helpful."
    assert [row[2] for row in table] == ["not helpful", "helpful"]


def test_why_without_an_answer_is_a_note_and_empties_the_panels(kb_copy, home):
    query_words, entry_words, note = demo.why_answer(str(kb_copy), {})
    assert (query_words, entry_words) == (None, None)
    assert "Ask a question that gets an answer first" in note


def test_a_failed_upload_is_said_in_the_kb_note_and_keeps_the_conversation(kb_copy, home):
    bad = home / "wrong.csv"
    bad.write_text("foo,bar\n1,2\n", encoding="utf-8")
    out = demo.build_from_upload([str(bad)], str(kb_copy))
    kb, note, *rest = out
    assert kb == SKIP and rest == [SKIP] * 12
    assert "wrong.csv" in note and "question" in note and str(home) not in note
    kb, note, *_ = demo.build_from_upload(None, str(kb_copy))
    assert kb == SKIP and "Choose FAQ files" in note


def test_an_upload_onto_an_uncalibrated_kb_without_questions_is_a_note(kb_copy, home):
    (kb_copy / "calibration.json").unlink()  # `support demo --kb` on a KB only indexed
    faq = home / "faq.csv"
    faq.write_text("id,question,answer\nk1,When are you open?,From 9 to 5.\n", encoding="utf-8")
    # It raised FileNotFoundError: a red "Error" toast and a traceback in the terminal.
    kb, note, *rest = demo.build_from_upload([str(faq)], str(kb_copy))
    assert kb == SKIP and rest == [SKIP] * 12
    assert "no calibration to borrow" in note and "question,answer\\_id" in note
    assert not any((home / "home" / "demo-models" / "support" / "uploads").glob("*"))


def test_a_new_kb_clears_the_old_kbs_answer_explanation_and_stored_feedback(kb_copy, home):
    faq = home / "faq.csv"
    faq.write_text("id,question,answer\nk1,When are you open?,From 9 to 5.\n", encoding="utf-8")
    out = demo.build_from_upload([str(faq)], str(kb_copy))
    kb, note, chat, conv, last, decision, source, fb, table, why_note, qw, ew, _h, _q = out
    assert note.startswith("Built ") and (chat, conv, last) == ([], None, {})
    assert (decision, source, fb, why_note, qw, ew) == ("", "", "", "", None, None)
    # The old KB's ratings stayed in the table, under the new KB's questions.
    assert table == []


def test_a_built_kb_is_named_by_the_uploaded_files_not_the_servers_folders(kb_copy, home):
    faq = home / "my_faq.csv"
    faq.write_text("id,question,answer\nk1,When are you open?,From 9 to 5.\n", encoding="utf-8")
    _kb, note, *_ = demo.build_from_upload([str(faq)], str(kb_copy))
    # It said "Built /home/.../demo-models/support/uploads/1796.../kb: 1 entries ...".
    assert note.startswith(r"Built a knowledge base from my\_faq.csv: 1 entries")
    assert str(home) not in note and "uploads" not in note


def test_the_heading_above_the_chat_names_the_uploaded_kb_not_the_one_the_page_opened_on(
    kb_copy, home
):
    """After an upload the note under "Knowledge base" named the new KB, but the heading above
    the chat still introduced the old one (on the sample: "Ask the assistant of Fernhill
    Outdoor Co.", and "How much does shipping cost?" in the question box)."""
    faq = home / "bank_faq.csv"
    faq.write_text("id,question,answer\nk1,When are you open?,From 9 to 5.\n", encoding="utf-8")
    heading, placeholder = demo.build_from_upload([str(faq)], str(kb_copy))[-2:]
    assert heading.startswith("### Customer support\n")
    assert r"knowledge base built from bank\_faq.csv (1 entries)" in heading
    assert "Fernhill" not in heading and "`kb`" not in heading and "sources" not in heading
    assert placeholder["placeholder"] == "Type a customer's question"
    assert placeholder["__type__"] == "update" and "value" not in placeholder  # what was typed
    # The page wires both: the heading and the question box are the build event's last outputs.
    blocks = demo.build_demo()
    heading_block = next(b for b in blocks.blocks.values() if isinstance(b, gr.Markdown))
    assert "Fernhill" in heading_block.value
    build = next(d for d in blocks.config["dependencies"] if len(d["outputs"]) == 14)
    assert build["outputs"][-2] == heading_block._id
    assert isinstance(blocks.blocks[build["outputs"][-1]], gr.Textbox)


def test_a_problem_note_shows_markup_and_markdown_as_typed():
    with pytest.warns(UserWarning):  # gr.Warning outside a page: the toast's text
        note = demo.problem("bad <img src=x onerror=alert(1)> in my_faq_file.csv")
    assert "<img" not in note and "&lt;img" in note and r"my\_faq\_file" in note


def test_the_chat_shows_messages_as_plain_text_not_markdown(kb_copy):
    # As Markdown, a question "is 2*3*4 = 24?" showed as "is 234 = 24?" (3 in italics), and
    # "[here](http://...)" in a question or a KB answer became a link.
    blocks = demo.build_demo(kb_copy)
    (chat,) = [b for b in blocks.blocks.values() if isinstance(b, gr.Chatbot)]
    assert chat.render_markdown is False
