"""The recommend demo for a screen-reader and keyboard user, in a real browser: every control
has a name, and the matched words of the first item are said in words as well as in colour.

One page load for the module."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def recommended(tmp_path_factory, launch_blocks, page):
    """The demo on a sample model with a tiny encoder, a user's list shown with its words."""
    from tunesmith.testing import make_tiny_base_model
    from tunesmith_recommend.data import load_items, sample_paths
    from tunesmith_recommend.demo import build_demo, build_sample_model

    texts = load_items(sample_paths()["items"]).texts
    tiny = make_tiny_base_model(tmp_path_factory.mktemp("tiny"), texts)
    model_dir = build_sample_model(tmp_path_factory.mktemp("a11y") / "model", model=str(tiny))
    page.goto(launch_blocks(build_demo(str(model_dir))))
    page.get_by_label("Show which words of the first film matched").check(timeout=60_000)
    page.get_by_role("button", name="Recommend").press("Enter")  # the keyboard alone
    page.locator("#recommend-results").get_by_text("because you watched").first.wait_for(
        timeout=60_000
    )
    return page


def test_every_control_has_a_name_a_screen_reader_reads(recommended):
    snapshot = recommended.locator("body").aria_snapshot()
    roles = "button|textbox|combobox|checkbox|radio|slider"
    assert not re.findall(rf"^\s*- ({roles})(:|$| \[)", snapshot, re.MULTILINE), snapshot


def test_the_matched_words_are_named_under_the_list_not_only_coloured(recommended):
    results = recommended.locator("#recommend-results").inner_text()
    said = r"In the first film (raised the match|lowered it): \S+ \([+-]\d\.\d\d\)"
    assert re.search(said, results), results
