"""The hand-off queue one item per conversation: a customer who asked three times waits as one
customer, not three items that three agents could each answer.

Pure functions on the queue's items (:func:`~tunesmith_support.conversations.handoff_row`, each standing for its own turn):
the waiting hand-offs of a conversation become its newest one, with how many wait, the earlier
questions (their turn ids, to close one on its own) and since when the customer has waited.
Closed hand-offs stay one item per turn: each closure is a record of its own.
"""

from __future__ import annotations

from typing import Any


def earlier_question(item: dict[str, Any]) -> dict[str, Any]:
    """An earlier waiting hand-off as its conversation's item lists it."""
    keys = ("turn_id", "created_at", "question", "reason", "claimed_by")
    return {key: item[key] for key in keys}


def by_conversation(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The waiting ``items`` (oldest first) of each conversation as one, its newest; closed
    ones as they are. Ordered by the time each customer has waited: a conversation by its
    first waiting hand-off, a closed one by its own. An item's claim is its own, else the
    newest claim among the earlier ones (a hand-off made after the claim is the claimer's)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    out: list[tuple[int, dict[str, Any]]] = []
    for item in items:
        if item["status"] == "waiting":
            groups.setdefault(item["conversation_id"], []).append(item)
        else:
            out.append((item["turn_id"], item))
    for waiting in groups.values():
        newest, earlier = waiting[-1], waiting[:-1]
        grouped = {
            **newest,
            "waiting_turns": len(waiting),
            "earlier_waiting": [earlier_question(item) for item in earlier],
            "waiting_since": waiting[0]["created_at"],
        }
        if not newest["claimed_by"]:
            held = [item for item in earlier if item["claimed_by"]]
            if held:
                grouped["claimed_by"] = held[-1]["claimed_by"]
                grouped["claimed_at"] = held[-1]["claimed_at"]
        out.append((waiting[0]["turn_id"], grouped))
    return [item for _, item in sorted(out, key=lambda pair: pair[0])]
