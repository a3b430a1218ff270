"""Per-topic and per-ticker trends: count, negative share (Wilson 95 % interval), mean score per
time bucket. "Negative" is a document whose predicted sentiment is negative."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from tunesmith.durations import duration_seconds
from tunesmith.errors import UserInputError

BY = ("topic", "ticker", "all")
WEEK = 7 * 86400.0
#: Buckets of whole weeks count from Monday 1970-01-05 00:00, so that a week starts on a Monday
#: (counted from 1970-01-01, a Thursday, a week ran Thursday to Wednesday).
WEEK_ORIGIN = 4 * 86400.0
Z95 = 1.959963984540054


def parse_duration(text: str, flag: str = "--bucket") -> float:
    """``15m``, ``1h``, ``1d``, ``1w`` -> seconds."""
    seconds = duration_seconds(text)
    if seconds is None or seconds <= 0:
        raise UserInputError(f"{flag} {text!r}: expected a duration such as 15m, 1h, 1d or 1w")
    return seconds


def duration_text(seconds: float) -> str:
    """``seconds`` as a `finance alerts` flag writes it: 1w, 1d, 6h, 15m, 30s (the reverse of
    :func:`parse_duration`)."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def bucket_origin(size: float) -> float:
    """The wall-clock second (since 1970-01-01 00:00) that buckets of ``size`` seconds count
    from: Monday 1970-01-05 for whole weeks (a week bucket starts on a Monday), else 0."""
    return WEEK_ORIGIN if size >= WEEK and size % WEEK == 0 else 0.0


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a share ``k / n`` (95 % by default); ``(0, 1)`` when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def iso(ts: float, zone: tzinfo | None = None) -> str:
    """A Unix time as ISO 8601: in UTC ``2026-11-05T13:00:00Z``, in another zone with its
    offset (``2026-11-05T08:00:00-05:00``)."""
    if is_utc(zone):
        return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return datetime.fromtimestamp(ts, zone).isoformat(timespec="seconds")


# Buckets in a time zone (`--tz`) are cut on the zone's wall clock: a bucket starts where the
# local time is a multiple of its size since 1970-01-01 00:00 local, so a 1d bucket is a local
# day (23 or 25 hours when the clocks change), and the hour a change from summer time repeats
# is one 1h bucket of two hours. A bucket is numbered by floor(local seconds / size), which the
# detector's rolling window counts in as it does in UTC.


def is_utc(zone: tzinfo | None) -> bool:
    """True for no zone or UTC (buckets cut on Unix time as they are)."""
    return zone is None or zone is UTC


def zone_name(zone: tzinfo | None) -> str:
    """``UTC``, or the IANA name of a zone (``America/New_York``)."""
    return "UTC" if is_utc(zone) else str(getattr(zone, "key", None) or zone)


def local_seconds(ts: float, zone: tzinfo | None) -> float:
    """The wall-clock reading in ``zone`` of the Unix time ``ts``, as seconds since 1970-01-01
    00:00 on that clock."""
    if is_utc(zone):
        return ts
    offset = datetime.fromtimestamp(ts, zone).utcoffset()
    return ts + (offset.total_seconds() if offset else 0.0)


def bucket_index(ts: float, size: float, zone: tzinfo | None) -> int:
    """The number of the bucket of ``size`` seconds that the Unix time ``ts`` falls in, cut on
    the wall clock of ``zone`` (see :func:`bucket_origin`)."""
    return math.floor((local_seconds(ts, zone) - bucket_origin(size)) / size)


def bucket_start(index: int | float, size: float, zone: tzinfo | None) -> float:
    """The Unix time where bucket ``index`` (of :func:`bucket_index`) starts; a fractional
    index is a time within the buckets' count (the detector's window ends)."""
    return wall_to_utc(index * size + bucket_origin(size), zone)


def wall_to_utc(wall: float, zone: tzinfo | None) -> float:
    """The first Unix time whose wall-clock reading in ``zone`` is ``wall`` or later: a bucket's
    start. A repeated reading (summer time ending) is its first instance; one the clocks skip
    (summer time starting) is the moment of the skip."""
    if is_utc(zone):
        return wall
    naive = datetime(1970, 1, 1) + timedelta(seconds=wall)
    first = naive.replace(tzinfo=zone, fold=0).timestamp()
    second = naive.replace(tzinfo=zone, fold=1).timestamp()
    low, high = min(first, second), max(first, second)
    if local_seconds(low, zone) >= wall:
        return low
    # Skipped: the reading is jumped over between ``low`` (before the change) and ``high``.
    while high - low > 1e-3:
        middle = (low + high) / 2
        if local_seconds(middle, zone) >= wall:
            high = middle
        else:
            low = middle
    return float(round(high)) if abs(high - round(high)) < 1e-2 else high


