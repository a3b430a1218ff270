"""Triage on the finance dashboard by keyboard alone, in a real browser: choose an alert, type
who and a note, acknowledge it, mark it as noise, reopen it and mute its key; after each the
alert table's state column is redrawn and a screen reader hears the result by itself.

One page load: the fixture walks the page with keys only and records what it met and heard;
the tests read the record."""

from __future__ import annotations

import pytest
from finance_fakes import store_sample_stream

pytestmark = pytest.mark.browser

#: The accessible name of what has the focus (a Gradio box has its label as aria-label).
_FOCUSED = """() => {
    const e = document.activeElement;
    const name = e.getAttribute('aria-label') || (e.labels && e.labels[0]
        && e.labels[0].innerText) || (e.tagName === 'BUTTON' ? e.innerText : '');
    return name.trim();
}"""

_STATUS = "#finance-status [role=status]"


#: The state of each alert of the table: the cell before its id (the last column).
_STATES = """() => {
    const lines = document.querySelector('#finance-alerts').innerText.split('\\n')
        .map((line) => line.trim()).filter((line) => line);
    return lines.flatMap((line, at) => /^[0-9a-f]{16}$/.test(line) ? [lines[at - 1]] : []);
}"""


@pytest.fixture(scope="module")
def walked(tiny_model, tmp_path_factory, page, one_torch_thread, launch_demo, listen_to_status):
    """Keys only from "Group by": Tab to "Alert to triage", arrow and Enter to choose the
    banking alert, Tab to "Your name" and "Note", type, Tab to a button and Enter; the table's
    states and what was heard after each action."""
    from tunesmith_finance.demo import build_demo

    db = store_sample_stream(
        tmp_path_factory.mktemp("finance_triage") / "news.sqlite", str(tiny_model)
    )
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(launch_demo(build_demo(db=str(db))))
    page.get_by_text("Words behind the negative scores").first.wait_for(timeout=120_000)
    page.wait_for_selector(_STATUS, state="attached")
    listen_to_status(page, "#finance-status")
    focused = lambda: page.evaluate(_FOCUSED)  # noqa: E731
    record: dict = {"states": [], "heard": [], "stops": [], "focus_after": []}

    def tab_to(name: str, limit: int = 60) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            record["stops"].append(focused())
            if focused() == name:
                return
        raise AssertionError(f"{name!r} never reached by Tab: {record['stops'][-limit:]}")

    def act(button: str, expect: str) -> None:
        tab_to(button)
        page.keyboard.press("Enter")
        try:
            page.wait_for_function(
                "(want) => window.tunesmithHeard.some((s) => s.includes(want))",
                arg=expect,
                timeout=30_000,
            )
        except Exception as exc:  # what was heard instead says why
            heard = page.evaluate("() => window.tunesmithHeard")
            raise AssertionError(f"{expect!r} never heard; heard {heard}") from exc
        page.wait_for_timeout(300)  # the redraw came before the status; let it settle
        record["states"].append(page.evaluate(_STATES))
        record["heard"] = page.evaluate("() => window.tunesmithHeard")
        record["focus_after"].append(focused())  # the focus stays on the button
        page.keyboard.press("Shift+Tab")  # back before the buttons, for the next one
        page.keyboard.press("Shift+Tab")

    page.get_by_role("combobox", name="Group by").wait_for()
    for _ in range(20):  # from the page's start, as a keyboard user comes in
        page.keyboard.press("Tab")
        if focused() == "Group by":
            break
    record["states"].append(page.evaluate(_STATES))
    tab_to("Alert to triage")
    chosen = page.get_by_role("combobox", name="Alert to triage")
    for _ in range(60):  # its choices come with the page's first alert check, maybe later
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")
        if chosen.input_value():
            break
        page.wait_for_timeout(500)
    record["chosen"] = chosen.input_value()
    tab_to("Your name")
    page.keyboard.type("ana")
    tab_to("Note kept with it (optional)")
    page.keyboard.type("earnings miss, known")
    act("Acknowledge", "acknowledged by ana")
    record["note_after"] = page.get_by_label("Note kept with it (optional)").input_value()
    act("Mark as noise", "marked as noise by ana")
    act("Reopen", "reopened by ana")
    act("Reopen", "Not reopened")  # open: nothing to reopen, said
    act("Mute its key", "Muted topic banking")
    record["details"] = page.locator("body").inner_text()
    return record


def test_an_alert_is_chosen_and_acknowledged_by_keyboard_and_the_table_redraws(walked):
    assert walked["chosen"]
    assert walked["states"][0] == ["open"]
    assert walked["states"][1] == ["acknowledged"]
    assert walked["note_after"] == ""  # used: cleared for the next mark


def test_each_triage_result_is_heard_by_itself(walked):
    heard = walked["heard"]
    # Each result once, and nothing between them: the redraw after a mark is quiet.
    assert heard[heard.index("Alert on topic banking acknowledged by ana.") :][:3] == [
        "Alert on topic banking acknowledged by ana.",
        "Alert on topic banking marked as noise by ana.",
        "Alert on topic banking reopened by ana; it is open again.",
    ], heard
    for said in (
        "Alert on topic banking acknowledged by ana.",
        "Alert on topic banking marked as noise by ana.",
        "Alert on topic banking reopened by ana; it is open again.",
    ):
        assert said in heard, heard
    assert [s for s in walked["states"][1:4]] == [["acknowledged"], ["noise"], ["open"]]


def test_a_refused_mark_and_a_mute_are_said_too(walked):
    heard = " ".join(walked["heard"])
    assert "Not reopened: alert " in heard and "nothing to reopen" in heard
    assert "Muted topic banking until " in heard
    assert "Muted now: topic banking until " in walked["details"]
