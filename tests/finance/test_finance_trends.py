from __future__ import annotations

import csv
import sys

import pytest
from finance_fakes import KeywordModel, doc

from tunesmith.errors import UserInputError
from tunesmith_finance.ingest import Ingester
from tunesmith_finance.trends import parse_duration, save_chart, trends, wilson, write_csv


def test_wilson_interval_matches_known_values():
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


def test_durations_parse_and_bad_ones_are_refused():
    assert [parse_duration(t) for t in ("15m", "1h", "1d", "90s")] == [900, 3600, 86400, 90]
    with pytest.raises(UserInputError, match="--bucket 'hourly'"):
        parse_duration("hourly")


@pytest.fixture
def filled(db):
    rows = [
        doc(
            1, "Helix Bank shares plunge", "2026-11-02T10:05:00Z", topic="banking", tickers=["HLXB"]
        ),
        doc(
            2,
            "Helix Bank beats estimates",
            "2026-11-02T10:40:00+00:00",
            topic="banking",
            tickers=["HLXB"],
        ),
        doc(3, "Helix Bank files report", "2026-11-02T12:59:00+01:00", topic="banking"),
        doc(4, "Orcana falls", "2026-11-02T11:10:00Z", topic="tech"),
    ]
    Ingester(db, KeywordModel(), warn=lambda _m: None).ingest_records(rows)
    return db


def test_trends_count_negative_share_and_mean_score_per_bucket(filled):
    rows = trends(filled, by="topic", bucket="1h")
    got = [(r.key, r.bucket_start, r.count, r.negatives, round(r.mean_score, 3)) for r in rows]
    assert got == [
        ("banking", "2026-11-02T10:00:00Z", 2, 1, 0.0),
        ("banking", "2026-11-02T11:00:00Z", 1, 0, 0.0),
        ("tech", "2026-11-02T11:00:00Z", 1, 1, -0.75),
    ]
    assert rows[0].share_low < 0.5 < rows[0].share_high
    assert [r.key for r in trends(filled, by="ticker", bucket="1d")] == ["HLXB"]
    assert trends(filled, by="all", bucket="1d")[0].count == 4
    assert len(trends(filled, by="topic", bucket="1d", key="Banking")) == 1


def test_trends_export_as_csv_and_png(filled, tmp_path):
    rows = trends(filled, by="topic", bucket="1h")
    write_csv(rows, tmp_path / "t.csv")
    with (tmp_path / "t.csv").open() as handle:
        read = list(csv.DictReader(handle))
    assert [r["key"] for r in read] == ["banking", "banking", "tech"]
    assert read[0]["negative_share"] == "0.5"
    alerts = [{"key": "banking", "window_end": rows[0].ts + 3600, "share": 0.5}]
    save_chart(rows, tmp_path / "t.png", alerts=alerts)
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_chart_file_follows_the_umask_instead_of_being_private(filled, tmp_path):
    import os

    old = os.umask(0o022)
    try:
        path = save_chart(trends(filled, by="topic", bucket="1d"), tmp_path / "out" / "c.png")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["c.png"]  # no temporary file left


def test_the_chart_legend_sits_beside_the_plot_not_over_its_lines(filled):
    # inside the plot (upper left) it hid the first hours of the top-6 view
    from tunesmith_finance.trends import plot

    fig = plot(trends(filled, by="topic", bucket="1h"))
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1


def test_a_key_with_dollar_signs_is_charted_as_written_not_as_math(db):
    from tunesmith_finance.trends import plot

    name = "usd$_{eur$"  # a pair of $ is matplotlib math; this one cannot be parsed
    docs = [doc(1, "Rates up", "2026-11-02T10:05:00Z", topic=name)]
    Ingester(db, KeywordModel(), warn=lambda _m: None).ingest_records(docs)
    rows = trends(db, by="topic", bucket="1h")
    (key,) = {r.key for r in rows}
    fig = plot(rows, title=f"negative share: {name}")
    fig.canvas.draw()  # a parse error stopped the chart here
    ax = fig.axes[0]
    assert key == name
    assert ax.get_legend().get_texts()[0].get_text() == r"usd\$_{eur\$"
    assert ax.get_title() == r"negative share: usd\$_{eur\$"


