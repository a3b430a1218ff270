"""The dashboard on an analyst's own database (real tweets: hundreds of cashtags, a zone other
than UTC, long texts): what the page says must be about that database, in the page's zone."""

from __future__ import annotations

import pytest

from tunesmith_finance import demo


def _board(db, records, tz="UTC"):
    from finance_fakes import KeywordModel

    from tunesmith_finance.ingest import Ingester
    from tunesmith_finance.rules import load_rules
    from tunesmith_finance.sample import RULES

    Ingester(db, KeywordModel(), load_rules(RULES), warn=lambda _m: None).ingest_records(records)
    board = demo.Dashboard(model="unused", db="unused", tz=tz)
    board._db, board.status = db, "Ready."
    return board


def _tweets() -> list[dict[str, str]]:
    """60 tickers of 2 to 61 tweets each (as a tweet feed has hundreds), then a lone $BYND."""
    rows = []
    for i in range(60):
        for j in range(i + 2):
            rows.append(
                {
                    "id": f"t{i}-{j}",
                    "time": f"2026-11-0{2 + j % 5}T1{j % 10}:00:00Z",
                    "text": f"$T{i:02d} shares drift",
                }
            )
    rows.append({"id": "b", "time": "2026-11-03T12:00:00Z", "text": "$BYND plunge on recall"})
    return rows


def test_a_ticker_typed_as_a_cashtag_or_beyond_the_listed_fifty_is_charted(db):
    board = _board(db, _tweets())
    listed = board.snapshot("ticker", "1d", demo.TOP)["keys"]
    assert len(listed) == 50 and "BYND" not in listed
    # Both fell back to the top six, without a word, as the box still showed the typed key.
    for typed, key in (("$T10", "T10"), ("bynd", "BYND"), ("$BYND", "BYND")):
        view = board.snapshot("ticker", "1d", typed)
        assert view["key"] == key and key in view["keys"]
        labels = [t.get_text() for t in view["figure"].axes[0].get_legend().get_texts()]
        assert labels == [key]


def test_a_key_the_database_does_not_have_is_said_in_the_status(db):
    board = _board(db, _tweets())
    view = board.snapshot("ticker", "1d", "NOPE")
    # Kept in the box: set back to "top 6", the box's own change redrew the page without the note.
    assert view["key"] == "NOPE" and view["figure"].axes[0].get_legend() is not None
    assert "No ticker 'NOPE' in this database; showing the top 6." in view["status"]


def _stored_alert(db, text: str) -> None:
    from tunesmith_finance.alerts import store_alert

    alert = {
        "id": "a1", "kind": "topic", "key": "banking", "window_start": 1793628000.0,
        "window_end": 1793638800.0, "n": 12, "negatives": 9, "share": 0.75, "baseline": 0.1558,
        "z": 5.0, "p_value": 1e-6, "mean_score": -0.5, "words": [{"word": "plunge"}],
        "examples": [{"score": -0.8, "time": "2026-11-02T14:30:00Z", "text": text}],
        "detector": "surge", "tz": "UTC",
    }  # fmt: skip
    store_alert(db, alert, None)


def test_alert_examples_are_timed_in_the_pages_zone_and_long_texts_are_cut(db):
    board = _board(db, [{"id": "x", "time": "2026-11-02T14:30:00Z", "text": "Helix Bank"}])
    _stored_alert(db, "Helix Bank plunges. " + "Deposits flee. " * 400)
    shown = board.snapshot("topic", "1h", demo.TOP, "America/New_York")["details"]
    details = shown.replace("\\", "")  # as the page shows it: without Markdown's escapes
    # The window said -05:00 while its examples stayed in UTC ("...T14:30:00Z").
    assert "2026-11-02T09:30:00-05:00" in details and "T14:30:00Z" not in details
    example = next(line for line in details.splitlines() if line.startswith("- "))
    assert len(example) < demo.EXAMPLE_CHARS + 60 and example.endswith("…")
    assert "score = P(positive) − P(negative)" in details


