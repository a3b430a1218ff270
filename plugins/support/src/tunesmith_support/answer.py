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
from tunesmith.io import change_stamp
from tunesmith_support.calibrate import ASKED, Calibration
from tunesmith_support.kb import Entry
from tunesmith_support.kbgenerations import classifier_path
from tunesmith_support.kbindex import (
    CALIBRATION,
    CLASSIFIER_DIR,
    INDEX_DIR,
    META,
    load_encoder,
    open_index,
    read_meta,
    renamed_in,
    stored_entries,
)
from tunesmith_support.kblexical import load_for as load_lexical
from tunesmith_support.languages import (
    LANGUAGE_FILE,
    LAST,
    SMALL_TALK_KINDS,
    LanguageConfig,
    fold,
    read_language_config,
)
from tunesmith_support.refusals import Refusal
from tunesmith_support.scoring import Candidate, IntentModel, Lexical, Scorer, fuse, rank

#: Longer questions are cut to this many characters (and the answer says so).
MAX_QUESTION_CHARS = 2000

#: The KB's languages when none is given: English alone, plus the built-in recognition of
#: Spanish, German and French requests for a person and small talk.
DEFAULT_LANGUAGES = LanguageConfig()


def asks_for_person(question: str, languages: LanguageConfig = DEFAULT_LANGUAGES) -> bool:
    """True when the user asks to talk to a human ("talk to a human", "agent please",
    "quiero hablar con una persona", "Ich möchte mit einem Menschen sprechen")."""
    return languages.asks_for_person(question) is not None


#: What the customer is told for a message that is only a greeting, thanks or goodbye (in
#: English; :meth:`LanguageConfig.text` has every language's).
SMALL_TALK_REPLIES = {kind: DEFAULT_LANGUAGES.text(kind, "en") for kind in SMALL_TALK_KINDS}


def small_talk(question: str, languages: LanguageConfig = DEFAULT_LANGUAGES) -> str | None:
    """``greeting``, ``thanks``, ``ack`` or ``bye`` for a message made only of such words
    ("hi", "thanks a lot!", "ok great", "thank you, bye", "vielen Dank!"); ``None`` for
    anything else (a greeting in front of a question is still a question)."""
    found = languages.small_talk(question)
    return found[0] if found else None


def _plain(text: str) -> str:
    # Folded, so that a reply typed in another case or Unicode form ("GRÖSSE", an NFD "é")
    # still names its option.
    return " ".join(re.sub(r"[\W_]+", " ", fold(text)).split())


#: Words a reply needs to pick an option by the start of its answer alone, without the title:
#: fewer ("yes", "no thanks") would pick whichever option's answer happens to start that way.
SNIPPET_PICK_WORDS = 3


def _starts_within(part: str, text: str) -> bool:
    """Whether ``part`` (plain words) is in ``text`` (plain words) from the start of a word;
    its last word may be cut, as a typed reply often is."""
    return bool(part) and f" {part}" in f" {text}"


def named_options(
    reply: str,
    titles: list[str],
    snippets: list[str] | None = None,
    languages: LanguageConfig = DEFAULT_LANGUAGES,
) -> list[int]:
    """The options (0-based) of a clarifying question that a reply names. One option: by its
    number ("2", "#2", "option 2") or an ordinal ("the second one", "last", "la segunda", "die
    zweite": :meth:`LanguageConfig.choice`, every language of ``languages``). By words, the
    options whose whole title it is (several when titles repeat); narrowed to one by what the
    customer saw after a repeated title, its ``snippets`` (the start of its answer, ``""`` when
    none was shown): the title followed by part of its snippet, as the option is listed
    ("How do I reset my password? — In the mobile app"), or the start of a snippet alone
    (:data:`SNIPPET_PICK_WORDS` words at least). ``[]`` when it names none (the reply is then
    searched as a question)."""
    number = languages.choice(reply)
    if number is not None:
        number = len(titles) if number == LAST else number
        return [number - 1] if 1 <= number <= len(titles) else []
    plain = _plain(reply)
    if not plain:
        return []
    keys = [_plain(title) for title in titles]
    shown = [_plain(snippet) for snippet in snippets or [""] * len(titles)]
    whole = [i for i, key in enumerate(keys) if key == plain]
    if whole:
        return whole
    # The title, then part of its snippet (typed, or the listed option copied whole).
    with_snippet = [
        i
        for i, (key, snippet) in enumerate(zip(keys, shown, strict=True))
        if key and plain.startswith(f"{key} ") and _starts_within(plain[len(key) + 1 :], snippet)
    ]
    if with_snippet or len(plain.split()) < SNIPPET_PICK_WORDS:
        return with_snippet
    return [i for i, snippet in enumerate(shown) if snippet and snippet.startswith(plain)]


