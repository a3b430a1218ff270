"""Answering one question: the best entry, a calibrated confidence and a decision.

Decisions:

- ``answer``: the confidence reaches the threshold chosen for the target precision;
- ``clarify``: not confident in one entry, but confident the right one is among the top few and
  those are close in score: a question that lists them;
- ``handoff``: the user asks for a person, the question looks out of scope, or the confidence is
  too low for either.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith_support.calibrate import ASKED, Calibration
from tunesmith_support.kbindex import (
    CALIBRATION,
    CLASSIFIER_DIR,
    load_encoder,
    open_index,
    read_meta,
    stored_entries,
)
from tunesmith_support.scoring import Candidate, IntentModel, Lexical, Scorer

#: Longer questions are cut to this many characters (and the answer says so).
MAX_QUESTION_CHARS = 2000

_PERSON = re.compile(
    r"\b(talk|speak|chat|connect me|put me through|transfer me)\b[^.?!]{0,20}?\b"
    r"(human|person|people|agent|someone|somebody|representative|operator|staff|advisor"
    r"|manager|supervisor)\b"
    # The whole message is the word, as customers type to a bot or a phone menu: "agent",
    # "Human!", "a real person please" (a short message would otherwise be searched as a
    # follow-up of the question before).
    r"|^\W*(an?\s+)?(real\s+|live\s+)?(human|agent|person|operator|representative"
    r"|human being)\W*(please|now)?\W*$"
    r"|\b(human|live|real)\s+(agent|person|being|support)\b"
    r"|\b(customer service|support) (agent|representative|rep)\b"
    r"|\bhuman,? please\b|\bagent,? please\b|\boperator\b|\brepresentative\b"
    # "I want a human", "can I get an agent?": the person ends the sentence ("I need a person
    # to sign for it" is a question about delivery, not a request).
    r"|\b(want|need|get|have|see|reach)\s+(me\s+)?(a|an|some)\s+(real\s+)?"
    r"(human|person|agent|human being)\b\s*(please|now)?\s*[.?!]*\s*$",
    re.IGNORECASE,
)
_PRONOUN = re.compile(
    r"\b(it|its|that|this|those|these|they|them|their)\b",
    re.IGNORECASE,
)
_FOLLOW_UP_START = re.compile(r"^\s*(and|but|also|what about|how about|so|then)\b", re.IGNORECASE)


def asks_for_person(question: str) -> bool:
    """True when the user asks to talk to a human ("talk to a human", "agent please")."""
    return bool(_PERSON.search(question))


#: A follow-up is short in characters too: one 2,000-character "word" is no "and the fee?".
SHORT_CHARS = 60


def is_follow_up(question: str) -> bool:
    """True for a question that leans on the previous one: short (3 words or fewer, and at
    most :data:`SHORT_CHARS` characters), starting with "and"/"what about", or pointing back
    with a pronoun ("how long does that take?")."""
    short = len(question.split()) <= 3 and len(question.strip()) <= SHORT_CHARS
    return short or bool(_FOLLOW_UP_START.match(question) or _PRONOUN.search(question))


#: How much of the previous turn a follow-up carries (its start, where the topic is): the
#: encoder reads a few hundred tokens, so a long previous question, or a chain of follow-ups,
#: would push the new question out of what it reads.
CONTEXT_CHARS = 400


def contextual_query(question: str, history: list[str]) -> str:
    """The text to search for: the question, with the previous question in front for a
    follow-up, so "and how long does that take?" after "how do I return boots" finds returns."""
    if history and is_follow_up(question):
        return f"{history[-1][:CONTEXT_CHARS].rstrip()} {question}"
    return question


def visible(ch: str) -> bool:
    """Whether a character shows: not a space, nor a control or format character."""
    return not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp", "Zs")


def clean_question(question: str) -> tuple[str, list[str]]:
    """The question stripped and cut to :data:`MAX_QUESTION_CHARS`, with notes for the user;
    an empty question is an error."""
    text = (question or "").strip()
    if not any(visible(ch) for ch in text):
        # Only control or format characters (a zero-width space, a byte-order mark, NUL) are
        # as empty as blanks; the encoder would answer them with whatever entry lies nearest.
        raise UserInputError("the question is empty; type a question")
    notes = []
    if len(text) > MAX_QUESTION_CHARS:
        notes.append(
            f"the question had {len(text):,} characters; only the first "
            f"{MAX_QUESTION_CHARS:,} were read"
        )
        text = text[:MAX_QUESTION_CHARS]
    return text, notes


@dataclass
class Answer:
    """The outcome of one question."""

    question: str
    query: str
    decision: str  # answer | clarify | handoff
    confidence: float
    shortlist_confidence: float
    reason: str = ""
    answer: str = ""
    entry: dict[str, Any] | None = None
    clarify: str = ""
    candidates: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "query": self.query,
            "decision": self.decision,
            "reason": self.reason,
            "confidence": round(self.confidence, 4),
            "shortlist_confidence": round(self.shortlist_confidence, 4),
            "answer": self.answer,
            "entry": self.entry,
            "clarify": self.clarify,
            "candidates": self.candidates,
            "notes": self.notes,
        }

    @property
    def text(self) -> str:
        """What the customer sees."""
        if self.decision == "answer":
            return self.answer
        if self.decision == "clarify":
            return self.clarify
        if self.reason == "asked_for_person":
            return "I'm passing you to a member of our team; they will reply here shortly."
        return (
            "I'm not sure I can answer that correctly, so I'm passing your question to a member "
            "of our team."
        )


def _entry_dict(c: Candidate) -> dict[str, Any]:
    e = c.entry
    return {
        "id": e.id,
        "question": e.question,
        "heading": e.heading,
        "category": e.category,
        "source": e.source,
        "kind": e.kind,
        "answer": e.answer,
    }


class Answerer:
    """A loaded KB: encoder, index, optional lexical and intent scores, calibration."""

    def __init__(self, kb_dir: str | Path, *, encoder: Any = None) -> None:
        self.kb_dir = Path(kb_dir)
        self.meta = read_meta(self.kb_dir)
        self.calibration = Calibration.load(self.kb_dir / CALIBRATION)
        if self.calibration is None:
            raise UserInputError(
                f"{self.kb_dir}: the knowledge base has no calibration yet; fit one on labelled "
                "questions with `tunesmith support calibrate --kb KB --data questions.csv` "
                "(or `support train`)"
            )
        self.encoder = encoder or load_encoder(self.kb_dir)
        self.index = open_index(self.kb_dir, self.encoder)
        entries = stored_entries(self.index)
        weights = self.calibration.weights
        lexical = Lexical(entries) if weights.lexical else None
        classifier = self.kb_dir / CLASSIFIER_DIR
        # The confidence was fitted on the classifier's scores whenever it existed then, even
        # where its ranking weight is zero: load it exactly when the calibration read it.
        wanted = weights.intent or self.calibration.uses_classifier
        intent = IntentModel(classifier) if wanted and classifier.exists() else None
        self.scorer = Scorer(self.index, entries, lexical, intent, weights)
        # One model for every thread: torch and FAISS calls are serialised here.
        self._lock = threading.Lock()

    @property
    def entries(self) -> list[Any]:
        return self.scorer.entries

    def ask(self, question: str, history: list[str] | None = None) -> Answer:
        """Answer, clarify or hand off ``question``; ``history`` is the user's earlier turns."""
        text, notes = clean_question(question)
        query, candidates = self.search(text, history or [])
        return self.decide(text, query, candidates, notes)

    def search(
        self, question: str, history: list[str], k: int = ASKED
    ) -> tuple[str, list[Candidate]]:
        """(the query used, its ranked candidates). A question that looks like a follow-up is
        searched alone and joined to the previous turn, and the joined query is kept only when
        its best candidate scores higher: on the sample conversations this keeps the follow-ups
        it finds and loses fewer stand-alone questions that merely contain "it" or "that"."""
        query = contextual_query(question, history)
        with self._lock:
            if query == question:
                return question, self.scorer.candidates([question], k=k)[0]
            alone, joined = self.scorer.candidates([question, query], k=k)
        if joined and (not alone or joined[0].score > alone[0].score):
            return query, joined
        return question, alone

    def decide(
        self, question: str, query: str, candidates: list[Candidate], notes: list[str]
    ) -> Answer:
        """The decision for ranked candidates (see the module docstring)."""
        cal = self.calibration
        assert cal is not None
        p1, p3 = cal.confidence(candidates) if candidates else (0.0, 0.0)
        shown = [c.to_dict() for c in candidates]
        result = Answer(question, query, "handoff", p1, p3, candidates=shown, notes=notes)
        if asks_for_person(question):
            result.reason = "asked_for_person"
        elif candidates and p1 >= cal.answer_threshold:
            top = candidates[0]
            result.decision, result.answer, result.entry = (
                "answer",
                top.entry.answer,
                _entry_dict(top),
            )
        else:
            close = [
                c for c in candidates[:3] if candidates[0].score - c.score <= cal.clarify_margin
            ]
            if len(close) >= 2 and p3 >= cal.clarify_threshold:
                result.decision = "clarify"
                result.reason = "close_candidates"
                names = [f'"{c.entry.title}"' for c in close]
                listed = ", ".join(names[:-1]) + f" or {names[-1]}"
                result.clarify = f"Did you mean {listed}?"
            elif not candidates or candidates[0].score < cal.out_of_scope_score:
                result.reason = "out_of_scope"
            else:
                result.reason = "low_confidence"
        return result