def test_the_alert_table_gives_shares_in_percent_as_the_details_do(db):
    board = _board(db, [{"id": "x", "time": "2026-11-02T14:30:00Z", "text": "Helix Bank"}])
    _stored_alert(db, "Helix Bank plunges")
    view = board.snapshot("topic", "1h", demo.TOP)
    assert view["rows"][0][3:5] == [75.0, 15.6]  # 0.75 and 0.1558 beside "75%, baseline 16%"
    assert "(75%, baseline 16%)" in view["details"]
    assert demo.alert_headers("UTC")[3:5] == ["negative share (%)", "baseline (%)"]


def test_the_users_empty_database_is_not_filled_with_the_sample_stream(
    tiny_model, tmp_path, monkeypatch
):
    from tunesmith_finance.storage import count_documents, open_store

    monkeypatch.setattr(demo.Dashboard, "_monitor", lambda self: None)
    mine = tmp_path / "mine.sqlite"  # a new database, to be filled by `finance watch`
    board = demo.Dashboard(model=str(tiny_model), db=str(mine))
    board._prepare()
    assert board.status == "Ready."
    store = open_store(mine)
    try:  # it held the 435 fictional headlines, in the trends and alerts for good
        assert count_documents(store) == 0
    finally:
        store.close()
    view = board.snapshot("topic", "3h", demo.TOP)
    assert "No documents yet: `tunesmith finance ingest FILE" in view["status"]
    assert "fictional" not in board.intro and "mine.sqlite" in board.intro
    assert board.start_label == "Start"


def test_the_sample_database_is_still_described_as_the_sample(tmp_path):
    board = demo.Dashboard(model=str(tmp_path / "m"))
    assert "fictional" in board.intro and board.start_label == "Start with the sample data"


def test_an_alert_on_a_small_ticker_is_drawn_and_listed_in_the_top_six_view(db):
    from tunesmith_finance.alerts import store_alert

    board = _board(db, _tweets())
    alert = {
        "id": "a2", "kind": "ticker", "key": "BYND", "window_start": 1794132000.0,
        "window_end": 1794142800.0, "n": 1, "negatives": 1, "share": 1.0, "baseline": 0.1,
        "z": 5.0, "p_value": 1e-6, "mean_score": -0.8, "words": [], "examples": [],
        "detector": "surge", "tz": "UTC",
    }  # fmt: skip
    store_alert(db, alert, None)
    view = board.snapshot("ticker", "1d", demo.TOP)
    # "1 alert(s) by ticker" in the status, but BYND was neither charted nor offered in the box.
    assert "1 alert(s) by ticker" in view["status"] and view["keys"][0] == "BYND"
    legend = [t.get_text() for t in view["figure"].axes[0].get_legend().get_texts()]
    # Six keys + the alert, stored without settings: its bucket is not recorded.
    assert legend[0] == "BYND" and "alert (bucket not recorded)" in legend and len(legend) == 7


def _fortnight() -> list[dict[str, str]]:
    """Two weeks of tweets, two an hour, on $AAPL (a third negative) and $TSLA."""
    rows = []
    for h in range(14 * 24):
        day, hour = divmod(h, 24)
        stamp = f"2026-11-{2 + day:02d}T{hour:02d}:"
        word = "plunge" if h % 3 == 0 else "drift"
        rows.append({"id": f"a{h}", "time": stamp + "10:00Z", "text": f"$AAPL shares {word}"})
        rows.append({"id": f"t{h}", "time": stamp + "40:00Z", "text": "$TSLA shares drift"})
    return rows


def test_auto_buckets_give_each_charted_key_enough_documents_and_a_picked_one_is_kept(db):
    board = _board(db, _fortnight())
    # One document an hour per ticker: counting buckets over the span chose 6h, six documents
    # a bucket, whose share jumps in steps of a sixth.
    view = board.snapshot("ticker", demo.AUTO, demo.TOP)
    assert view["bucket"] == "1d" and "Buckets: 1d (auto: the smallest with" in view["status"]
    assert "1d buckets (auto)" in view["figure"].axes[0].get_title()
    picked = board.snapshot("ticker", "1h", demo.TOP)  # the user's choice, whatever the span
    assert picked["bucket"] == "1h" and "auto" not in picked["status"]
    assert "1h buckets (UTC)" in picked["figure"].axes[0].get_title()


