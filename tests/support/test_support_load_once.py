"""The support commands load the encoder (torch and transformers: seconds) only when they encode,
and once."""

from __future__ import annotations

import csv
import json

import pytest

from tunesmith_support.sample import sample_paths

FAQ = [
    {"id": "a", "question": "how do I reset my password", "answer": "Use the reset link."},
    {"id": "b", "question": "how much is shipping", "answer": "Shipping is free."},
]


def write_faq(path, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["id", "question", "answer"])
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def encoder_loads(monkeypatch):
    """The models ``Encoder.load`` is asked for from now on (the loads still happen)."""
    from tunesmith.retrieval import Encoder

    asked: list[str] = []
    original = Encoder.load

    def counted(cls, location, *args, **kwargs):
        asked.append(str(location))
        return original(location, *args, **kwargs)

    monkeypatch.setattr(Encoder, "load", classmethod(counted))
    return asked


def test_reindexing_an_unchanged_kb_loads_no_encoder_and_a_changed_one_loads_it_once(
    tmp_path, tiny_model, encoder_loads
):
    from tunesmith_support.kbindex import build_index

    src = write_faq(tmp_path / "faq.csv", FAQ)
    kb = tmp_path / "kb"
    build_index(src, kb, model=str(tiny_model))
    meta = json.loads((kb / "kb.json").read_text())
    encoder_loads.clear()

    same = build_index(src, kb)
    assert (same.unchanged, same.added, same.updated) == (2, 0, 0)
    assert encoder_loads == []
    again = json.loads((kb / "kb.json").read_text())
    assert (again["encoder"], again["dim"]) == (meta["encoder"], meta["dim"])
    assert same.encoder == meta["encoder"]

    write_faq(src, [dict(FAQ[0], answer="Click 'Forgot password'."), FAQ[1]])
    changed = build_index(src, kb)
    assert (changed.unchanged, changed.updated) == (1, 1)
    assert encoder_loads == [str(tiny_model)]


def test_export_feedback_loads_no_encoder(kb_copy, cli, tmp_path, encoder_loads):
    from tunesmith_support.service import SupportService

    service = SupportService(kb_copy)
    try:
        turn = service.ask("how much is shipping?")
        service.feedback(turn.turn_id, correct_id=service.answerer.entries[0].id)
    finally:
        service.close()
    encoder_loads.clear()
    out = tmp_path / "feedback.csv"
    result = cli("support", "export-feedback", "--kb", str(kb_copy), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "1 questions with confirmed answers" in result.output
    assert encoder_loads == []


def test_calibrate_loads_the_encoder_once(kb_copy, cli, encoder_loads):
    result = cli("support", "calibrate", "--kb", str(kb_copy), "--data",
                 str(sample_paths()["history"]), "--target-precision", "0.5")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(encoder_loads) == 1


def test_feedback_checks_the_entry_id_without_loading_the_encoder(kb_copy, cli, encoder_loads):
    from tunesmith_support.service import SupportService

    service = SupportService(kb_copy)
    try:
        turn = service.ask("how much is shipping?")
        entry_id = service.answerer.entries[0].id
    finally:
        service.close()
    encoder_loads.clear()
    ok = cli("support", "feedback", "--kb", str(kb_copy), "--turn", str(turn.turn_id),
             "--correct-id", entry_id)  # fmt: skip
    assert ok.exit_code == 0, ok.output
    unknown = cli("support", "feedback", "--kb", str(kb_copy), "--turn", str(turn.turn_id),
                  "--correct-id", "no-such-entry")  # fmt: skip
    assert unknown.exit_code == 2
    assert "no entry 'no-such-entry'" in unknown.output
    assert encoder_loads == []


def test_ask_in_a_conversation_that_does_not_exist_says_so_before_loading_the_encoder(
    kb_copy, cli, encoder_loads
):
    result = cli("support", "ask", "--kb", str(kb_copy), "--conversation", "nope", "hello?")
    assert result.exit_code == 2
    assert "no conversation 'nope'" in result.output
    assert encoder_loads == []