def offset_pieces(zone: tzinfo, start: float, end: float) -> list[tuple[float, float]]:
    """``(from, offset seconds)`` pieces of ``zone``'s UTC offset from ``start`` to ``end``:
    each offset holds from its time until the next piece's (the first from any earlier time)."""
    step = 6 * 3600.0  # no zone changes its offset twice within six hours

    def offset(ts: float) -> float:
        return local_seconds(ts, zone) - ts

    pieces = [(start, offset(start))]
    at = start
    while at < end:
        nxt = min(at + step, end)
        now = offset(nxt)
        if now != pieces[-1][1]:
            low, high = at, nxt  # the change lies in (low, high]: to the second
            while high - low > 1:
                middle = math.floor((low + high) / 2)
                if middle <= low:
                    break
                if offset(middle) == pieces[-1][1]:
                    low = middle
                else:
                    high = middle
            pieces.append((high, now))
        at = nxt
    return pieces


def _local_time_sql(db: Any, zone: tzinfo | None, column: str = "d.ts") -> tuple[str, list[Any]]:
    """An SQL expression of a document's wall-clock seconds in ``zone`` (``column``, its UTC
    time, as it is in UTC) and its parameters: the zone's offsets over the stored documents'
    times, as one CASE."""
    if is_utc(zone):
        return column, []
    row = db.query("SELECT MIN(ts) AS low, MAX(ts) AS high FROM finance_documents")[0]
    if row["low"] is None:
        return column, []
    pieces = offset_pieces(zone, float(row["low"]), float(row["high"]))
    if len(pieces) == 1:
        return f"({column} + ?)", [pieces[0][1]]
    params: list[Any] = []
    cases = []
    for (_since, offset), (until, _next) in zip(pieces, pieces[1:], strict=False):
        cases.append(f"WHEN {column} < ? THEN ?")
        params += [until, offset]
    params.append(pieces[-1][1])
    return f"({column} + CASE {' '.join(cases)} ELSE ? END)", params


#: The fields :meth:`TrendRow.to_dict` rounds to 4 digits.
_ROUNDED = frozenset({"negative_share", "share_low", "share_high", "mean_score"})


@dataclass(slots=True)
class TrendRow:
    """One key's figures in one time bucket (slots: a desk's 500 tickers over 90 days of hours
    are a million rows)."""

    key: str
    bucket_start: str
    ts: float
    count: int
    negatives: int
    negative_share: float
    share_low: float
    share_high: float
    mean_score: float
    #: The zone the bucket was cut in (``UTC``, ``America/New_York``); ``bucket_start`` is in it.
    tz: str = "UTC"

    def to_dict(self) -> dict[str, Any]:
        """The row as ``--json`` and ``--csv`` write it, shares and the mean to 4 digits."""
        # Not dataclasses.asdict, which deep-copies each field: it was half of `--json`'s time.
        return {
            name: round(value, 4) if name in _ROUNDED else value
            for name in TREND_FIELDS
            for value in (getattr(self, name),)
        }


#: :class:`TrendRow`'s fields, in order: the CSV's columns and the JSON objects' keys.
TREND_FIELDS = tuple(TrendRow.__dataclass_fields__)


def write_json(rows: Iterable[TrendRow], handle: Any) -> None:
    """The rows as `finance trends --json` writes them (:mod:`tunesmith_finance.trend_export`)."""
    from tunesmith_finance.trend_export import write_json as write

    write(rows, handle)


def write_csv(rows: Iterable[TrendRow], path: str | Path) -> Path:
    """The rows as `finance trends --csv` writes them (:mod:`tunesmith_finance.trend_export`)."""
    from tunesmith_finance.trend_export import write_csv as write

    return write(rows, path)


def stored_key(by: str, key: str) -> str:
    """``key`` as the store writes it: topics lower-cased, tickers upper-cased without ``$``."""
    return key.lower() if by == "topic" else key.upper().lstrip("$")