def chosen_option(
    reply: str,
    titles: list[str],
    snippets: list[str] | None = None,
    languages: LanguageConfig = DEFAULT_LANGUAGES,
) -> int | None:
    """Which option (0-based) a reply picks, when it names exactly one (:func:`named_options`);
    ``None`` otherwise."""
    named = named_options(reply, titles, snippets, languages)
    return named[0] if len(named) == 1 else None


def shown_snippets(entries: list[Entry]) -> list[str]:
    """The start of each option's answer as a clarifying question shows it after the title:
    only for titles that are the same as another option's (a KB that repeats a question), so
    that the customer can tell them apart; ``""`` for the others."""
    keys = [_plain(entry.title) for entry in entries]
    return [
        entry.snippet if keys.count(key) > 1 else ""
        for key, entry in zip(keys, entries, strict=True)
    ]


def option_titles(entries: list[Entry]) -> list[str]:
    """How a clarifying question names its options: each entry's title, and after a title that
    is the same as another option's the start of its answer (:func:`shown_snippets`)."""
    titles = [" ".join(entry.title.split()) for entry in entries]
    return [
        f"{title} — {snippet}" if snippet else title
        for title, snippet in zip(titles, shown_snippets(entries), strict=True)
    ]


def clarify_text(
    titles: list[str], languages: LanguageConfig = DEFAULT_LANGUAGES, language: str = "en"
) -> str:
    """The clarifying question: the options numbered, and what to reply, in ``language``.
    (Quoted titles in one sentence read badly when they are questions themselves: 'Did you
    mean "A?" or "B?"?'.)"""
    listed = "\n".join(f"{i}. {' '.join(title.split())}" for i, title in enumerate(titles, 1))
    intro = languages.text("clarify_intro", language)
    return f"{intro}\n{listed}\n{languages.text('clarify_outro', language)}"


#: A follow-up is short in characters too: one 2,000-character "word" is no "and the fee?".
SHORT_CHARS = 60


def is_follow_up(question: str, languages: LanguageConfig = DEFAULT_LANGUAGES) -> bool:
    """True for a question that looks as if it leans on the previous one: short (3 words or
    fewer, and at most :data:`SHORT_CHARS` characters), starting with "and"/"what about", or
    pointing back with a pronoun ("how long does that take?"), in any of ``languages``' cue
    words ("¿y el envío exprés?", "wie lange dauert das?": :class:`LanguageConfig`). It says
    how far back a conversation's topic goes (:func:`conversation_topic`); whether a question
    is read with the topic, the scores decide (:meth:`Answerer.search`)."""
    short = len(question.split()) <= 3 and len(question.strip()) <= SHORT_CHARS
    return short or bool(languages.follow_up_start(question) or languages.points_back(question))


#: How much of the conversation a follow-up carries: the encoder reads a few hundred tokens, so
#: a long earlier question, or a chain of follow-ups, would push the new question out of what it
#: reads.
CONTEXT_CHARS = 400

#: The most earlier user turns that make a follow-up's topic.
TOPIC_TURNS = 3

#: How much a follow-up's own words count against its topic in each entry's score (see
#: :meth:`Answerer.search`).
QUESTION_SHARE = 0.5


