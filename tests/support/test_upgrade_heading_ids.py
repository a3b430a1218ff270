"""Upgrading a KB whose documents have headings with letters outside ASCII: an earlier tunesmith
kept only ASCII letters in heading ids (``Größe`` -> ``garantie#gr-e``), today's keep every
script (``garantie#größe``). The first `index` after the upgrade gives those passages their new
ids; it says which, and the feedback, labelled files and intent classifier that name the old
ids follow them instead of being left out or refused."""

from __future__ import annotations

import csv
import re
from types import SimpleNamespace

import pytest

from tunesmith_support import documents, kbindex
from tunesmith_support.conversations import Conversations
from tunesmith_support.kbindex import build_index, renamed_ids
from tunesmith_support.learning import read_labelled

GUIDE = """# Garantie

## Größe

Wenn die Größe nicht passt, tauschen Sie das Produkt innerhalb von 30 Tagen um.

## Grüße

Wir senden Ihnen Grüße und eine Bestätigung per E-Mail.

## Öffnungszeiten

Der Kundendienst ist montags bis freitags von 9 bis 18 Uhr erreichbar.

## Shipping costs

Shipping within Germany costs 4.95 euros.
"""
OLD_TO_NEW = {
    "garantie#gr-e": "garantie#größe",
    "garantie#garantie-gr-e": "garantie#grüße",  # the repeat of "gr-e", named with its parent
    "garantie#ffnungszeiten": "garantie#öffnungszeiten",
}


def _ascii_slugify(text: str) -> str:
    """Yesterday's heading ids: ASCII letters and digits only."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


@pytest.fixture
def upgraded(tiny_model, tmp_path, monkeypatch):
    """A KB indexed with yesterday's heading ids, with feedback on them, then indexed again
    today; returns (KB folder, today's index report)."""
    source = tmp_path / "docs"
    source.mkdir()
    (source / "garantie.md").write_text(GUIDE, encoding="utf-8")
    (source / "faq.csv").write_text(
        "id,question,answer\nreset,How do I reset my password?,Use the link.\n", encoding="utf-8"
    )
    kb = tmp_path / "kb"
    with monkeypatch.context() as old:
        old.setattr(documents, "slugify", _ascii_slugify)
        # Yesterday's splitting code was other code: its record of the files read does not
        # hold today, so today's index splits them again (sourcerecord.settings).
        old.setattr(kbindex, "settings", lambda columns: "yesterday's code")
        build_index(source, kb, model=str(tiny_model))
    log = Conversations.open(kb / "conversations.sqlite")
    try:
        first, second = log.start(), log.start()
        for question, entry_id in [
            ("Die Größe passt nicht", "garantie#gr-e"),
            ("Wann haben Sie geöffnet?", "garantie#ffnungszeiten"),
            ("password?", "reset"),
        ]:
            answer = SimpleNamespace(
                question=question, query=question, decision="answer", reason="",
                confidence=0.9, entry={"id": entry_id}, text="...", candidates=[], options=[],
            )  # fmt: skip
            turn = log.record_turn(first, answer)
            log.add_feedback(turn, helpful=True)
        wrong = SimpleNamespace(
            question="Grüße?", query="Grüße?", decision="answer", reason="", confidence=0.8,
            entry={"id": "reset"}, text="...", candidates=[], options=[],
        )  # fmt: skip
        log.add_feedback(log.record_turn(second, wrong), correct_id="garantie#garantie-gr-e")
    finally:
        log.close()
    return kb, build_index(source, kb)


def test_index_says_which_entries_got_new_ids_and_records_them(upgraded):
    kb, report = upgraded
    assert report.renamed == OLD_TO_NEW
    assert "3 entries have new ids (garantie#gr-e -> garantie#größe, " in report.summary()
    assert renamed_ids(kb) == OLD_TO_NEW
    # the next index has nothing to rename, and keeps the record
    again = build_index(kb.parent / "docs", kb)
    assert again.renamed == {} and renamed_ids(kb) == OLD_TO_NEW


def test_export_feedback_writes_feedback_on_old_ids_under_the_new_ones(upgraded, cli, tmp_path):
    kb, _report = upgraded
    out = tmp_path / "feedback.csv"
    result = cli("support", "export-feedback", "--kb", str(kb), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "4 questions with confirmed answers" in result.output
    with out.open(encoding="utf-8") as handle:
        rows = {r["question"]: r["answer_id"] for r in csv.DictReader(handle)}
    assert rows == {
        "Die Größe passt nicht": "garantie#größe",
        "Wann haben Sie geöffnet?": "garantie#öffnungszeiten",
        "password?": "reset",
        "Grüße?": "garantie#grüße",
    }


def test_a_labelled_file_naming_old_ids_is_read_with_the_new_ones(upgraded, tmp_path):
    kb, _report = upgraded
    history = tmp_path / "history.csv"
    history.write_text(
        "question,answer_id\nPasst die Größe?,garantie#gr-e\nAbholung?,\n", encoding="utf-8"
    )
    known = set(OLD_TO_NEW.values()) | {"garantie#shipping-costs", "reset"}
    rows = read_labelled([history], known, renamed=renamed_ids(kb))
    assert [r.answer_id for r in rows] == ["garantie#größe", ""]


def test_an_intent_classifier_trained_on_old_ids_scores_the_entries_under_their_new_ones(
    upgraded,
):
    from tunesmith.testing import make_tiny_classifier
    from tunesmith_support.kbindex import CLASSIFIER_DIR
    from tunesmith_support.scoring import IntentModel

    kb, _report = upgraded
    labels = ["garantie#ffnungszeiten", "garantie#gr-e", "reset"]
    make_tiny_classifier(kb / CLASSIFIER_DIR, labels, ["Größe", "password", "Uhr"])
    assert IntentModel(kb / CLASSIFIER_DIR).labels == [
        "garantie#öffnungszeiten",
        "garantie#größe",
        "reset",
    ]


def test_an_agent_s_correct_id_from_before_the_upgrade_is_stored_under_the_new_one(upgraded, cli):
    kb, _report = upgraded
    # Turn 4 ("Grüße?") was answered with "reset"; the agent names the right passage by the id
    # their notes, a hand-off event or an old export still show. It was refused: "no entry".
    result = cli("support", "feedback", "--kb", str(kb), "--turn", "4", "--correct-id",
                 "garantie#gr-e")  # fmt: skip
    assert result.exit_code == 0, result.output
    log = Conversations.open(kb / "conversations.sqlite")
    try:
        assert log.feedback()[-1]["correct_id"] == "garantie#größe"
        # Turn 1 was answered with "garantie#gr-e", the same passage: a confirmation.
        log.add_feedback(1, correct_id="garantie#größe", note="checked", renamed=renamed_ids(kb))
        newest = log.feedback()[-1]
        assert (newest["turn_id"], newest["helpful"], newest["correct_id"]) == (1, 1, None)
    finally:
        log.close()
