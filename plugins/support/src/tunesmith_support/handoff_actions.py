"""Claim, release and reopen a hand-off as an agent asks for it, from the CLI, the API or the
demo, or read its history: the agent's name and note checked as a close checks them
(:func:`~tunesmith_support.service.checked_agent_note`), then the conversation log's
transaction (:meth:`~tunesmith_support.conversations.Conversations.claim_handoff` and the
others). None needs the KB's encoder or entries.
"""

from __future__ import annotations

from typing import Any

from tunesmith_support.conversations import Conversations
from tunesmith_support.refusals import Refusal
from tunesmith_support.service import MAX_ROW_ID, checked_agent_note


def _checked_turn(log: Conversations, turn_id: int) -> None:
    if not 0 < turn_id <= MAX_ROW_ID:
        raise Refusal("unknown_turn", f"no turn {turn_id} in {log.store.path}")


def claim(log: Conversations, turn_id: int, agent: str, *, force: bool = False) -> dict[str, Any]:
    """``agent`` claims the waiting hand-off of ``turn_id`` (and its conversation's earlier
    ones); another agent's claim only with ``force``."""
    _checked_turn(log, turn_id)
    agent, _ = checked_agent_note(agent, "")
    return log.claim_handoff(turn_id, agent, force=force)


def release(
    log: Conversations, turn_id: int, agent: str = "", *, force: bool = False
) -> dict[str, Any]:
    """Release ``agent``'s claim on the hand-off of ``turn_id``; another's with ``force``."""
    _checked_turn(log, turn_id)
    agent, _ = checked_agent_note(agent, "")
    return log.release_handoff(turn_id, agent, force=force)


def reopen(log: Conversations, turn_id: int, agent: str = "", note: str = "") -> dict[str, Any]:
    """Put the closed hand-off of ``turn_id`` back in the queue (``agent`` and ``note`` are
    logged with the closure it undoes)."""
    _checked_turn(log, turn_id)
    agent, note = checked_agent_note(agent, note)
    return log.reopen_handoff(turn_id, agent, note)


def history(log: Conversations, turn_id: int) -> dict[str, Any]:
    """The history of the hand-off of ``turn_id`` (:meth:`Conversations.handoff_history`):
    handed off, then who claimed, released, closed and reopened it, when, with what note."""
    _checked_turn(log, turn_id)
    return log.handoff_history(turn_id)