#: A key row's UTC hour, floor(ts / 3600), as the index ``finance_keys_hour`` (storage.py,
#: migration 8) holds it: to the character, or SQLite does not use that index.
KEY_HOUR_SQL = "(CAST(ts / 3600 AS INTEGER) - (ts / 3600 < CAST(ts / 3600 AS INTEGER)))"
HOUR = 3600.0


def _hour_offsets(db: Any, zone: tzinfo | None) -> tuple[list[float], list[int]] | None:
    """``zone``'s offsets over the stored documents as ``(changes, offsets in hours)``
    (``offsets[i]`` holds before ``changes[i]``, the last after them), when every offset is
    whole hours and changes on a whole UTC hour: each UTC hour is then one wall-clock hour.
    None otherwise (``Asia/Kolkata``'s +05:30)."""
    if is_utc(zone):
        return [], [0]
    row = db.query("SELECT MIN(ts) AS low, MAX(ts) AS high FROM finance_documents")[0]
    if row["low"] is None:
        return [], [0]
    pieces = offset_pieces(zone, float(row["low"]), float(row["high"]))
    if any(offset % HOUR for _at, offset in pieces) or any(at % HOUR for at, _o in pieces[1:]):
        return None
    return [at for at, _o in pieces[1:]], [int(offset // HOUR) for _at, offset in pieces]


def _hour_counts(db: Any, by: str, zone: tzinfo | None) -> list[Any] | None:
    """:func:`bucket_counts` of hours for every key of ``by``, read in the order of the
    index ``finance_keys_hour`` (no sort of every key row into hours: a third of the time at
    a million documents); None when ``zone``'s hours are not UTC hours (:func:`_hour_offsets`)."""
    offsets = _hour_offsets(db, zone)
    if offsets is None:
        return None
    changes, shifts = offsets
    rows = db.query(
        f"SELECT key, {KEY_HOUR_SQL} AS h, COUNT(*) AS n, SUM(negative) AS neg, "
        "SUM(score) AS total FROM finance_keys WHERE kind = ? GROUP BY key, h ORDER BY key, h",
        [by],
    )
    if not changes and not shifts[0]:
        # As they come (text, int, int, int, float: the columns' types): picking each by name
        # was a third of the read for 250,000 ticker hours
        return [tuple(r) for r in rows]
    out: list[Any] = []
    for key, h, n, neg, total in rows:
        b = h + shifts[bisect.bisect_right(changes, h * HOUR)]
        if out and out[-1][0] == key and out[-1][1] == b:
            # The hour the clocks go back repeats: two UTC hours, one wall-clock bucket
            _key, _b, n0, neg0, total0 = out[-1]
            out[-1] = (key, b, n0 + n, neg0 + neg, total0 + total)
        else:
            out.append((key, b, n, neg, total))
    return out


def bucket_counts(
    db: Any,
    *,
    by: str,
    bucket: float,
    key: str | None = None,
    since: float | None = None,
    until: float | None = None,
    zone: tzinfo | None = None,
) -> list[tuple[str, int, int, int, float]]:
    """``(key, bucket index, count, negatives, score sum)`` rows, ordered by key and bucket;
    the index is :func:`bucket_index` (on the wall clock of ``zone``, default UTC)."""
    if by not in BY:
        raise UserInputError(f"--by {by!r}: expected one of {', '.join(BY)}")
    if by != "all" and key is None and since is None and until is None and bucket == HOUR:
        hours = _hour_counts(db, by, zone)
        if hours is not None:
            return hours
    # Keys are read from finance_keys alone, which carries each document's time, negative
    # flag and score in (kind, key, time) order; `all` from the documents' covering time index.
    # Neither touches a document row (storage.py, migration 6).
    if by == "all":
        table, select_key, negative, where, params = (
            "finance_documents",
            "'all'",
            "label = 'negative'",
            [],
            [],
        )
    else:
        table, select_key, negative, where, params = (
            "finance_keys",
            "key",
            "negative",
            ["kind = ?"],
            [by],
        )
        if key is not None:
            where.append("key = ?")
            params.append(stored_key(by, key))
    if since is not None:
        where.append("ts >= ?")
        params.append(since)
    if until is not None:
        where.append("ts < ?")
        params.append(until)
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    local, local_params = _local_time_sql(db, zone, "ts")
    # The bucket index is floor((local - origin) / bucket), as bucket_index computes it. CAST
    # alone truncates towards zero, which would put a time before 1970 (a negative ts) into the
    # bucket after its own.
    rows = db.query(
        "SELECT key, CAST(q AS INTEGER) - (q < CAST(q AS INTEGER)) AS b, COUNT(*) AS n, "
        "SUM(neg) AS neg, SUM(score) AS total FROM ("
        f"SELECT {select_key} AS key, ({local} - ?) / ? AS q, {negative} AS neg, "
        f"score FROM {table} {clause}) "
        "GROUP BY key, b ORDER BY key, b",
        [*local_params, bucket_origin(bucket), bucket, *params],
    )
    return [(r["key"], int(r["b"]), int(r["n"]), int(r["neg"]), float(r["total"])) for r in rows]


def trends(
    db: Any,
    *,
    by: str = "topic",
    bucket: str | float = "1h",
    key: str | None = None,
    since: float | None = None,
    until: float | None = None,
    zone: tzinfo | None = None,
) -> list[TrendRow]:
    """Trend rows for every key (or one), every non-empty bucket, in time order per key;
    buckets cut on the wall clock of ``zone`` (default UTC)."""
    size = parse_duration(bucket) if isinstance(bucket, str) else float(bucket)
    counts = bucket_counts(db, by=by, bucket=size, key=key, since=since, until=until, zone=zone)
    return trend_rows(counts, size, zone)


def trend_rows(
    counts: Iterable[tuple[str, int, int, int, float]], size: float, zone: tzinfo | None = None
) -> list[TrendRow]:
    """:func:`bucket_counts`' rows (buckets of ``size`` seconds on ``zone``'s clock) as trend
    rows; the dashboard's held counts become its chart's rows this way too."""
    name_of_zone = zone_name(zone)
    rows = []
    # A desk's 1,400 tickers share each bucket's start and most (negatives, count) pairs: each
    # start written once and each interval computed once, not once per row of a million.
    starts: dict[int, tuple[float, str]] = {}
    intervals: dict[tuple[int, int], tuple[float, float]] = {}
    for name, index, n, neg, total in counts:
        interval = intervals.get((neg, n))
        if interval is None:
            interval = intervals[neg, n] = wilson(neg, n)
        low, high = interval
        when = starts.get(index)
        if when is None:
            start = bucket_start(index, size, zone)
            when = starts[index] = (start, iso(start, zone))
        start, written = when
        rows.append(
            TrendRow(
                name,
                written,
                start,
                n,
                neg,
                neg / n,
                low,
                high,
                total / n,
                name_of_zone,
            )
        )
    return rows


#: A bucket with fewer documents than this is drawn faint, off its key's line (:func:`plot`):
#: its share jumps between 0 and 1 (1 of 1 negative is 100 %, with a 95 % interval of
#: 21-100 %). The dashboard's automatic bucket wants as many in a typical bucket.
FEW_DOCUMENTS = 10


def on_the_line(series: list[TrendRow]) -> list[bool]:
    """For each row of one key's ``series``: whether :func:`plot` draws it on the key's line
    (:data:`FEW_DOCUMENTS` or more documents) or as a faint mark off it; every row is on the
    line when none has that many (nothing steadier to draw). On a desk's 6h chart, a small
    ticker's night buckets of one document drew its line up to 100 % and down again, over
    the surges the alerts were about."""
    if all(r.count < FEW_DOCUMENTS for r in series):
        return [True] * len(series)
    return [r.count >= FEW_DOCUMENTS for r in series]


def share_axis_top(shares: list[float]) -> float:
    """The top of the chart's share axis: the tenth above the highest of ``shares`` with at
    least 0.05 of room (a mark on the highest point stays whole), at most 1."""
    return min(1.0, math.ceil(max(shares, default=1.0) * 10 + 0.5) / 10)


def _smallest_step(rows: list[TrendRow]) -> float | None:
    """The smallest gap between two buckets of the rows: the bucket size when any key has two
    adjacent buckets (``None`` when no key has two buckets)."""
    starts = sorted({r.ts for r in rows})
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    return min(gaps) if gaps else None


def top_keys(rows: list[TrendRow], limit: int) -> list[str]:
    """The ``limit`` keys with the most documents."""
    totals: dict[str, int] = {}
    for row in rows:
        totals[row.key] = totals.get(row.key, 0) + row.count
    return [k for k, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def _plain(text: str) -> str:
    """``text`` drawn as written: matplotlib reads a pair of ``$`` as math, so a topic such as
    "US$ vs EUR$" was drawn in math italics, and "$x_{$" stopped the chart with a parse error."""
    return text.replace("$", r"\$")


#: The keys' colours: Okabe and Ito's colour-blind-safe palette without its vermillion (too near
#: the alerts' red) and its yellow (lost on white paper), with a grey in their place.
KEY_COLOURS = ("#0072B2", "#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#000000", "#999999")
#: One marker per key for ten keys, none of the alerts' marks (:func:`alert_groups`: triangles,
#: square, wide diamond, filled plus, circle), so a key's point never reads as an alert.
KEY_MARKERS = ("X", "d", "*", "p", "x", "h", "+", "8", "1", "H")
KEY_LINESTYLES = ("-", "--", ":", "-.")
#: The alerts' colour; no key's line is drawn in it.
ALERT_COLOUR = "red"


def key_style(index: int) -> dict[str, Any]:
    """The look of the ``index``-th key's line: colour, marker and line style. Colour alone told
    the lines apart, which a red-green colour-blind reader or a black-and-white print could
    not. Any two of the first twenty keys differ in at least two of the three, and the first ten
    in marker."""
    return {
        "color": KEY_COLOURS[index % len(KEY_COLOURS)],
        "marker": KEY_MARKERS[index % len(KEY_MARKERS)],
        "linestyle": KEY_LINESTYLES[index % len(KEY_LINESTYLES)],
    }


def plot(
    rows: list[TrendRow],
    *,
    alerts: list[dict[str, Any]] | None = None,
    keys: list[str] | None = None,
    limit: int = 6,
    title: str = "Negative share per bucket (95% Wilson interval)",
    bucket: float | None = None,
    zone: tzinfo | None = None,
    empty: str = "No documents to chart.",
) -> Any:
    """A matplotlib figure: negative share per key over time (with its 95 % interval band when
    one or two keys are drawn); alerts as red triangles on their key's line, at the bucket their
    window ends in (:func:`alerts_on_the_line`). With no rows, a figure saying ``empty``: an
    empty date axis read "01-01 00:00" (1970).

    ``bucket``: the bucket size in seconds (by default the smallest step between the rows). A
    key's line breaks where its buckets are not adjacent: drawn across them, one negative
    document among days of silence looked like a surge lasting days. Each key's line has a
    marker and a line style as well as a colour (:func:`key_style`), none of them the alerts'
    red or marks, so the chart reads without colour. The time axis is in ``zone`` (default
    UTC), the zone the rows' buckets were cut in. A bucket of fewer than
    :data:`FEW_DOCUMENTS` documents is a faint mark of its key's marker and colour, off the
    line (:func:`on_the_line`; the axis label says so), and the share axis runs from 0 to just
    above the highest share drawn (:func:`share_axis_top`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    if not rows:
        return empty_figure(empty)
    keys = keys or top_keys(rows, limit)
    step = bucket or _smallest_step(rows)
    shown = UTC if is_utc(zone) else zone
    fig, ax = plt.subplots(figsize=(10, 4.5))
    tops: list[float] = []
    faint_drawn = False
    for i, name in enumerate(keys):
        series = [r for r in rows if r.key == name]
        if not series:
            continue
        solid = on_the_line(series)
        times: list[datetime] = []
        share, low, high = [], [], []
        previous, gap = None, False
        for j, r in enumerate(series):
            gap = gap or bool(j and step and r.ts - series[j - 1].ts > step * 1.5)
            if not solid[j]:
                continue  # a faint bucket between two on the line does not break it
            if previous is not None and gap:
                # A point with no value between non-adjacent buckets breaks the line and band.
                times.append(datetime.fromtimestamp((r.ts + previous.ts) / 2, shown))
                share.append(math.nan)
                low.append(math.nan)
                high.append(math.nan)
            times.append(datetime.fromtimestamp(r.ts, shown))
            share.append(r.negative_share)
            low.append(r.share_low)
            high.append(r.share_high)
            previous, gap = r, False
        look = key_style(i)
        (line,) = ax.plot(
            times, share, markersize=7, markeredgewidth=1.5, label=_plain(name), **look
        )
        faint = [r for r, on in zip(series, solid, strict=True) if not on]
        if faint:
            faint_drawn = True
            ax.plot(
                [datetime.fromtimestamp(r.ts, shown) for r in faint],
                [r.negative_share for r in faint],
                linestyle="none",
                marker=look["marker"],
                color=look["color"],
                alpha=0.35,
                markersize=5,
                label="_faint",  # not in the legend: the axis label says what faint marks are
            )
            tops.append(max(r.negative_share for r in faint))
        if len(keys) <= 2:  # more bands than two hide the lines
            ax.fill_between(times, low, high, color=line.get_color(), alpha=0.15)
            tops += [h for h in high if h == h]
        tops += [v for v in share if v == v]
    placed = alerts_on_the_line(alerts or [], rows, keys)
    for (label, marker, filled), group in alert_groups(placed, step).items():
        ax.plot(
            [datetime.fromtimestamp(a["window_end"], shown) for a in group],
            [a["share"] for a in group],
            marker=marker,
            color=ALERT_COLOUR,
            markerfacecolor=ALERT_COLOUR if filled else "none",
            markeredgewidth=1.5,
            markersize=11,
            linestyle="none",
            label=label,
            # Over the lines, and whole at a share of 0 or 1 (clipped, half a mark was drawn).
            zorder=3,
            clip_on=False,
        )
    # From 0 to a tenth above the highest share drawn: at a desk's 5-35 % the lines used a
    # third of a 0-1 axis and crossed each other; a share of 0 or 1 stays whole.
    ax.set_ylim(-0.02, share_axis_top(tops) + 0.02)
    ax.set_ylabel("negative share")
    # The zone the buckets are cut in, whatever zone the input's times had.
    xlabel = f"time ({zone_name(zone)})"
    if faint_drawn:
        xlabel += f"; faint marks: buckets of fewer than {FEW_DOCUMENTS} documents, off the lines"
    ax.set_xlabel(xlabel)
    ax.set_title(_plain(title))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz=shown))
    fig.autofmt_xdate()
    if keys:
        # Beside the plot, not over it: inside, it hid the first hours of the lines.
        # Handles long enough to show each line style with its marker.
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize="small",
            borderaxespad=0,
            handlelength=3.5,
        )
    fig.tight_layout()
    return fig


#: The markers of alerts found with buckets other than the chart's, in order of bucket size.
_OTHER_MARKERS = ("^", "s", "D", "P", "o")


def alert_groups(
    alerts: list[dict[str, Any]], chart_bucket: float | None
) -> dict[tuple[str, str, bool], list[dict[str, Any]]]:
    """The alerts to draw, grouped by the bucket their detector used (their ``settings``):
    ``(legend label, marker, filled)`` -> alerts. Those of the chart's bucket are filled red
    triangles, first; each other bucket gets a hollow marker of its own, by size; alerts stored
    before the settings were kept, a hollow triangle. An hourly cron and a daily look on one
    database put both on one chart, and a daily alert read as an hourly surge."""
    by_bucket: dict[float | None, list[dict[str, Any]]] = {}
    for alert in alerts:
        size = (alert.get("settings") or {}).get("bucket")
        by_bucket.setdefault(float(size) if size else None, []).append(alert)
    groups: dict[tuple[str, str, bool], list[dict[str, Any]]] = {}
    if chart_bucket is not None and float(chart_bucket) in by_bucket:
        own = by_bucket.pop(float(chart_bucket))
        groups[(f"alert ({duration_text(chart_bucket)} buckets)", "v", True)] = own
    unknown = by_bucket.pop(None, [])
    for i, size in enumerate(sorted(by_bucket)):
        marker = _OTHER_MARKERS[i % len(_OTHER_MARKERS)]
        groups[(f"alert ({duration_text(size)} buckets)", marker, False)] = by_bucket[size]
    if unknown:
        groups[("alert (bucket not recorded)", "v", False)] = unknown
    return groups


def alerts_on_the_line(
    alerts: list[dict[str, Any]],
    rows: list[TrendRow],
    keys: list[str],
) -> list[dict[str, Any]]:
    """The alerts of ``keys``, each moved onto its key's line: to the key's last point whose
    bucket starts before the alert's window ends (the bucket holding the window's end, or the
    last one with documents before it), with ``window_end`` and ``share`` that point's.

    Drawn at the window's share and end, the triangle floated above or below the line whenever
    the chart's buckets were not the alert's (3h on the chart, 1h for the detector). An alert
    whose window ends before the key's first point is left out."""
    series: dict[str, list[TrendRow]] = {}
    for row in rows:  # in time order per key
        if row.key in keys:
            series.setdefault(row.key, []).append(row)
    placed = []
    for alert in alerts:
        before = [r for r in series.get(alert.get("key"), []) if r.ts < alert["window_end"]]
        if not before:
            continue
        point = before[-1]
        placed.append({**alert, "window_end": point.ts, "share": point.negative_share})
    return placed


#: :func:`alert_groups`' markers in words, for :func:`describe`.
_MARKER_WORDS = {
    "v": "triangle pointing down",
    "^": "triangle pointing up",
    "s": "square",
    "D": "diamond",
    "P": "plus",
    "o": "circle",
}


def describe(
    rows: list[TrendRow],
    *,
    alerts: list[dict[str, Any]] | None = None,
    keys: list[str] | None = None,
    limit: int = 6,
    bucket: float | None = None,
) -> list[str]:
    """What :func:`plot` draws with the same arguments, as plain sentences (not Markdown): per
    key drawn, its latest bucket's negative share, the highest of its line and how many of its
    buckets are faint marks off the line (:func:`on_the_line`); then each alert marked
    on the chart, with its mark in words, and how many alerts of ``alerts`` are not on it. Empty
    when there are no rows (the chart is then a message, which says it).

    The chart is an image: a screen reader read it as "plot", and at 200 % zoom its legend and
    its marks were too small to tell apart. Bucket times as the rows write them (in their zone)."""
    if not rows:
        return []
    keys = keys or top_keys(rows, limit)
    step = bucket or _smallest_step(rows)
    said = []
    for name in keys:
        series = [r for r in rows if r.key == name]
        if not series:
            continue
        last = series[-1]
        solid = on_the_line(series)
        # The highest point of the line as drawn, not a faint one-document bucket's 100 %.
        lined = [r for r, on in zip(series, solid, strict=True) if on]
        top = max(lined, key=lambda r: (r.negative_share, r.count))
        sentence = (
            f"{name}: {last.negative_share:.0%} negative in its latest bucket ({last.bucket_start}, "
            f"{last.negatives} of {last.count} documents)"
        )
        if top is not last and top.negative_share > last.negative_share:
            sentence += (
                f", highest {top.negative_share:.0%} ({top.bucket_start}, "
                f"{top.negatives} of {top.count})"
            )
        faint = solid.count(False)
        if faint:
            sentence += (
                f"; {faint} of its {len(series)} buckets have fewer than {FEW_DOCUMENTS} "
                "documents, drawn faint off its line"
            )
        said.append(sentence + ".")
    placed = alerts_on_the_line(alerts or [], rows, keys)
    points = {(r.key, r.ts): r.bucket_start for r in rows}
    for (label, marker, filled), group in alert_groups(placed, step).items():
        found = label.removeprefix("alert (").removesuffix(")")  # "1h buckets"
        mark = f"{'filled' if filled else 'hollow'} {_MARKER_WORDS.get(marker, 'mark')}"
        for alert in group:
            point = points[(alert["key"], alert["window_end"])]
            said.append(
                f"Alert on {alert['key']} ({found}), a {mark} on its {point} point: window "
                f"{alert['window']}, {alert['negatives']} of {alert['n']} negative."
            )
    if alerts and len(placed) < len(alerts):
        off = len(alerts) - len(placed)
        said.append(
            f"{off} alert{'' if off == 1 else 's'} not on the chart (of keys not drawn, or "
            "before their key's first bucket)."
        )
    return said


def empty_figure(message: str) -> Any:
    """A chart-sized figure saying ``message``, with no axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize="large", color="0.4")
    return fig


def save_chart(rows: list[TrendRow], path: str | Path, **options: Any) -> Path:
    """Save :func:`plot` as a PNG (the core's atomic ``save_figure``)."""
    from tunesmith.engine.plots import save_figure

    return save_figure(plot(rows, **options), path)
