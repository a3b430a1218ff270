"""Alerts: surges found by the detector in the stored documents, explained, stored, and sent as
``finance.alert`` events through the core's sinks.

Each alert carries the words that most drove the negative scores in its window (the core's
aggregated explanations over the window's negative documents, most negative first, at most
``max_explain``) and the most negative example documents. An alert's id is derived from the
detector, its bucket and window, the key and the window start, so running ``alerts`` again
stores and sends nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import tzinfo
from pathlib import Path
from typing import Any

from tunesmith.events import Event, list_deliveries, make_sink, pruned_before, record, send
from tunesmith.explain.aggregate import aggregate_explanations
from tunesmith_finance import storage, triage
from tunesmith_finance.deferred import DeferredModel
from tunesmith_finance.detector import Detection, SurgeDetector, min_history_for
from tunesmith_finance.documents import resolve_zone
from tunesmith_finance.trends import (
    WEEK,
    bucket_counts,
    bucket_origin,
    bucket_start,
    duration_text,
    is_utc,
    iso,
    local_seconds,
    zone_name,
)

EVENT_KIND = "finance.alert"


@dataclass
class AlertOptions:
    """What to group by, the zone whose wall clock cuts the buckets (an IANA name, ``--tz``),
    and how much to explain."""

    by: str = "topic"
    max_explain: int = 100
    examples: int = 3
    words: int = 10
    tz: str = "UTC"


def global_negative_share(db: Any) -> float | None:
    """The negative share of every stored document (the detector's prior), or None if empty."""
    row = db.query("SELECT COUNT(*) AS n, SUM(label = 'negative') AS neg FROM finance_documents")[0]
    return (row["neg"] or 0) / row["n"] if row["n"] else None


#: The prior of a database without documents (and of `finance replay`, which starts empty).
EMPTY_PRIOR = 0.2


def starting_prior(db: Any, given: float | None = None) -> float:
    """Where a detector's baseline starts: the analyst's ``--prior`` when given, else the
    database's negative share now (:data:`EMPTY_PRIOR` while it is empty)."""
    if given is not None:
        return given
    share = global_negative_share(db)
    return EMPTY_PRIOR if share is None else share


def explaining_model(
    db: Any,
    model: str | Path | None,
    explain: bool = True,
    device: str = "cpu",
    say: Callable[[str], None] | None = None,
) -> DeferredModel | None:
    """The model whose words explain new alerts (`finance alerts --model`), loaded (on
    ``device``) only once an alert is found: most runs find none. ``model`` None: the one
    ingest recorded in the database; when that is gone, ``say`` (default: stderr) gets a note
    and the alerts carry no words. None without ``explain``. A ``model`` named but missing is
    a :class:`~tunesmith.errors.ModelNotFoundError`, not a silent note."""
    if not explain:
        return None
    from tunesmith.errors import ModelNotFoundError

    if model is not None:
        where = Path(model).expanduser()
        if not where.exists():
            raise ModelNotFoundError(f"model directory {where} does not exist")
        return DeferredModel(Path(model), device=device)
    recorded = storage.get_meta(db, "model")
    if not recorded or not Path(recorded).exists():
        (say or _say)("note: no sentiment model found (--model); alerts carry no explaining words")
        return None
    return DeferredModel(recorded, device=device)


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def default_detector(db: Any, prior: float | None = None, **settings: Any) -> SurgeDetector:
    """The detector `finance alerts` runs, its baseline starting at :func:`starting_prior`
    (``prior``: the analyst's ``--prior``); ``settings``: the other :class:`SurgeDetector`
    fields. The dashboard uses it too, so that both find the same alerts with the same
    baselines in one database."""
    settings.setdefault("min_history", min_history_for(prior))
    return SurgeDetector(prior=starting_prior(db, prior), **settings)


#: The :class:`SurgeDetector` fields `finance alerts` takes as flags (all but ``--prior``), in
#: the order its help lists them; the dashboard takes the same (`finance demo`).
DETECTOR_FLAGS = (
    "bucket",
    "window",
    "half_life",
    "min_volume",
    "min_lift",
    "p_value",
    "cooldown",
    "min_history",
)
#: The detector settings stored with an alert that no command takes as a flag.
_NOT_FLAGS = ("prior_weight",)
#: Which of a detector's settings are durations (seconds), written as `--bucket` takes them.
_DURATIONS = ("bucket", "half_life", "cooldown")


def detector_settings(detector: Any) -> dict[str, Any]:
    """The settings a detector found an alert with, stored with it (durations in seconds):
    for the default detector ``bucket``, ``window``, ``half_life``, ``min_volume``,
    ``min_lift``, ``p_value``, ``cooldown``, ``prior``, ``prior_weight`` and ``min_history``
    (stored alerts from before it lack that one). Without them a
    stored alert could not be told from one found with another bucket or threshold."""
    import dataclasses

    if not dataclasses.is_dataclass(detector):
        return {}
    return _counted(
        {
            field.name: getattr(detector, field.name)
            for field in dataclasses.fields(detector)
            if field.name != "name"
        }
    )


def _counted(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with ``min_history``, a count of documents, as a whole number: the detector
    holds it as a float (twice the prior's weight), which `--list --json` and the event showed
    as 20.0."""
    wait = settings.get("min_history")
    if isinstance(wait, float) and wait.is_integer():
        settings["min_history"] = int(wait)
    return settings


def settings_flags(settings: dict[str, Any] | None) -> str:
    """An alert's stored settings as the `finance alerts` flags that find it again
    (``--bucket 1h --window 3 ... --prior 0.162914``); "" for an alert stored before they were
    kept. ``prior_weight`` is no flag and is left out."""
    if not settings:
        return ""
    flags = []
    for name, value in settings.items():
        if name in _NOT_FLAGS or value is None:
            continue
        shown = duration_text(value) if name in _DURATIONS else f"{value:g}"
        flags.append(f"--{name.replace('_', '-')} {shown}")
    return " ".join(flags)


def detect_all(
    db: Any,
    detector: Any,
    *,
    by: str,
    until: float | None = None,
    quiet: dict[str, list[float]] | None = None,
    zone: tzinfo | None = None,
    counts: Iterable[tuple[str, int, int, int, float]] | None = None,
) -> list[Detection]:
    """Run the detector over every key's bucket counts (documents before ``until`` only);
    ``quiet``: per key, the window ends of alerts stored earlier, whose cool-downs the detector
    keeps out of (see ``SurgeDetector``). Buckets are cut on the wall clock of ``zone``
    (default UTC); the detections' windows are Unix times. ``counts``: those bucket counts,
    held already (the dashboard's :class:`~tunesmith_finance.live_counts.LiveCounts`), in place
    of reading them."""
    from tunesmith_finance.live_counts import screen_counts, screens

    quiet = quiet or {}
    size = detector.bucket
    origin = bucket_origin(size)
    # The detector counts in the buckets' own seconds: wall-clock seconds from the buckets'
    # origin (a Monday for weeks), bucket index times bucket size.
    quiet_at = {
        key: [local_seconds(end, zone) - origin for end in ends] for key, ends in quiet.items()
    }
    per_key: dict[str, list[tuple[int, int, int, float]]] = {}
    if counts is None:
        counts = bucket_counts(db, by=by, bucket=size, until=until, zone=zone)
        if screens(detector):
            # Only the keys with a window that passes the detector's tests, found over every
            # window at once in numpy, as the dashboard does: its pass in Python over each of
            # a desk's 1,400 tickers' 2,000 hours was most of a check.
            wanted = screen_counts(counts, detector, quiet_at)
            counts = [row for row in counts if row[0] in wanted]
    for key, b, n, neg, total in counts:
        per_key.setdefault(key, []).append((b, n, neg, total))
    found: list[Detection] = []
    for key in sorted(per_key):
        for detection in detector.detect(key, per_key[key], quiet=quiet_at.get(key, [])):
            if origin or not is_utc(zone):
                detection = replace(
                    detection,
                    window_start=bucket_start(detection.window_start / size, size, zone),
                    window_end=bucket_start(detection.window_end / size, size, zone),
                )
            found.append(detection)
    found.sort(key=lambda d: (d.window_end, d.key))
    return found


#: The bucket and window of `finance alerts`' defaults (1h, 3): the ids of alerts found with
#: them are what they were before ids named the bucket and window, so an upgraded database does
#: not take its stored hourly alerts for new ones.
PLAIN_ID_LOOK = (3600.0, 3)


def detector_look(detector: Any) -> tuple[float, int | None]:
    """The bucket (seconds) and window (buckets) of a detector: which windows it looks at.
    Alerts of one look are one series, with one cool-down; the thresholds only say which of
    those windows alert."""
    return float(detector.bucket), getattr(detector, "window", None)


def alert_id(detector: Any, by: str, detection: Detection) -> str:
    """Stable id of an alert: the same surge found again in the same look (bucket and window,
    :func:`detector_look`) gets the same id. Two looks whose windows start together (a 1h and a
    1d window from midnight) get two ids; under one id, the second was dropped without a word."""
    look = detector_look(detector)
    if look == PLAIN_ID_LOOK:
        return plain_alert_id(detector, by, detection)
    raw = f"{detector.name}|{by}|{detection.key}|{detection.window_start:.0f}|{look[0]:g}|{look[1]}"
    return hashlib.sha1(raw.encode()).hexdigest()[:16]


def plain_alert_id(detector: Any, by: str, detection: Detection) -> str:
    """The id an alert had before ids named the bucket and window (the same for the default
    look, :data:`PLAIN_ID_LOOK`)."""
    raw = f"{detector.name}|{by}|{detection.key}|{detection.window_start:.0f}"
    return hashlib.sha1(raw.encode()).hexdigest()[:16]


def window_documents(db: Any, by: str, key: str, start: float, end: float) -> list[Any]:
    """The window's documents for a key, most negative score first."""
    if by == "all":
        return db.query(
            "SELECT id, time, source, text, label, score FROM finance_documents "
            "WHERE ts >= ? AND ts < ? ORDER BY score, id",
            (start, end),
        )
    return db.query(
        "SELECT d.id, d.time, d.source, d.text, d.label, d.score FROM finance_documents d "
        "JOIN finance_keys k ON k.doc_id = d.id AND k.kind = ? AND k.key = ? "
        # k.ts, not d.ts: the window is then a range of the key's rows (storage migration 6).
        "WHERE k.ts >= ? AND k.ts < ? ORDER BY d.score, d.id",
        (by, key, start, end),
    )


def explain_window(model: Any, texts: list[str], *, k: int = 10) -> list[dict[str, Any]]:
    """The words that most drove the negative label over ``texts``: of every member of an
    ensemble, whose mean scored them. ``model`` may be a :class:`DeferredModel`."""
    if model is None or not texts:
        return []
    if isinstance(model, DeferredModel):
        model = model.get()

    negative = model.loaded.labels[model.indices["negative"]]
    impacts = aggregate_explanations(
        model.loaded,
        texts,
        target=negative,
        k=k,
        progress=lambda _done: None,
        members=model.members,
    )
    return [
        {"word": w.word, "total": round(w.total, 4), "mean": round(w.mean, 4), "count": w.count}
        for w in impacts.get(negative, [])
    ]


def build_alert(
    db: Any,
    detection: Detection,
    *,
    detector: Any,
    options: AlertOptions,
    model: Any = None,
) -> dict[str, Any]:
    """The alert record: the detector's figures, explaining words and example documents;
    its window is written in the zone of ``options.tz``, which ``tz`` names."""
    zone = resolve_zone(options.tz, "--tz")
    docs = window_documents(
        db, options.by, detection.key, detection.window_start, detection.window_end
    )
    negatives = [d for d in docs if d["label"] == "negative"][: options.max_explain]
    words = explain_window(model, [d["text"] for d in negatives], k=options.words)
    # Nothing is explained without a model: "explained": 12 beside no words read otherwise.
    explained = len(negatives) if model is not None else 0
    examples = [
        {
            "id": d["id"],
            "time": d["time"],
            "source": d["source"],
            "text": d["text"],
            "score": round(d["score"], 4),
        }
        for d in docs[: options.examples]
    ]
    return {
        "id": alert_id(detector, options.by, detection),
        "kind": options.by,
        "key": detection.key,
        "window_start": detection.window_start,
        "window_end": detection.window_end,
        "window": f"{iso(detection.window_start, zone)}/{iso(detection.window_end, zone)}",
        "tz": zone_name(zone),
        "n": detection.n,
        "negatives": detection.negatives,
        "share": round(detection.share, 4),
        "baseline": round(detection.baseline, 4),
        "z": round(detection.z, 3),
        "p_value": detection.p_value,
        "mean_score": round(detection.mean_score, 4),
        "words": words,
        "explained": explained,
        "examples": examples,
        "detector": detector.name,
        "settings": detector_settings(detector),
    }


def alert_message(alert: dict[str, Any]) -> str:
    """One line saying what surged."""
    words = ", ".join(w["word"] for w in alert["words"][:5]) or "-"
    return (
        f"Negative surge for {alert['kind']} {alert['key']}: {alert['negatives']}/{alert['n']} "
        f"negative ({alert['share']:.0%}, baseline {alert['baseline']:.0%}) in {alert['window']}; "
        f"words: {words}"
    )


def resolve_sinks(sinks: list[Any] | None) -> list[Any]:
    """Sink objects for sink URLs (objects pass through); an unknown scheme is one clear error.

    Called before anything is detected: an alert whose sink fails to build would be stored but
    never enter the outbox, so no later run or ``tunesmith events retry`` would send it.
    """
    return [make_sink(s) if isinstance(s, str) else s for s in sinks or []]


#: The fields of an alert's event payload, in order: those :func:`build_alert` makes, all
#: stored with the alert, so an alert sent when found and one sent later from the database
#: (pending) carry the same payload. Not the store's own ``created_at`` and ``event_id``.
PAYLOAD_FIELDS = (
    "id",
    "kind",
    "key",
    "window_start",
    "window_end",
    "window",
    "tz",
    "n",
    "negatives",
    "share",
    "baseline",
    "z",
    "p_value",
    "mean_score",
    "words",
    "explained",
    "examples",
    "detector",
    "settings",
)


def alert_payload(alert: dict[str, Any]) -> dict[str, Any]:
    """The event payload of an alert (:data:`PAYLOAD_FIELDS`); ``explained`` and ``settings``
    are None for an alert stored before they were kept."""
    return {name: alert.get(name) for name in PAYLOAD_FIELDS}


def alert_event(alert: dict[str, Any]) -> Event:
    """The ``finance.alert`` event of an alert, under its stable id (:func:`alert_event_id`)."""
    return Event(
        kind=EVENT_KIND,
        message=alert_message(alert),
        payload=alert_payload(alert),
        source="finance",
        id=alert_event_id(alert["id"]),
    )


def alert_event_id(alert_id: str) -> str:
    """The event id of an alert, the same every time it is sent: a re-send after a crash is
    the same event in the outbox, and a sink can tell a repeat by its id."""
    import uuid

    return uuid.uuid5(uuid.NAMESPACE_URL, f"tunesmith-finance-alert:{alert_id}").hex


def _delivered_events(event_ids: list[str], outbox: Any) -> set[str]:
    """The ids among ``event_ids`` that have at least one delivery in the outbox (sent, being
    sent, or failed and kept for ``tunesmith events retry``)."""
    found: set[str] = set()
    if _store_without_outbox(outbox):
        return found  # nothing was ever recorded; reading must not add the outbox's tables
    for start in range(0, len(event_ids), 500):  # SQLite's parameter limit
        chunk = event_ids[start : start + 500]
        found |= {d.event.id for d in list_deliveries(outbox, event_ids=chunk)}
    return found


def _sent_events(alerts: list[Any], outbox: Any) -> set[str]:
    """The event ids of ``alerts`` (rows with ``event_id`` and ``created_at``) that a sink was
    given: those with a delivery in the outbox, and those of alerts found before the cut-off of
    an `events prune`, which may have removed their delivered event (the next run re-sent every
    alert it had removed, and `alerts --list` called them unsent)."""
    found = _delivered_events([a["event_id"] for a in alerts], outbox)
    cut = None if _store_without_outbox(outbox) else pruned_before(outbox)
    if cut:
        found |= {a["event_id"] for a in alerts if a["created_at"] < cut}
    return found


def _store_without_outbox(outbox: Any) -> bool:
    """True for an open store (the finance database) that holds no outbox tables yet."""
    if not hasattr(outbox, "query"):
        return False  # a path: left to the core's list_deliveries
    found = outbox.query(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox_deliveries'"
    )
    return not found


#: Finance databases whose alerts were checked for events without a delivery (once per open
#: database: alerts this code sends always get their deliveries with their event id).
_checked: weakref.WeakSet[Any] = weakref.WeakSet()


def forget_undelivered_events(db: Any, outbox: Any = None) -> int:
    """Make pending again the stored alerts whose event has no delivery in the outbox (earlier
    versions recorded one for an alert found without a sink, which no later run sent); the
    number made pending. Checked once per open database, in one transaction with the check, so
    that an alert another process is sending meanwhile is left alone."""
    if db in _checked:
        return 0
    with db.transaction() as tx:
        rows = tx.query(
            "SELECT id, event_id, created_at FROM finance_alerts WHERE event_id IS NOT NULL"
        )
        delivered = _sent_events(rows, db if outbox is None else outbox)
        stale = [(row["id"],) for row in rows if row["event_id"] not in delivered]
        if stale:
            tx.executemany("UPDATE finance_alerts SET event_id = NULL WHERE id = ?", stale)
    _checked.add(db)
    return len(stale)


def pending_alerts(db: Any) -> list[dict[str, Any]]:
    """Stored alerts that no sink has been given yet, oldest window first: found by a run
    without sinks, or stored by a run that stopped before it recorded their event (see also
    :func:`forget_undelivered_events`)."""
    return list(reversed(list_alerts(db, unsent=True)))


def deliver_alert(db: Any, alert: dict[str, Any], sinks: list[Any], outbox: Any = None) -> bool:
    """Send a stored alert to ``sinks`` through the core's outbox, unless it was sent already;
    True when this call sent it (``alert["event_id"]`` is then set). With no sinks it stays
    pending, for the next run that has one.

    When the finance database is the outbox (``outbox`` None), the check that the alert is
    still unsent, the event's deliveries and the alert's ``event_id`` are written in one
    transaction (the core's :func:`~tunesmith.events.record`): two runs beside each other (a
    ``watch --alerts`` and a cron ``alerts``) cannot both send it. Delivery happens after the
    commit; a delivery that fails stays in the outbox for ``tunesmith events retry``.
    """
    if not sinks:
        return False
    if outbox is None:
        with db.transaction() as tx:
            rows = tx.query("SELECT * FROM finance_alerts WHERE id = ?", (alert["id"],))
            if not rows or rows[0]["event_id"]:
                return False  # another run sent it meanwhile
            # From the alert as stored, so that the payload is the same sent now or later.
            event = alert_event(_alert_from_row(rows[0]))
            outgoing = record(event, sinks, outbox=db)
            tx.execute(
                "UPDATE finance_alerts SET event_id = ? WHERE id = ?", (event.id, alert["id"])
            )
    else:
        rows = db.query("SELECT * FROM finance_alerts WHERE id = ?", (alert["id"],))
        if not rows:
            return False
        event = alert_event(_alert_from_row(rows[0]))
        outgoing = record(event, sinks, outbox=outbox)
        db.execute("UPDATE finance_alerts SET event_id = ? WHERE id = ?", (event.id, alert["id"]))
    alert["event_id"], alert["sent"] = event.id, True
    send(outgoing)
    return True


def resend_unsent(db: Any, sinks: list[Any], outbox: Any = None) -> list[dict[str, Any]]:
    """Send the stored alerts that no sink has been given yet (:func:`pending_alerts`) to
    ``sinks``; returns those sent now. Without sinks they stay pending."""
    if not sinks:
        return []
    forget_undelivered_events(db, outbox)
    sent = []
    now = time.time()
    mutes = triage.active_mutes(db, now)
    for alert in pending_alerts(db):
        mute = triage.covering_mute(mutes, alert["kind"], alert["key"], alert["window_end"], now)
        if mute is not None:
            # Muted since it was found: the mute says no event for this key now. Held by it,
            # listed as muted, never sent (after the mute it would page about an old surge).
            _hold(db, alert, mute)
            continue
        try:
            if deliver_alert(db, alert, sinks, outbox):
                sent.append(alert)
        except Exception as exc:  # e.g. an outbox that cannot be written: the next run retries
            print(f"tunesmith finance: alert {alert['id']} not sent: {exc}", file=sys.stderr)
    return sent


def store_alert(db: Any, alert: dict[str, Any], event_id: str | None, mute: Any = None) -> bool:
    """Store an alert (``mute``: the :class:`~tunesmith_finance.triage.Mute` that holds it,
    recorded in the same transaction, so that no run sends it meanwhile); False when one with
    the same id is stored already."""
    with db.transaction() as tx:
        stored = _insert_alert(tx, alert, event_id)
        if stored and mute is not None:
            triage.hold(tx, alert["id"], mute)
    return stored


def _insert_alert(db: Any, alert: dict[str, Any], event_id: str | None) -> bool:
    result = db.execute(
        "INSERT OR IGNORE INTO finance_alerts (id, kind, key, window_start, window_end, n, "
        "negatives, share, baseline, z, p_value, mean_score, words, examples, detector, "
        "created_at, event_id, tz, explained, settings) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            alert["id"],
            alert["kind"],
            alert["key"],
            alert["window_start"],
            alert["window_end"],
            alert["n"],
            alert["negatives"],
            alert["share"],
            alert["baseline"],
            alert["z"],
            alert["p_value"],
            alert["mean_score"],
            json.dumps(alert["words"]),
            json.dumps(alert["examples"]),
            alert["detector"],
            storage.now_iso(),
            event_id,
            alert.get("tz", "UTC"),
            alert.get("explained"),
            json.dumps(alert["settings"]) if alert.get("settings") is not None else None,
        ),
    )
    return result.rowcount == 1


#: How far the clocks' changes stretch or shrink a window (an hour): what an alert stored
#: before its settings were kept may differ from its look's length by.
_CLOCK_CHANGE = 3600.0


def same_look(alert: Any, detector: Any) -> bool:
    """Whether a stored alert (a row or dict with ``settings``, ``window_start`` and
    ``window_end``) is of the detector's look (:func:`detector_look`). One stored before the
    settings were kept is told by its window's length, within an hour; when in doubt it counts
    as the detector's own, so that an upgrade sends none of it again."""
    bucket, window = detector_look(detector)
    settings = alert["settings"]
    if isinstance(settings, str):
        settings = json.loads(settings)
    if settings:
        return float(settings.get("bucket", bucket)) == bucket and settings.get("window") == window
    if window is None:
        return True
    length = float(alert["window_end"]) - float(alert["window_start"])
    return abs(length - bucket * window) <= _CLOCK_CHANGE


def own_alerts(db: Any, detector: Any, by: str) -> list[Any]:
    """The stored alerts of ``detector``'s name and look (:func:`same_look`) grouped by ``by``:
    those its cool-down across runs holds for. An hourly cron and a daily look on one database
    are two series: the hourly alert of a surge does not silence the daily one, nor the
    reverse."""
    rows = db.query(
        "SELECT id, key, window_start, window_end, tz, settings FROM finance_alerts "
        "WHERE kind = ? AND detector = ?",
        (by, detector.name),
    )
    return [row for row in rows if same_look(row, detector)]


def stored_window_ends(
    db: Any, detector: Any, by: str, rows: list[Any] | None = None
) -> dict[str, list[float]]:
    """Window ends of the stored alerts of ``detector`` (its name and look, :func:`own_alerts`;
    ``rows``: those, read already) per key: the cool-down holds across runs, not only within
    the detector's own pass over the series."""
    ends: dict[str, list[float]] = {}
    for row in own_alerts(db, detector, by) if rows is None else rows:
        ends.setdefault(row["key"], []).append(float(row["window_end"]))
    return ends


def known_alert_ids(db: Any) -> set[str]:
    return {r["id"] for r in db.query("SELECT id FROM finance_alerts")}


def thursday_week_windows(
    db: Any, detector: Any, by: str, rows: list[Any] | None = None
) -> dict[str, list[tuple[float, float]]]:
    """Per key, the windows of stored alerts (of ``detector``'s name and look; ``rows``: those,
    read already) that an earlier tunesmith found on weeks counted from Thursday 1970-01-01 (a
    window of whole weeks starting at Thursday 00:00 on its zone's clock); empty unless
    ``detector`` counts in whole weeks.

    Why: weeks now start on Monday, so the same surge comes out in a window three or four days
    away, with another id and beyond any cool-down: without this, the first `alerts` after the
    upgrade sent every stored week alert again."""
    if not bucket_origin(detector.bucket):
        return {}
    windows: dict[str, list[tuple[float, float]]] = {}
    for row in own_alerts(db, detector, by) if rows is None else rows:
        start, end = float(row["window_start"]), float(row["window_end"])
        wall = local_seconds(start, resolve_zone(row["tz"] or "UTC", "tz"))
        if (end - start) % WEEK == 0 and wall % WEEK == 0:
            windows.setdefault(row["key"], []).append((start, end))
    return windows


def _same_week_surge(detection: Detection, windows: list[tuple[float, float]], size: float) -> bool:
    """Whether ``detection`` is the surge of a Thursday-week alert found again: its window ends
    less than one bucket from that alert's (3 or 4 days for weeks; 4 or 10 for 14d buckets).
    Overlapping windows are not enough: with --window 3 a surge two weeks after the stored
    window still overlaps it, and was silenced."""
    return any(abs(detection.window_end - end) < size for _start, end in windows)


def run_alerts(
    db: Any,
    *,
    detector: Any = None,
    options: AlertOptions | None = None,
    model: Any = None,
    sinks: list[Any] | None = None,
    outbox: Any = None,
    until: float | None = None,
    on_alert: Callable[[dict[str, Any]], None] | None = None,
    counts: Iterable[tuple[str, int, int, int, float]] | None = None,
) -> list[dict[str, Any]]:
    """Detect, explain, store and send the alerts not stored yet; returns them in time order.

    First, stored alerts that no sink has been given yet are sent to ``sinks``
    (:func:`resend_unsent`). A new alert is stored first and then sent: a crash in between, or
    a run without sinks, leaves a stored alert whose ``event_id`` is empty, and the next run
    with sinks sends it under the same event id, once. The outbox is the finance database
    itself unless ``outbox`` names another, so ``tunesmith events list --outbox DB`` shows every
    delivery of its alerts. ``counts``: the bucket counts to detect over, as
    :func:`detect_all` takes them.
    """
    options = options or AlertOptions()
    zone = resolve_zone(options.tz, "--tz")
    sinks = resolve_sinks(sinks)
    resent = resend_unsent(db, sinks, outbox)
    if resent:
        print(
            f"tunesmith finance: sent {len(resent)} alert(s) stored earlier and not sent yet",
            file=sys.stderr,
        )
    if detector is None:
        detector = default_detector(db)
    seen = known_alert_ids(db)
    # The alerts of this look stored earlier: a window found again ends where one of theirs
    # does, inside its cool-down, also under the id it had before ids named the look.
    own = own_alerts(db, detector, options.by)
    stored_ends = stored_window_ends(db, detector, options.by, own)
    thursday_weeks = thursday_week_windows(db, detector, options.by, own)
    now = time.time()
    mutes = triage.mutes_of(db, options.by)
    new = []
    # The detector itself keeps out of the stored alerts' cool-downs (the same surge found a
    # bucket earlier or later by an earlier run): filtering its detections afterwards would let
    # a skipped one start a cool-down that silences the next surge.
    found = detect_all(
        db, detector, by=options.by, until=until, quiet=stored_ends, zone=zone, counts=counts
    )
    for detection in found:
        if alert_id(detector, options.by, detection) in seen:
            continue
        if _same_week_surge(detection, thursday_weeks.get(detection.key, []), detector.bucket):
            continue  # alerted already, in the week from Thursday it was found in
        alert = build_alert(db, detection, detector=detector, options=options, model=model)
        mute = triage.covering_mute(mutes, alert["kind"], alert["key"], alert["window_end"], now)
        if not store_alert(db, alert, None, mute):
            continue
        if mute is not None:
            # Stored (listed with --state muted; its cool-down holds, so the surge does not
            # page the desk once the mute ends) but no event, and not among the new alerts:
            # cron mails what `alerts` prints.
            _say_held(alert, mute)
            continue
        try:
            deliver_alert(db, alert, sinks, outbox)
        except Exception as exc:  # a sink problem must not lose the stored alert
            print(f"tunesmith finance: alert {alert['id']} not sent: {exc}", file=sys.stderr)
        # Not in the payload: set once it is sent, as `list_alerts` gives them.
        alert.setdefault("event_id", None)
        alert.setdefault("sent", False)
        new.append(alert)
        if on_alert is not None:
            on_alert(alert)
    return new


def _hold(db: Any, alert: dict[str, Any], mute: Any) -> None:
    """Hold a pending alert by ``mute``: it is not sent, now or later."""
    with db.transaction() as tx:
        unsent = tx.query(
            "SELECT 1 FROM finance_alerts WHERE id = ? AND event_id IS NULL", (alert["id"],)
        )
        if unsent:  # not sent by another run meanwhile
            triage.hold(tx, alert["id"], mute)
    _say_held(alert, mute)


def _say_held(alert: dict[str, Any], mute: Any) -> None:
    print(
        f"tunesmith finance: alert {alert['id']} on muted {alert['kind']} {alert['key']} stored, "
        f"not sent (muted by {mute.who} until {iso(mute.until)})",
        file=sys.stderr,
    )


def list_alerts(
    db: Any,
    *,
    key: str | None = None,
    kind: str | None = None,
    limit: int | None = None,
    unsent: bool = False,
    tz: str | None = None,
    outbox: Any = None,
    state: str = "all",
) -> list[dict[str, Any]]:
    """Stored alerts, newest window first; ``kind``: only those grouped by it (topic, ticker
    or all); ``unsent``: only those without an event id (see :func:`pending_alerts` for all
    that were never given to a sink). Each window is written in ``tz`` when given, else in the
    zone its buckets were cut in (``tz`` of the alert; UTC for alerts stored before it).

    ``sent`` says whether the alert was given to a sink: its event has a delivery in the
    outbox (``outbox``, default the finance database; delivered, being sent, or failed and kept
    for ``tunesmith events retry``). ``event_id`` is that event's id, None while pending: a
    database from earlier versions holds an event id for alerts found without a sink, which
    no sink ever had (they are sent by the next run with one).

    ``state`` (:data:`~tunesmith_finance.triage.LIST_STATES`): only the alerts in that state,
    each with ``state``, ``triage`` (its last mark) and ``muted`` (the mute that held it)."""
    shown = resolve_zone(tz, "--tz") if tz is not None else None
    sql = "SELECT * FROM finance_alerts"
    where: list[str] = []
    params: list[Any] = []
    if kind is not None:
        where.append("kind = ?")
        params.append(kind)
    if key is not None:
        where.append("key = ?")
        params.append(key)
    if unsent:  # a muted alert is never sent
        where.append(
            "event_id IS NULL AND id NOT IN "
            "(SELECT alert_id FROM finance_alert_marks WHERE mark = 'muted')"
        )
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY window_end DESC, key"
    if limit and state == "all":
        sql += f" LIMIT {int(limit)}"
    rows = db.query(sql, params)
    states = triage.alert_states(db, [row["id"] for row in rows])
    if state != "all":
        # The state is found from the marks, after the query: limited first, "the newest 5
        # open alerts" gave those of the newest 5 alerts that were open, often none.
        rows = [row for row in rows if states[row["id"]]["state"] == state][: limit or None]
    out = [_alert_from_row(row, shown) for row in rows]
    for alert in out:
        alert.update(states[alert["id"]])
    recorded = [a for a in out if a["event_id"]]
    delivered = _sent_events(recorded, db if outbox is None else outbox) if recorded else set()
    for alert in out:
        alert["sent"] = alert["event_id"] in delivered
        if not alert["sent"]:
            alert["event_id"] = None
    return out


def _alert_from_row(row: Any, shown: tzinfo | None = None) -> dict[str, Any]:
    """A stored alert as a dict, its window written in ``shown`` (default: its own zone)."""
    alert = {name: row[name] for name in row.keys()}  # noqa: SIM118 - sqlite3.Row
    alert["words"] = json.loads(alert["words"])
    alert["examples"] = json.loads(alert["examples"])
    # None for an alert stored before the settings were kept: which bucket found it is unknown.
    alert["settings"] = json.loads(alert["settings"]) if alert.get("settings") else None
    if alert["settings"]:
        alert["settings"] = _counted(alert["settings"])  # one stored as 20.0 before
    alert["tz"] = alert.get("tz") or "UTC"
    zone = shown if shown is not None else resolve_zone(alert["tz"], "tz")
    if shown is not None:
        alert["tz"] = zone_name(zone)
    alert["window"] = f"{iso(alert['window_start'], zone)}/{iso(alert['window_end'], zone)}"
    return alert
