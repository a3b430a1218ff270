"""Alerts: surges found by the detector in the stored documents, explained, stored, and sent as
``finance.alert`` events through the core's sinks.

Each alert carries the words that most drove the negative scores in its window (the core's
aggregated explanations over the window's negative documents, most negative first, at most
``max_explain``) and the most negative example documents. An alert's id is derived from the
detector, the key and the window start, so running ``alerts`` again stores and sends nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tunesmith.events import Event, emit, make_sink
from tunesmith.explain.aggregate import aggregate_explanations
from tunesmith_finance import storage
from tunesmith_finance.detector import Detection, SurgeDetector
from tunesmith_finance.trends import bucket_counts, iso

EVENT_KIND = "finance.alert"


@dataclass
class AlertOptions:
    """What to group by and how much to explain."""

    by: str = "topic"
    max_explain: int = 100
    examples: int = 3
    words: int = 10


def global_negative_share(db: Any) -> float | None:
    """The negative share of every stored document (the detector's prior), or None if empty."""
    row = db.query("SELECT COUNT(*) AS n, SUM(label = 'negative') AS neg FROM finance_documents")[0]
    return (row["neg"] or 0) / row["n"] if row["n"] else None


def detect_all(
    db: Any,
    detector: Any,
    *,
    by: str,
    until: float | None = None,
    quiet: dict[str, list[float]] | None = None,
) -> list[Detection]:
    """Run the detector over every key's bucket counts (documents before ``until`` only);
    ``quiet``: per key, the window ends of alerts stored earlier, whose cool-downs the detector
    keeps out of (see ``SurgeDetector``)."""
    quiet = quiet or {}
    per_key: dict[str, list[tuple[int, int, int, float]]] = {}
    for key, b, n, neg, total in bucket_counts(db, by=by, bucket=detector.bucket, until=until):
        per_key.setdefault(key, []).append((b, n, neg, total))
    found: list[Detection] = []
    for key in sorted(per_key):
        found.extend(detector.detect(key, per_key[key], quiet=quiet.get(key, [])))
    found.sort(key=lambda d: (d.window_end, d.key))
    return found


def alert_id(detector: Any, by: str, detection: Detection) -> str:
    """Stable id of an alert: the same surge found again gets the same id."""
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
        "WHERE d.ts >= ? AND d.ts < ? ORDER BY d.score, d.id",
        (by, key, start, end),
    )


def explain_window(model: Any, texts: list[str], *, k: int = 10) -> list[dict[str, Any]]:
    """The words that most drove the negative label over ``texts``: of every member of an
    ensemble, whose mean scored them."""
    if model is None or not texts:
        return []

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
    """The alert record: the detector's figures, explaining words and example documents."""
    docs = window_documents(
        db, options.by, detection.key, detection.window_start, detection.window_end
    )
    negatives = [d for d in docs if d["label"] == "negative"][: options.max_explain]
    words = explain_window(model, [d["text"] for d in negatives], k=options.words)
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
        "window": f"{iso(detection.window_start)}/{iso(detection.window_end)}",
        "n": detection.n,
        "negatives": detection.negatives,
        "share": round(detection.share, 4),
        "baseline": round(detection.baseline, 4),
        "z": round(detection.z, 3),
        "p_value": detection.p_value,
        "mean_score": round(detection.mean_score, 4),
        "words": words,
        "explained": len(negatives),
        "examples": examples,
        "detector": detector.name,
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


def send_event(alert: dict[str, Any], sinks: list[Any], outbox: Any) -> str:
    """Send the alert as a ``finance.alert`` event through the core's outbox to ``sinks``;
    returns the event id. Failed deliveries stay in the outbox (``tunesmith events``)."""
    event = Event(
        kind=EVENT_KIND,
        message=alert_message(alert),
        payload=alert,
        source="finance",
        id=alert_event_id(alert["id"]),
    )
    emit(event, sinks, outbox=outbox)
    return event.id


def alert_event_id(alert_id: str) -> str:
    """The event id of an alert, the same every time it is sent: a re-send after a crash is
    the same event in the outbox, and a sink can tell a repeat by its id."""
    import uuid

    return uuid.uuid5(uuid.NAMESPACE_URL, f"tunesmith-finance-alert:{alert_id}").hex


