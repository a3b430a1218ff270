"""Conversations in the core store: turns, decisions, hand-offs and feedback.

Tables live in the ``support`` namespace of a :class:`tunesmith.store.Store` file (by default
``KB/conversations.sqlite``; hand-off events share the file as their outbox). Feedback becomes
training data for the next `support train` through :meth:`Conversations.export_feedback`.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.io import atomic_write_text, check_parents
from tunesmith.store import DEFAULT_TIMEOUT, Store
from tunesmith_support.handoff_claims import (
    check_not_held,
    claim,
    inherit,
    log_action,
    refuse_closed,
    release,
    reopen,
    scope,
    the_handoff,
)
from tunesmith_support.handoff_groups import by_conversation
from tunesmith_support.handoff_pages import MAX_LIMIT, cut, page_query
from tunesmith_support.refusals import Refusal

NAMESPACE = "support"

#: The most feedback one turn keeps. The newest decides anyway; without a limit one client
#: could write rating after rating (each with a 10,000-character note) on a turn of its own
#: until the disk was full.
MAX_FEEDBACK_PER_TURN = 20

MIGRATIONS = [
    """
    CREATE TABLE support_conversations (
        id TEXT PRIMARY KEY,
        started_at TEXT NOT NULL,
        channel TEXT NOT NULL DEFAULT 'cli'
    );
    CREATE TABLE support_turns (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id TEXT NOT NULL REFERENCES support_conversations(id),
        created_at TEXT NOT NULL,
        question TEXT NOT NULL,
        query TEXT NOT NULL,
        decision TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        confidence REAL NOT NULL,
        entry_id TEXT,
        answer TEXT NOT NULL DEFAULT '',
        candidates TEXT NOT NULL DEFAULT '[]',
        handoff_event TEXT
    );
    CREATE INDEX support_turns_by_conversation ON support_turns(conversation_id, id);
    CREATE TABLE support_feedback (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        turn_id INTEGER NOT NULL REFERENCES support_turns(id),
        created_at TEXT NOT NULL,
        helpful INTEGER,
        correct_id TEXT,
        note TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX support_feedback_by_turn ON support_feedback(turn_id);
    """,
    # A clarifying question's options (entry ids, as numbered), so that the customer's reply
    # "2" picks the second.
    "ALTER TABLE support_turns ADD COLUMN options TEXT NOT NULL DEFAULT '[]';",
    # An API request's key (its client's request_id, with the conversation and question it
    # came with) and the response it got, so that a request sent again gets that response back
    # instead of a second turn: a retried "2" after a clarifying question was searched as a
    # question and handed off, and a retried "talk to a person" handed off twice.
    """
    ALTER TABLE support_turns ADD COLUMN request_key TEXT;
    ALTER TABLE support_turns ADD COLUMN response TEXT;
    CREATE UNIQUE INDEX support_turns_by_request ON support_turns(request_key)
        WHERE request_key IS NOT NULL;
    """,
    # A feedback request's key (:func:`feedback_request_key`) and the feedback id it was
    # answered with, so that a retry that arrives after other feedback on the turn gets that id
    # back: compared with the turn's newest feedback only, it was stored again and became the
    # newest rating. A table of its own, as several requests may be answered with one row (the
    # same rating as the newest is stored once).
    """
    CREATE TABLE support_feedback_requests (
        request_key TEXT PRIMARY KEY,
        feedback_id INTEGER NOT NULL REFERENCES support_feedback(id),
        created_at TEXT NOT NULL
    );
    """,
    # A hand-off's closure by a person: when, how (``resolved`` with an entry, or
    # ``no_answer``: the KB has none, a gap `stats` counts), the entry, the agent and a note.
    # Hand-offs an agent already named an entry for (`feedback --correct-id`, the only way
    # before) are closed as resolved, so that the queue starts with the ones still waiting.
    """
    ALTER TABLE support_turns ADD COLUMN handoff_closed_at TEXT;
    ALTER TABLE support_turns ADD COLUMN handoff_outcome TEXT;
    ALTER TABLE support_turns ADD COLUMN handoff_entry TEXT;
    ALTER TABLE support_turns ADD COLUMN handoff_agent TEXT NOT NULL DEFAULT '';
    ALTER TABLE support_turns ADD COLUMN handoff_note TEXT NOT NULL DEFAULT '';
    UPDATE support_turns SET handoff_outcome = 'resolved',
        handoff_closed_at = (SELECT f.created_at FROM support_feedback f
            WHERE f.turn_id = support_turns.id AND f.correct_id IS NOT NULL
            ORDER BY f.id DESC LIMIT 1),
        handoff_entry = (SELECT f.correct_id FROM support_feedback f
            WHERE f.turn_id = support_turns.id AND f.correct_id IS NOT NULL
            ORDER BY f.id DESC LIMIT 1)
        WHERE decision = 'handoff' AND EXISTS (SELECT 1 FROM support_feedback f
            WHERE f.turn_id = support_turns.id AND f.correct_id IS NOT NULL);
    CREATE INDEX support_turns_open_handoffs ON support_turns(id)
        WHERE decision = 'handoff' AND handoff_closed_at IS NULL;
    """,
    # A team works the queue (handoff_claims.py): who claimed a hand-off and since when; a
    # hand-off closed with a later one of its conversation (``superseded``, closed_with that
    # turn); feedback a reopening withdrew (kept, no longer a training row); and a log of every
    # claim, release, close and reopening. The closures made before are logged as they stand.
    """
    ALTER TABLE support_turns ADD COLUMN handoff_claimed_by TEXT;
    ALTER TABLE support_turns ADD COLUMN handoff_claimed_at TEXT;
    ALTER TABLE support_turns ADD COLUMN handoff_closed_with INTEGER;
    ALTER TABLE support_feedback ADD COLUMN withdrawn_at TEXT;
    CREATE TABLE support_handoff_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        turn_id INTEGER NOT NULL REFERENCES support_turns(id),
        at TEXT NOT NULL,
        action TEXT NOT NULL,
        agent TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX support_handoff_log_by_turn ON support_handoff_log(turn_id, id);
    INSERT INTO support_handoff_log (turn_id, at, action, agent, detail)
        SELECT id, handoff_closed_at, 'close', handoff_agent, json_object('outcome',
            handoff_outcome, 'entry', handoff_entry, 'note', handoff_note)
        FROM support_turns WHERE decision = 'handoff' AND handoff_closed_at IS NOT NULL
        ORDER BY handoff_closed_at, id;
    CREATE INDEX support_turns_waiting_by_conversation ON support_turns(conversation_id, id)
        WHERE decision = 'handoff' AND handoff_closed_at IS NULL;
    """,
]

#: How a hand-off is closed: with the entry that answers it, with none (a gap in the KB), or
#: with a later hand-off of its conversation that a person closed (``superseded``).
HANDOFF_OUTCOMES = ("resolved", "no_answer", "superseded")

#: The earlier turns a queued hand-off shows, as its event carries (service.HANDOFF_TURNS).
QUEUE_TURNS = 20


def request_key(request_id: str, conversation_id: str | None, question: str) -> str:
    """The stored key of an API request: its client's ``request_id`` with the conversation it
    named (None for a first question) and its question, so that an id a client reuses for
    another question, or in another conversation, is another request."""
    import hashlib

    text = json.dumps([request_id, conversation_id, question], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def feedback_request_key(
    request_id: str,
    turn_id: int,
    conversation_id: str | None,
    helpful: bool | None,
    correct_id: str | None,
    note: str,
) -> str:
    """The stored key of a feedback request: its client's ``request_id`` with everything it
    said, so that an id a client reuses for other feedback, or another turn, is another
    request (as :func:`request_key` is for a question)."""
    import hashlib

    fields = ["feedback", request_id, turn_id, conversation_id, helpful, correct_id or None, note]
    text = json.dumps(fields, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _current_id(column: str) -> str:
    """SQL: ``column``'s entry id as the KB names it now (``:renamed``, a JSON object of old id
    -> new id)."""
    return f"COALESCE((SELECT value FROM json_each(:renamed) WHERE key = {column}), {column})"


#: SQL: feedback row ``f`` names as its correct id the entry its turn ``t`` answered with. Such
#: a row is stored as "helpful" now (:meth:`Conversations.add_feedback`), but older ones were
#: stored as corrections, and are read as what they say: the answer was right.
CONFIRMS_ANSWER = (
    "(t.decision = 'answer' AND f.correct_id IS NOT NULL AND "
    f"{_current_id('f.correct_id')} = {_current_id('t.entry_id')})"
)


def confirms_answer(row: dict[str, Any], renamed: dict[str, str] | None = None) -> bool:
    """Whether a :meth:`Conversations.feedback` row's correct id is the entry its turn
    answered with (:data:`CONFIRMS_ANSWER`, in Python)."""
    renamed = renamed or {}
    correct, answered = row["correct_id"], row["entry_id"]
    return bool(
        correct
        and answered
        and row["decision"] == "answer"
        and renamed.get(correct, correct) == renamed.get(answered, answered)
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def period_of(created_at: str, by: str) -> str:
    """The stats period of a stored timestamp: ``2025-01-31``, ``2025-W05`` (ISO week) or
    ``2025-01``."""
    if by == "day":
        return created_at[:10]
    if by == "month":
        return created_at[:7]
    year, week, _day = datetime.fromisoformat(created_at[:10]).isocalendar()
    return f"{year}-W{week:02d}"


def check_period(by: str) -> None:
    """Refuse a stats period other than day, week or month."""
    if by not in ("day", "week", "month"):
        raise UserInputError(f"--by must be day, week or month, got {by!r}")


def handoff_row(row: Any, earlier: list[dict[str, Any]], count: int) -> dict[str, Any]:
    """A stored hand-off turn ``row`` as the queue shows it: ``status`` (``waiting``,
    ``resolved``, ``no_answer`` or ``superseded``), ``waited_seconds`` (until now, or until it
    was closed), the earlier turns of its conversation, who claimed it and how it was
    closed."""
    created = datetime.fromisoformat(row["created_at"])
    closed_at = row["handoff_closed_at"]
    until = datetime.fromisoformat(closed_at) if closed_at else datetime.now(UTC)
    return {
        "turn_id": int(row["id"]),
        "conversation_id": row["conversation_id"],
        "event_id": row["handoff_event"],
        "created_at": row["created_at"],
        "waited_seconds": max(0, int((until - created).total_seconds())),
        "status": row["handoff_outcome"] or "waiting",
        "question": row["question"],
        "reason": row["reason"],
        "confidence": round(float(row["confidence"]), 4),
        "candidates": json.loads(row["candidates"]),
        "conversation": earlier,
        "earlier_turns": count,
        "closed_at": closed_at,
        "entry_id": row["handoff_entry"],
        "agent": row["handoff_agent"],
        "note": row["handoff_note"],
        "closed_with": row["handoff_closed_with"],
        "claimed_by": row["handoff_claimed_by"],
        "claimed_at": row["handoff_claimed_at"],
        # As one item stands for one turn; the queue's per-conversation item says more
        # (handoff_groups.by_conversation).
        "waiting_turns": 1,
        "earlier_waiting": [],
        "waiting_since": row["created_at"],
    }


def closure_words(
    outcome: str | None, entry: str | None, agent: str, closed_with: int | None = None
) -> str:
    """How a hand-off was closed, and by whom: "resolved with 'pay-01' by alice"."""
    if outcome == "resolved":
        how = f"resolved with {entry!r}"
    elif outcome == "superseded":
        later = f" (turn {closed_with})" if closed_with else ""
        how = f"closed with a later hand-off of its conversation{later}"
    else:
        how = "closed with no entry (the knowledge base has no answer)"
    return f"{how} by {agent}" if agent else how


def closed_already(turn_id: int, turn: Any) -> str:
    """The line telling a second agent how the first closed the hand-off."""
    how = closure_words(
        turn["handoff_outcome"],
        turn["handoff_entry"],
        turn["handoff_agent"],
        turn["handoff_closed_with"],
    )
    return (
        f"turn {turn_id}'s hand-off was {how} at {turn['handoff_closed_at']} already; "
        "nothing was stored (to name another entry, give feedback with a correct id)"
    )


class Conversations:
    """The conversation log of one KB (thread-safe: the store serialises writes)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    @classmethod
    def open(cls, path: str | Path, timeout: float | None = None) -> Conversations:
        """Open (or create) the log at ``path``; a locked or damaged file is one error line.

        ``timeout``: seconds to wait for another writer (default: the store's)."""
        check_parents(path, "--db")  # under a file: one line, not a mkdir traceback
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserInputError(
                f"{path}: cannot create the conversation database's folder ({exc.strerror or exc})"
            ) from None
        # The hand-offs' outbox lives here: a new file in incremental auto-vacuum mode, so
        # `events prune --vacuum` gives space back while `serve` keeps emitting.
        store = Store.open(
            path,
            namespace=NAMESPACE,
            migrations=MIGRATIONS,
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
            incremental_vacuum=True,
        )
        return cls(store)

    def close(self) -> None:
        self.store.close()

    def start(self, channel: str = "cli") -> str:
        """A new conversation's id."""
        conversation_id = uuid.uuid4().hex
        self.store.execute(
            "INSERT INTO support_conversations (id, started_at, channel) VALUES (?, ?, ?)",
            (conversation_id, _now(), channel),
        )
        return conversation_id

    def exists(self, conversation_id: str) -> bool:
        rows = self.store.query(
            "SELECT 1 FROM support_conversations WHERE id = ?", (conversation_id,)
        )
        return bool(rows)

    def turns(self, conversation_id: str, last: int | None = None) -> list[dict[str, Any]]:
        """The conversation's turns, oldest first (``last``: only the most recent ones);
        ``options`` is a clarifying question's list of entry ids."""
        columns = (
            "id, created_at, question, query, decision, reason, confidence, entry_id, answer, "
            "options"
        )
        if last is None:
            rows = self.store.query(
                f"SELECT {columns} FROM support_turns WHERE conversation_id = ? ORDER BY id",
                (conversation_id,),
            )
        else:
            rows = self.store.query(
                f"SELECT * FROM (SELECT {columns} FROM support_turns WHERE conversation_id = ? "
                "ORDER BY id DESC LIMIT ?) ORDER BY id",
                (conversation_id, last),
            )
        return [{**dict(row), "options": json.loads(row["options"])} for row in rows]

    def count_turns(self, conversation_id: str) -> int:
        """How many turns the conversation has."""
        rows = self.store.query(
            "SELECT COUNT(*) AS n FROM support_turns WHERE conversation_id = ?", (conversation_id,)
        )
        return int(rows[0]["n"])

    def record_turn(self, conversation_id: str, answer: Any) -> int:
        """Store one answered question; returns the turn id."""
        entry_id = answer.entry["id"] if answer.entry else None
        result = self.store.execute(
            "INSERT INTO support_turns (conversation_id, created_at, question, query, decision, "
            "reason, confidence, entry_id, answer, candidates, options) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                conversation_id,
                _now(),
                answer.question,
                answer.query,
                answer.decision,
                answer.reason,
                float(answer.confidence),
                entry_id,
                answer.text,
                json.dumps(answer.candidates),
                json.dumps(getattr(answer, "options", [])),
            ),
        )
        return int(result.lastrowid)

    def remember_request(self, turn_id: int, key: str, response: dict[str, Any]) -> None:
        """Keep the response turn ``turn_id`` gave the request ``key`` (:func:`request_key`),
        inside the transaction that stored the turn. A key stored already (the same request,
        answered at the same moment) is an :class:`sqlite3.IntegrityError`, which rolls the
        whole turn back."""
        from tunesmith.events import strict_json

        self.store.execute(
            "UPDATE support_turns SET request_key = ?, response = ? WHERE id = ?",
            (key, strict_json(response), int(turn_id)),
        )

    def answered_request(self, key: str) -> dict[str, Any] | None:
        """The response a request with this key (:func:`request_key`) got, or None."""
        rows = self.store.query("SELECT response FROM support_turns WHERE request_key = ?", (key,))
        return json.loads(rows[0]["response"]) if rows else None

    def mark_handoff(self, turn_id: int, event_id: str) -> str | None:
        """Keep the hand-off event of turn ``turn_id``; in a conversation an agent has claimed,
        the hand-off is theirs too (:func:`~tunesmith_support.handoff_claims.inherit`), and
        their name is returned."""
        with self.store.transaction() as tx:
            tx.execute(
                "UPDATE support_turns SET handoff_event = ? WHERE id = ?", (event_id, turn_id)
            )
            return inherit(tx, turn_id)

    def handoffs(
        self,
        *,
        waiting_only: bool = True,
        since: datetime | None = None,
        per_turn: bool = False,
        limit: int | None = None,
        after: int | None = None,
    ) -> list[dict[str, Any]]:
        """Hand-offs, oldest first: those still waiting for a person (``waiting_only``), or
        all; ``since``: only those made at or after this moment (UTC). Each with its
        question, reason, candidates, the conversation before it (its last
        :data:`QUEUE_TURNS` turns; ``earlier_turns`` counts them all), how long it waited,
        who claimed it and how it was closed (:func:`handoff_row`).

        One item per conversation unless ``per_turn``: its newest waiting hand-off, with
        ``waiting_turns``, ``earlier_waiting`` and ``waiting_since``
        (:func:`~tunesmith_support.handoff_groups.by_conversation`); ``since`` then keeps a
        conversation whose newest waiting hand-off was made since. ``limit`` and ``after``: one
        page of them (:meth:`handoff_page`)."""
        found = self.handoff_page(
            waiting_only=waiting_only, since=since, per_turn=per_turn, limit=limit, after=after
        )
        return found["handoffs"]

    def handoff_page(
        self,
        *,
        waiting_only: bool = True,
        since: datetime | None = None,
        per_turn: bool = False,
        limit: int | None = None,
        after: int | None = None,
    ) -> dict[str, Any]:
        """One page of :meth:`handoffs`: ``{"handoffs": [...], "next_after": N}``, the first
        ``limit`` items (all without one) positioned after turn ``after``, in the order of
        their position, the smallest turn id each stands for
        (:func:`~tunesmith_support.handoff_pages.position`). ``next_after``: the ``after`` of
        the next page, None when none is left. A conversation's waiting hand-offs are never
        split between pages."""
        if limit is not None and not 1 <= int(limit) <= MAX_LIMIT:
            raise UserInputError(f"limit must be 1 to {MAX_LIMIT}, got {limit}")
        sql, params = page_query(
            waiting_only=waiting_only, since=since, per_turn=per_turn, after=after, limit=limit
        )
        rows, next_after = cut(self.store.query(sql, params), limit)
        items = [self._with_conversation(self.store, row) for row in rows]
        return {"handoffs": items if per_turn else by_conversation(items), "next_after": next_after}

    def recently_closed(self, limit: int) -> list[dict[str, Any]]:
        """The ``limit`` hand-offs a person closed most recently, newest first, as
        :meth:`handoffs` lists them; those closed with a later one of their conversation
        (``superseded``) are left out: they reopen with it."""
        rows = self.store.query(
            "SELECT * FROM support_turns WHERE decision = 'handoff' AND handoff_closed_at IS NOT "
            "NULL AND handoff_outcome != 'superseded' ORDER BY handoff_closed_at DESC, id DESC "
            "LIMIT ?",
            (int(limit),),
        )
        return [self._with_conversation(self.store, row) for row in rows]

    def handoff(self, turn_id: int) -> dict[str, Any] | None:
        """The hand-off of turn ``turn_id`` as :meth:`handoffs` lists it, or None when that
        turn is no hand-off (or does not exist)."""
        return self._handoff(self.store, turn_id)

    def _handoff(self, db: Any, turn_id: int) -> dict[str, Any] | None:
        rows = db.query(
            "SELECT * FROM support_turns WHERE id = ? AND decision = 'handoff'", (int(turn_id),)
        )
        return self._with_conversation(db, rows[0]) if rows else None

    @staticmethod
    def _with_conversation(db: Any, row: Any) -> dict[str, Any]:
        earlier = db.query(
            "SELECT question, decision, reason, answer FROM support_turns "
            "WHERE conversation_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (row["conversation_id"], row["id"], QUEUE_TURNS),
        )
        count = len(earlier)
        if count == QUEUE_TURNS:
            count = db.query(
                "SELECT COUNT(*) AS n FROM support_turns WHERE conversation_id = ? AND id < ?",
                (row["conversation_id"], row["id"]),
            )[0]["n"]
        return handoff_row(row, [dict(t) for t in reversed(earlier)], int(count))

    def close_handoff(
        self,
        turn_id: int,
        *,
        entry_id: str | None = None,
        agent: str = "",
        note: str = "",
        renamed: dict[str, str] | None = None,
        force: bool = False,
        with_earlier: bool = True,
    ) -> dict[str, Any]:
        """Close the hand-off of turn ``turn_id``: resolved by ``entry_id`` (stored as an
        agent's correct id too, which `export-feedback` turns into a training row), or with no
        entry (``no_answer``: the KB has none). Returns the hand-off as closed, with
        ``closed_with_it``: the turn ids of its conversation's earlier waiting hand-offs, closed
        with it as ``superseded`` (``with_earlier``; no training row, no gap: the agent's
        reply answers the customer once). Another agent's claim on any of them refuses the
        close (``handoff_claimed``) unless ``force``.

        Checked and written in one write transaction: of two agents closing the same hand-off
        at once, the second finds it closed and is refused (``handoff_closed``) naming the
        first one's closure, and nothing of its own is stored; the same closure sent again (a
        retry) gets the stored one back."""
        outcome = "resolved" if entry_id else "no_answer"
        with self.store.transaction() as tx:
            turn = the_handoff(tx, turn_id, self.store.path)
            if turn["handoff_closed_at"] is not None:
                stored = (turn["handoff_outcome"], turn["handoff_entry"] or None)
                if stored == (outcome, entry_id or None) and (
                    turn["handoff_agent"],
                    turn["handoff_note"],
                ) == (agent, note):
                    return self._closed(tx, turn_id)
                raise Refusal("handoff_closed", closed_already(turn_id, turn))
            rows = scope(tx, turn, with_earlier)
            check_not_held(int(turn_id), rows, agent, force, "close it")
            if entry_id:
                # Past the cap too: the cap keeps a client from filling the disk, and a customer
                # rating their own hand-off turn 20 times kept the agent from resolving it. A
                # closure is stored once until a reopening, which only a token holder sends.
                self._store_feedback(tx, turn_id, None, entry_id, note, None, renamed, capped=False)
            stamp = _now()
            for row in rows:
                mine = row["id"] == turn["id"]
                tx.execute(
                    "UPDATE support_turns SET handoff_closed_at = ?, handoff_outcome = ?, "
                    "handoff_entry = ?, handoff_agent = ?, handoff_note = ?, "
                    "handoff_closed_with = ? WHERE id = ?",
                    (
                        stamp,
                        outcome if mine else "superseded",
                        (entry_id or None) if mine else None,
                        agent,
                        note if mine else "",
                        None if mine else int(turn_id),
                        row["id"],
                    ),
                )
                log_action(
                    tx, row["id"], "close", agent, outcome=outcome if mine else "superseded",
                    entry=entry_id if mine else None, forced=force and bool(
                        row["handoff_claimed_by"] not in (None, agent)),
                    note=note if mine else "", closed_with=None if mine else int(turn_id),
                )  # fmt: skip
            return self._closed(tx, turn_id)

    def _closed(self, db: Any, turn_id: int) -> dict[str, Any]:
        """The hand-off of ``turn_id`` as closed, with ``closed_with_it`` (the turn ids closed
        with it)."""
        with_it = db.query(
            "SELECT id FROM support_turns WHERE handoff_closed_with = ? ORDER BY id", (turn_id,)
        )
        return {**(self._handoff(db, turn_id) or {}), "closed_with_it": [r["id"] for r in with_it]}

    def claim_handoff(self, turn_id: int, agent: str, *, force: bool = False) -> dict[str, Any]:
        """Claim the waiting hand-off of ``turn_id``, and its conversation's earlier waiting
        ones, for ``agent`` (:func:`~tunesmith_support.handoff_claims.claim`): another agent's
        claim is refused (``handoff_claimed``) unless ``force``; a closed one
        (``handoff_closed``) always. Claiming one's own again changes nothing. Returns it."""
        with self.store.transaction() as tx:
            turn = self._waiting(tx, turn_id, "claim it")
            claim(tx, turn, agent, force)
            return self._handoff(tx, turn_id) or {}

    def release_handoff(
        self, turn_id: int, agent: str = "", *, force: bool = False
    ) -> dict[str, Any]:
        """Release the claim on the waiting hand-off of ``turn_id`` (and its conversation's
        earlier ones): ``agent``'s own, another's only with ``force``. Returns it."""
        with self.store.transaction() as tx:
            turn = self._waiting(tx, turn_id, "release it")
            release(tx, turn, agent, force)
            return self._handoff(tx, turn_id) or {}

    def reopen_handoff(self, turn_id: int, agent: str = "", note: str = "") -> dict[str, Any]:
        """Put the closed hand-off of ``turn_id`` back in the queue, unclaimed, with those
        closed with it (:func:`~tunesmith_support.handoff_claims.reopen`: the closure stays in
        the log, its entry is no longer a training row); one still waiting is refused
        (``handoff_waiting``). Returns it, with ``reopened``: the turn ids back in the queue."""
        with self.store.transaction() as tx:
            reopened = reopen(tx, the_handoff(tx, turn_id, self.store.path), agent, note)
            return {**(self._handoff(tx, turn_id) or {}), "reopened": reopened}

    def handoff_history(self, turn_id: int) -> dict[str, Any]:
        """The history of the hand-off of ``turn_id``: ``turn_id``, ``conversation_id``,
        ``status`` and ``history``, its entries oldest first
        (:func:`~tunesmith_support.handoff_history.entries`: handed off, then each claim,
        release, close and reopening, with who and what note). A turn that does not exist
        (``unknown_turn``) or was not handed off (``not_a_handoff``) is refused."""
        turn = the_handoff(self.store, turn_id, self.store.path)
        return {
            "turn_id": int(turn["id"]),
            "conversation_id": turn["conversation_id"],
            "status": turn["handoff_outcome"] or "waiting",
            "history": self.handoff_histories([int(turn_id)])[int(turn_id)],
        }

    def handoff_histories(self, turn_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        """:meth:`handoff_history`'s entries of each hand-off of ``turn_ids`` (in one read, for
        a page of the queue); a turn that is no hand-off is left out."""
        from tunesmith_support.handoff_history import entries

        ids = json.dumps([int(t) for t in turn_ids])
        turns = self.store.query(
            "SELECT * FROM support_turns WHERE decision = 'handoff' AND id IN "
            "(SELECT value FROM json_each(?))",
            (ids,),
        )
        rows: dict[int, list[Any]] = {int(t["id"]): [] for t in turns}
        for row in self.store.query(
            "SELECT * FROM support_handoff_log WHERE turn_id IN (SELECT value FROM json_each(?)) "
            "ORDER BY id",
            (ids,),
        ):
            rows.setdefault(int(row["turn_id"]), []).append(row)
        return {int(t["id"]): entries(t, rows[int(t["id"])]) for t in turns}

    def _waiting(self, tx: Any, turn_id: int, doing: str) -> Any:
        """Turn ``turn_id``'s row, refused unless it is a hand-off still waiting."""
        turn = the_handoff(tx, turn_id, self.store.path)
        if turn["handoff_closed_at"] is not None:
            how = closure_words(
                turn["handoff_outcome"],
                turn["handoff_entry"],
                turn["handoff_agent"],
                turn["handoff_closed_with"],
            )
            refuse_closed(int(turn_id), turn, how, doing)
        return turn

    def add_feedback(
        self,
        turn_id: int,
        *,
        helpful: bool | None = None,
        correct_id: str | None = None,
        note: str = "",
        conversation_id: str | None = None,
        renamed: dict[str, str] | None = None,
        key: str | None = None,
        close_handoff: bool = False,
    ) -> int:
        """Store feedback on a turn: helpful or not, and/or the right entry id (from an agent).

        ``conversation_id``: the turn must be one of that conversation's (turn ids count up, so
        a client that knows only its own conversation's random id cannot rate another
        customer's turns); a turn of another conversation is refused as one that does not
        exist. The same feedback as the turn's newest (a replayed request) is stored once: its
        id is returned again. A turn takes at most :data:`MAX_FEEDBACK_PER_TURN`.

        A correct id that is the entry the turn answered with (``renamed``: old id -> new id,
        as the turn may name it by an id a re-index changed) confirms the answer: it is stored
        as "helpful", not as a correction (`stats` counted a right answer as corrected and left
        it out of the helpful rate); with ``helpful=False`` it is refused, as it says both.

        ``key``: the request's (:func:`feedback_request_key`). A key answered before gets the
        feedback id it got then, and nothing is stored, whatever came since on the turn; a
        new one is kept with the id it is answered with.

        ``close_handoff`` (an agent's `support feedback`): a correct id on a hand-off still
        waiting resolves it, in the same transaction (:meth:`close_handoff`); one closed
        already keeps its closure, and the feedback is stored as any other."""
        if helpful is None and not correct_id:
            raise Refusal(
                "rating_missing", "feedback needs 'helpful' (true/false) or a correct answer id"
            )
        with self.store.transaction() as tx:
            # Looked up inside the write transaction (BEGIN IMMEDIATE): two copies of one
            # request, from two threads or two servers, take turns, and the second finds the
            # first's key.
            answered_before = self._answered_feedback(tx, key)
            if answered_before is not None:
                return answered_before
            feedback_id = self._store_feedback(
                tx, turn_id, helpful, correct_id, note, conversation_id, renamed
            )
            if close_handoff and correct_id:
                # A hand-off an agent has claimed stays theirs to close: the feedback is
                # stored, and the queue keeps it.
                closed = tx.execute(
                    "UPDATE support_turns SET handoff_closed_at = ?, handoff_outcome = "
                    "'resolved', handoff_entry = ?, handoff_note = ? WHERE id = ? AND "
                    "decision = 'handoff' AND handoff_closed_at IS NULL AND "
                    "handoff_claimed_by IS NULL",
                    (_now(), correct_id, note, int(turn_id)),
                )
                if closed.rowcount:
                    log_action(
                        tx, turn_id, "close", "", outcome="resolved", entry=correct_id, note=note
                    )
            if key is not None:
                tx.execute(
                    "INSERT INTO support_feedback_requests (request_key, feedback_id, created_at) "
                    "VALUES (?, ?, ?)",
                    (key, feedback_id, _now()),
                )
        return feedback_id

    def answered_feedback(self, key: str) -> int | None:
        """The feedback id a feedback request with this key (:func:`feedback_request_key`) was
        answered with, or None."""
        return self._answered_feedback(self.store, key)

    @staticmethod
    def _answered_feedback(db: Any, key: str | None) -> int | None:
        if key is None:
            return None
        rows = db.query(
            "SELECT feedback_id FROM support_feedback_requests WHERE request_key = ?", (key,)
        )
        return int(rows[0]["feedback_id"]) if rows else None

    def _store_feedback(
        self,
        tx: Any,
        turn_id: int,
        helpful: bool | None,
        correct_id: str | None,
        note: str,
        conversation_id: str | None,
        renamed: dict[str, str] | None,
        capped: bool = True,
    ) -> int:
        """:meth:`add_feedback`'s checks and row, inside its transaction ``tx``: the id of the
        row stored, or of the turn's newest when this is the same feedback. ``capped``: refused
        once the turn has :data:`MAX_FEEDBACK_PER_TURN` (not a hand-off's closure)."""
        turn = tx.query(
            "SELECT reason, conversation_id, decision, entry_id FROM support_turns WHERE id = ?",
            (int(turn_id),),
        )
        if conversation_id is not None and (
            not turn or turn[0]["conversation_id"] != conversation_id
        ):
            raise Refusal("unknown_turn", f"no turn {turn_id} in this conversation")
        if not turn:
            raise Refusal("unknown_turn", f"no turn {turn_id} in {self.store.path}")
        if turn[0]["reason"] == "small_talk":
            # A reply to "hi" or "thanks" answers nothing: a correct id on it exported "hi" as a
            # training question, and a rating counted in the helpful rate of answers.
            raise Refusal(
                "small_talk_turn",
                f"turn {turn_id} is small talk (a greeting, thanks or goodbye), not an "
                "answer: give feedback on the turn that answered",
            )
        answered = turn[0]["entry_id"] if turn[0]["decision"] == "answer" else None
        if correct_id and answered and (renamed or {}).get(answered, answered) == correct_id:
            if helpful is False:
                raise Refusal(
                    "contradictory_feedback",
                    f"turn {turn_id} was answered with {correct_id!r} already: a correct id "
                    "names the entry that should have answered; to say the answer did not "
                    "help, give 'not helpful' alone (and a note)",
                )
            helpful, correct_id = True, None
        rated = None if helpful is None else int(bool(helpful))
        # Feedback a reopening withdrew is no longer the turn's: neither its newest nor one of
        # its places.
        given = tx.query(
            "SELECT id, helpful, correct_id, note FROM support_feedback WHERE turn_id = ? "
            "AND withdrawn_at IS NULL ORDER BY id DESC LIMIT ?",
            (int(turn_id), MAX_FEEDBACK_PER_TURN),
        )
        if given and (given[0]["helpful"], given[0]["correct_id"], given[0]["note"]) == (
            rated,
            correct_id or None,
            note,
        ):
            # A request sent again without a request_id (a widget's retry, a replay) changes
            # nothing: stored twice, it took two of the turn's places.
            return int(given[0]["id"])
        if capped and len(given) >= MAX_FEEDBACK_PER_TURN:
            raise Refusal(
                "feedback_limit",
                f"turn {turn_id} has {MAX_FEEDBACK_PER_TURN} pieces of feedback already; "
                "no more are kept",
            )
        result = tx.execute(
            "INSERT INTO support_feedback (turn_id, created_at, helpful, correct_id, note) "
            "VALUES (?, ?, ?, ?, ?)",
            (int(turn_id), _now(), rated, correct_id or None, note),
        )
        return int(result.lastrowid)

    def feedback(self) -> list[dict[str, Any]]:
        """Every piece of feedback, oldest first, with its turn's question (as typed), query
        (as searched), entry id and decision; ``asked``: the customer's words the turn
        answers, which for a pick from a clarifying question ("2") are those of the question
        that was clarified (the turn before it in the conversation; before a reply that was
        asked about again, reason ``narrowed``: a title that several options share), and for a
        request for a person those of the last question before it (None when there is none)."""
        rows = self.store.query(
            "SELECT f.id, f.turn_id, f.created_at, f.helpful, f.correct_id, f.note, t.question, "
            "t.query, t.entry_id, t.decision, t.reason, "
            "CASE WHEN t.reason = 'chosen' THEN (SELECT p.question FROM support_turns p "
            "WHERE p.conversation_id = t.conversation_id AND p.id < t.id "
            "AND p.decision = 'clarify' AND p.reason != 'narrowed' ORDER BY p.id DESC LIMIT 1) "
            # A request for a person ("agent please") stands for the customer's last question
            # before it: the agent's entry answers that, not the request.
            "WHEN t.reason = 'asked_for_person' THEN (SELECT p.question FROM support_turns p "
            "WHERE p.conversation_id = t.conversation_id AND p.id < t.id "
            "AND p.reason NOT IN ('asked_for_person', 'small_talk', 'chosen') "
            "ORDER BY p.id DESC LIMIT 1) "
            "ELSE t.question END AS asked "
            "FROM support_feedback f JOIN support_turns t ON t.id = f.turn_id "
            "WHERE f.withdrawn_at IS NULL ORDER BY f.id"
        )
        return [dict(row) for row in rows]

    def training_rows(
        self, known_ids: set[str] | None = None, renamed: dict[str, str] | None = None
    ) -> list[dict[str, str]]:
        """``(question, answer_id)`` pairs that feedback confirms.

        The question is what the customer typed (``asked`` in :meth:`feedback`), never the text
        it was searched with: a question read with the conversation's topic was searched as
        the topic joined to it ("how do I return boots is it too late to cancel my
        purchase"), which nobody asked; the encoder and classifier read each message alone,
        as `ask` does before it adds the topic. A pick from a clarifying question ("2") stands
        for the question it clarified, and a request for a person ("agent please", closed by an
        agent with an entry) for the customer's last question before it; a request with no
        question before it gives no row (it would teach the encoder that "agent please" means
        that entry).
        An agent's correct id wins (the newest one), even over a later rating; otherwise the
        turn's newest rating decides, and helpful confirms the entry it answered with. An id
        the KB gave a new one (``renamed``, :func:`~tunesmith_support.kbindex.renamed_ids`) is
        written as the new one; ids no longer in the KB are left out.
        """
        corrected: dict[int, dict[str, Any]] = {}
        rated: dict[int, dict[str, Any]] = {}
        for row in self.feedback():
            if confirms_answer(row, renamed):
                # Stored before such a pick was a rating: it says the answer was right.
                rated_as = 1 if row["helpful"] is None else row["helpful"]
                row = {**row, "correct_id": None, "helpful": rated_as}
            if row["correct_id"]:
                corrected[row["turn_id"]] = row
            if row["helpful"] is not None:
                rated[row["turn_id"]] = row
        out = []
        for turn_id in sorted(corrected.keys() | rated.keys()):
            if turn_id in corrected:
                row = corrected[turn_id]
                answer_id = row["correct_id"]
            else:
                row = rated[turn_id]
                answer_id = row["entry_id"] if row["helpful"] == 1 else None
            answer_id = (renamed or {}).get(answer_id, answer_id)
            if not answer_id or (known_ids is not None and answer_id not in known_ids):
                continue
            if row["reason"] == "asked_for_person" and not row["asked"]:
                continue  # nothing asked before the request: "agent please" is no question
            # A pick whose clarifying question is gone (never, short of editing the log) falls
            # back on the query it kept from it.
            question = row["asked"] or row["query"] or row["question"]
            out.append({"question": question, "answer_id": answer_id})
        return out

    def export_feedback(
        self,
        out: str | Path,
        known_ids: set[str] | None = None,
        renamed: dict[str, str] | None = None,
    ) -> int:
        """Write the training rows as CSV (``question,answer_id``); returns how many."""
        rows = self.training_rows(known_ids, renamed)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, ["question", "answer_id"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(out, buffer.getvalue())
        return len(rows)

    def stats(self, by: str = "day", renamed: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Per period: turns, answer / clarify / hand-off rates, feedback and helpful rate.

        Feedback counts turns, each once, in the period of its newest piece of feedback, which
        need not hold a turn (an agent rates Monday's answers on Tuesday): a turn rated three
        times, or rated and then corrected, is one. Of those turns, the helpful rate reads each
        rated one's newest rating, as ``export-feedback`` does, and ``corrected`` counts the
        ones an agent named another entry for. Weeks are ISO weeks (``2025-W01``: Monday to
        Sunday, one week even across the new year). Small talk (a greeting, a thanks) counts as
        a turn but not in the answer, clarify and hand-off rates, which are of questions. A
        correct id that is the entry the turn answered with (``renamed``: old id -> new id)
        counts as "helpful", not as a correction, as it is stored now. Of the period's
        hand-offs, ``handoffs_waiting`` are still waiting for a person and ``kb_gaps`` were
        closed with no entry (:meth:`close_handoff`): questions the KB has no answer to."""
        check_period(by)
        periods: dict[str, dict[str, int]] = {}
        empty = dict.fromkeys(("turns", "small_talk", "answer", "clarify", "handoff", "feedback",
                               "helpful", "not_helpful", "corrected", "handoffs_waiting", "kb_gaps"),
                              0)  # fmt: skip
        # SQLite counts per day (a log of millions of turns stays in the database); days then
        # fold into weeks or months here, where ISO weeks are computed right.
        day = "substr(created_at, 1, 10)"
        turns = self.store.query(
            f"SELECT {day} AS day, COUNT(*) AS turns, SUM(reason = 'small_talk') AS small_talk, "
            "SUM(decision = 'answer') AS answer, "
            "SUM(decision = 'clarify' AND reason != 'small_talk') AS clarify, "
            "SUM(decision = 'handoff') AS handoff, "
            "SUM(decision = 'handoff' AND handoff_closed_at IS NULL) AS handoffs_waiting, "
            "SUM(decision = 'handoff' AND handoff_outcome = 'no_answer') AS kb_gaps "
            "FROM support_turns GROUP BY day"
        )
        # Each turn with feedback once, on the day of its newest: counted piece by piece, a
        # turn rated three times (or a late retry of a rating) was three in `feedback`.
        feedback = self.store.query(
            "WITH given AS (SELECT f.id, f.turn_id, "
            f"f.correct_id IS NOT NULL AND NOT {CONFIRMS_ANSWER} AS corrects, "
            f"CASE WHEN f.helpful IS NULL AND {CONFIRMS_ANSWER} THEN 1 ELSE f.helpful END "
            "AS helpful FROM support_feedback f JOIN support_turns t ON t.id = f.turn_id "
            "WHERE f.withdrawn_at IS NULL), "
            "newest_rating AS (SELECT turn_id, helpful FROM (SELECT turn_id, helpful, "
            "ROW_NUMBER() OVER (PARTITION BY turn_id ORDER BY id DESC) AS nth FROM given "
            "WHERE helpful IS NOT NULL) WHERE nth = 1), "
            "per_turn AS (SELECT turn_id, MAX(id) AS newest, MAX(corrects) AS corrected "
            "FROM given GROUP BY turn_id) "
            "SELECT substr(n.created_at, 1, 10) AS day, COUNT(*) AS feedback, "
            "SUM(r.helpful = 1) AS helpful, SUM(r.helpful = 0) AS not_helpful, "
            "SUM(p.corrected) AS corrected FROM per_turn p "
            "JOIN support_feedback n ON n.id = p.newest "
            "LEFT JOIN newest_rating r ON r.turn_id = p.turn_id GROUP BY day",
            {"renamed": json.dumps(renamed or {})},
        )
        for row in [*turns, *feedback]:
            counts = periods.setdefault(period_of(row["day"], by), dict(empty))
            for name in row.keys()[1:]:  # a sqlite3.Row: its columns after "day"
                counts[name] += int(row[name] or 0)
        out = []
        for period in sorted(periods):
            c = periods[period]
            # A greeting or a thanks is no question: the rates are of the questions asked.
            n = c["turns"] - c["small_talk"]
            rated = c["helpful"] + c["not_helpful"]
            out.append(
                {
                    "period": period,
                    "turns": c["turns"],
                    "small_talk": c["small_talk"],
                    "answer_rate": round(c["answer"] / n, 4) if n else None,
                    "clarify_rate": round(c["clarify"] / n, 4) if n else None,
                    "handoff_rate": round(c["handoff"] / n, 4) if n else None,
                    "feedback": c["feedback"],
                    "helpful_rate": round(c["helpful"] / rated, 4) if rated else None,
                    "corrected": c["corrected"],
                    # Of the period's hand-offs: still waiting for a person, and closed by
                    # one with no entry (questions the KB has no answer to).
                    "handoffs_waiting": c["handoffs_waiting"],
                    "kb_gaps": c["kb_gaps"],
                }
            )
        return out