def conversation_topic(history: list[str], languages: LanguageConfig = DEFAULT_LANGUAGES) -> str:
    """What the conversation is about, for a follow-up: the user's last turns, oldest first,
    back to the last one that stands on its own (not itself a follow-up) and at most
    :data:`TOPIC_TURNS`, within :data:`CONTEXT_CHARS` characters (the most recent first).

    The previous turn alone lost the topic at the third turn: "how much does shipping cost?" /
    "how long does it take?" / "can I get it faster?" searched the last two only. A turn that
    stands on its own starts a topic, so an earlier one does not leak into it."""
    picked: list[str] = []
    budget = CONTEXT_CHARS
    for turn in reversed(history[-TOPIC_TURNS:]):
        piece = turn[:budget].rstrip()
        if piece:
            picked.append(piece)
            budget -= len(piece) + 1
        if budget <= 0 or not is_follow_up(turn, languages):
            break
    return " ".join(reversed(picked))


def contextual_query(
    question: str, history: list[str], languages: LanguageConfig = DEFAULT_LANGUAGES
) -> str:
    """The question, with the conversation's topic (:func:`conversation_topic`) in front when
    it looks like a follow-up (:func:`is_follow_up`), so "and how long does that take?" after
    "how do I return boots" finds returns. (:meth:`Answerer.search` reads every question with
    earlier turns both alone and with the topic, and lets the confidence choose.)"""
    if history and is_follow_up(question, languages):
        topic = conversation_topic(history, languages)
        if topic:
            return f"{topic} {question}"
    return question


def visible(ch: str) -> bool:
    """Whether a character shows: not a space, nor a control or format character."""
    return not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp", "Zs")


#: Format characters a text keeps: the zero-width joiner and non-joiner (parts of emoji and of
#: Persian and Indic words) and tag characters (parts of flag emoji such as Scotland's).
KEPT_FORMAT = frozenset("\u200c\u200d") | frozenset(map(chr, range(0xE0020, 0xE0080)))


def without_controls(text: str) -> tuple[str, int]:
    """``text`` without invisible characters that change how it reads, and how many there were:
    control characters (ESC sequences, BEL, NUL, a lone CR) become a space, format characters
    (bidirectional overrides and isolates, zero-width spaces, soft hyphens; not
    :data:`KEPT_FORMAT`) go; tabs and line breaks stay (a line separator as a newline).

    With them, "I want a human\\a" was handed off as out of scope (the bell hid the request),
    "hu\\u200bman" was no word, and a right-to-left override showed the agent reading the
    hand-off event, the demo or a log another text than the one matched ("exe.png" for
    "gnp.exe")."""
    text = text.replace("\r\n", "\n")
    out: list[str] = []
    removed = 0
    for ch in text:
        kind = unicodedata.category(ch)
        if ch in "\n\t":
            out.append(ch)
        elif kind in ("Zl", "Zp"):
            out.append("\n")
        elif kind == "Cc":
            out.append(" ")
            removed += 1
        elif kind == "Cf" and ch not in KEPT_FORMAT:
            removed += 1
        else:
            out.append(ch)
    return ("".join(out), removed) if removed else (text, 0)


def clean_question(question: str) -> tuple[str, list[str]]:
    """The question stripped and cut to :data:`MAX_QUESTION_CHARS`, without control and
    format characters (:func:`without_controls`), with notes for the user; an empty question
    is an error."""
    # NFC: the same words typed in NFD (as some keyboards and macOS file names give them) are
    # then the same characters as the KB's, for every matcher and the stored turn.
    text = unicodedata.normalize("NFC", (question or "").strip())
    if not any(visible(ch) for ch in text):
        # Only control or format characters (a zero-width space, a byte-order mark, NUL) are
        # as empty as blanks; the encoder would answer them with whatever entry lies nearest.
        raise Refusal("empty_question", "the question is empty; type a question")
    notes = []
    text, removed = without_controls(text)
    text = text.strip()
    if removed:
        notes.append(f"{removed:,} invisible control or formatting character(s) were removed")
    if len(text) > MAX_QUESTION_CHARS:
        notes.append(
            f"the question had {len(text):,} characters; only the first "
            f"{MAX_QUESTION_CHARS:,} were read"
        )
        text = text[: _character_boundary(text, MAX_QUESTION_CHARS)]
    return text, notes


