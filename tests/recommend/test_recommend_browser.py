"""The recommend demo in a real browser: Debian's Chromium, headless, driven by Playwright."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory, launch_blocks):
    from tunesmith.testing import make_tiny_base_model
    from tunesmith_recommend.data import load_items, sample_paths
    from tunesmith_recommend.demo import build_demo, build_sample_model

    texts = load_items(sample_paths()["items"]).texts
    tiny = make_tiny_base_model(tmp_path_factory.mktemp("tiny"), texts)
    model_dir = build_sample_model(tmp_path_factory.mktemp("demo") / "model", model=str(tiny))
    return launch_blocks(build_demo(str(model_dir)))


def test_choosing_a_user_shows_a_ranked_list_with_reasons(demo_url, page):
    page.goto(demo_url)
    page.get_by_role("button", name="Recommend").wait_for(timeout=60_000)
    page.get_by_role("button", name="Recommend").click()
    results = page.locator("#recommend-results")
    results.get_by_text("because you watched").first.wait_for(timeout=60_000)
    text = results.inner_text()
    # every sample event counts (u01 rated its films 1-3 of 5): watched, not liked
    assert "For u01, who watched" in text and text.count("because you watched") >= 5


def test_a_description_gives_recommendations_for_a_new_user(demo_url, page):
    page.goto(demo_url)
    page.get_by_text("A description").click(timeout=60_000)
    page.get_by_label("Describe what you want").fill("a haunted house on a foggy island")
    page.get_by_role("button", name="Recommend").click()
    results = page.locator("#recommend-results")
    results.get_by_text("For “a haunted house on a foggy island”").wait_for(timeout=60_000)
    assert results.inner_text().count(" · ") == 10


def test_a_description_with_markup_is_shown_as_typed_not_run(demo_url, page):
    page.goto(demo_url)
    page.get_by_text("A description").click(timeout=60_000)
    typed = "<img src=x onerror=alert(1)> *space* operas"
    page.get_by_label("Describe what you want").fill(typed)
    page.get_by_role("button", name="Recommend").click()
    results = page.locator("#recommend-results")
    results.get_by_text(f"For “{typed}”").wait_for(timeout=60_000)
    assert results.locator("img, em").count() == 0  # no image made, no emphasis


def test_enter_in_the_description_box_recommends_as_the_button_does(demo_url, page):
    page.goto(demo_url)
    page.get_by_text("A description").click(timeout=60_000)
    box = page.get_by_label("Describe what you want")
    box.fill("a lighthouse keeper in a storm")
    box.press("Enter")  # did nothing: only the button was wired
    results = page.locator("#recommend-results")
    results.get_by_text("For “a lighthouse keeper in a storm”").wait_for(timeout=30_000)
