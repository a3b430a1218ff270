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


def test_a_reload_with_the_same_entries_keeps_the_bm25_index_and_rebuilds_it_when_they_change(
    kb_copy, builds
):
    # A reload after `calibrate` or `train` built the BM25 index of every entry again (10 s of
    # a 100,000-passage KB) although its entries were the same.
    from dataclasses import replace

    from tunesmith_support import scoring
    from tunesmith_support.languages import LANGUAGE_FILE
    from tunesmith_support.reload import load_answerer

    first = load_answerer(kb_copy)
    assert first.scorer.lexical is not None
    builds.clear()  # counted from here on
    built = builds
    calibration = kb_copy / "calibration.json"
    calibration.write_text(calibration.read_text(encoding="utf-8"), encoding="utf-8")
    second = load_answerer(kb_copy, previous=first)
    assert built == []
    assert second.scorer.lexical is first.scorer.lexical and second._lock is first._lock
    assert (
        second.ask("how much is shipping?").decision == first.ask("how much is shipping?").decision
    )

    # Other stop words: built again.
    (kb_copy / LANGUAGE_FILE).write_text(json.dumps({"languages": ["en", "de"]}), encoding="utf-8")
    third = load_answerer(kb_copy, previous=second)
    assert built == [len(first.entries)] and third.scorer.lexical is not second.scorer.lexical

    # An entry's text changed (a re-index): built again.
    entries = list(third.entries)
    entries[0] = replace(entries[0], answer=entries[0].answer + " Updated.")
    assert scoring.Lexical.reused(third.scorer.lexical, entries, ["en", "de"]) is not (
        third.scorer.lexical
    )
    assert scoring.Lexical.reused(third.scorer.lexical, third.entries, ["en", "de"]) is (
        third.scorer.lexical
    )