def _character_boundary(text: str, limit: int) -> int:
    """The largest cut at or before ``limit`` that splits no character as the reader sees
    it: not before an accent or other combining mark, a variation selector or a zero-width
    joiner, nor after a joiner (an emoji such as a family is several code points)."""
    cut = limit
    while 0 < cut < len(text) and (
        unicodedata.combining(text[cut])
        or unicodedata.category(text[cut]) in ("Mn", "Mc", "Me")
        or text[cut] in "\u200d\ufe0e\ufe0f"
        or text[cut - 1] == "\u200d"
        or 0x1F3FB <= ord(text[cut]) <= 0x1F3FF  # skin tones
    ):
        cut -= 1
    return cut or limit


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
    #: A clarifying question's options, the entry ids in the order they are numbered; the
    #: customer's next message may pick one by its number (:func:`chosen_option`).
    options: list[str] = field(default_factory=list)
    #: What a hand-off tells the customer, in their language (:meth:`Answerer.decide`); the
    #: English text when empty.
    handoff_text: str = ""

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
            "options": self.options,
        }

    @property
    def text(self) -> str:
        """What the customer sees."""
        if self.decision == "answer":
            return self.answer
        if self.decision == "clarify":
            return self.clarify
        if self.handoff_text:
            return self.handoff_text
        key = "handoff_person" if self.reason == "asked_for_person" else "handoff_unsure"
        return DEFAULT_LANGUAGES.text(key, "en")


def _entry_dict(e: Entry) -> dict[str, Any]:
    return {
        "id": e.id,
        "question": e.question,
        "heading": e.heading,
        "category": e.category,
        "source": e.source,
        "kind": e.kind,
        "answer": e.answer,
    }


def kb_stamp(kb_dir: Path) -> tuple[int, ...]:
    """When the files an answerer reads last changed (``kb.json``, the index's current
    generation, the calibration, the classifier, the languages: the inode, size and time of
    each, :func:`~tunesmith.io.change_stamp`): a server compares it with the one it loaded to
    tell that a re-index, calibrate or train rewrote the KB since."""
    names = (
        META, f"{INDEX_DIR}/CURRENT", CALIBRATION, f"{CLASSIFIER_DIR}/config.json", LANGUAGE_FILE,
    )  # fmt: skip
    return change_stamp(kb_dir / name for name in names)