def test_the_sample_streams_five_days_are_not_drawn_as_a_few_daily_points(db):
    from tunesmith_finance.replay import read_stream
    from tunesmith_finance.sample import STREAM

    board = _board(db, [r[2] for r in read_stream(STREAM)[0]])
    view = board.snapshot("topic", demo.AUTO, demo.TOP)
    # Its topics have a few documents an hour: 1d would have them, as five points.
    assert view["bucket"] == "6h" and "the largest that still cuts" in view["status"]


def test_the_pages_bucket_box_starts_at_auto(tmp_path):
    import gradio as gr

    blocks = demo.build_demo(str(tmp_path / "m"), str(tmp_path / "x.sqlite"), autostart=False)
    (bucket,) = [
        b for b in blocks.blocks.values() if isinstance(b, gr.Dropdown) and b.label == "Bucket"
    ]
    assert bucket.value == demo.AUTO and [c[1] for c in bucket.choices] == [
        demo.AUTO, *demo.BUCKETS,
    ]  # fmt: skip


def _texts(figure) -> list[str]:
    return [t.get_text() for ax in figure.axes for t in ax.texts] + [
        t.get_text() for t in figure.texts
    ]


def test_an_empty_database_shows_a_message_not_a_1970_time_axis(db):
    board = _board(db, [])
    view = board.snapshot("topic", demo.AUTO, demo.TOP)
    (ax,) = view["figure"].axes
    # It drew an empty axis dated "01-01 00:00", the Unix epoch.
    assert not ax.axison and not ax.lines
    assert _texts(view["figure"]) == ["No documents yet."]


def test_documents_without_a_ticker_show_a_message_when_grouped_by_ticker(db):
    board = _board(db, [{"id": "x", "time": "2026-11-02T14:30:00Z", "text": "Markets drift"}])
    view = board.snapshot("ticker", "1h", demo.TOP)
    assert not view["figure"].axes[0].axison
    assert _texts(view["figure"]) == ["None of the 1 documents stored has a ticker."]


def test_the_key_box_shows_document_counts_and_still_reads_plain_keys(db):
    board = _board(db, _tweets())
    view = board.snapshot("ticker", "1d", demo.TOP)
    choices = dict((key, label) for label, key in view["choices"])
    assert [k for _, k in view["choices"]] == view["keys"]
    assert choices["T59"] == "T59 (61)" and choices["T20"] == "T20 (22)"
    for typed in ("T59", "$t59", "T59 (61)"):  # as typed, and a label copied as it is shown
        typed_view = board.snapshot("ticker", "1d", typed)
        assert typed_view["key"] == "T59" and "No ticker" not in typed_view["status"]


def test_an_alert_marker_sits_on_the_line_when_the_buckets_differ_from_the_alerts(db):
    from datetime import UTC, datetime

    from tunesmith_finance.alerts import store_alert

    board = _board(db, _fortnight())
    end = datetime(2026, 11, 5, 14, tzinfo=UTC).timestamp()  # three 1h buckets, 11:00 to 14:00
    alert = {
        "id": "a3", "kind": "ticker", "key": "AAPL", "window_start": end - 3 * 3600,
        "window_end": end, "n": 3, "negatives": 3, "share": 1.0, "baseline": 0.3,
        "z": 5.0, "p_value": 1e-6, "mean_score": -0.8, "words": [], "examples": [],
        "detector": "surge", "tz": "UTC",
    }  # fmt: skip
    store_alert(db, alert, None)
    ax = board.snapshot("ticker", "6h", "AAPL")["figure"].axes[0]
    (marker,) = [line for line in ax.lines if line.get_marker() == "v"]
    (series,) = [line for line in ax.lines if line.get_label() == "AAPL"]
    x, y = marker.get_xdata()[0], marker.get_ydata()[0]
    points = dict(zip(series.get_xdata(), series.get_ydata(), strict=True))
    # The 12:00-18:00 bucket holds the window's end; the triangle was drawn at 14:00, at the
    # window's share (100%), above a line at a third.
    assert x == datetime(2026, 11, 5, 12, tzinfo=UTC)
    assert y == points[x] == pytest.approx(1 / 3)
