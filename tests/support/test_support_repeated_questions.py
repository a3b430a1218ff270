"""A KB that repeats a question: candidates and clarifying options a customer can tell apart."""

from __future__ import annotations

from types import SimpleNamespace

from support_stubs import clear_winner_calibration

from tunesmith_support import demo
from tunesmith_support.answer import Answerer
from tunesmith_support.kb import Entry
from tunesmith_support.scoring import Candidate

WEB = "Open the website, choose Settings, then Security, and press Reset password."
APP = "In the mobile app, tap your picture, then Account, then Change password."


def _answerer() -> Answerer:
    """An answerer whose confidence is high only for a clear winner (no KB needed)."""
    answerer = Answerer.__new__(Answerer)
    answerer.calibration = clear_winner_calibration()
    return answerer


def _repeated(score_web: float = 0.56, score_app: float = 0.55) -> list[Candidate]:
    web = Entry(id="faq-1", question="How do I reset my password?", answer=WEB)
    app = Entry(id="faq-2", question="How do I reset my  password?", answer=APP)
    other = Entry(id="faq-3", question="How do I close my account?", answer="Write to us.")
    return [
        Candidate(web, score_web, score_web, score_web, score_web),
        Candidate(app, score_app, score_app, score_app, score_app),
        Candidate(other, 0.2, 0.2, 0.2, 0.2),
    ]


def test_a_clarifying_question_tells_apart_options_with_the_same_title():
    result = _answerer().decide("reset password", "reset password", _repeated(), [])
    assert result.decision == "clarify" and result.options == ["faq-1", "faq-2"]
    lines = result.clarify.splitlines()
    assert lines[1] == f"1. How do I reset my password? — {WEB}"
    assert lines[2] == f"2. How do I reset my password? — {APP}"


def test_options_with_different_titles_are_listed_by_title_alone():
    cands = _repeated()
    cands[1] = Candidate(cands[2].entry, 0.55, 0.55, 0.55, 0.55)
    result = _answerer().decide("q", "q", cands, [])
    assert result.clarify.splitlines()[1:3] == [
        "1. How do I reset my password?",
        "2. How do I close my account?",
    ]


def test_a_long_answer_snippet_is_cut_at_a_word():
    entry = Entry(id="x", question="q", answer="word " * 40)
    assert entry.snippet.endswith("word…") and len(entry.snippet) <= 80


def test_candidates_carry_an_answer_snippet_and_the_demo_panel_shows_it():
    shown = [c.to_dict() for c in _repeated()]
    assert [c["snippet"] for c in shown[:2]] == [WEB, APP]
    answer = SimpleNamespace(decision="clarify", confidence=0.7, notes=[], entry=None,
                             reason="close_candidates", candidates=shown)  # fmt: skip
    _decision, source = demo.describe(SimpleNamespace(answer=answer, handoff_event=None))
    lines = [line for line in source.splitlines() if line.startswith("- ")]
    assert "Open the website" in lines[0] and "In the mobile app" in lines[1]