class Answerer:
    """A loaded KB: encoder, index, optional lexical and intent scores, calibration."""

    #: The KB's languages, phrases and wording (``KB/language.json``; set when loaded).
    languages: LanguageConfig = DEFAULT_LANGUAGES

    def __init__(
        self,
        kb_dir: str | Path,
        *,
        encoder: Any = None,
        intent: IntentModel | None = None,
        lexical: Lexical | None = None,
        device: str = "cpu",
        meta: dict[str, Any] | None = None,
        loaded_stamp: tuple[int, ...] | None = None,
    ) -> None:
        """Load the KB at ``kb_dir``; its models (encoder, intent classifier) run on ``device``
        (``--device``), an ``encoder`` or ``intent`` classifier given where it already is (a
        reload's: the ones ``meta`` names, unchanged). ``lexical``: the serving copy's BM25
        index, used when built from the same entries in the same languages.

        ``meta``: the ``kb.json`` to load, read by the caller after taking ``loaded_stamp``
        (:func:`kb_stamp`); both are taken here when not given. Every part is then loaded from
        that one ``kb.json``: one generation, whatever a writer switches meanwhile."""
        self.kb_dir = Path(kb_dir)
        if meta is None:
            loaded_stamp = kb_stamp(self.kb_dir)
            meta = read_meta(self.kb_dir)
        self.loaded_stamp = kb_stamp(self.kb_dir) if loaded_stamp is None else loaded_stamp
        self.meta = meta
        self.languages = read_language_config(self.kb_dir, self.meta)
        self.calibration = Calibration.load_for(self.kb_dir, self.meta)
        if self.calibration is None:
            raise UserInputError(
                f"{self.kb_dir}: the knowledge base has no calibration yet; fit one on labelled "
                "questions with `tunesmith support calibrate --kb KB --data questions.csv` "
                "(or `support train`)"
            )
        self.encoder = encoder or load_encoder(self.kb_dir, device=device, meta=self.meta)
        self.index = open_index(self.kb_dir, self.encoder, self.meta)
        entries = stored_entries(self.index)
        weights = self.calibration.weights
        lexical = (
            load_lexical(self.kb_dir, self.meta, entries, self.languages.languages, built=lexical)
            if weights.lexical
            else None
        )
        classifier = classifier_path(self.kb_dir, self.meta)
        # The confidence was fitted on the classifier's scores whenever it existed then, even
        # where its ranking weight is zero: load it exactly when the calibration read it.
        wanted = weights.intent or self.calibration.uses_classifier
        if wanted and classifier.exists():
            renamed = renamed_in(self.meta)
            # A re-index may have renamed ids under the same classifier: labels from this meta.
            intent = (
                intent.relabelled(renamed)
                if intent is not None
                else IntentModel(classifier, device=device, renamed=renamed)
            )
        else:
            intent = None
        self.scorer = Scorer(self.index, entries, lexical, intent, weights)
        # One model for every thread: torch and FAISS calls are serialised here.
        self._lock = threading.Lock()

    @property
    def entries(self) -> list[Any]:
        return self.scorer.entries

    def ask(self, question: str, history: list[str] | None = None) -> Answer:
        """Answer, clarify or hand off ``question``; ``history`` is the user's earlier turns."""
        text, notes = clean_question(question)
        talk = self.languages.small_talk(text)
        if talk and not asks_for_person(text, self.languages):
            # "thanks!" after an answer was searched as a short follow-up and answered with the
            # same entry again; alone, "hi" or "bye" was handed off to a person as out of scope.
            kind, language = talk
            return Answer(
                text, text, "clarify", 0.0, 0.0, "small_talk",
                clarify=self.languages.text(kind, language), notes=notes,
            )  # fmt: skip
        query, candidates = self.search(text, history or [])
        return self.decide(text, query, candidates, notes)

    def entry(self, entry_id: str) -> Entry | None:
        """The KB's entry of that id; ``None`` when the KB has none (it changed since)."""
        index = self.scorer.position.get(entry_id)
        return None if index is None else self.scorer.entries[index]

    def answer_choice(self, question: str, options: list[str], query: str) -> Answer | None:
        """The answer when ``question`` picks one of a clarifying question's ``options``
        (entry ids) by its number, an ordinal, its title or what was shown of its answer
        (:func:`named_options`); ``None`` when it names none.

        The turn is answered from the entry the customer chose (confidence 1: they said it is
        the one), and keeps the clarified ``query``, so that a helpful rating exports the
        question as it was asked, not "2". A title that several options share is asked about
        again, listing only those (reason ``narrowed``): typed whole, it matched both and was
        searched as a new question."""
        text, notes = clean_question(question)
        found = [self.entry(o) for o in options]
        entries = [e for e in found if e is not None]
        if not entries or len(entries) < len(found):
            return None  # the KB changed since the question was asked
        titles = [e.title for e in entries]
        named = named_options(text, titles, shown_snippets(entries), self.languages)
        if not named:
            return None
        if len(named) > 1:
            narrowed = [entries[i] for i in named]
            language = self.languages.guess_language(query)
            clarify = f"{self.languages.text('narrowed', language)} " + clarify_text(
                option_titles(narrowed), self.languages, language
            )
            return Answer(
                text, query, "clarify", 0.0, 1.0, "narrowed", clarify=clarify,
                options=[e.id for e in narrowed], notes=notes,
            )  # fmt: skip
        entry = entries[named[0]]
        return Answer(
            text, query, "answer", 1.0, 1.0, "chosen",
            answer=entry.answer, entry=_entry_dict(entry), notes=notes,
        )  # fmt: skip

    def search(
        self, question: str, history: list[str], k: int = ASKED
    ) -> tuple[str, list[Candidate]]:
        """(the query used, its ranked candidates). With earlier turns, the question is read
        two ways: alone (without a leading "and", "what about", "so"...), and as a follow-up,
        each entry scoring the mean of its scores alone and joined to the conversation's topic
        (:func:`conversation_topic`; :func:`~tunesmith_support.scoring.fuse`): the topic says
        what the conversation is about, the follow-up what is asked about it. The reading the
        calibrated confidence is surer of is kept (alone on a tie); the query is then the
        joined text, or the question as searched alone.

        A word rule chose before: a question that was short, started with "and" or held a
        pronoun was a follow-up, anything else stood alone. It missed follow-ups without such
        words ("how long after buying?" after "do you price match" was searched alone, and
        matched the delivery-time entry best), and took questions that merely say "it" ("is it
        too late to cancel my purchase") for follow-ups. Joined alone, the topic outweighed a short
        follow-up: "how long does it take?" after "how much does shipping cost?" got the
        shipping-cost answer again at 0.99."""
        topic = conversation_topic(history, self.languages) if history else ""
        with self._lock:
            if not topic:
                return question, self.scorer.candidates([question], k=k)[0]
            # Alone, "and how long does it take?" is searched without its "and", which says
            # only that it follows on (with it, the shipping-time entry scored 0.52, not 0.65).
            bare = self.languages.without_follow_up_start(question) or question
            joined = f"{topic} {question}"
            alone, with_topic = self.scorer.components([bare, joined])
        # The confidence reads the top few candidates, whatever ``k`` the caller wants.
        depth = max(k, ASKED)
        on_its_own = rank(alone, self.scorer.weights, depth)
        as_follow_up = rank(fuse(alone, with_topic, QUESTION_SHARE), self.scorer.weights, depth)
        cal = self.calibration
        assert cal is not None
        sure_alone = cal.confidence(on_its_own)[0] if on_its_own else 0.0
        # The kept reading's own confidence, the larger of the two, is a little optimistic;
        # no other rule tried beat it clearly on validation conversations (docs/support.md).
        if as_follow_up and cal.confidence(as_follow_up)[0] > sure_alone:
            return joined, as_follow_up[:k]
        return bare, on_its_own[:k]

    def decide(
        self, question: str, query: str, candidates: list[Candidate], notes: list[str]
    ) -> Answer:
        """The decision for ranked candidates (see the module docstring)."""
        cal = self.calibration
        assert cal is not None
        p1, p3 = cal.confidence(candidates) if candidates else (0.0, 0.0)
        shown = [c.to_dict() for c in candidates]
        result = Answer(question, query, "handoff", p1, p3, candidates=shown, notes=notes)
        # The bot's own texts in the customer's language: the one they asked for a person in,
        # else the one their words look like, else the KB's first.
        language = self.languages.asks_for_person(question)
        result.handoff_text = self.languages.text(
            "handoff_person" if language else "handoff_unsure",
            language or self.languages.guess_language(question),
        )
        if language:
            result.reason = "asked_for_person"
        elif candidates and p1 >= cal.answer_threshold:
            top = candidates[0]
            result.decision, result.answer, result.entry = (
                "answer",
                top.entry.answer,
                _entry_dict(top.entry),
            )
        else:
            close = [
                c for c in candidates[:3] if candidates[0].score - c.score <= cal.clarify_margin
            ]
            if len(close) >= 2 and p3 >= cal.clarify_threshold:
                result.decision = "clarify"
                result.reason = "close_candidates"
                result.clarify = clarify_text(
                    option_titles([c.entry for c in close]),
                    self.languages,
                    self.languages.guess_language(question),
                )
                result.options = [c.entry.id for c in close]
            elif not candidates or candidates[0].score < cal.out_of_scope_score:
                result.reason = "out_of_scope"
            else:
                result.reason = "low_confidence"
        return result
