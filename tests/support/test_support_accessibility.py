"""The support demo for a screen-reader and keyboard user, in a real browser: every button has a
name of its own, and "Why this answer" says in words what its colours show.

One page load for the module: the tests read the page the first one leaves."""

from __future__ import annotations

import re
import shutil

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def explained(built_kb, tmp_path_factory, launch_blocks, page):
    """The demo on a copy of the tiny KB, a question asked and its answer explained."""
    from tunesmith_support.demo import build_demo

    kb = tmp_path_factory.mktemp("a11y") / "kb"
    shutil.copytree(built_kb, kb)
    page.goto(launch_blocks(build_demo(kb)))
    question = page.get_by_label("Question")
    question.fill("How much does shipping cost?", timeout=60_000)
    question.press("Enter")
    page.locator("#support-decision").get_by_text("Decision: answer").wait_for(timeout=60_000)
    page.get_by_role("button", name="Why this answer").click()
    page.get_by_role("button", name="Explain the last answer").click()
    page.get_by_text("Similarity").wait_for(timeout=60_000)
    return page


def test_every_button_has_a_name_and_no_two_share_one(explained):
    names = [
        (button.get_attribute("aria-label") or button.inner_text()).strip(" ▼▲\n")
        for button in explained.get_by_role("button").all()
        if button.is_visible()
    ]
    # The chat's "share" button had no name at all ("button" read alone), and the accordion and
    # the button inside it were both "Why this answer".
    assert "" not in names, names
    once = {"Copy message"}  # one per message, beside it
    repeated = {n for n in names if names.count(n) > 1} - once
    assert not repeated, names


def test_why_this_answer_names_the_words_its_colours_show(explained):
    note = explained.get_by_text("Similarity").locator("xpath=ancestor::span[1]").inner_text()
    said = r"In the (question|entry's \w+) (raised the match|lowered it): \S+ \([+-]\d\.\d\d\)"
    assert re.search(said, note), note
