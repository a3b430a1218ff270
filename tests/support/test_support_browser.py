"""The support demo in a real browser: ask, see the answer and its source, trigger a hand-off,
give feedback and see it stored, and close the hand-off from the queue."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_url(built_kb, tmp_path_factory, launch_blocks):
    from tunesmith_support.demo import build_demo

    kb = tmp_path_factory.mktemp("browser") / "kb"
    shutil.copytree(built_kb, kb)
    return launch_blocks(build_demo(kb)), kb


def ask(page, text):
    box = page.get_by_label("Question")
    box.fill(text)
    page.get_by_role("button", name="Ask", exact=True).click()


def test_ask_handoff_and_feedback_in_the_browser(demo_url, page):
    url, kb = demo_url
    page.goto(url)
    page.get_by_label("Question").wait_for(timeout=60_000)

    # An FAQ question word for word: answered, with its source shown.
    ask(page, "How much does shipping cost?")
    page.locator("#support-decision").get_by_text("Decision: answer").wait_for(timeout=60_000)
    page.locator("#support-source").get_by_text("shp-01").first.wait_for(timeout=10_000)
    page.get_by_text("Standard shipping costs $6.95").first.wait_for(timeout=10_000)

    page.get_by_role("button", name="Helpful", exact=True).click()
    page.get_by_text("Feedback stored: turn 1 rated helpful").wait_for(timeout=30_000)

    # Markup in a question is shown as text, not run.
    ask(page, "<b>bold</b> I want to talk to a human")
    page.get_by_text("Handed off to a person").wait_for(timeout=60_000)
    page.get_by_text("<b>bold</b> I want to talk to a human").wait_for(timeout=10_000)

    # The agent's side: the hand-off waits in the queue (refreshed by the question), its
    # markup shown as text; an entry found by typing, Enter, then closed: it leaves the queue.
    page.locator("button.label-wrap", has_text="Hand-offs waiting").click()
    queue = page.locator("#support-handoff-queue")
    queue.get_by_text("1 hand-off waiting").wait_for(timeout=30_000)
    queue.get_by_text("Customer: <b>bold</b> I want to talk to a human").wait_for()
    entry = page.get_by_label("Entry that answers it")
    entry.click()
    entry.press_sequentially("shipping cost")
    page.get_by_role("option", name="shp-01: How much does shipping cost?").wait_for()
    entry.press("ArrowDown")
    entry.press("Enter")
    page.get_by_role("button", name="Close with this entry").click()
    closed = "Hand-off of turn 2 resolved with entry shp-01."
    page.locator("#support-handoff-note").get_by_text(closed).wait_for(timeout=30_000)
    queue.get_by_text("No hand-offs waiting.").wait_for(timeout=10_000)
    page.get_by_text("<b>bold</b> I want to talk to a human").first.wait_for()  # the chat's

    db = sqlite3.connect(kb / "conversations.sqlite")
    feedback = db.execute("SELECT turn_id, helpful, correct_id FROM support_feedback").fetchall()
    decisions = db.execute("SELECT decision, reason FROM support_turns ORDER BY id").fetchall()
    outcome = db.execute("SELECT handoff_outcome, handoff_entry FROM support_turns WHERE id = 2")
    outcome = outcome.fetchone()
    db.close()
    assert feedback == [(1, 1, None), (2, None, "shp-01")]
    assert decisions == [("answer", ""), ("handoff", "asked_for_person")]
    assert outcome == ("resolved", "shp-01")
    assert (kb / "handoffs.jsonl").read_text().count("support.handoff") == 1
