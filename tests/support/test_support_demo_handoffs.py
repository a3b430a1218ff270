"""The demo's hand-off queue, for the agent who takes the hand-offs: what waits (oldest first,
with the conversation so far, the candidates, the reason and the wait), and closing one with
the right entry or with none, after which it leaves the queue and `export-feedback` and
`stats` see it as they see `support handoffs --close`. The page's handlers, in-process."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from tunesmith_support import demo
from tunesmith_support import demo_handoffs as handoffs
from tunesmith_support.service import SupportService


@pytest.fixture
def queued(kb_copy, home):
    """A KB copy with two hand-offs, made as the API or `chat` makes them (not through the
    page): the first after an earlier turn of its conversation. ``(kb, [turn ids])``."""
    service = SupportService(kb_copy)
    try:
        first = service.ask("How much does shipping cost?")
        one = service.ask("talk to a human please", first.conversation_id)
        two = service.ask(
            "<img src=x onerror=alert(1)> talk to a human **now** [here](http://x.example)"
        )
    finally:
        service.close()
    assert (one.answer.decision, two.answer.decision) == ("handoff", "handoff")
    return str(kb_copy), [one.turn_id, two.turn_id]


def _log(kb: str):
    return demo.service_for(kb).conversations


def test_the_queue_shows_each_handoff_oldest_first_with_its_conversation_and_candidates(queued):
    kb, (one, two) = queued
    shown, chosen, entries = handoffs.show_queue(kb)
    assert shown.startswith("2 hand-offs waiting, oldest first.")
    assert shown.index(f"#### Turn {one}, waiting ") < shown.index(f"#### Turn {two}, waiting ")
    first = shown.split(f"#### Turn {two}")[0]
    # The conversation so far, then the question handed off, why, and what it nearly answered.
    assert "- Customer: How much does shipping cost?" in first
    assert "- Assistant (" in first and "- **Customer: talk to a human please**" in first
    assert "Handed off: asked for a person (confidence " in first
    candidate = _log(kb).handoff(one)["candidates"][0]["id"]
    assert f"Candidates: `{candidate}` " in first
    # The oldest is chosen, and the entries to close it with list its candidates first.
    assert [value for _, value in chosen["choices"]] == [one, two] and chosen["value"] == one
    assert (
        entries["choices"][0]
        == (
            entries["choices"][0][0],
            candidate,
        )
        and "(candidate, " in (entries["choices"][0][0])
    )
    ids = [value for _, value in entries["choices"]]
    assert len(ids) == len(set(ids)) == 75  # every entry of the sample KB, once


def test_the_queue_is_read_without_loading_the_kb(queued):
    kb, _ = queued
    handoffs.show_queue(kb)
    # An agent opening the page to see the queue waited for the encoder to load for nothing.
    assert demo._services == {}


def test_a_customers_markup_in_the_queue_shows_as_text(queued):
    kb, (_, two) = queued
    shown, chosen, _ = handoffs.show_queue(kb)
    page = MarkdownIt().render(shown)
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<a " not in page and "**now**" in page  # neither a link nor bold
    # The list of hand-offs is a dropdown, which shows its labels as text: kept as typed.
    (label,) = [label for label, value in chosen["choices"] if value == two]
    assert label.startswith(f"Turn {two}: <img src=x onerror=alert(1)> talk to a human **now**")


def test_closing_with_an_entry_feeds_export_and_stats_and_chooses_no_other_unasked(queued):
    kb, (one, two) = queued
    with pytest.warns(UserWarning):  # the toast, outside a page
        refused = handoffs.close_handoff(kb, one, "no-such-entry", "", "", no_answer=False)
    assert r"no entry 'no\-such\-entry'" in refused[0]  # Markdown, shown as typed
    assert [item["turn_id"] for item in _log(kb).handoffs()] == [one, two]  # nothing stored

    note, shown, chosen, entries, table, note_box = handoffs.close_handoff(
        kb, one, "shp-01", "alice", "told them the price", no_answer=False
    )
    assert note == f"Hand-off of turn {one} resolved with entry `shp-01` by alice."
    assert shown.startswith("1 hand-off waiting") and f"Turn {one}," not in shown
    # The next one is listed but not chosen: a second press closed it unread.
    assert [value for _, value in chosen["choices"]] == [two] and chosen["value"] is None
    assert entries["value"] is None and note_box == ""
    assert [one, "talk to a human please", "", "shp-01"] in table
    log = _log(kb)
    # The request for a person stands for the question asked before it.
    row = {"question": "How much does shipping cost?", "answer_id": "shp-01"}
    assert row in log.training_rows()
    (row,) = log.stats("day")
    assert (row["handoffs_waiting"], row["kb_gaps"]) == (1, 0)

    note = handoffs.close_handoff(kb, two, None, "", "", no_answer=True)[0]
    assert note == f"Hand-off of turn {two} closed with no entry (a gap in the knowledge base)."
    (row,) = log.stats("day")
    assert (row["handoffs_waiting"], row["kb_gaps"]) == (0, 1)
    assert handoffs.show_queue(kb)[0] == "No hand-offs waiting."


def test_a_handoff_another_agent_closed_first_is_refused_and_leaves_the_page_queue(queued):
    kb, (one, two) = queued
    shown = handoffs.show_queue(kb)[0]
    demo.service_for(kb).close_handoff(one, entry_id="shp-01", agent="bob")  # the CLI, say
    with pytest.warns(UserWarning):
        note, shown, chosen, *_ = handoffs.close_handoff(kb, one, None, "", "", no_answer=True)
    assert note.startswith("**Not done:**") and "already" in note and "by bob" in note
    assert f"Turn {one}," not in shown and chosen["value"] is None
    assert _log(kb).handoff(one)["status"] == "resolved"  # the first closure stands


def test_closing_needs_a_handoff_and_an_entry_or_no_answer(queued):
    kb, (one, _) = queued
    with pytest.warns(UserWarning):
        assert r"Choose a hand\-off" in handoffs.close_handoff(kb, None, "shp-01", "", "",
                                                             no_answer=False)[0]  # fmt: skip
        assert "Choose the entry" in handoffs.close_handoff(kb, one, "  ", "", "",
                                                            no_answer=False)[0]  # fmt: skip
    assert len(_log(kb).handoffs()) == 2


def test_choosing_another_handoff_lists_its_candidates_first(queued):
    kb, (one, two) = queued
    entries = handoffs.pick_handoff(kb, two)
    wanted = [c["id"] for c in _log(kb).handoff(two)["candidates"][:3]]
    assert [value for _, value in entries["choices"][: len(wanted)]] == wanted
    assert entries["value"] is None


def test_the_statuses_say_the_queue_and_the_close_in_words():
    assert handoffs.queue_status("2 hand-offs waiting, oldest first.\n\n#### Turn 4") == (
        "2 hand-offs waiting."
    )
    assert handoffs.queue_status(handoffs.EMPTY_QUEUE) == "No hand-offs waiting."
    said = handoffs.closed_status(
        "Hand-off of turn 3 resolved with entry `a`.", "No hand-offs waiting."
    )
    assert said == "Hand-off of turn 3 resolved with entry `a`. No hand-offs waiting."
    assert handoffs.closed_status("**Not done:** x", "1 hand-off waiting") == "**Not done:** x"


def test_the_page_has_the_queue_and_a_question_refreshes_it(kb_copy):
    import gradio as gr

    blocks = demo.build_demo(kb_copy)
    labels = {b.label for b in blocks.blocks.values() if isinstance(b, gr.Dropdown)}
    assert {"Hand-off to close", "Entry that answers it"} <= labels
    queue = next(
        b for b in blocks.blocks.values() if getattr(b, "elem_id", "") == "support-handoff-queue"
    )
    fills = [d for d in blocks.config["dependencies"] if queue._id in d["outputs"]]
    # Opening the page, the refresh button, two close buttons, and Ask and Enter in the chat.
    assert len(fills) >= 6
