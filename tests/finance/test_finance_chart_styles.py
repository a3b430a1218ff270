"""The trends chart reads without colour: for a red-green colour-blind analyst and on a black
and white print. Checked on the figure's artists (markers, line styles, colours), not pixels."""

from __future__ import annotations

from itertools import combinations

from tunesmith_finance.trends import TrendRow, alert_groups, plot, wilson

START = 1793613600.0  # 2026-11-02T10:00:00Z
KEYS = [f"K{i}" for i in range(10)]


def _rows(keys: list[str], buckets: int = 3) -> list[TrendRow]:
    """``buckets`` hourly rows per key, each key's shares its own."""
    rows = []
    for k, key in enumerate(keys):
        for b in range(buckets):
            neg, n = (k + b) % 4, 4
            low, high = wilson(neg, n)
            ts = START + b * 3600
            rows.append(TrendRow(key, "", ts, n, neg, neg / n, low, high, 0.0))
    return rows


def _alerts() -> list[dict]:
    """One alert of the chart's 1h buckets, one of 1d buckets, one with no bucket recorded."""
    end = START + 3600 + 1
    base = {"window": "w", "n": 4, "negatives": 3, "window_end": end}
    return [
        {**base, "key": "K0", "settings": {"bucket": 3600}},
        {**base, "key": "K1", "settings": {"bucket": 86400}},
        {**base, "key": "K2"},
    ]


def _drawn(keys: list[str] = KEYS, **options):
    """The chart's key lines by key, and its alert marks."""
    ax = plot(_rows(keys), keys=keys, bucket=3600.0, **options).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines() if line.get_label() in keys}
    marks = [line for line in ax.get_lines() if line.get_label().startswith("alert")]
    return ax, lines, marks


def _reddish(colour) -> bool:
    from matplotlib.colors import to_rgb

    red, green, blue = to_rgb(colour)
    return red > 0.6 and green < 0.45 and blue < 0.45


def test_each_of_ten_keys_has_a_marker_of_its_own_and_none_of_the_alerts_marks():
    # The lines differed only by colour ("." on every one): a colour-blind reader or a grey
    # print could not tell which line was which key.
    _ax, lines, _marks = _drawn()
    markers = [lines[key].get_marker() for key in KEYS]
    assert len(set(markers)) == 10
    alert_markers = {marker for _label, marker, _filled in alert_groups(_alerts(), 3600.0)}
    alert_markers |= {"v", "^", "s", "D", "P", "o"}  # every mark alert_groups can give
    assert not set(markers) & alert_markers
    assert "." not in markers and "," not in markers  # too small to tell apart


def test_keys_that_share_a_colour_differ_in_marker_and_line_style():
    # Past the palette's colours, a line is told apart by its marker and its dashes.
    keys = [f"K{i}" for i in range(20)]
    _ax, lines, _marks = _drawn(keys, limit=20)
    looks = [
        (line.get_color(), line.get_marker(), line.get_linestyle())
        for line in (lines[key] for key in keys)
    ]
    for first, second in combinations(looks, 2):
        assert sum(a != b for a, b in zip(first, second, strict=True)) >= 2, (first, second)
    # The first four keys (the chart's usual) each have a line style of their own too.
    assert len({look[2] for look in looks[:4]}) == 4


def test_no_key_line_is_drawn_in_the_alerts_red_and_alerts_sit_whole_above_the_lines():
    # Matplotlib's fourth colour is the alerts' red: a key's line could hide its own alert
    # mark, and a mark at a share of 0 or 1 was clipped in half by the axes.
    _ax, lines, marks = _drawn(alerts=_alerts())
    assert marks
    assert not [key for key, line in lines.items() if _reddish(line.get_color())]
    for mark in marks:
        assert _reddish(mark.get_color()) and mark.get_linestyle() == "None"
        assert mark.get_zorder() > max(line.get_zorder() for line in lines.values())
        assert not mark.get_clip_on()


def test_the_legend_shows_each_keys_marker_and_line_style():
    # At matplotlib's handle length (2 font sizes) a marker covered the middle of a dotted or
    # dash-dot sample, and the ten legend entries looked alike without colour.
    ax, lines, _marks = _drawn(alerts=_alerts())
    legend = ax.get_legend()
    assert legend.handlelength >= 3
    handles = {
        text.get_text(): handle
        for text, handle in zip(legend.get_texts(), legend.legend_handles, strict=True)
    }
    assert [text for text in handles if text in KEYS] == KEYS  # all ten, in order
    for key in KEYS:
        assert handles[key].get_marker() == lines[key].get_marker()
        assert handles[key].get_linestyle() == lines[key].get_linestyle()
        assert handles[key].get_color() == lines[key].get_color()
