"""The finance dashboard in a real browser (Debian's Chromium through Playwright)."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def dashboard_url(tiny_model, tmp_path_factory, launch_blocks, one_torch_thread):
    """The dashboard of the sample stream, served. On one torch thread: the page's scoring
    runs while the set-up's thread replays (and explains) the stream, and on a busy shared CPU
    their threads waited on each other for tens of seconds."""
    from tunesmith_finance import demo

    # The sample's own database (only that one is filled with the sample stream), in this
    # module's folder.
    folder = tmp_path_factory.mktemp("finance_ui")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo, "demo_paths", lambda: (folder / "model", folder / "demo.sqlite"))
        return launch_blocks(demo.build_demo(model=str(tiny_model)))


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
    # The score line itself: the page's intro also names P(positive) − P(negative).
    page.get_by_text(re.compile(r"Score [+-]\d\.\d{3} \(P\(positive\) − P\(negative\)\)")).wait_for(
        timeout=60_000
    )
    assert (
        "Topics and tickers (topics.toml): banking, $HLXB"
        in page.get_by_text("Topics and tickers").inner_text()
    )


def test_start_after_a_failed_set_up_tries_again_and_shows_the_outcome(
    tmp_path_factory, launch_blocks, page, monkeypatch
):
    import time

    from tunesmith.errors import ModelNotFoundError
    from tunesmith_finance.demo import build_demo
    from tunesmith_finance.scoring import SentimentModel

    def slow_missing(cls, path, **_options):
        time.sleep(1.0)  # long enough for the page to show the attempt under way
        raise ModelNotFoundError(f"model directory {path} does not exist")

    monkeypatch.setattr(SentimentModel, "load", classmethod(slow_missing))
    folder = tmp_path_factory.mktemp("finance_ui_failing")
    url = launch_blocks(build_demo(model=str(folder / "no-model"), db=str(folder / "demo.sqlite")))
    page.goto(url)
    page.get_by_text("Set-up failed").wait_for(timeout=60_000)
    page.get_by_role("button", name="Start", exact=True).click()  # the user's own --db
    page.get_by_text("Set-up failed").wait_for(state="detached", timeout=10_000)
    # The timer then shows how the attempt ended; it kept "Loading the model..." when the
    # failure read the same as the one before.
    page.get_by_text("Set-up failed").wait_for(timeout=15_000)
    assert not (folder / "no-model").exists()  # a mistyped --model is not trained into
