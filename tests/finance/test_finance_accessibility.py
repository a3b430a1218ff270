"""The finance dashboard for a screen-reader and keyboard user, and at 200 % zoom (a 640 px
view), in a real browser: every control named, the trends chart said in words (its keys, their
latest share, the alerts marked on it), the alert table with headers, the scored text's
highlighted words named and its probabilities a table, the tab order the visual order.

One page load for the browser tests: the fixture reads both tabs and the tests check what it
read."""

from __future__ import annotations

import re

import pytest

#: The roles of controls, each of which must have a name.
CONTROLS = ("button", "textbox", "combobox", "checkbox", "radio", "slider", "spinbutton", "tab")

#: The accessible name of the focused element (a Gradio box has its label as aria-label).
_FOCUSED = """() => {
    const e = document.activeElement;
    return (e.getAttribute('aria-label') || e.innerText || e.value || '').trim();
}"""


def _unnamed(snapshot: str) -> list[str]:
    pattern = re.compile(rf"^\s*- ({'|'.join(CONTROLS)})(:|$| \[)")
    return [line for line in snapshot.splitlines() if pattern.match(line)]


@pytest.fixture(scope="module")
def read(tiny_model, tmp_path_factory, launch_blocks, page, one_torch_thread):
    """The dashboard on the sample stream (scored by keywords, recorded as scored by the tiny
    model, so no replay runs), at 640 px: what a screen reader and the Tab key meet on the
    trends tab once its alerts are checked, then on the score tab once a text is scored."""
    from finance_fakes import KeywordModel

    from tunesmith_finance.demo import build_demo
    from tunesmith_finance.ingest import Ingester
    from tunesmith_finance.rules import load_rules
    from tunesmith_finance.sample import RULES, STREAM
    from tunesmith_finance.storage import open_store

    db = tmp_path_factory.mktemp("finance_a11y") / "news.sqlite"
    store = open_store(db)
    try:
        model = KeywordModel(path=str(tiny_model))
        Ingester(store, model, load_rules(RULES), warn=lambda _m: None).ingest_file(STREAM)
    finally:
        store.close()
    page.set_viewport_size({"width": 640, "height": 900})
    page.goto(launch_blocks(build_demo(db=str(db))))
    # The alert's details, drawn in the same refresh as the chart and its words.
    page.get_by_text("Words behind the negative scores").first.wait_for(timeout=120_000)
    # The chart's image is drawn after its data arrives: on a busy machine the snapshot was
    # once taken before it was there.
    chart = page.get_by_role("img", name=re.compile(r"^Negative share per topic"))
    chart.first.wait_for(timeout=60_000)
    seen = {
        "trends": page.locator("body").aria_snapshot(),
        "words": "\n".join(page.locator("#finance-chart-words").all_inner_texts()),
        "width": page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]"),
    }
    page.locator("body").focus()
    order = []
    for _ in range(7):
        page.keyboard.press("Tab")
        order.append(page.evaluate(_FOCUSED))
    seen["order"] = order
    page.keyboard.press("Tab")  # on to the tabs, then the keyboard alone to the score tab
    page.get_by_role("tab", name="Score a text").focus()
    page.keyboard.press("Enter")
    box = page.get_by_label("Headline or sentence")
    box.fill("Helix Bank shares plunge on deposit worries", timeout=30_000)
    box.press("Enter")  # Enter scores; Shift+Enter breaks a line
    page.get_by_text(re.compile(r"Score [+-]\d\.\d{3} ")).wait_for(timeout=60_000)
    seen["score"] = page.locator("body").aria_snapshot()
    seen["score_width"] = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    return seen


@pytest.mark.browser
def test_every_control_of_both_tabs_has_a_name_a_screen_reader_reads(read):
    assert _unnamed(read["trends"]) == [], read["trends"]
    assert _unnamed(read["score"]) == [], read["score"]


@pytest.mark.browser
def test_the_trends_chart_is_named_and_said_in_words_with_its_alerts(read):
    # Gradio's alt text read "undefined plot visualising provided data".
    assert "undefined" not in read["trends"]
    assert re.search(r'img "Negative share per topic, \w+ buckets.*in words under', read["trends"])
    said = read["words"]
    # The keys drawn with their latest share, and the alert marked, its mark in words (the red
    # triangle alone said nothing to a screen reader, nor at 200 % zoom).
    assert re.search(r"banking: \d+% negative in its latest bucket", said), said
    assert re.search(
        r"Alert on banking \(\w+ buckets\), a (filled|hollow) triangle pointing (up|down)", said
    ), said


@pytest.mark.browser
def test_the_alert_table_has_column_headers(read):
    table = read["trends"].split('grid "Alerts"', 1)[1]
    for name in ("window (UTC)", "key", "documents", "negative share (%)", "bucket"):
        assert f'columnheader "{name}"' in table


@pytest.mark.browser
def test_the_scored_texts_words_are_named_and_its_probabilities_are_a_table(read):
    score = read["score"]
    # "Why" shows the words as colours only; the note names the strongest of them.
    assert re.search(r"Strongest words (towards it|away from it):", score), score
    assert 'columnheader "Label"' in score and 'columnheader "Probability"' in score
    # gr.Label's rows were buttons that did nothing ("button "negative 95%"") and bare meters.
    assert not re.search(r'button "(negative|neutral|positive) ', score), score
    assert "meter" not in score, score


@pytest.mark.browser
def test_the_page_reflows_at_640_px_and_tabs_in_visual_order(read):
    assert read["width"][0] <= read["width"][1] and read["score_width"][0] <= read["width"][1]
    assert read["order"] == [
        "Start",
        "Trends and alerts",
        "Score a text",
        "Group by",
        "Bucket",
        "Topic or ticker",
        "Time zone (buckets and times)",
    ]


def test_the_chart_in_words_says_what_the_chart_draws():
    from tunesmith_finance.trends import TrendRow, describe

    def row(ts, n, k):
        return TrendRow("banking", f"T{ts}", ts, n, k, k / n, 0.0, 1.0, 0.0)

    rows = [row(0, 10, 1), row(3600, 10, 8), row(7200, 10, 3)]
    alert = {
        "key": "banking", "window": "W", "window_end": 7000, "negatives": 8, "n": 10,
        "share": 0.8, "settings": {"bucket": 3600},
    }  # fmt: skip
    other = {**alert, "key": "airlines"}
    said = describe(rows, alerts=[alert, other], keys=["banking"], bucket=3600)
    assert said == [
        "banking: 30% negative in its latest bucket (T7200, 3 of 10 documents), highest 80% "
        "(T3600, 8 of 10).",
        "Alert on banking (1h buckets), a filled triangle pointing down on its T3600 point: "
        "window W, 8 of 10 negative.",
        "1 alert not on the chart (of keys not drawn, or before their key's first bucket).",
    ]
    assert describe([], alerts=[alert]) == []
