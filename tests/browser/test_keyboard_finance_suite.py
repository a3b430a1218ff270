"""The finance dashboard and the suite's tab list by keyboard alone, in a real browser: one Tab
stop per tab list with arrows that select, Enter in a dropdown and in the score box, and what a
screen reader hears after each.

One page load per app: the dashboard on a tiny model, served as `tunesmith finance demo`
serves it, and the suite as `tunesmith ui` serves it (both with the page script of
:mod:`tunesmith.ui.a11y`); each fixture walks its page with keys only and records what it met,
and the tests read the record."""

from __future__ import annotations

import contextlib

import pytest
from test_keyboard_use import _FOCUSED  # what has the focus, as that walk reads it

pytestmark = pytest.mark.browser


#: The selected tab of each tab list, and the name of the panel shown under it.
_TABS = """() => [...document.querySelectorAll('[role=tablist]')].map((list) => {
    const tab = list.querySelector('[role=tab][aria-selected=true]');
    const panel = tab && document.getElementById(tab.getAttribute('aria-controls') || '');
    const named = panel && document.getElementById(panel.getAttribute('aria-labelledby') || '');
    return `${tab ? tab.innerText.trim() : ''} -> ${named ? named.innerText.trim() : ''}`;
})"""

_STATUS = "#finance-status [role=status]"


@pytest.fixture(scope="module")
def dashboard(page, tmp_path_factory, one_torch_thread, launch_demo, listen_to_status):
    """The dashboard on a tiny sentiment model, walked with the keyboard: Tab through its tab
    list, Enter on a choice of "Group by", back to the tab list, an arrow to "Score a text", a
    text and Enter."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    from tunesmith.testing import make_tiny_trained_classifier
    from tunesmith_finance import demo

    folder = tmp_path_factory.mktemp("finance_keys")
    texts = ["helix bank shares plunge on deposit worries", "orcana beats estimates", "flat day"]
    tiny_model = make_tiny_trained_classifier(
        folder / "tiny", ["negative", "neutral", "positive"], texts, [0, 2, 1], steps=3
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo, "demo_paths", lambda: (folder / "model", folder / "demo.sqlite"))
        app = demo.build_demo(model=str(tiny_model))
    seen: dict = {}
    try:
        page.goto(launch_demo(app))
        page.get_by_role("tab", name="Score a text").wait_for(timeout=60_000)
        page.wait_for_selector(_STATUS, state="attached")  # the page script has run
        page.locator("#finance-chart-words").get_by_text("chart in words").wait_for(
            timeout=60_000
        )  # drawn once: the controls stay put
        focused = lambda: page.evaluate(_FOCUSED)  # noqa: E731
        stops = []
        while "Group by" not in (stops or [""])[-1] and len(stops) < 8:
            page.keyboard.press("Tab")
            stops.append(focused())
        seen["stops"] = stops
        page.keyboard.press("ArrowDown")  # the list opens on focus: down to "ticker"
        page.keyboard.press("Enter")
        page.locator(_STATUS).get_by_text("by ticker").wait_for(state="attached", timeout=60_000)
        seen["after_choice"] = focused()
        seen["choice_open"] = page.evaluate(
            "() => document.activeElement.getAttribute('aria-expanded')"
        )
        seen["heard_choice"] = page.locator(_STATUS).inner_text().strip("\u200b \n")
        page.keyboard.press("Shift+Tab")
        seen["back"] = focused()
        page.keyboard.press("ArrowRight")
        box = page.get_by_label("Headline or sentence")
        with contextlib.suppress(PlaywrightTimeout):  # the arrow may select nothing
            box.wait_for(timeout=10_000)
        seen["chosen"] = focused()
        seen["tabs"] = page.evaluate(_TABS)
        if not box.is_visible():
            # Reached by the button instead: the tests of the box still run.
            page.get_by_role("tab", name="Score a text").click()
            box.focus()
        else:
            page.keyboard.press("Tab")
        seen["into_box"] = focused()
        page.keyboard.type("Helix Bank shares plunge on deposit worries")
        # Everything the status says from here, in order: a timer's redraw may speak after the
        # score (CI once read the alerts' status back, the score's said and gone).
        listen_to_status(page, "#finance-status")
        page.keyboard.press("Enter")
        with contextlib.suppress(PlaywrightTimeout):  # Enter may only break the line
            page.wait_for_function(
                "() => window.tunesmithHeard.some((said) => said.startsWith('Scored'))",
                timeout=90_000,  # the first score loads the model: slow on a busy 2-core CI
            )
        heard = page.evaluate("() => window.tunesmithHeard")
        scored = [said for said in heard if said.startswith("Scored")]
        seen["said"] = (scored or heard or [page.locator(_STATUS).inner_text()])[0]
        seen["after_enter"] = focused()
        seen["box_value"] = box.input_value()
        yield seen
    finally:
        app.close()


@pytest.fixture(scope="module")
def suite(page, dashboard, launch_demo):
    """The suite walked with the keyboard: Tab onto its tab list, an arrow to the finance tab,
    Tab into it. After ``dashboard``: one app served at a time."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    from tunesmith_suite.suite import build_suite, collect_demos

    app = build_suite()
    seen: dict = {"last": f"BUTTON tab {collect_demos()[-1].title}"}
    try:
        page.goto(launch_demo(app))
        page.get_by_role("tab", name="Finance sentiment").wait_for(timeout=60_000)
        page.wait_for_selector("svg.dropdown-arrow[aria-hidden=true]", state="attached")
        focused = lambda: page.evaluate(_FOCUSED)  # noqa: E731
        page.keyboard.press("Tab")
        seen["first"] = focused()
        seen["first_ring"] = page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement);"
            " return [s.outlineStyle, parseFloat(s.outlineWidth), parseFloat(s.outlineOffset)]; }"
        )
        page.keyboard.press("Tab")
        seen["second"] = focused()
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("ArrowRight")
        with contextlib.suppress(PlaywrightTimeout):  # the arrow may select nothing
            page.get_by_role("button", name="Start with the sample data").wait_for(timeout=10_000)
        seen["chosen"] = focused()
        page.keyboard.press("End")
        seen["end"] = focused()
        page.keyboard.press("Home")
        seen["home"] = focused()
        page.keyboard.press("ArrowLeft")  # from the first, round to the last
        seen["wrapped"] = focused()
        yield seen
    finally:
        app.close()


