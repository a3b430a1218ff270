"""The suite in a real browser: Debian's Chromium, headless, driven by Playwright."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def suite_url(launch_blocks):
    from tunesmith_suite.suite import build_suite, collect_demos

    return launch_blocks(build_suite()), [d.title for d in collect_demos()]


def test_suite_page_shows_a_tab_for_every_demo(suite_url, page):
    url, titles = suite_url
    page.goto(url)
    page.get_by_role("tab").first.wait_for(timeout=60_000)
    shown = [t.strip() for t in page.get_by_role("tab").all_inner_texts()]
    for title in titles:
        assert title in shown, f"tab {title!r} missing from {shown}"


def test_clicking_a_plugin_tab_shows_its_content(suite_url, page):
    url, _ = suite_url
    page.goto(url)
    page.get_by_role("tab", name="Finance sentiment").click(timeout=60_000)
    page.get_by_text("per-topic sentiment trends").wait_for(timeout=30_000)


def test_playground_classifies_and_explains_a_text_with_a_model_directory(
    suite_url, page, tmp_path_factory
):
    from tunesmith.testing import make_tiny_classifier

    texts = ["my card is lost", "i want a refund"]
    # Labels as a customer's data may hold them: Gradio read the text between two "$$" as
    # LaTeX (and "**" as bold).
    labels = ["card_lost $$x$$", "**refund** $$now$$"]
    model_dir = make_tiny_classifier(tmp_path_factory.mktemp("ui_model"), labels, texts)
    from tunesmith.ui.model_access import set_model_roots

    set_model_roots([model_dir.parent])  # as `tunesmith ui --models DIR` does
    url, _ = suite_url
    page.goto(url)
    page.get_by_role("tab", name="Classify & explain").click(timeout=60_000)
    page.get_by_label("Model directory").fill(str(model_dir))
    page.get_by_label("Text").fill("my card is lost")
    page.get_by_role("button", name="Classify").click()
    page.get_by_text("Predicted").wait_for(timeout=60_000)
    note = page.get_by_text("Predicted").inner_text()
    assert any(label in note for label in labels), note  # shown as typed
    assert page.locator(".katex, .latex-block").count() == 0


def test_playground_refuses_a_model_path_outside_the_allowed_roots(suite_url, page):
    from tunesmith.ui.model_access import OUTSIDE_ROOTS

    url, _ = suite_url
    page.goto(url)
    page.get_by_role("tab", name="Classify & explain").click(timeout=60_000)
    page.get_by_label("Model directory").fill("/etc/../etc/passwd")
    page.get_by_label("Text").fill("hello")
    page.get_by_role("button", name="Classify").click()
    page.get_by_text("not in a folder the UI may open").first.wait_for(timeout=60_000)
    body = page.inner_text("body")
    assert OUTSIDE_ROOTS.split(":")[0] in body
    assert "passwd" not in body.replace("/etc/../etc/passwd", "")  # nothing said about the file
    assert "Predicted" not in body
