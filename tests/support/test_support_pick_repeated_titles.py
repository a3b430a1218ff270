"""Replying to a clarifying question whose options share a title (a KB that repeats a question):
by the title and what was shown of the answer, or by the title alone (asked again). A stub
scorer stands in for the encoder, so these run without a model."""

from __future__ import annotations

import pytest
from support_stubs import ScriptedScorer, scripted_answerer

from tunesmith_support.answer import chosen_option, named_options
from tunesmith_support.kb import Entry
from tunesmith_support.scoring import Candidate
from tunesmith_support.service import SupportService

TITLE = "How do I reset my password?"
WEB = "Open the website, choose Settings, then Security, and press Reset password."
APP = "In the mobile app, tap your picture, then Account, then Change password."
ENTRIES = [
    Entry(id="faq-1", question=TITLE, answer=WEB),
    Entry(id="faq-2", question="How do I reset my  password?", answer=APP),
    Entry(id="faq-3", question="How do I change my e-mail address?", answer="Under Account."),
]


class _Scorer(ScriptedScorer):
    """A password question: the three entries close (a clarify); anything else: nothing."""

    def __init__(self) -> None:
        super().__init__(ENTRIES)

    def candidates(self, queries, k=5):
        out = []
        for q in queries:
            scores = [0.56, 0.555, 0.55] if "password" in q.lower() else [0.2, 0.1, 0.05]
            out.append([Candidate(e, s, s, s, s) for e, s in zip(ENTRIES, scores, strict=True)])
        return out


@pytest.fixture
def service(tmp_path):
    svc = SupportService(tmp_path / "kb", answerer=scripted_answerer(_Scorer()))
    yield svc
    svc.close()


def _clarified(service):
    first = service.ask("forgot my password")
    assert first.answer.options == ["faq-1", "faq-2", "faq-3"]
    assert f"1. {TITLE} — {WEB}\n2. {TITLE} — {APP}\n3. " in first.answer.text
    return first


@pytest.mark.parametrize(
    "reply, chosen",
    [
        (f"{TITLE} — {APP}", "faq-2"),  # the listed option copied whole
        (f"{TITLE} — {WEB}", "faq-1"),
        ("how do i reset my password in the mobile app", "faq-2"),  # title and part of it
        ("How do I reset my password? then Security", "faq-1"),
        ("in the mobile ap", "faq-2"),  # the start of the answer alone, cut short
        ("Open the website", "faq-1"),
        ("How do I change my e-mail address?", "faq-3"),
    ],
)
def test_a_reply_naming_a_repeated_title_and_its_answer_picks_that_option(service, reply, chosen):
    # Typed whole, either option's line matched both titles and was searched as a new question.
    first = _clarified(service)
    turn = service.ask(reply, first.conversation_id)
    assert (turn.answer.decision, turn.answer.reason) == ("answer", "chosen")
    assert turn.answer.entry["id"] == chosen


def test_a_title_several_options_share_is_asked_about_again_listing_only_those(service):
    first = _clarified(service)
    again = service.ask("how do I reset my password", first.conversation_id)
    assert (again.answer.decision, again.answer.reason) == ("clarify", "narrowed")
    assert again.answer.options == ["faq-1", "faq-2"]
    assert f"1. {TITLE} — {WEB}\n2. {TITLE} — {APP}\nReply" in again.answer.text
    assert again.handoff_event is None
    turn = service.ask("2", first.conversation_id)
    assert (turn.answer.reason, turn.answer.entry["id"]) == ("chosen", "faq-2")
    # A helpful rating exports the question that was first clarified, not the typed title.
    service.feedback(turn.turn_id, helpful=True)
    assert service.conversations.training_rows() == [
        {"question": "forgot my password", "answer_id": "faq-2"}
    ]


def test_a_reply_matching_neither_the_title_nor_a_shown_answer_is_searched(service):
    first = _clarified(service)
    for reply in ("in the app", "How do I reset my password? by phone", "Under Account please"):
        assert named_options(reply, [e.title for e in ENTRIES], [WEB, APP, ""]) == []
    assert service.ask("by phone?", first.conversation_id).answer.reason != "chosen"


def test_an_answers_start_picks_only_where_it_was_shown_and_only_when_unambiguous():
    titles = ["A?", "A?", "B?"]
    # "Under Account" was not shown (B's title is not repeated): no pick by it.
    assert chosen_option("Under Account.", titles, ["Yes, online.", "Yes, in a shop.", ""]) is None
    assert named_options("yes online", titles, ["Yes, online.", "Yes, online!", ""]) == []
    same = ["Yes, online now.", "Yes, online now!", ""]
    assert named_options("yes online now", titles, same) == [0, 1]
    assert chosen_option("a yes online", titles, ["Yes, online.", "Yes, in a shop.", ""]) == 0


def test_the_demo_says_a_reply_matched_several_options_not_a_confidence_of_zero(service):
    from tunesmith_support import demo

    first = _clarified(service)
    again = service.ask(TITLE, first.conversation_id)
    decision, _source = demo.describe(again)
    assert decision.startswith("**Decision: clarify** (the reply matches more than one option)")
    assert "0%" not in decision
