"""Bugs found by using the support plugin as a stranger would, each pinned by a test."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest

from tunesmith.errors import DataError
from tunesmith_support.conversations import Conversations
from tunesmith_support.kb import read_sources
from tunesmith_support.kbindex import build_index, load_encoder, open_index, stored_entries

FAQ = [
    {"id": "a", "question": "how do I reset my password", "answer": "Use the reset link."},
    {"id": "b", "question": "how much is shipping", "answer": "Shipping is free."},
]
GUIDE = "# Returns\n\nBring the boots back within 60 days with the receipt.\n"


def write_csv(path, rows, fields=("id", "question", "answer")):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(fields))
        writer.writeheader()
        writer.writerows(rows)
    return path


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error:") and result.output.count("\n") == 1, result.output
    return result.output


# ---------------------------------------------------------------- a moved source file


def test_reindex_after_files_are_renamed_or_moved_names_their_new_source_without_reencoding(
    tmp_path, tiny_model
):
    src = tmp_path / "src"
    (src / "guides").mkdir(parents=True)
    write_csv(src / "faq.csv", FAQ)
    (src / "guides" / "returns.md").write_text(GUIDE, encoding="utf-8")
    kb = tmp_path / "kb"
    build_index(src, kb, model=str(tiny_model))
    before = open_index(kb, load_encoder(kb))
    vectors = {vid: before.vector(vid) for vid in before.ids()}

    (src / "faq.csv").rename(src / "shop-faq.csv")
    (src / "archive").mkdir()
    (src / "guides" / "returns.md").rename(src / "archive" / "returns.md")
    report = build_index(src, kb)

    index = open_index(kb, load_encoder(kb))
    sources = {e.id: e.source for e in stored_entries(index)}
    # The content hash leaves the source out, so the old payloads ("faq.csv") stayed.
    assert sources == {
        "a": "shop-faq.csv",
        "b": "shop-faq.csv",
        "returns#returns": "archive/returns.md",
    }
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 3, 0, 0)
    assert set(index.ids()) == set(vectors)
    for vid, vector in vectors.items():  # the payload changed, the vector was kept
        np.testing.assert_allclose(index.vector(vid), vector)
    again = build_index(src, kb)
    assert (again.updated, again.unchanged) == (0, 3)


# ---------------------------------------------------------------- column flags on re-index


def test_reindex_without_the_column_flags_keeps_the_columns_the_kb_was_built_with(
    tmp_path, tiny_model, cli
):
    src = write_csv(
        tmp_path / "faq.csv",
        [
            {"faq_id": "pay", "question": "how do I pay", "answer": "By card.", "topic": "billing"},
            {
                "faq_id": "ship",
                "question": "where is my parcel",
                "answer": "Track it.",
                "topic": "x",
            },
        ],
        fields=("faq_id", "question", "answer", "topic"),
    )
    kb = tmp_path / "kb"
    first = cli(
        "support", "index", "--kb", str(src), "--out", str(kb), "--model", str(tiny_model),
        "--id-col", "faq_id", "--category-col", "topic",
    )  # fmt: skip
    assert first.exit_code == 0, first.output
    # The nightly re-run without the flags: ids were derived from the questions instead, every
    # entry was replaced and stored feedback pointed at ids that no longer existed.
    second = cli("support", "index", "--kb", str(src), "--out", str(kb))
    assert second.exit_code == 0, second.output
    assert "0 added" in second.output and "0 removed" in second.output
    entries = {e.id: e for e in stored_entries(open_index(kb, load_encoder(kb)))}
    assert set(entries) == {"pay", "ship"} and entries["pay"].category == "billing"

    write_csv(tmp_path / "faq.csv", [{"question": "how do I pay", "answer": "By card."}],
              fields=("question", "answer"))  # fmt: skip
    output = one_line_error(cli("support", "index", "--kb", str(src), "--out", str(kb)))
    assert "no id column 'faq_id'" in output
    assert {e.id for e in stored_entries(open_index(kb, load_encoder(kb)))} == {"pay", "ship"}


def test_the_same_question_twice_without_ids_is_named_as_a_question_not_a_generated_id(tmp_path):
    path = tmp_path / "faq.csv"
    path.write_text(
        "question,answer\nHow do I pay?,By card.\nhow do i  pay?,By cash.\n", encoding="utf-8"
    )
    with pytest.raises(DataError) as caught:
        read_sources(path)
    message = str(caught.value)
    assert message.endswith(
        "faq.csv:3, column 'question': the same question twice with different content "
        "(first at faq.csv:2); give the rows an id column (--id-col) or merge them"
    )
    assert "q-" not in message


# ---------------------------------------------------------------- paths that are not files


def test_export_feedback_to_a_folder_is_one_error_line(kb_copy, cli, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    output = one_line_error(
        cli("support", "export-feedback", "--kb", str(kb_copy), "--out", str(folder))
    )
    assert "is a folder" in output
    assert list(folder.iterdir()) == [] and not list(tmp_path.glob(".exports*"))


def test_index_into_a_path_under_a_file_is_one_error_line(tmp_path, cli):
    src = write_csv(tmp_path / "faq.csv", FAQ)
    output = one_line_error(
        cli("support", "index", "--kb", str(src), "--out", str(tmp_path / "faq.csv" / "kb"))
    )
    assert "is a file, not a folder" in output


def test_a_conversation_database_under_a_file_is_one_error_line(kb_copy, cli, tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x", encoding="utf-8")
    db = blocker / "conversations.sqlite"
    output = one_line_error(
        cli("support", "ask", "--kb", str(kb_copy), "--db", str(db), "how much is shipping")
    )
    assert str(blocker) in output and "is a file, not a folder" in output


# ---------------------------------------------------------------- stats over time


def _log_with(tmp_path, turns, feedback):
    """A conversation log whose turns and feedback carry the given timestamps."""
    log = Conversations.open(tmp_path / "c.sqlite")
    conversation = log.start("cli")
    ids = []
    for created_at, decision in turns:
        answer = SimpleNamespace(
            entry={"id": "a"} if decision == "answer" else None,
            question="q",
            query="q",
            decision=decision,
            reason="",
            confidence=0.5,
            text="t",
            candidates=[],
        )
        turn_id = log.record_turn(conversation, answer)
        log.store.execute(
            "UPDATE support_turns SET created_at = ? WHERE id = ?", (created_at, turn_id)
        )
        ids.append(turn_id)
    for created_at, turn_index, helpful in feedback:
        fid = log.add_feedback(ids[turn_index], helpful=helpful)
        log.store.execute(
            "UPDATE support_feedback SET created_at = ? WHERE id = ?", (created_at, fid)
        )
    return log


def test_stats_count_feedback_given_on_a_day_without_turns(tmp_path):
    log = _log_with(
        tmp_path,
        turns=[("2025-03-03T10:00:00+00:00", "answer"), ("2025-03-03T11:00:00+00:00", "handoff")],
        feedback=[("2025-03-04T09:00:00+00:00", 0, True), ("2025-03-04T09:05:00+00:00", 1, False)],
    )
    try:
        rows = log.stats("day")
    finally:
        log.close()
    # The agent's ratings on the 4th were dropped: only days with turns were listed.
    assert [r["period"] for r in rows] == ["2025-03-03", "2025-03-04"]
    assert rows[0]["turns"] == 2 and rows[0]["feedback"] == 0
    assert rows[1]["turns"] == 0 and rows[1]["answer_rate"] is None
    assert rows[1]["feedback"] == 2 and rows[1]["helpful_rate"] == 0.5
    assert sum(r["feedback"] for r in rows) == 2


def test_stats_by_week_keep_a_week_that_spans_the_new_year_in_one_row(tmp_path):
    log = _log_with(
        tmp_path,
        turns=[("2024-12-31T10:00:00+00:00", "answer"), ("2025-01-01T10:00:00+00:00", "answer")],
        feedback=[],
    )
    try:
        rows = log.stats("week")
    finally:
        log.close()
    # Tuesday and Wednesday of one week were '2024-W53' and '2025-W00' (SQLite's %W).
    assert [(r["period"], r["turns"]) for r in rows] == [("2025-W01", 2)]


def test_stats_cli_shows_a_feedback_only_day_with_dashes(tmp_path, kb_copy, cli):
    log = _log_with(
        tmp_path,
        turns=[("2025-03-03T10:00:00+00:00", "answer")],
        feedback=[("2025-03-04T09:00:00+00:00", 0, True)],
    )
    log.close()
    db = str(tmp_path / "c.sqlite")
    result = cli("support", "stats", "--kb", str(kb_copy), "--db", db)
    assert result.exit_code == 0, result.output
    assert "2025-03-04" in result.output
    data = json.loads(cli("support", "stats", "--kb", str(kb_copy), "--db", db, "--json").stdout)
    assert [r["feedback"] for r in data] == [0, 1]


# ---------------------------------------------------------------- past questions on re-encoding


def test_tuning_the_encoder_again_keeps_the_past_questions_indexed_before(kb_copy, tiny_model):
    import shutil

    from tunesmith_support.kbindex import (
        PAST_QUESTION,
        index_past_questions,
        new_encoder_dir,
        reencode,
    )

    assert index_past_questions(kb_copy, [("is delivery free over 75 dollars", "shp-01")]) == 1
    entries = stored_entries(open_index(kb_copy, load_encoder(kb_copy)))
    tuned = new_encoder_dir(kb_copy)  # a stand-in for a freshly tuned encoder
    shutil.copytree(tiny_model, tuned)
    # `train` without --index-questions: re-encoding wrote the entries only.
    reencode(kb_copy, entries, tuned)

    index = open_index(kb_copy, load_encoder(kb_copy))
    past = [vid for vid in index.ids() if (index.get(vid) or {}).get("field") == PAST_QUESTION]
    assert len(past) == 1 and past[0].startswith("shp-01::")
    assert index.get(past[0])["text"] == "is delivery free over 75 dollars"
    hit = index.search("is delivery free over 75 dollars", k=1)[0]
    assert hit.id == past[0] and hit.score > 0.999
    assert {e.id for e in stored_entries(index)} == {e.id for e in entries}


def test_stats_helpful_rate_reads_each_turns_newest_rating_once(tmp_path):
    log = _log_with(
        tmp_path,
        turns=[("2025-03-03T10:00:00+00:00", "answer"), ("2025-03-03T11:00:00+00:00", "answer")],
        feedback=[
            ("2025-03-03T12:00:00+00:00", 0, True),  # a client sends its rating twice
            ("2025-03-03T12:00:01+00:00", 0, True),
            ("2025-03-03T12:05:00+00:00", 1, True),  # a customer changes their mind
            ("2025-03-04T09:00:00+00:00", 1, False),
        ],
    )
    try:
        rows = log.stats("day")
        exported = log.training_rows()
    finally:
        log.close()
    # Each turn counts once, on the day of its newest feedback (turn 2 on the 4th); the rate
    # reads turn 1 helpful, turn 2 not.
    assert [r["feedback"] for r in rows] == [1, 1]
    assert rows[0]["helpful_rate"] == 1.0 and rows[1]["helpful_rate"] == 0.0
    assert sum(r["feedback"] for r in rows) == 2
    assert len(exported) == 1  # export-feedback keeps turn 1 only, by the same newest rating


def test_stats_count_a_narrowed_clarify_as_a_clarification(tmp_path):
    # Pinned decision (docs/support.md, stats): a title several options share, asked about
    # again, is a clarifying question like the first; the three rates still add up to 1.
    log = _log_with(tmp_path, turns=[("2025-03-03T10:00:00+00:00", "clarify")], feedback=[])
    try:
        again = SimpleNamespace(
            entry=None, question="How do I reset my password?", query="", decision="clarify",
            reason="narrowed", confidence=1.0, text="Which of these?", candidates=[],
        )  # fmt: skip
        turn = log.record_turn(log.start("cli"), again)
        log.store.execute(
            "UPDATE support_turns SET created_at = ? WHERE id = ?",
            ("2025-03-03T10:01:00+00:00", turn),
        )
        (row,) = log.stats("day")
    finally:
        log.close()
    assert row["turns"] == 2 and row["small_talk"] == 0
    assert row["clarify_rate"] == 1.0
    assert row["answer_rate"] + row["clarify_rate"] + row["handoff_rate"] == 1.0


def test_stats_rates_are_of_questions_not_of_small_talk(tmp_path):
    log = _log_with(
        tmp_path,
        turns=[("2025-03-03T10:00:00+00:00", "answer"), ("2025-03-03T10:01:00+00:00", "handoff")],
        feedback=[],
    )
    try:
        thanks = SimpleNamespace(
            entry=None, question="thanks!", query="thanks!", decision="clarify",
            reason="small_talk", confidence=1.0, text="You're welcome!", candidates=[],
        )  # fmt: skip
        turn = log.record_turn(log.start("cli"), thanks)
        log.store.execute(
            "UPDATE support_turns SET created_at = ? WHERE id = ?",
            ("2025-03-03T10:02:00+00:00", turn),
        )
        (row,) = log.stats("day")
    finally:
        log.close()
    # "thanks!" was counted as an unanswered question: a 0.33 clarify rate from no clarify.
    assert row["turns"] == 3 and row["small_talk"] == 1
    assert row["answer_rate"] == 0.5 and row["handoff_rate"] == 0.5
    assert row["clarify_rate"] == 0.0
