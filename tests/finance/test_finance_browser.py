"""The finance dashboard in a real browser (Debian's Chromium through Playwright)."""

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
def dashboard_url(tiny_model, tmp_path_factory):
    from tunesmith_finance.demo import build_demo

    db = tmp_path_factory.mktemp("finance_ui") / "demo.sqlite"
    app = build_demo(model=str(tiny_model), db=str(db))
    port = free_port()
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


def test_dashboard_fills_its_trends_as_the_sample_stream_arrives(dashboard_url, page):
    page.goto(dashboard_url)
    page.get_by_text("per-topic sentiment trends").wait_for(timeout=60_000)
    # The timer refreshes the status while the replay stores the stream.
    page.get_by_text("435 documents stored").wait_for(timeout=120_000)
    assert page.get_by_text("Alerts").first.is_visible()


def test_dashboard_scores_a_pasted_text_with_highlighted_words(dashboard_url, page):
    page.goto(dashboard_url)
    page.get_by_role("tab", name="Score a text").click(timeout=60_000)
    page.get_by_label("Headline or sentence").fill("Helix Bank shares plunge on deposit worries")
    page.get_by_role("button", name="Score", exact=True).click()
    page.get_by_text("P(positive) − P(negative)").wait_for(timeout=60_000)
    assert (
        "Topics and tickers: banking, $HLXB" in page.get_by_text("Topics and tickers").inner_text()
    )
