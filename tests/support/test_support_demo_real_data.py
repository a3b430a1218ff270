"""The support demo opened on one's own knowledge base (a bank's FAQ, say), not the sample."""

from __future__ import annotations

import gradio as gr
import pytest

from tunesmith.errors import UserInputError
from tunesmith_support import demo


def page_texts(blocks) -> str:
    """Every Markdown text and placeholder of a built page."""
    texts = []
    for block in blocks.blocks.values():
        if isinstance(block, gr.Markdown) and block.value:
            texts.append(str(block.value))
        if isinstance(block, gr.Textbox) and block.placeholder:
            texts.append(block.placeholder)
    return "\n".join(texts)


def test_a_kb_given_to_the_demo_is_introduced_by_its_own_name_not_the_sample_shop(kb_copy):
    shown = page_texts(demo.build_demo(kb_copy))
    # It said "Ask the assistant of Fernhill Outdoor Co." and suggested asking about shipping.
    assert "Fernhill" not in shown and "shipping" not in shown
    assert "`kb`" in shown and "entries from kb)" in shown
    assert "Fernhill" in page_texts(demo.build_demo())  # the sample's page still names it


def test_the_demo_refuses_an_uncalibrated_kb_before_it_serves(kb_copy):
    # As `support index` leaves a KB: the page opened, then every question was the same note.
    (kb_copy / "calibration.json").unlink()
    with pytest.raises(UserInputError, match="no calibration yet.*support calibrate --kb"):
        demo.build_demo(kb_copy)


def test_building_an_uploaded_kb_reports_the_entries_encoded(kb_copy, home, tmp_path):
    faq = tmp_path / "faq.csv"
    rows = [f"f{i},how do I do thing {i},You do thing {i} like this." for i in range(12)]
    faq.write_text("id,question,answer\n" + "\n".join(rows) + "\n", encoding="utf-8")
    told = []

    def progress(value, desc=None, unit=None):
        told.append((value, desc, unit))

    out = demo.build_from_upload([str(faq)], str(kb_copy), progress)
    assert "Built a knowledge base from faq.csv" in out[1]
    # About a minute for a real FAQ showed nothing but a timer.
    assert told and told[-1] == ((12, 12), "Encoding entries", "entries")


def test_the_feedback_table_shows_earlier_feedback_when_the_page_opens(kb_copy, home):
    service = demo.service_for(str(kb_copy))
    turn = service.ask("How much does shipping cost?")
    service.feedback(turn.turn_id, helpful=True)
    service.close()
    demo._services.clear()
    # Empty until the first rating in the page, under "Feedback in the conversation database".
    rows = demo.stored_feedback(str(kb_copy))
    assert rows == [[turn.turn_id, "How much does shipping cost?", "helpful", ""]]
    assert not demo._services  # read from the database, without loading the KB's encoder
    assert demo.stored_feedback("") == []  # the sample KB, not built yet: not built here