def resend_unsent(db: Any, sinks: list[Any], outbox: Any = None) -> list[dict[str, Any]]:
    """Send again the stored alerts that have no event yet (a crash, or an outbox that could
    not be written, between storing an alert and sending it); returns those sent now."""
    sent = []
    for alert in list_alerts(db, unsent=True):
        try:
            event_id = send_event(alert, sinks, db if outbox is None else outbox)
        except Exception as exc:
            print(f"tunesmith finance: alert {alert['id']} not sent: {exc}", file=sys.stderr)
            continue
        db.execute("UPDATE finance_alerts SET event_id = ? WHERE id = ?", (event_id, alert["id"]))
        alert["event_id"] = event_id
        sent.append(alert)
    return sent


def store_alert(db: Any, alert: dict[str, Any], event_id: str | None) -> bool:
    """Store an alert; False when one with the same id is stored already."""
    result = db.execute(
        "INSERT OR IGNORE INTO finance_alerts (id, kind, key, window_start, window_end, n, "
        "negatives, share, baseline, z, p_value, mean_score, words, examples, detector, "
        "created_at, event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        ),
    )
    return result.rowcount == 1


def stored_window_ends(db: Any, detector: Any, by: str) -> dict[str, list[float]]:
    """Window ends of the stored alerts of ``detector`` per key: the cool-down holds across
    runs, not only within the detector's own pass over the series."""
    ends: dict[str, list[float]] = {}
    for row in db.query(
        "SELECT key, window_end FROM finance_alerts WHERE kind = ? AND detector = ?",
        (by, detector.name),
    ):
        ends.setdefault(row["key"], []).append(float(row["window_end"]))
    return ends


def known_alert_ids(db: Any) -> set[str]:
    return {r["id"] for r in db.query("SELECT id FROM finance_alerts")}


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
) -> list[dict[str, Any]]:
    """Detect, explain, store and send the alerts not stored yet; returns them in time order.

    The alert is stored first and then sent: a crash in between leaves a stored alert whose
    ``event_id`` is empty, and the next run sends it (:func:`resend_unsent`) under the same
    event id. The outbox is the finance database itself unless ``outbox`` names another, so
    ``tunesmith events list --outbox DB`` shows every delivery of its alerts.
    """
    options = options or AlertOptions()
    sinks = resolve_sinks(sinks)
    resent = resend_unsent(db, sinks, outbox)
    if resent:
        print(
            f"tunesmith finance: sent {len(resent)} alert(s) stored earlier without an event",
            file=sys.stderr,
        )
    if detector is None:
        prior = global_negative_share(db)
        detector = SurgeDetector(prior=prior if prior is not None else 0.2)
    seen = known_alert_ids(db)
    stored_ends = stored_window_ends(db, detector, options.by)
    new = []
    # The detector itself keeps out of the stored alerts' cool-downs (the same surge found a
    # bucket earlier or later by an earlier run): filtering its detections afterwards would let
    # a skipped one start a cool-down that silences the next surge.
    for detection in detect_all(db, detector, by=options.by, until=until, quiet=stored_ends):
        if alert_id(detector, options.by, detection) in seen:
            continue
        alert = build_alert(db, detection, detector=detector, options=options, model=model)
        if not store_alert(db, alert, None):
            continue
        try:
            event_id = send_event(alert, sinks, db if outbox is None else outbox)
        except Exception as exc:  # a sink problem must not lose the stored alert
            print(f"tunesmith finance: alert {alert['id']} not sent: {exc}", file=sys.stderr)
            event_id = None
        alert["event_id"] = event_id
        if event_id is not None:
            db.execute(
                "UPDATE finance_alerts SET event_id = ? WHERE id = ?", (event_id, alert["id"])
            )
        new.append(alert)
        if on_alert is not None:
            on_alert(alert)
    return new


def list_alerts(
    db: Any, *, key: str | None = None, limit: int | None = None, unsent: bool = False
) -> list[dict[str, Any]]:
    """Stored alerts, newest window first; ``unsent``: only those without an event."""
    sql = "SELECT * FROM finance_alerts"
    where: list[str] = []
    params: list[Any] = []
    if key is not None:
        where.append("key = ?")
        params.append(key)
    if unsent:
        where.append("event_id IS NULL")
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY window_end DESC, key"
    if limit:
        sql += f" LIMIT {int(limit)}"
    out = []
    for row in db.query(sql, params):
        alert = {name: row[name] for name in row.keys()}  # noqa: SIM118 - sqlite3.Row
        alert["words"] = json.loads(alert["words"])
        alert["examples"] = json.loads(alert["examples"])
        alert["window"] = f"{iso(alert['window_start'])}/{iso(alert['window_end'])}"
        out.append(alert)
    return out
