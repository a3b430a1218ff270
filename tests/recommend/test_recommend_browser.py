"""The recommend demo in a real browser: Debian's Chromium, headless, driven by Playwright."""

from __future__ import annotations

import shutil
import socket

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory):
    from tunesmith.testing import make_tiny_base_model
    from tunesmith_recommend.data import load_items, sample_paths
    from tunesmith_recommend.demo import build_demo, build_sample_model

    texts = load_items(sample_paths()["items"]).texts
    tiny = make_tiny_base_model(tmp_path_factory.mktemp("tiny"), texts)
    model_dir = build_sample_model(tmp_path_factory.mktemp("demo") / "model", model=str(tiny))
    port = free_port()
    app = build_demo(str(model_dir))
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, share=False)
    yield f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture(scope="module")
def page():
    import os

    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page()
        yield page
        browser.close()


def test_choosing_a_user_shows_a_ranked_list_with_reasons(demo_url, page):
    page.goto(demo_url)
    page.get_by_role("button", name="Recommend").wait_for(timeout=60_000)
    page.get_by_role("button", name="Recommend").click()
    results = page.locator("#recommend-results")
    results.get_by_text("because you liked").first.wait_for(timeout=60_000)
    text = results.inner_text()
    assert "For u01" in text and text.count("because you liked") >= 5


def test_a_description_gives_recommendations_for_a_new_user(demo_url, page):
    page.goto(demo_url)
    page.get_by_text("A description").click(timeout=60_000)
    page.get_by_label("Describe what you want").fill("a haunted house on a foggy island")
    page.get_by_role("button", name="Recommend").click()
    results = page.locator("#recommend-results")
    results.get_by_text("For “a haunted house on a foggy island”").wait_for(timeout=60_000)
    assert results.inner_text().count(" · ") == 10