@pytest.mark.parametrize(("by", "typed", "stored"), [("topic", "Banking", "banking"),
                                                    ("ticker", "$hlxb", "HLXB")])  # fmt: skip
def test_the_chart_of_a_key_typed_as_trends_accepts_it_draws_that_keys_line(
    cli, filled, tmp_path, monkeypatch, by, typed, stored
):
    # `--key` is matched case-blind (and a ticker without its $), so the chart must draw the
    # key as stored: drawn as typed it matched no row and the PNG came out empty.
    from tunesmith_finance import trends as trend_mod

    drawn = []
    real = trend_mod.plot
    monkeypatch.setattr(trend_mod, "plot", lambda rows, **kw: drawn.append(real(rows, **kw))
                        or drawn[-1])  # fmt: skip
    out = tmp_path / "chart.png"
    result = cli("finance", "trends", "--db", str(tmp_path / "finance.sqlite"), "--by", by,
                 "--key", typed, "--chart", str(out), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    labels = [line.get_label() for line in drawn[0].axes[0].get_lines()]
    assert labels == [stored]


def test_the_chart_breaks_a_keys_line_across_buckets_without_documents(db):
    # One negative hour between quiet hours days apart was drawn as a slope over the empty
    # days in between, which reads as a surge lasting days.
    from tunesmith_finance.trends import plot

    rows = [
        doc(1, "Helix Bank files report", "2026-11-02T10:05:00Z", topic="banking"),
        doc(2, "Helix Bank files report again", "2026-11-02T11:05:00Z", topic="banking"),
        doc(3, "Helix Bank shares plunge", "2026-11-04T15:05:00Z", topic="banking"),
        doc(4, "Helix Bank files a third report", "2026-11-04T16:05:00Z", topic="banking"),
    ]
    Ingester(db, KeywordModel(), warn=lambda _m: None).ingest_records(rows)
    for bucket in (3600.0, None):  # told, or found from the rows
        fig = plot(trends(db, by="topic", bucket="1h"), bucket=bucket)
        shares = list(fig.axes[0].get_lines()[0].get_ydata())
        assert shares[:2] == [0.0, 0.0] and shares[3:] == [1.0, 0.0]
        assert shares[2] != shares[2]  # NaN: no line from 11:00 on the 2nd to 15:00 on the 4th


def test_the_chart_tells_more_than_ten_keys_apart(db):
    # matplotlib has ten colours: the 11th key was drawn exactly like the 1st.
    from tunesmith_finance.trends import plot

    rows = [doc(i, f"note {i}", tickers=[f"T{i:02d}"]) for i in range(14)]
    Ingester(db, KeywordModel(), warn=lambda _m: None).ingest_records(rows)
    fig = plot(trends(db, by="ticker", bucket="1h"), limit=14)
    looks = [(line.get_color(), line.get_linestyle()) for line in fig.axes[0].get_lines()]
    assert len(looks) == 14 and len(set(looks)) == 14


def test_a_key_that_a_spreadsheet_would_run_as_a_formula_is_exported_as_text(tmp_path):
    from tunesmith_finance.trends import TrendRow

    keys = ['=HYPERLINK("http://x.test","click")', "+1", "@SUM(A1)", "-2+3", "banking"]
    rows = [
        TrendRow(key, "2025-01-01T00:00:00+00:00", 1735689600.0, 2, 1, 0.5, 0.1, 0.9, -0.25)
        for key in keys
    ]
    out = write_csv(rows, tmp_path / "t.csv")
    with out.open(newline="", encoding="utf-8") as handle:
        read = list(csv.DictReader(handle))
    assert [r["key"] for r in read] == ["'" + k for k in keys[:4]] + ["banking"]
    assert read[0]["mean_score"] == "-0.25"  # numbers stay numbers, signs and all


def _charted(cli, tmp_path, monkeypatch, *args):
    """The figure `finance trends --chart` draws with ``args``, and the command's result."""
    from tunesmith_finance import trends as trend_mod

    drawn = []
    real = trend_mod.plot
    monkeypatch.setattr(trend_mod, "plot", lambda rows, **kw: drawn.append(real(rows, **kw))
                        or drawn[-1])  # fmt: skip
    result = cli("finance", "trends", "--db", str(tmp_path / "finance.sqlite"), "--chart",
                 str(tmp_path / f"chart{len(list(tmp_path.glob('*.png')))}.png"), "--json",
                 *args)  # fmt: skip
    assert result.exit_code == 0, result.output
    return drawn[0]


def _store_banking_alert(db, start: float, end: float) -> None:
    from tunesmith_finance.alerts import store_alert

    store_alert(db, {
        "id": "a1", "kind": "topic", "key": "banking", "window_start": start, "window_end": end,
        "n": 2, "negatives": 2, "share": 1.0, "baseline": 0.2, "z": 5.0, "p_value": 1e-6,
        "mean_score": -0.8, "words": [], "examples": [], "detector": "surge", "tz": "UTC",
    }, None)  # fmt: skip


def test_the_cli_chart_puts_an_alert_on_its_keys_line_when_its_buckets_differ_from_the_alerts(
    cli, filled, tmp_path, monkeypatch
):
    from datetime import UTC, datetime

    # A 1h alert 10:00-11:00 at 100 %; the 1d chart's banking point is 1 of 3 (a third).
    end = datetime(2026, 11, 2, 11, tzinfo=UTC).timestamp()
    _store_banking_alert(filled, end - 3600, end)
    ax = _charted(cli, tmp_path, monkeypatch, "--bucket", "1d").axes[0]
    (marker,) = [line for line in ax.lines if line.get_marker() == "v"]
    (series,) = [line for line in ax.lines if line.get_label() == "banking"]
    # Drawn at the window's end (11:00) and share (100 %), it floated above the line.
    assert marker.get_xdata()[0] == series.get_xdata()[0] == datetime(2026, 11, 2, tzinfo=UTC)
    assert marker.get_ydata()[0] == series.get_ydata()[0] == pytest.approx(1 / 3)


def test_the_cli_chart_leaves_out_an_alert_after_the_charted_range(
    cli, filled, tmp_path, monkeypatch
):
    from datetime import UTC, datetime

    end = datetime(2026, 11, 5, 11, tzinfo=UTC).timestamp()  # days after --until
    _store_banking_alert(filled, end - 3600, end)
    ax = _charted(cli, tmp_path, monkeypatch, "--until", "2026-11-03T00:00:00Z").axes[0]
    assert [line for line in ax.lines if line.get_marker() == "v"] == []


def test_the_cli_chart_of_no_documents_says_so_instead_of_a_1970_time_axis(
    cli, filled, tmp_path, monkeypatch
):
    figure = _charted(cli, tmp_path, monkeypatch, "--since", "2027-01-01T00:00:00Z")
    ax = figure.axes[0]
    assert not ax.axison
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["No documents with a topic in the --since/--until range."]
    figure = _charted(cli, tmp_path, monkeypatch, "--by", "ticker", "--key", "$nope")
    assert [t.get_text() for t in figure.axes[0].texts] == ["No documents of ticker NOPE."]


def test_a_figure_drawn_by_a_test_is_closed_after_it_1_draw(filled):
    from tunesmith_finance.trends import plot

    plot(trends(filled, by="topic", bucket="1h"))


def test_a_figure_drawn_by_a_test_is_closed_after_it_2_none_left_open():
    # conftest's autouse fixture closes them: left open, 20 of them warned "More than 20
    # figures have been opened" in the finance tests (run after the test above, in order).
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []
