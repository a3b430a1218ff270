"""The recommend demo by keyboard alone, in a real browser: Tab from the modes to the button,
arrows through the modes, Enter in the description box, and the result heard.

One page load for the module: the demo served as `tunesmith recommend demo` serves it (with
the page script of :mod:`tunesmith.ui.a11y`); the fixture walks it with keys only and records
what it met, and the tests read the record."""

from __future__ import annotations

import contextlib

import pytest

pytestmark = pytest.mark.browser

#: What has the focus: "tag role-or-type name".
_FOCUSED = """() => {
    const e = document.activeElement;
    const name = e.getAttribute('aria-label') || (e.labels && e.labels[0]
        && e.labels[0].innerText) || (e.tagName === 'BUTTON' ? e.innerText : '');
    return `${e.tagName} ${e.getAttribute('role') || e.type || ''} ${name.trim()}`.trim();
}"""

#: Every text a live region of the page took, from now on (the changed region only: a region
#: still holding "Complete" is not heard again).
_RECORD_LIVE = """() => {
    window.heard = [];
    new MutationObserver((changes) => changes.forEach((change) => {
        const at = change.target.nodeType === 1 ? change.target : change.target.parentElement;
        const region = at && at.closest('[aria-live]');
        const text = region ? region.textContent.trim() : '';
        if (text && window.heard[window.heard.length - 1] !== text) window.heard.push(text);
    })).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""

_STATUS = "#recommend-status [role=status]"


@pytest.fixture(scope="module")
def walked(page, tmp_path_factory):
    """The demo on a tiny model, walked with the keyboard: a user's list from the first mode,
    then arrows to "A description", Tab into its box, a text and Enter."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    from tunesmith.testing import make_tiny_base_model
    from tunesmith.ui.launch import launch
    from tunesmith_recommend.data import load_items, sample_paths
    from tunesmith_recommend.demo import build_demo, build_sample_model

    texts = load_items(sample_paths()["items"]).texts
    tiny = make_tiny_base_model(tmp_path_factory.mktemp("tiny"), texts)
    model_dir = build_sample_model(tmp_path_factory.mktemp("keys") / "model", model=str(tiny))
    app = build_demo(str(model_dir))
    launch(app, host="127.0.0.1", port=0, prevent_thread_lock=True, quiet=True)
    seen: dict = {}
    try:
        page.goto(f"http://127.0.0.1:{app.server_port}/")
        page.get_by_role("button", name="Recommend").wait_for(timeout=60_000)
        page.wait_for_selector("[role=radiogroup]")  # the page script has run
        page.evaluate(_RECORD_LIVE)
        focused = lambda: page.evaluate(_FOCUSED)  # noqa: E731
        page.keyboard.press("Tab")
        seen["first"] = focused()
        seen["ring"] = page.evaluate(
            "() => getComputedStyle(document.activeElement.closest('label')).outlineStyle"
        )
        stops = []
        while "Recommend" not in (stops or [""])[-1] and len(stops) < 10:
            page.keyboard.press("Tab")
            stops.append(focused())
        seen["stops"] = stops
        page.keyboard.press("Enter")
        page.locator(_STATUS).get_by_text("recommendations for").wait_for(
            state="attached", timeout=60_000
        )
        seen["after_button"] = focused()
        # Gradio says "Complete" up to 5 s after its "Loading": heard before the arrows.
        page.wait_for_function("window.heard.includes('Complete')", timeout=15_000)
        for _ in stops:
            page.keyboard.press("Shift+Tab")
        seen["back"] = focused()
        page.evaluate("window.heard = []")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        box = page.get_by_label("Describe what you want")
        with contextlib.suppress(PlaywrightTimeout):  # the arrows may choose nothing
            box.wait_for(timeout=10_000)
        page.wait_for_timeout(1_000)  # Gradio's "Loading", had it been said
        seen["chosen"] = focused()
        seen["heard_switching"] = page.evaluate("window.heard")
        if not box.is_visible():
            yield seen  # the arrows chose nothing: the tests of the mode's box say so
            return
        page.keyboard.press("Tab")
        seen["into_box"] = focused()
        page.keyboard.type("a haunted house")
        page.keyboard.press("Enter")
        page.locator(_STATUS).get_by_text("“a haunted house”").wait_for(
            state="attached", timeout=60_000
        )
        seen["said"] = page.locator(_STATUS).inner_text().strip("\u200b \n")
        seen["after_enter"] = focused()
        yield seen
    finally:
        app.close()


def test_the_modes_are_one_tab_stop_and_the_button_three_tabs_away(walked):
    # Each mode was a Tab stop of its own, and Tab out of the open user list dropped the focus
    # to the page's start: six Tabs from the modes to the button, one of them to nowhere.
    assert walked["first"] == "INPUT radio A user"
    assert [stop.split(" ")[0] for stop in walked["stops"]] == ["INPUT", "INPUT", "BUTTON"]
    assert "combobox" in walked["stops"][0] and "checkbox" in walked["stops"][1]


def test_the_focused_mode_is_outlined(walked):
    # The chosen mode looked the same focused or not.
    assert walked["ring"] == "solid"


def test_arrows_choose_a_mode_in_silence_and_tab_goes_to_its_box(walked):
    # Arrows did nothing, and each change of mode was heard as "Loading", "Complete".
    assert walked["back"] == "INPUT radio A user"
    assert walked["chosen"] == "INPUT radio A description"
    heard = walked["heard_switching"]  # the live status is re-read: its text is unchanged
    assert not [t for t in heard if "Loading" in t or "Complete" in t], heard
    assert walked.get("into_box") == "TEXTAREA textarea Describe what you want"


def test_enter_in_the_box_recommends_says_so_and_keeps_the_focus(walked):
    assert "said" in walked, "no description box was reached by the keyboard"
    assert walked["said"] == "10 recommendations for “a haunted house”."
    assert walked["after_enter"] == "TEXTAREA textarea Describe what you want"
    assert walked["after_button"] == "BUTTON submit Recommend"
