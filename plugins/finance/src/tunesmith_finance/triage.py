"""Triage of stored alerts: acknowledge one, mark it as noise (a false alert) or reopen it; mute
a key for a while; and the desk's noise figures over a period.

An alert's marks are a log (``finance_alert_marks``): its state is its last mark, so marking an
acknowledged alert as noise keeps who acknowledged it. A surge on a muted key is stored as a
**muted** alert (a ``muted`` mark naming the mute) and never sent: nothing is lost, and the same
surge does not page the desk once the mute has expired (its id is stored, its cool-down holds).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from tunesmith.errors import UserInputError

#: An alert's states: no mark yet, its last mark, or held by a mute (and not marked since).
STATES = ("open", "acknowledged", "noise", "muted")
#: What `finance alerts --list --state` takes.
LIST_STATES = (*STATES, "all")
#: The marks an analyst gives, by the flag that gives them.
MARKS = {"ack": "acknowledged", "noise": "noise", "reopen": "reopened"}
#: What each mark may follow (the alert's current state).
_ALLOWED = {
    "acknowledged": ("open", "muted"),
    "noise": ("open", "muted", "acknowledged"),
    "reopened": ("acknowledged", "noise"),
}
#: The flag an error tells the user to use, per mark.
_FLAG = {"acknowledged": "--ack", "noise": "--noise", "reopened": "--reopen"}


@dataclass(frozen=True)
class Mute:
    """A key muted from ``start`` until ``until`` (Unix seconds) by ``who``."""

    id: int
    kind: str
    key: str
    start: float
    until: float
    who: str
    note: str | None = None

    def covers(self, kind: str, key: str, window_end: float, now: float) -> bool:
        """Whether an alert of ``kind``/``key`` whose window ends at ``window_end``, found at
        ``now``, is held by this mute: found while it lasts, or its window ends inside it (late
        documents found after the mute ended)."""
        if (kind, key) != (self.kind, self.key):
            return False
        return self.start <= now < self.until or self.start <= window_end < self.until

    def to_dict(self) -> dict[str, Any]:
        """The mute as `--mutes --json` prints it: times in ISO 8601 (UTC) beside the seconds."""
        return {**asdict(self), "from": stamp(self.start), "to": stamp(self.until)}


def stamp(at: float | None = None) -> str:
    """When a mark is given (``at``, default now) as finance's JSON writes times in UTC:
    ``2026-11-05T13:00:00Z``, as a mute's ``from`` and ``to`` and an alert's window."""
    from tunesmith_finance.trends import iso

    return iso(time.time() if at is None else at)


def _as_stamp(text: str | None) -> str | None:
    """A stored mark's time as :func:`stamp` writes it: marks stored before it were written
    ``+00:00``, beside the ``Z`` of the mutes they name."""
    return text[: -len("+00:00")] + "Z" if text and text.endswith("+00:00") else text


def current_user() -> str:
    """Who marks or mutes by default: ``$TUNESMITH_AGENT`` (the name support's hand-off queue
    takes too, so one variable names a person across tunesmith), else the login name
    (``$USER``), else "unknown"."""
    import getpass

    from tunesmith.agent import env_agent

    named = env_agent()
    if named:
        return named
    try:
        return getpass.getuser() or "unknown"
    except (OSError, KeyError, ImportError):  # no login name in a container
        return "unknown"


def check_note(note: str | None) -> str | None:
    """A note as stored: stripped, None when blank; a note over 2,000 characters is refused."""
    if note is None or not note.strip():
        return None
    if len(note) > 2000:
        raise UserInputError(f"--note: {len(note)} characters; at most 2,000")
    return note.strip()


def resolve_alert_ids(db: Any, given: Iterable[str]) -> list[str]:
    """The stored alert ids for ids or unique prefixes as `finance alerts --list` shows them;
    an unknown or ambiguous one is one :class:`UserInputError` line."""
    found = []
    for text in given:
        wanted = text.strip().lower()
        rows = (
            db.query(
                "SELECT id FROM finance_alerts WHERE id >= ? AND id < ? ORDER BY id LIMIT 3",
                (wanted, wanted + "\U0010ffff"),
            )
            if wanted
            else []
        )
        exact = [r["id"] for r in rows if r["id"] == wanted]
        if exact or len(rows) == 1:
            found.append(exact[0] if exact else rows[0]["id"])
            continue
        if not rows:
            raise UserInputError(
                f"alert {text!r}: no such alert in this database "
                "(`finance alerts --list --state all` lists them)"
            )
        raise UserInputError(f"alert {text!r}: several alerts start with it; give more characters")
    return list(dict.fromkeys(found))


def alert_states(db: Any, ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """Per alert id (``ids``, or every stored alert): ``state`` and the facts behind it,
    ``triage`` (the last mark an analyst gave: ``mark``, ``by``, ``at``, ``note``; None when it
    has none or was reopened) and ``muted`` (the mute that held it, :meth:`Mute.to_dict`, or
    None). Reopened, a muted alert is muted again."""
    # The callers' ids were read from finance_alerts: only every alert needs reading here.
    alerts = (
        [r["id"] for r in db.query("SELECT id FROM finance_alerts")]
        if ids is None
        else list(dict.fromkeys(ids))
    )
    marks = {
        row["alert_id"]: row
        for row in db.query(
            "SELECT m.alert_id, m.mark, m.who, m.at, m.note FROM finance_alert_marks m "
            "WHERE m.id = (SELECT MAX(id) FROM finance_alert_marks "
            "WHERE alert_id = m.alert_id AND mark != 'muted')"
        )
    }
    used = "SELECT mute_id FROM finance_alert_marks WHERE mark = 'muted'"
    mutes = {m.id: m for m in _mutes(db, f"SELECT * FROM finance_mutes WHERE id IN ({used})")}
    held = {
        row["alert_id"]: mutes.get(row["mute_id"])
        for row in db.query(
            "SELECT alert_id, mute_id FROM finance_alert_marks WHERE mark = 'muted' ORDER BY id"
        )
    }
    out: dict[str, dict[str, Any]] = {}
    for alert_id in alerts:
        mark = marks.get(alert_id)
        mute = held.get(alert_id)
        triage = None
        if mark is not None and mark["mark"] != "reopened":
            triage = {
                "mark": mark["mark"],
                "by": mark["who"],
                "at": _as_stamp(mark["at"]),
                "note": mark["note"],
            }
        state = triage["mark"] if triage else "muted" if alert_id in held else "open"
        out[alert_id] = {
            "state": state,
            "triage": triage,
            "muted": mute.to_dict() if mute else None,
        }
    return out


def hold(tx: Any, alert_id: str, mute: Mute) -> None:
    """Record inside ``tx`` that ``mute`` holds the alert: it is muted, and never sent."""
    tx.execute(
        "INSERT INTO finance_alert_marks (alert_id, mark, who, at, note, mute_id) "
        "VALUES (?, 'muted', ?, ?, ?, ?)",
        (alert_id, mute.who, stamp(), mute.note, mute.id),
    )


def mark_alerts(
    db: Any, given: Iterable[str], mark: str, *, who: str | None = None, note: str | None = None
) -> list[str]:
    """Give ``mark`` (``acknowledged``, ``noise`` or ``reopened``) to the alerts ``given`` (ids
    or unique prefixes), all or none: one that cannot take it (acknowledged twice, reopened
    while open) is one :class:`UserInputError` line and nothing is written. Returns the ids."""
    if mark not in _ALLOWED:
        raise ValueError(f"unknown mark {mark!r}")
    who = (who or "").strip() or current_user()
    note = check_note(note)
    with db.transaction() as tx:
        ids = resolve_alert_ids(tx, given)
        states = alert_states(tx, ids)
        for alert_id in ids:
            _check_transition(alert_id, states[alert_id], mark)
        at = stamp()
        tx.executemany(
            "INSERT INTO finance_alert_marks (alert_id, mark, who, at, note) VALUES (?, ?, ?, ?, ?)",
            [(alert_id, mark, who, at, note) for alert_id in ids],
        )
    return ids


def mark_and_list(
    db: Any,
    given: Iterable[str],
    mark: str,
    *,
    who: str | None = None,
    note: str | None = None,
    tz: str | None = None,
) -> list[dict[str, Any]]:
    """:func:`mark_alerts`, then the alerts marked as `finance alerts --list --json` prints
    them (windows in ``tz``, by default each alert's own zone), newest window first."""
    from tunesmith_finance.alerts import list_alerts

    ids = set(mark_alerts(db, given, mark, who=who, note=note))
    return [a for a in list_alerts(db, tz=tz) if a["id"] in ids]


def _check_transition(alert_id: str, state: dict[str, Any], mark: str) -> None:
    current = state["state"]
    if current in _ALLOWED[mark]:
        return
    triage = state["triage"]
    done = f" (by {triage['by']} at {triage['at']})" if triage else ""
    if mark == "reopened":
        raise UserInputError(
            f"alert {alert_id} is {current}, not acknowledged or noise: nothing to reopen"
        )
    if current == mark:
        raise UserInputError(f"alert {alert_id} is {current} already{done}; nothing changed")
    raise UserInputError(
        f"alert {alert_id} is marked {current}{done}; `finance alerts --reopen {alert_id}` "
        f"first to mark it with {_FLAG[mark]}"
    )


# -- mutes -------------------------------------------------------------------------------------


def _mutes(db: Any, sql: str, params: Iterable[Any] = ()) -> list[Mute]:
    return [
        Mute(r["id"], r["kind"], r["key"], r["start"], r["until"], r["who"], r["note"])
        for r in db.query(sql, list(params))
    ]


def resolve_mute_key(db: Any, key: str, by: str | None) -> tuple[str, str]:
    """``(kind, key)`` of the key to mute as the store writes it: ``$TSLA`` or ``tsla`` with
    ``--by ticker`` is TSLA; without ``--by``, a ``$`` says ticker, else the kind the database
    holds the key in. One :class:`UserInputError` line when that is unclear."""
    from tunesmith_finance.trends import stored_key

    text = key.strip()
    if not text:
        raise UserInputError("--mute: give a topic or ticker, e.g. --mute '$TSLA' --for 2d")
    if by == "all":
        raise UserInputError("--mute: a topic or a ticker is muted, not --by all")
    if by is None and text.startswith("$"):
        by = "ticker"
    if by is not None:
        return by, stored_key(by, text)
    held = [
        kind
        for kind in ("topic", "ticker")
        if db.query(
            "SELECT 1 FROM finance_keys WHERE kind = ? AND key = ? LIMIT 1",
            (kind, stored_key(kind, text)),
        )
    ]
    if len(held) != 1:
        where = "is both a topic and a ticker" if held else "is no topic or ticker of this database"
        raise UserInputError(f"--mute {text!r}: {where}; say --by topic or --by ticker")
    return held[0], stored_key(held[0], text)


def active_mutes(db: Any, now: float | None = None) -> list[Mute]:
    """The mutes in force at ``now`` (default: now), soonest to end first."""
    now = time.time() if now is None else now
    return _mutes(
        db,
        "SELECT * FROM finance_mutes WHERE start <= ? AND until > ? ORDER BY until, kind, key",
        (now, now),
    )


def mutes_of(db: Any, kind: str) -> list[Mute]:
    """Every mute of ``kind`` ever set: a window found late may end inside an expired one."""
    return _mutes(db, "SELECT * FROM finance_mutes WHERE kind = ?", (kind,))


def covering_mute(
    mutes: Iterable[Mute], kind: str, key: str, window_end: float, now: float
) -> Mute | None:
    """The mute among ``mutes`` that holds an alert of ``kind``/``key`` (:meth:`Mute.covers`)."""
    return next((m for m in mutes if m.covers(kind, key, window_end, now)), None)


def mute_key(
    db: Any,
    kind: str,
    key: str,
    seconds: float,
    *,
    who: str | None = None,
    note: str | None = None,
    now: float | None = None,
) -> tuple[Mute, Mute | None]:
    """Mute ``kind``/``key`` for ``seconds`` from ``now``; returns the new mute and the one it
    replaced (a key muted again: the earlier mute ends now, kept for the alerts it held)."""
    now = time.time() if now is None else now
    who = (who or "").strip() or current_user()
    note = check_note(note)
    with db.transaction() as tx:
        before = _in_force(tx, kind, key, now)
        if before is not None:
            tx.execute("UPDATE finance_mutes SET until = ? WHERE id = ?", (now, before.id))
        made = tx.execute(
            "INSERT INTO finance_mutes (kind, key, start, until, who, note) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (kind, key, now, now + seconds, who, note),
        )
    return Mute(int(made.lastrowid), kind, key, now, now + seconds, who, note), before


def mute_record(mute: Mute, replaced: Mute | None) -> dict[str, Any]:
    """A new mute as `--mute --json` prints it: :meth:`Mute.to_dict` and ``replaced``, the
    mute of the key it ended (None when the key was not muted)."""
    return {**mute.to_dict(), "replaced": replaced.to_dict() if replaced else None}


def unmute_key(db: Any, kind: str, key: str, *, now: float | None = None) -> Mute:
    """End the mute of ``kind``/``key`` now; the ended mute. A key not muted is one
    :class:`UserInputError` line. Alerts it held stay muted (they were never sent)."""
    now = time.time() if now is None else now
    with db.transaction() as tx:
        held = _in_force(tx, kind, key, now)
        if held is None:
            raise UserInputError(f"--unmute: {kind} {key} is not muted (`--mutes` lists the mutes)")
        tx.execute("UPDATE finance_mutes SET until = ? WHERE id = ?", (now, held.id))
    return Mute(held.id, kind, key, held.start, now, held.who, held.note)


def _in_force(db: Any, kind: str, key: str, now: float) -> Mute | None:
    found = _mutes(
        db,
        "SELECT * FROM finance_mutes WHERE kind = ? AND key = ? AND start <= ? AND until > ? "
        "ORDER BY until DESC LIMIT 1",
        (kind, key, now, now),
    )
    return found[0] if found else None


# -- the desk's noise figures ------------------------------------------------------------------


def noise_report(
    db: Any, *, kind: str | None = None, since: float | None = None, until: float | None = None
) -> dict[str, Any]:
    """How many alerts whose window ends in ``[since, until)`` were noise, per key and overall:
    ``alerts``, ``open``, ``acknowledged``, ``noise``, ``muted``, ``noise_share`` (noise among
    the alerts triaged, acknowledged or noise: 1 minus the detector's precision on this stream;
    None while none is) and, overall, ``noise_per_day`` over the period (default: from the first
    stored document or alert to the last), the figure the alerts benchmark reports as false
    alerts per day. Keys with the most noise first."""
    from tunesmith_finance.trends import iso

    where, params = ["1 = 1"], []
    if kind is not None:
        where.append("kind = ?")
        params.append(kind)
    if since is not None:
        where.append("window_end >= ?")
        params.append(since)
    if until is not None:
        where.append("window_end < ?")
        params.append(until)
    rows = db.query(f"SELECT id, kind, key FROM finance_alerts WHERE {' AND '.join(where)}", params)
    states = alert_states(db, [r["id"] for r in rows])
    per_key: dict[tuple[str, str], dict[str, Any]] = {}
    overall = _tally()
    for row in rows:
        state = states[row["id"]]["state"]
        for tally in (per_key.setdefault((row["kind"], row["key"]), _tally()), overall):
            tally["alerts"] += 1
            tally[state] += 1
    low, high = _span(db, since, until)
    days = (high - low) / 86400 if low is not None and high is not None and high > low else None
    overall = _finish(overall)
    overall["noise_per_day"] = round(overall["noise"] / days, 4) if days else None
    keys = [{"kind": k, "key": key, **_finish(tally)} for (k, key), tally in per_key.items()]
    keys.sort(key=lambda t: (-t["noise"], -t["alerts"], t["kind"], t["key"]))
    return {
        "since": iso(low) if low is not None else None,
        "until": iso(high) if high is not None else None,
        "days": round(days, 3) if days else None,
        "overall": overall,
        "keys": keys,
    }


def _tally() -> dict[str, Any]:
    return {"alerts": 0, **dict.fromkeys(STATES, 0)}


def _finish(tally: dict[str, Any]) -> dict[str, Any]:
    triaged = tally["acknowledged"] + tally["noise"]
    tally["noise_share"] = round(tally["noise"] / triaged, 4) if triaged else None
    return tally


def _span(db: Any, since: float | None, until: float | None) -> tuple[float | None, float | None]:
    """The period of the report: the given ends, else the stored stream's (documents and
    alerts: a prune removes old documents but keeps every alert)."""
    row = db.query(
        "SELECT MIN(low) AS low, MAX(high) AS high FROM ("
        "SELECT MIN(ts) AS low, MAX(ts) AS high FROM finance_documents UNION ALL "
        "SELECT MIN(window_start), MAX(window_end) FROM finance_alerts)"
    )[0]
    return (row["low"] if since is None else since), (row["high"] if until is None else until)
