"""The demo's pieces without a browser: explanations, uploads, escaping."""

from __future__ import annotations

import json

import pytest

from tunesmith.errors import UserInputError
from tunesmith_support import demo


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    demo._services.clear()
    yield tmp_path
    for service in demo._services.values():
        service.close()
    demo._services.clear()


def test_why_this_answer_highlights_words_of_question_and_entry(kb_copy, home):
    state = {
        "turn_id": 1,
        "query": "how much does shipping cost",
        "entry_text": "Shipping is $6.95.",
    }
    query_words, entry_words, note = demo.explain(str(kb_copy), state)
    assert "".join(piece for piece, _ in query_words) == state["query"]
    assert "".join(piece for piece, _ in entry_words) == state["entry_text"]
    assert any(score for _, score in query_words) and "Similarity" in note
    with pytest.raises(UserInputError, match="Ask a question"):
        demo.explain(str(kb_copy), {})


def test_turn_description_escapes_markup(kb_copy, home):
    service = demo.service_for(str(kb_copy))
    turn = service.ask("<script>alert(1)</script> talk to a human")
    decision, source = demo.describe(turn)
    assert "Handed off to a person" in decision and "you asked for a person" in decision
    assert "<script>" not in decision + source


def test_uploaded_kb_is_calibrated_by_an_uploaded_question_file(kb_copy, home, tmp_path):
    faq = tmp_path / "faq.csv"
    rows = [f"f{i},how do I do thing {i},You do thing {i} like this." for i in range(12)]
    faq.write_text("id,question,answer\n" + "\n".join(rows) + "\n", encoding="utf-8")
    labelled = tmp_path / "questions.csv"
    lines = [f"thing {i} how,f{i}" for i in range(12)] + [f"unrelated {i}," for i in range(10)]
    labelled.write_text("question,answer_id\n" + "\n".join(lines) + "\n", encoding="utf-8")
    kb, note = demo.build_uploaded_kb([str(faq), str(labelled)], str(kb_copy))
    assert "calibrated on 22 uploaded questions" in note
    assert json.loads((kb / "kb.json").read_text())["entries"] == 12

    borrowed, note = demo.build_uploaded_kb([str(faq)], str(kb_copy))
    assert "current knowledge base's calibration" in note
    assert (borrowed / "calibration.json").read_bytes() == (
        kb_copy / "calibration.json"
    ).read_bytes()
    assert demo.service_for(str(borrowed)).ask("how do I do thing 3").answer.candidates
