"""One KB at work: answer questions in conversations, log them, hand off, take feedback.

The CLI (`ask`, `chat`), the HTTP API and the demo all go through :class:`SupportService`, so a
turn is answered, stored and (for a hand-off) announced the same way everywhere.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tunesmith.data.limits import lone_surrogate
from tunesmith.errors import UserInputError
from tunesmith.events import Event, make_sink, record, send
from tunesmith_support.answer import Answer, Answerer, clean_question, without_controls
from tunesmith_support.conversations import Conversations, request_key
from tunesmith_support.refusals import Refusal
from tunesmith_support.reload import load_answerer

HANDOFF_KIND = "support.handoff"

#: SQLite's largest integer; a larger turn id cannot even be looked up.
MAX_ROW_ID = 2**63 - 1

#: Earlier turns a hand-off event carries, the most recent. With the whole conversation, each
#: event (stored in the outbox and in every sink, and posted to webhooks) grew with every turn:
#: a client asking for a person again and again in one conversation filled the disk
#: quadratically (300 requests of 2 KB: 90 MB in the database and 90 MB of hand-offs).
HANDOFF_TURNS = 20

#: The longest feedback note kept. Questions are cut at 2,000 characters, but a note was stored
#: whole: any client of `serve` could write a megabyte into the database with each request.
MAX_NOTE_CHARS = 10_000

#: The longest agent's name kept with a closed hand-off.
MAX_AGENT_CHARS = 200


def default_db(kb_dir: str | Path) -> Path:
    """Where a KB's conversations are kept unless told otherwise."""
    return Path(kb_dir) / "conversations.sqlite"


def conversation_db(kb_dir: str | Path, db: str | Path | None) -> Path:
    """The database a service records turns in: ``db``, else :func:`default_db`, refused in
    one line naming ``--db`` when the KB folder is read-only (a KB shipped in an image):
    SQLite said only "unable to open database file"."""
    if db is not None:
        return Path(db)
    # access() answers for the file system too: a read-only mount refuses root as well.
    if Path(kb_dir).is_dir() and not os.access(kb_dir, os.W_OK):
        raise UserInputError(
            f"{kb_dir}: the knowledge base folder is read-only, so its conversations cannot be "
            "kept in it; pass --db FILE in a writable folder (and --sink for hand-offs, "
            "which go to KB/handoffs.jsonl)"
        )
    return default_db(kb_dir)


def default_sinks(kb_dir: str | Path) -> list[str]:
    """Hand-offs go to ``KB/handoffs.jsonl`` unless other sinks are named."""
    return [f"jsonl:{Path(kb_dir) / 'handoffs.jsonl'}"]


def shown(value: str, limit: int = 40) -> str:
    """``value`` quoted for an error line, cut to ``limit`` characters, so that a
    100,000-character id is not echoed back whole."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}..."


def check_text(value: str, what: str) -> None:
    """Refuse text that is not valid Unicode: a lone surrogate (JSON ``"\\ud800"``, or an
    undecodable byte in a command-line argument) breaks the tokenizer and SQLite."""
    if found := lone_surrogate(value):
        raise Refusal(
            "invalid_text",
            f"the {what} is not valid Unicode text (an unpaired surrogate at character {found[0]})",
        )


def open_clarify(earlier: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The clarifying question (a stored turn) that a reply may pick an option of: the last
    turn, or the last before the picks already made from it. A customer who taps "1" and then
    "2" (or both at once) gets both options' answers; read against the turns as they stood,
    the second was a pick when the two requests crossed and a search for "2" when the first
    was stored first, so what it got depended on timing."""
    for turn in reversed(earlier):
        if turn["decision"] == "clarify":
            return turn if turn["options"] else None
        if turn["reason"] != "chosen":
            return None
    return None


@dataclass
class Turn:
    """One stored turn: the answer, its id and its conversation."""

    answer: Answer
    turn_id: int
    conversation_id: str
    handoff_event: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.answer.to_dict(),
            "text": self.answer.text,
            "turn_id": self.turn_id,
            "conversation_id": self.conversation_id,
            "handoff_event": self.handoff_event,
        }


