"""The trends chart (dashboard and `finance trends --chart`) at a desk's scale: keys of very
different volumes, whose small buckets' shares jump between 0 and 1. A bucket of fewer than
10 documents is a faint mark off its key's line, the share axis fits the shares drawn, and the
chart in words says the same."""

from __future__ import annotations

import math

from tunesmith_finance.trends import FEW_DOCUMENTS, TrendRow, describe, plot, wilson

START = 1793613600.0  # 2026-11-02T10:00:00Z
HOUR = 3600.0


def _row(key: str, hour: int, neg: int, n: int) -> TrendRow:
    low, high = wilson(neg, n)
    return TrendRow(key, f"h{hour}", START + hour * HOUR, n, neg, neg / n, low, high, 0.0)


def _lines(figure):
    ax = figure.axes[0]
    keyed = {line.get_label(): line for line in ax.get_lines()}
    faint = [line for line in ax.get_lines() if line.get_label() == "_faint"]
    return ax, keyed, faint


def test_a_one_document_bucket_is_a_faint_mark_off_its_keys_line_not_a_spike_to_100_percent():
    rows = [_row("BIG", 0, 4, 40), _row("BIG", 1, 1, 1), _row("BIG", 2, 6, 40)]
    ax, keyed, faint = _lines(plot(rows, bucket=HOUR))
    # Before, the line went 10 % -> 100 % -> 15 %: one negative headline read as a surge.
    assert list(keyed["BIG"].get_ydata()) == [0.1, 0.15]  # joined across it, not broken
    assert [list(line.get_ydata()) for line in faint] == [[1.0]]
    assert faint[0].get_marker() == keyed["BIG"].get_marker()
    assert faint[0].get_color() == keyed["BIG"].get_color() and faint[0].get_alpha() < 0.5
    assert f"faint marks: buckets of fewer than {FEW_DOCUMENTS} documents" in ax.get_xlabel()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["BIG"]


def test_a_bucket_without_documents_still_breaks_the_line_past_a_faint_one():
    rows = [_row("K", 0, 4, 40), _row("K", 1, 1, 2), _row("K", 5, 6, 40)]
    _ax, keyed, _faint = _lines(plot(rows, bucket=HOUR))
    shares = list(keyed["K"].get_ydata())
    assert shares[0] == 0.1 and shares[2] == 0.15 and math.isnan(shares[1])


def test_a_key_of_small_buckets_only_is_drawn_on_its_line_as_before():
    # Nothing steadier to draw: a key with no bucket of ten documents keeps its whole line.
    rows = [_row("TINY", h, h % 2, 2) for h in range(4)] + [_row("BIG", h, 3, 30) for h in range(4)]
    ax, keyed, faint = _lines(plot(rows, bucket=HOUR))
    assert list(keyed["TINY"].get_ydata()) == [0.0, 0.5, 0.0, 0.5]
    assert not faint and "faint" not in ax.get_xlabel()


def test_the_share_axis_fits_a_desks_shares_and_keeps_a_share_of_one_whole():
    # Six tickers at 5-30 % negative used a third of a 0-1 axis, their lines on each other.
    rows = [_row(f"T{k}", h, 1 + k + h % 2, 20) for k in range(6) for h in range(5)]
    bottom, top = plot(rows, bucket=HOUR).axes[0].get_ylim()
    highest = max(r.negative_share for r in rows)  # 0.35
    assert bottom < 0 and highest + 0.05 <= top <= 0.52
    rows.append(_row("T0", 5, 20, 20))  # 100 % of twenty documents: on the line
    assert plot(rows, bucket=HOUR).axes[0].get_ylim()[1] >= 1.0
    # One key: its interval band is drawn, and fits too.
    one = [_row("T0", h, 2, 20) for h in range(3)]
    band_top = max(r.share_high for r in one)
    assert band_top <= plot(one, bucket=HOUR).axes[0].get_ylim()[1] <= 0.62


def test_the_chart_in_words_gives_the_lines_highest_and_counts_the_faint_buckets():
    rows = [_row("BIG", 0, 4, 40), _row("BIG", 1, 1, 1), _row("BIG", 2, 6, 40)]
    (sentence,) = describe(rows, bucket=HOUR)
    # Before: "highest 100% (h1, 1 of 1)", a point the chart no longer draws on the line.
    assert sentence == (
        "BIG: 15% negative in its latest bucket (h2, 6 of 40 documents); 1 of its 3 buckets "
        f"have fewer than {FEW_DOCUMENTS} documents, drawn faint off its line."
    )


def test_the_dashboards_top_six_at_a_desk_draws_small_buckets_faint_and_says_so(db):
    from finance_fakes import KeywordModel

    from tunesmith_finance import demo
    from tunesmith_finance.ingest import Ingester

    records = []
    for h in range(48):  # $BIG: 12 an hour; $SMALL: one every third hour, now and then negative
        stamp = f"2026-11-{2 + h // 24:02d}T{h % 24:02d}:"
        for j in range(12):
            records.append({"id": f"b{h}-{j}", "time": f"{stamp}{j:02d}:00Z", "text": "$BIG up"})
        if h % 3 == 0:
            word = "plunge" if h % 9 == 0 else "drift"
            records.append({"id": f"s{h}", "time": stamp + "30:00Z", "text": f"$SMALL {word}"})
        if h % 12 == 0:
            for j in range(12):  # and a busy hour twice a day
                text = f"$SMALL {'plunge' if j < 3 else 'drift'}"
                records.append({"id": f"s{h}-{j}", "time": f"{stamp}4{j % 10}:00Z", "text": text})
    Ingester(db, KeywordModel(), warn=lambda _m: None).ingest_records(records)
    board = demo.Dashboard(model="unused", db="unused")
    board._db, board.status = db, "Ready."
    view = board.snapshot("ticker", "1h", demo.TOP)
    ax, keyed, faint = _lines(view["figure"])
    assert set(keyed) >= {"BIG", "SMALL"} and faint
    assert max(max(line.get_ydata()) for line in faint) == 1.0
    assert max(keyed["SMALL"].get_ydata()) < 1.0
    assert "drawn faint off its line" in view["chart_words"]
    assert "faint marks" in ax.get_xlabel()
