"""One page of the hand-off queue: which stored turns its items stand for, in one statement.

Items are in the order of their *position*, the smallest turn id an item stands for: a
conversation's item (:func:`~tunesmith_support.handoff_groups.by_conversation`) by its first
waiting hand-off, a closed hand-off and a per-turn item by its own turn. A page holds the
items positioned ``after`` a turn id; a new hand-off has a larger id than any stored, so it
never moves a page already read: it lands on a later page, or joins its conversation's item
where that item stands. A page takes a conversation's waiting hand-offs whole, however many,
so its earlier questions are never cut off onto another page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

#: The items of a page when closed hand-offs are listed too (``all``) and no limit is given:
#: those grow without end. The waiting queue is whole unless a limit is given: an agent must
#: see everything that waits.
DEFAULT_LIMIT = 100

#: The most items one page holds.
MAX_LIMIT = 1000

# A waiting hand-off that stands for its conversation's item: the first one waiting.
_FIRST_WAITING = (
    "t.handoff_closed_at IS NULL AND NOT EXISTS (SELECT 1 FROM support_turns e WHERE "
    "e.conversation_id = t.conversation_id AND e.id < t.id AND e.decision = 'handoff' AND "
    "e.handoff_closed_at IS NULL)"
)
# A conversation made since: its newest waiting hand-off was (as the unpaged listing kept it).
_NEWEST_SINCE = (
    "(SELECT n.created_at FROM support_turns n WHERE n.conversation_id = t.conversation_id "
    "AND n.decision = 'handoff' AND n.handoff_closed_at IS NULL ORDER BY n.id DESC LIMIT 1) >= ?"
)


def position(item: dict[str, Any]) -> int:
    """Where ``item`` stands in the listing: the smallest turn id it stands for (its first
    waiting hand-off, else its own turn). The cursor for the page after it."""
    earlier = [e["turn_id"] for e in item.get("earlier_waiting") or []]
    return min([int(item["turn_id"]), *earlier])


def page_query(
    *,
    waiting_only: bool,
    since: datetime | None,
    per_turn: bool,
    after: int | None,
    limit: int | None,
) -> tuple[str, list[Any]]:
    """SQL and its parameters for the hand-off turns of one page, each row with ``page_key``
    (its item's :func:`position`), ordered by turn id: ``limit`` + 1 positions, so that the
    caller knows whether a next page exists; all of them without a limit. One statement, so
    a page is read as the database stood at one moment."""
    moment = None if since is None else since.isoformat(timespec="seconds")  # as turns store it
    fetch = -1 if limit is None else int(limit) + 1  # -1: no limit, in SQLite
    start = -1 if after is None else int(after)
    if per_turn:
        where = ["t.decision = 'handoff'", "t.id > ?"]
        params: list[Any] = [start]
        if waiting_only:
            where.append("t.handoff_closed_at IS NULL")
        if moment is not None:
            where.append("t.created_at >= ?")
            params.append(moment)
        sql = (
            f"SELECT t.*, t.id AS page_key FROM support_turns t WHERE {' AND '.join(where)} "
            "ORDER BY t.id LIMIT ?"
        )
        return sql, [*params, fetch]
    waiting = _FIRST_WAITING + ("" if moment is None else f" AND {_NEWEST_SINCE}")
    params = [start] + ([] if moment is None else [moment])
    if waiting_only:
        # Written so that the partial index of waiting hand-offs serves it.
        which = f"t.decision = 'handoff' AND t.handoff_closed_at IS NULL AND t.id > ? AND {waiting}"
    else:
        closed = "t.handoff_closed_at IS NOT NULL" + (
            "" if moment is None else " AND t.created_at >= ?"
        )
        which = f"t.decision = 'handoff' AND t.id > ? AND (({waiting}) OR ({closed}))"
        params += [] if moment is None else [moment]
    sql = (
        "WITH page AS (SELECT t.id, t.conversation_id, t.handoff_closed_at IS NULL AS waiting "
        f"FROM support_turns t WHERE {which} ORDER BY t.id LIMIT ?) "
        "SELECT s.*, p.id AS page_key FROM page p JOIN support_turns s ON s.id = p.id "
        "WHERE NOT p.waiting UNION ALL "
        "SELECT s.*, p.id AS page_key FROM page p JOIN support_turns s ON "
        "s.conversation_id = p.conversation_id AND s.decision = 'handoff' AND "
        "s.handoff_closed_at IS NULL WHERE p.waiting ORDER BY id"
    )
    return sql, [*params, fetch]


def cut(rows: list[Any], limit: int | None) -> tuple[list[Any], int | None]:
    """The rows of the first ``limit`` positions of :func:`page_query`'s, and the cursor of the
    next page (the last position kept), or None when nothing is left after them."""
    keys = sorted({int(row["page_key"]) for row in rows})
    if limit is None or len(keys) <= limit:
        return rows, None
    kept = set(keys[:limit])
    return [row for row in rows if int(row["page_key"]) in kept], keys[limit - 1]
