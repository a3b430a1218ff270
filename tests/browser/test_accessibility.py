"""The playground for a screen-reader and keyboard user, in a real browser: every control has a
name, the probabilities are a table with headers, and the highlighted words are said in words.

One page load for the module: the tests read the page the first one leaves."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def classified(launch_blocks, page, tmp_path_factory):
    """The playground served alone, a tiny model's result on it; the page is returned."""
    from tunesmith.testing import make_tiny_classifier
    from tunesmith.ui.core_demos import build_playground
    from tunesmith.ui.model_access import set_model_roots

    texts = ["my card is lost", "i want a refund"]
    model_dir = make_tiny_classifier(
        tmp_path_factory.mktemp("a11y_model"), ["card_lost", "refund"], texts
    )
    set_model_roots([model_dir.parent])
    page.goto(launch_blocks(build_playground()))
    page.get_by_label("Model directory").fill(str(model_dir), timeout=60_000)
    text = page.get_by_label("Text")
    text.fill("my card is lost")
    text.press("Shift+Enter")  # the keyboard alone, as the note under the box promises
    page.get_by_text("Predicted").wait_for(timeout=60_000)
    return page


def unnamed(snapshot: str, roles: tuple[str, ...]) -> list[str]:
    """Lines of an aria snapshot for a control of one of ``roles`` that has no name."""
    pattern = re.compile(rf"^\s*- ({'|'.join(roles)})(:|$| \[)")
    return [line for line in snapshot.splitlines() if pattern.match(line)]


CONTROLS = ("button", "textbox", "combobox", "checkbox", "radio", "slider", "spinbutton")


def test_every_playground_control_has_a_name_a_screen_reader_reads(classified):
    snapshot = classified.locator("body").aria_snapshot()
    assert unnamed(snapshot, CONTROLS) == [], snapshot


def test_probabilities_are_a_table_with_headers_and_no_bare_bar_values(classified):
    box = classified.get_by_role("table")
    snapshot = box.aria_snapshot()
    # Rows read as "card_lost, 0.731422, 73%" under no header: the bar's raw value said aloud.
    assert 'columnheader "Label"' in snapshot and 'columnheader "Probability"' in snapshot
    assert "meter" not in snapshot, snapshot


def test_the_highlighted_words_are_also_named_in_text(classified):
    # "Why" shows the words as colours only; the note names the strongest of them.
    note = classified.get_by_text("Predicted").inner_text()
    assert re.search(r"Strongest words (towards it|away from it): \S+ \([+-]\d\.\d\d\)", note), note
