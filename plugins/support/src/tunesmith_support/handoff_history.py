"""A hand-off's history, read from ``support_handoff_log``: when it was handed off, then every
claim, release, close and reopening, oldest first, with who and what note.

The rows are read by :meth:`~tunesmith_support.conversations.Conversations.handoff_history`;
this module turns them into the entries the CLI (``handoffs --history``), the API
(``GET /v1/handoffs/{turn_id}/history``) and the demo show, and into words for a person.
"""

from __future__ import annotations

import json
from typing import Any

#: What a history entry's ``action`` may be: ``handoff`` (the bot handed it off) first, then
#: the agents' actions as logged.
ACTIONS = ("handoff", "claim", "release", "close", "reopen")

#: Every key each action's ``detail`` has, and its value when the log row lacks it: a close
#: logged by ``support feedback --correct-id`` had no ``forced`` or ``closed_with``, one logged
#: by the migration no ``forced`` either, and a claim ``with_turn`` only when inherited, so a
#: helpdesk reading ``detail["forced"]`` failed on some rows.
DETAIL_KEYS: dict[str, dict[str, Any]] = {
    "handoff": {"reason": ""},
    "claim": {"taken_from": None, "with_turn": None},
    "release": {"held_by": None},
    "close": {"outcome": None, "entry": None, "note": "", "forced": False, "closed_with": None},
    "reopen": {"note": "", "closed": {}},
}


def entries(turn: Any, rows: list[Any]) -> list[dict[str, Any]]:
    """The history of hand-off ``turn`` (its stored row) from its log ``rows`` (oldest
    first): ``{"at", "action", "agent", "detail"}`` each, the hand-off itself first. A close
    logged without its note (before notes were logged) takes the one the turn still holds
    when it is that closure."""
    out = [
        {
            "at": turn["created_at"],
            "action": "handoff",
            "agent": "",
            "detail": {"reason": turn["reason"]},
        }
    ]
    for row in rows:
        out.append(
            {
                "at": row["at"],
                "action": row["action"],
                "agent": row["agent"],
                "detail": json.loads(row["detail"] or "{}"),
            }
        )
    closes = [e for e in out if e["action"] == "close"]
    if turn["handoff_closed_at"] is not None and closes and out[-1] is closes[-1]:
        closes[-1]["detail"].setdefault("note", turn["handoff_note"])
    for entry in out:
        entry["detail"] = {**DETAIL_KEYS.get(entry["action"], {}), **entry["detail"]}
    return out


def one_line(text: Any) -> str:
    """``text`` on one line: a note may hold line breaks, and shown as they are, "ok\\n
    2026-12-08T00:27:00+00:00  reopened by alice" added a line to ``--history`` that nobody's
    action made."""
    return " ⏎ ".join(line.strip() for line in str(text).splitlines())


def _closure(detail: dict[str, Any]) -> str:
    outcome = detail.get("outcome")
    if outcome == "resolved":
        return f"resolved with {detail.get('entry')!r}"
    if outcome == "superseded":
        later = detail.get("closed_with")
        return "superseded by a later hand-off" + (f" (turn {later})" if later else "")
    return "no entry (a gap in the knowledge base)"


def entry_words(entry: dict[str, Any]) -> str:
    """One history entry in words, to follow its time: "claimed by alice (taken over from
    bob)", "closed by alice: resolved with 'war-03', note: sent the form"."""
    action, agent, detail = entry["action"], one_line(entry["agent"]), entry["detail"]
    by = f" by {agent}" if agent else ""
    if action == "handoff":
        return f"handed off ({detail.get('reason') or 'no reason'})"
    if action == "claim":
        if detail.get("with_turn"):
            return f"claimed{by}, who held turn {detail['with_turn']} of this conversation"
        taken = detail.get("taken_from")
        return f"claimed{by}" + (f" (taken over from {one_line(taken)})" if taken else "")
    if action == "release":
        held = detail.get("held_by")
        return f"released{by}" + (f" ({one_line(held)}'s claim)" if held and held != agent else "")
    note = f", note: {one_line(detail['note'])}" if detail.get("note") else ""
    if action == "close":
        forced = " over another agent's claim" if detail.get("forced") else ""
        return f"closed{by}{forced}: {_closure(detail)}{note}"
    if action == "reopen":
        closed = detail.get("closed") or {}
        undone = _closure(closed) + (
            f" by {one_line(closed['agent'])}" if closed.get("agent") else ""
        )
        return f"reopened{by}{note} (closure undone: {undone})"
    return f"{action}{by}"
