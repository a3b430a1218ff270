"""Who works a hand-off: claims, releases and reopenings, inside the conversation log's write
transaction (:class:`~tunesmith_support.conversations.Conversations` calls these).

A hand-off is claimed with the hand-offs its conversation made before it and that still wait
(:func:`scope`): a customer who asked three times is one customer, and the agent answering the
newest question answers the earlier ones too. A claim by another agent refuses a claim, a
release and a close (``handoff_claimed``) unless forced. Every change is a row of
``support_handoff_log``, so a closure a reopening undid, or a claim taken over, is still on
record.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tunesmith_support.refusals import Refusal

#: SQL: a hand-off still waiting for a person.
WAITING = "decision = 'handoff' AND handoff_closed_at IS NULL"


def now() -> str:
    """A stored timestamp, as turns store theirs."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def ago(stamp: str | None) -> str:
    """How long ago a stored timestamp was, in a few characters ("12m ago")."""
    if not stamp:
        return ""
    seconds = int((datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds())
    minutes, hours = max(0, seconds) // 60, max(0, seconds) // 3600
    if minutes < 1:
        return "just now"
    if hours < 1:
        return f"{minutes}m ago"
    return f"{hours}h {minutes % 60:02d}m ago" if hours < 24 else f"{hours // 24}d ago"


def log_action(tx: Any, turn_id: int, action: str, agent: str, **detail: Any) -> None:
    """Keep one change of a hand-off (``claim``, ``release``, ``close``, ``reopen``)."""
    tx.execute(
        "INSERT INTO support_handoff_log (turn_id, at, action, agent, detail) "
        "VALUES (?, ?, ?, ?, ?)",
        (int(turn_id), now(), action, agent, json.dumps(detail, ensure_ascii=False)),
    )


def the_handoff(tx: Any, turn_id: int, path: Any) -> Any:
    """Turn ``turn_id``'s row, refused unless it exists and was handed off."""
    rows = tx.query("SELECT * FROM support_turns WHERE id = ?", (int(turn_id),))
    if not rows:
        raise Refusal("unknown_turn", f"no turn {turn_id} in {path}")
    if rows[0]["decision"] != "handoff":
        raise Refusal(
            "not_a_handoff",
            f"turn {turn_id} was not handed off (its decision: {rows[0]['decision']}); "
            "rate it with feedback instead",
        )
    return rows[0]


def scope(tx: Any, turn: Any, with_earlier: bool = True) -> list[Any]:
    """The waiting hand-offs an action on ``turn`` covers, oldest first: its conversation's
    earlier ones (``with_earlier``), then the turn itself."""
    earlier = []
    if with_earlier:
        earlier = tx.query(
            f"SELECT * FROM support_turns WHERE conversation_id = ? AND id < ? AND {WAITING} "
            "ORDER BY id",
            (turn["conversation_id"], turn["id"]),
        )
    return [*earlier, turn]


def claimed_words(turn_id: int, row: Any) -> str:
    """Who holds a hand-off: "turn 3's hand-off is claimed by alice since ... (12m ago)"."""
    which = f"turn {turn_id}'s hand-off" if row["id"] == turn_id else (
        f"turn {row['id']}, an earlier hand-off of turn {turn_id}'s conversation,"
    )  # fmt: skip
    since = row["handoff_claimed_at"]
    return f"{which} is claimed by {row['handoff_claimed_by']} since {since} ({ago(since)})"


def check_not_held(turn_id: int, rows: list[Any], agent: str, force: bool, doing: str) -> None:
    """Refuse (``handoff_claimed``) when another agent holds one of ``rows``, unless
    ``force``; ``doing`` names what was refused ("close it")."""
    if force:
        return
    for row in reversed(rows):  # the turn itself first
        holder = row["handoff_claimed_by"]
        if holder and holder != agent:
            hint = f"--force to {doing} anyway"
            if not agent:
                hint = f"--agent {holder} if you are {holder}, or {hint}"
            raise Refusal(
                "handoff_claimed", f"{claimed_words(turn_id, row)}; nothing was changed ({hint})"
            )


def refuse_closed(turn_id: int, turn: Any, closure: str, doing: str) -> None:
    """Refuse (``handoff_closed``) an action on a closed hand-off; ``closure`` says how it
    was closed (:func:`~tunesmith_support.conversations.closure_words`)."""
    raise Refusal(
        "handoff_closed",
        f"turn {turn_id}'s hand-off was {closure} at {turn['handoff_closed_at']} already; "
        f"nothing was changed (reopen it to {doing})",
    )


def claim(tx: Any, turn: Any, agent: str, force: bool) -> None:
    """Claim ``turn`` (a waiting hand-off) and its conversation's earlier waiting ones for
    ``agent``; a claim by another is refused unless ``force`` (the log says whose it was)."""
    if not agent:
        raise Refusal("bad_request", "a claim needs the agent's name (--agent NAME)")
    rows = scope(tx, turn)
    check_not_held(turn["id"], rows, agent, force, "take it over")
    stamp = now()
    for row in rows:
        if row["handoff_claimed_by"] == agent:
            continue  # claimed by them already: their first claim's time stays
        tx.execute(
            "UPDATE support_turns SET handoff_claimed_by = ?, handoff_claimed_at = ? WHERE id = ?",
            (agent, stamp, row["id"]),
        )
        log_action(tx, row["id"], "claim", agent, taken_from=row["handoff_claimed_by"])


def inherit(tx: Any, turn_id: int) -> str | None:
    """A new hand-off ``turn_id`` of a conversation an agent has claimed is theirs too (the
    claim of its newest waiting hand-off that has one, as the grouped queue shows it): stored
    unclaimed, anyone could close it alone, and an agent's feedback did, under the claimer's
    nose. Logged as a claim ``with_turn`` that hand-off. Returns who holds it now."""
    held = tx.query(
        "SELECT h.id, h.handoff_claimed_by, h.handoff_claimed_at FROM support_turns t "
        "JOIN support_turns h ON h.conversation_id = t.conversation_id AND h.id < t.id AND h.decision = 'handoff' "
        "AND h.handoff_closed_at IS NULL AND h.handoff_claimed_by IS NOT NULL "
        "WHERE t.id = ? ORDER BY h.id DESC LIMIT 1",
        (int(turn_id),),
    )
    if not held:
        return None
    agent = held[0]["handoff_claimed_by"]
    # Since their claim: the customer has been theirs since then, and the queue says so.
    tx.execute(
        "UPDATE support_turns SET handoff_claimed_by = ?, handoff_claimed_at = ? WHERE id = ?",
        (agent, held[0]["handoff_claimed_at"], int(turn_id)),
    )
    log_action(tx, turn_id, "claim", agent, taken_from=None, with_turn=int(held[0]["id"]))
    return str(agent)


def release(tx: Any, turn: Any, agent: str, force: bool) -> None:
    """Release the claims on ``turn`` and its conversation's earlier waiting hand-offs;
    another agent's claim only with ``force``."""
    rows = scope(tx, turn)
    check_not_held(turn["id"], rows, agent, force, "release it")
    for row in rows:
        if row["handoff_claimed_by"] is None:
            continue
        tx.execute(
            "UPDATE support_turns SET handoff_claimed_by = NULL, handoff_claimed_at = NULL "
            "WHERE id = ?",
            (row["id"],),
        )
        log_action(tx, row["id"], "release", agent, held_by=row["handoff_claimed_by"])


def reopen(tx: Any, turn: Any, agent: str, note: str) -> list[int]:
    """Put a closed hand-off back in the queue, unclaimed, with the ones closed with it (its
    conversation's earlier hand-offs); returns their turn ids. Its closure is kept in the log,
    and the agent's entry (a training row) is withdrawn: the feedback row stays, marked, and
    the next close stores its own."""
    turn_id = int(turn["id"])
    if turn["handoff_closed_at"] is None:
        held = f" (claimed by {turn['handoff_claimed_by']})" if turn["handoff_claimed_by"] else ""
        raise Refusal(
            "handoff_waiting",
            f"turn {turn_id}'s hand-off is waiting already{held}; nothing to reopen",
        )
    rows = [
        turn,
        *tx.query(
            "SELECT * FROM support_turns WHERE handoff_closed_with = ? AND decision = 'handoff' "
            "AND handoff_closed_at IS NOT NULL ORDER BY id",
            (turn_id,),
        ),
    ]
    stamp = now()
    for row in rows:
        if row["handoff_entry"]:
            tx.execute(
                "UPDATE support_feedback SET withdrawn_at = ? WHERE turn_id = ? AND "
                "correct_id = ? AND withdrawn_at IS NULL",
                (stamp, row["id"], row["handoff_entry"]),
            )
        tx.execute(
            "UPDATE support_turns SET handoff_closed_at = NULL, handoff_outcome = NULL, "
            "handoff_entry = NULL, handoff_agent = '', handoff_note = '', "
            "handoff_closed_with = NULL, handoff_claimed_by = NULL, handoff_claimed_at = NULL "
            "WHERE id = ?",
            (row["id"],),
        )
        log_action(
            tx, row["id"], "reopen", agent, note=note,
            closed={key: row[f"handoff_{key}"] for key in (
                "closed_at", "outcome", "entry", "agent", "note", "closed_with", "claimed_by")},
        )  # fmt: skip
    return sorted(int(row["id"]) for row in rows)