class SupportService:
    """An :class:`Answerer` with a conversation log and hand-off events."""

    def __init__(
        self,
        kb_dir: str | Path,
        *,
        db: str | Path | None = None,
        sinks: list[str] | None = None,
        answerer: Answerer | None = None,
        background_delivery: bool = False,
        lazy: bool = False,
        device: str = "cpu",
    ) -> None:
        """``background_delivery``: send hand-off events from a thread, so that the turn is
        returned without waiting on the sinks (``serve``: a webhook that is down would hold the
        customer's request through every retry). The event is in the outbox before the turn
        returns; a delivery the process did not finish stays there for ``events retry``.

        ``lazy``: load the model at the first question instead of now, so that a command that
        may need none (feedback, a conversation id that does not exist) answers in a moment.

        ``device``: where the KB's models run (``--device``; an ``answerer`` given keeps its own)."""
        self.kb_dir = Path(kb_dir)
        self.device = device
        self.background_delivery = background_delivery
        # One worker, not a thread a hand-off: a webhook that is down would otherwise gather a
        # sleeping thread for every customer who asks for a person.
        self._delivery: Any = None
        self.sinks = sinks if sinks is not None else default_sinks(self.kb_dir)
        # A sink that cannot be built (a typo, a malformed webhook URL) is refused now, before
        # the model loads: found at the first hand-off, it would refuse that customer's turn
        # (a 400 from `serve`) while every other question was answered as if all were well.
        for sink in self.sinks:
            make_sink(sink)
        self._answerer = answerer
        self._answerer_lock = threading.Lock()
        self._renamed: dict[str, str] | None = None
        if not lazy:
            self._answerer = self.answerer
        self.conversations = Conversations.open(conversation_db(self.kb_dir, db))

    @property
    def answerer(self) -> Answerer:
        """The KB's answerer, loaded once (at the first use when the service is lazy). A
        server may swap in a new copy at any moment (:meth:`use`): a request reads this once
        and works with that copy to the end."""
        answerer = self._answerer
        if answerer is None:
            with self._answerer_lock:
                if self._answerer is None:
                    self._answerer = load_answerer(self.kb_dir, device=self.device)
                answerer = self._answerer
        return answerer

    def use(self, answerer: Answerer) -> None:
        """Answer from ``answerer`` from now on (a reloaded copy of the KB, :mod:`reload`).
        One assignment: a request in flight finishes with the copy it started with, and the
        old copy is freed when the last of them ends."""
        with self._answerer_lock:
            self._answerer = answerer

    def close(self, *, drain: bool = False) -> None:
        """Close the conversation database. Hand-offs still queued for delivery are left in the
        outbox as pending (`tunesmith events retry --status pending` sends them), unless
        ``drain``: a one-shot command (`ask`, `chat`) delivers them first, after its answer is
        out (a webhook that hangs is held after its first timeout, so the rest go quickly)."""
        if self._delivery is not None:
            self._delivery.shutdown(wait=True, cancel_futures=not drain)
        self.conversations.close()

    def ask_request(
        self,
        question: str,
        conversation_id: str | None = None,
        request_id: str | None = None,
        *,
        channel: str = "api",
    ) -> dict[str, Any]:
        """:meth:`ask` for a client that may send a request again (a retry after a network
        error, a double click): the same ``request_id`` with the same conversation and question
        gets the response stored for it, and no second turn or hand-off. Without a
        ``request_id``, each request is a new turn."""
        if request_id is None:
            return self.ask(question, conversation_id, channel=channel).to_dict()
        check_text(request_id, "request id")
        key = request_key(request_id, conversation_id, question)
        stored = self.conversations.answered_request(key)
        if stored is not None:
            return stored
        try:
            return self.ask(question, conversation_id, channel=channel, key=key).to_dict()
        except sqlite3.IntegrityError:
            # The same request, answered at the same moment by another thread (or server),
            # stored its turn first; this one was rolled back whole.
            stored = self.conversations.answered_request(key)
            if stored is None:
                raise
            return stored

    def ask(
        self,
        question: str,
        conversation_id: str | None = None,
        *,
        channel: str = "cli",
        key: str | None = None,
    ) -> Turn:
        """Answer ``question`` in a conversation (a new one when ``conversation_id`` is None);
        ``key``: the request's (:meth:`ask_request`), kept with the turn and its response."""
        # Refused before a conversation is started, which would stay behind empty.
        check_text(question, "question")
        clean_question(question)
        earlier: list[dict[str, Any]] = []
        if conversation_id is not None:
            check_text(conversation_id, "conversation id")
            if not self.conversations.exists(conversation_id):
                raise Refusal("unknown_conversation", f"no conversation {shown(conversation_id)}")
            # The last few make a follow-up's topic (answer.conversation_topic); all of them go
            # into a hand-off.
            earlier = self.conversations.turns(conversation_id, last=HANDOFF_TURNS)
        # One copy of the KB for the whole turn: a reload may swap another in meanwhile.
        answerer = self.answerer
        answer = None
        clarify = open_clarify(earlier)
        if clarify is not None:
            # A reply to "Which of these do you mean? 1. ... 2. ..." picks an option by its
            # number: searched, "2" was handed off to a person.
            answer = answerer.answer_choice(question, clarify["options"], clarify["query"])
        if answer is None:
            answer = answerer.ask(question, self._history(earlier, answerer))
        store = self.conversations.store
        outgoing = None
        # The turn and its hand-off event commit together (the outbox shares the store): a
        # failed event write leaves no turn behind for a client's retry to store twice. A new
        # conversation commits with its first turn, so a failed one leaves no empty
        # conversation behind either.
        with store.transaction():
            if conversation_id is None:
                conversation_id = self.conversations.start(channel)
            turn_id = self.conversations.record_turn(conversation_id, answer)
            if answer.decision == "handoff":
                event = self._handoff_event(answer, earlier, conversation_id, turn_id)
                # Marked first: in a conversation an agent holds, the hand-off is theirs, and
                # the event says so (a helpdesk routes it to them, not to the whole queue).
                held = self.conversations.mark_handoff(turn_id, event.id)
                event = replace(event, payload={**event.payload, "claimed_by": held})
                outgoing = record(event, self.sinks, outbox=store)
            if key is not None:
                handoff = None if outgoing is None else outgoing.event.id
                response = Turn(answer, turn_id, conversation_id, handoff).to_dict()
                self.conversations.remember_request(turn_id, key, response)
        if outgoing is None:
            return Turn(answer, turn_id, conversation_id, None)
        # After the commit: no sink waits on an open transaction.
        if self.background_delivery:
            if self._delivery is None:
                from concurrent.futures import ThreadPoolExecutor

                self._delivery = ThreadPoolExecutor(1, thread_name_prefix="handoff-delivery")
            self._delivery.submit(send, outgoing)
        else:
            send(outgoing)
        return Turn(answer, turn_id, conversation_id, outgoing.event.id)

    def _history(self, earlier: list[dict[str, Any]], answerer: Answerer) -> list[str]:
        """What a follow-up may lean on: the earlier questions as typed, not as searched (a
        searched follow-up already holds the turns before it, which the topic would then repeat;
        :func:`~tunesmith_support.answer.conversation_topic` takes the last few, back to one
        that stands on its own). Small talk is left out ("thanks" says nothing about the
        topic), and a pick from a clarifying question ("2") stands for the entry's title."""
        history = []
        for t in earlier:
            if t["reason"] == "small_talk":
                continue
            entry = answerer.entry(t["entry_id"]) if t["reason"] == "chosen" else None
            history.append(t["question"] if entry is None else entry.title)
        return history

    def _handoff_event(
        self, answer: Answer, earlier: list[dict[str, Any]], conversation_id: str, turn_id: int
    ) -> Event:
        conversation = [
            # The reason tells an agent a pick from the options ("2": chosen) or a "thanks"
            # (small_talk) from a question the bot clarified or answered.
            {
                "question": t["question"],
                "decision": t["decision"],
                "reason": t["reason"],
                "answer": t["answer"],
            }
            for t in earlier
        ]
        # All of them when not cut; the count tells a receiver when older ones were left out.
        count = len(earlier)
        if count == HANDOFF_TURNS:
            count = self.conversations.count_turns(conversation_id) - 1  # this turn is stored
        return Event(
            kind=HANDOFF_KIND,
            message=f"hand-off ({answer.reason}): {answer.question[:200]}",
            payload={
                "question": answer.question,
                "reason": answer.reason,
                "confidence": round(answer.confidence, 4),
                "conversation": conversation,
                "earlier_turns": count,
                "candidates": answer.candidates,
                "conversation_id": conversation_id,
                "turn_id": turn_id,
                "kb": str(self.kb_dir),
            },
            source="tunesmith-support",
        )

    def _entry_ids(self, answerer: Answerer | None) -> Any:
        """The KB's entry ids: the loaded answerer's, or read from the index without loading
        a model (a feedback command needs only the ids)."""
        if answerer is not None:
            return answerer.scorer.position
        from tunesmith_support.kbindex import kb_entries

        return {entry.id for entry in kb_entries(self.kb_dir)}

    def renamed(self, answerer: Answerer | None = None) -> dict[str, str]:
        """Old id -> new id of the entries a re-index renamed (``kb.json``): those of the
        copy of the KB ``answerer`` loaded (a reloaded server's ids and renames change
        together), else read once from disk, as the KB's entries are."""
        meta = getattr(answerer, "meta", None)
        if isinstance(meta, dict):
            from tunesmith_support.kbindex import renamed_in

            return renamed_in(meta)
        if self._renamed is None:
            from tunesmith_support.kbindex import renamed_ids

            self._renamed = renamed_ids(self.kb_dir)
        return self._renamed

    def feedback(
        self,
        turn_id: int,
        *,
        helpful: bool | None = None,
        correct_id: str | None = None,
        note: str = "",
        conversation_id: str | None = None,
        key: str | None = None,
        close_handoff: bool = False,
    ) -> int:
        """Store feedback on a turn; a correct id must be an entry of the KB;
        ``close_handoff``: it resolves the turn's hand-off if one is waiting (an agent's, never
        a customer's: the API's feedback leaves the queue alone).
        ``conversation_id``: the turn must be that conversation's (a public widget's visitor
        rates their own turns only; :meth:`Conversations.add_feedback`); ``key``: the
        request's, whose retry stores nothing
        (:func:`~tunesmith_support.conversations.feedback_request_key`)."""
        if conversation_id is not None:
            check_text(conversation_id, "conversation id")
        if not 0 < turn_id <= MAX_ROW_ID:
            where = "this conversation" if conversation_id is not None else None
            raise Refusal(
                "unknown_turn", f"no turn {turn_id} in {where or self.conversations.store.path}"
            )
        check_text(note, "note")
        # Control characters and bidirectional overrides go, as from questions: an agent reads
        # notes in the demo's table.
        note = without_controls(note)[0]
        if len(note) > MAX_NOTE_CHARS:
            raise Refusal(
                "note_too_long",
                f"the note is {len(note):,} characters long; at most {MAX_NOTE_CHARS:,} are kept",
            )
        correct_id, renamed = self._checked_entry(correct_id)
        return self.conversations.add_feedback(
            turn_id,
            helpful=helpful,
            correct_id=correct_id,
            note=note,
            conversation_id=conversation_id,
            renamed=renamed,
            key=key,
            close_handoff=close_handoff,
        )

    def _checked_entry(self, correct_id: str | None) -> tuple[str | None, dict[str, str]]:
        """``correct_id`` as the KB names it now, refused unless it is one of its entries, with
        the KB's renamed ids (those of one copy, should a reload swap another in meanwhile)."""
        answerer = self._answerer
        renamed = self.renamed(answerer)
        if correct_id:
            # An id from before a re-index renamed it (an agent's notes, a hand-off event, an
            # old export) is its entry's: `export-feedback` and `train` read it so too.
            correct_id = renamed.get(correct_id, correct_id)
            if correct_id not in self._entry_ids(answerer):
                raise Refusal(
                    "unknown_entry",
                    f"no entry {shown(correct_id)} in the knowledge base {self.kb_dir}",
                )
        return correct_id, renamed

    def close_handoff(
        self,
        turn_id: int,
        *,
        entry_id: str | None = None,
        agent: str = "",
        note: str = "",
        force: bool = False,
        with_earlier: bool = True,
    ) -> dict[str, Any]:
        """Close a hand-off: resolved by ``entry_id`` (an entry of the KB), or with none (the
        KB has no answer); ``agent`` and ``note`` are kept with it; ``force``: over another
        agent's claim; ``with_earlier``: its conversation's earlier waiting hand-offs too
        (:meth:`Conversations.close_handoff`)."""
        if not 0 < turn_id <= MAX_ROW_ID:
            raise Refusal("unknown_turn", f"no turn {turn_id} in {self.conversations.store.path}")
        agent, note = checked_agent_note(agent, note)
        entry_id, renamed = self._checked_entry(entry_id)
        return self.conversations.close_handoff(
            turn_id,
            entry_id=entry_id,
            agent=agent,
            note=note,
            renamed=renamed,
            force=force,
            with_earlier=with_earlier,
        )


def checked_agent_note(agent: str, note: str) -> tuple[str, str]:
    """An agent's name and note as a hand-off keeps them (valid Unicode, no control
    characters, the name on one line: each run of blanks and line breaks one space), refused
    over :data:`MAX_AGENT_CHARS` and :data:`MAX_NOTE_CHARS`."""
    for text, what in ((agent, "agent"), (note, "note")):
        check_text(text, what)
    # A name is one line: "mallory\n  <time>  released by alice" forged a line of --history.
    agent, note = " ".join(without_controls(agent)[0].split()), without_controls(note)[0]
    if len(note) > MAX_NOTE_CHARS:
        raise Refusal(
            "note_too_long",
            f"the note is {len(note):,} characters long; at most {MAX_NOTE_CHARS:,} are kept",
        )
    if len(agent) > MAX_AGENT_CHARS:
        raise Refusal(
            "bad_request",
            f"the agent's name is {len(agent):,} characters long; at most "
            f"{MAX_AGENT_CHARS} are kept",
        )
    return agent, note