def test_the_dashboards_tab_list_is_one_tab_stop(dashboard):
    # Each tab was a stop: three Tabs from the start button to the first control.
    assert dashboard["stops"] == [
        "BUTTON submit Start with the sample data",
        "BUTTON tab Trends and alerts",
        "INPUT combobox Group by",
    ]


def test_an_arrow_selects_the_score_tab_and_its_panel_is_named_by_it(dashboard):
    # Arrows did nothing on a tab, and each panel named no tab (aria-controls="").
    assert dashboard["back"] == "BUTTON tab Trends and alerts"
    assert dashboard["chosen"] == "BUTTON tab Score a text"
    assert dashboard["tabs"] == ["Score a text -> Score a text"]
    assert dashboard["into_box"] == "TEXTAREA textarea Headline or sentence"


def test_enter_on_a_dropdown_choice_keeps_the_focus_on_the_box_and_says_the_alerts(dashboard):
    # The focus fell to the page's body: no ring, and a screen reader's place lost.
    assert dashboard["after_choice"] == "INPUT combobox Group by"
    assert dashboard["choice_open"] == "false"
    assert dashboard["heard_choice"].endswith("by ticker.")


def test_enter_in_the_score_box_scores_says_so_and_keeps_the_focus(dashboard):
    # Enter only broke the line (the box had two lines); Shift+Enter scored.
    assert dashboard["box_value"] == "Helix Bank shares plunge on deposit worries"
    assert dashboard["said"].startswith("Scored ")
    assert dashboard["after_enter"] == "TEXTAREA textarea Headline or sentence"


def test_the_suites_tab_list_is_one_stop_and_arrows_home_and_end_select(suite):
    # Four Tabs crossed the suite's tabs; arrows did nothing.
    assert suite["first"] == "BUTTON tab Classify & explain"
    assert not suite["second"].startswith("BUTTON tab")
    assert suite["chosen"] == "BUTTON tab Finance sentiment"
    assert suite["end"] == suite["last"]
    assert suite["home"] == "BUTTON tab Classify & explain"
    assert suite["wrapped"] == suite["last"]


def test_a_focused_tab_is_ringed_inside_it_where_its_list_does_not_clip_the_ring(suite):
    # The tab list cuts what sticks out of it: a ring around the tab showed as one line at its
    # side (and the browser's own was 1 px).
    style, width, offset = suite["first_ring"]
    assert style == "solid" and width >= 2 and offset <= -width, suite["first_ring"]
