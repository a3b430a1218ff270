from __future__ import annotations

import csv
import json

import pytest

from tunesmith.errors import DataError, UserInputError
from tunesmith_support.kb import FaqColumns, read_sources
from tunesmith_support.kbindex import build_index, load_encoder, open_index, stored_entries
from tunesmith_support.sample import sample_paths


def write_faq(path, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["id", "question", "answer", "category"])
        writer.writeheader()
        writer.writerows(rows)
    return path


FAQ = [
    {
        "id": "a",
        "question": "how do I reset my password",
        "answer": "Use the reset link.",
        "category": "account",
    },
    {
        "id": "b",
        "question": "how much is shipping",
        "answer": "Shipping is free.",
        "category": "shipping",
    },
    {
        "id": "c",
        "question": "can I return boots",
        "answer": "Within 60 days.",
        "category": "returns",
    },
]


def test_sample_questions_name_entries_of_the_sample_kb():
    ids = {e.id for e in read_sources(sample_paths()["kb"])}
    assert len([i for i in ids if "#" not in i]) == 60
    for name in ("history", "questions"):
        with sample_paths()[name].open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        wanted = {r["answer_id"] for r in rows if r["answer_id"]}
        assert wanted <= ids, wanted - ids
        assert any(not r["answer_id"] for r in rows)  # some are out of scope


def test_directory_kb_mixes_faq_rows_and_document_passages():
    entries = read_sources(sample_paths()["kb"])
    kinds = {e.kind for e in entries}
    assert kinds == {"faq", "passage"}
    passage = next(e for e in entries if e.id == "store-info#opening-hours")
    assert passage.heading == "Our stores > Opening hours"  # the page title has no text
    assert passage.source.endswith("store-info.html")


def test_reindex_updates_only_changed_entries_and_removes_deleted(tmp_path, tiny_model):
    src = tmp_path / "src"
    src.mkdir()
    write_faq(src / "faq.csv", FAQ)
    kb = tmp_path / "kb"
    first = build_index(src, kb, model=str(tiny_model))
    assert (first.added, first.updated, first.removed) == (3, 0, 0)

    changed = [dict(FAQ[0], answer="Click 'Forgot password'."), FAQ[1]]  # 'c' deleted
    changed.append({"id": "d", "question": "do you ship abroad", "answer": "Yes.", "category": ""})
    write_faq(src / "faq.csv", changed)
    second = build_index(src, kb)
    assert (second.added, second.updated, second.removed, second.unchanged) == (1, 1, 1, 1)

    index = open_index(kb, load_encoder(kb))
    entries = {e.id: e for e in stored_entries(index)}
    assert set(entries) == {"a", "b", "d"}
    assert entries["a"].answer == "Click 'Forgot password'."
    assert "c::q" not in index and "c::a" not in index
    assert json.loads((kb / "kb.json").read_text())["entries"] == 3


def test_duplicate_id_with_different_content_names_the_file_and_row(tmp_path):
    rows = [*FAQ, dict(FAQ[0], answer="Something else.")]
    path = write_faq(tmp_path / "faq.csv", rows)
    with pytest.raises(DataError, match=r"faq\.csv:5: duplicate id 'a' with different content"):
        read_sources(path)


def test_identical_duplicate_rows_are_kept_once(tmp_path):
    path = write_faq(tmp_path / "faq.csv", [*FAQ, FAQ[0]])
    assert [e.id for e in read_sources(path)] == ["a", "b", "c"]


def test_rows_without_ids_get_ids_that_follow_the_question(tmp_path):
    path = tmp_path / "faq.jsonl"
    path.write_text(
        '{"q": "hi there", "a": "hello"}\n{"q": "bye", "a": "see you"}\n', encoding="utf-8"
    )
    first = read_sources(path, FaqColumns(question="q", answer="a"))
    again = read_sources(path, FaqColumns(question="q", answer="a"))
    assert [e.id for e in first] == [e.id for e in again]
    assert len({e.id for e in first}) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no rows"),
        ("id,question,answer\n1,,an answer\n", r":2, column 'question': empty question"),
        ("id,text,reply\n1,q,a\n", "no question column 'question'"),
    ],
)
def test_empty_or_malformed_faq_files_are_one_error(tmp_path, content, message):
    path = tmp_path / "faq.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_sources(path)


def test_a_faq_with_a_broken_header_is_one_short_error(tmp_path):
    # an unclosed quote made one 200,000-character "column", echoed whole in the message
    path = tmp_path / "faq.csv"
    path.write_text("q" * 200_000 + ",a\nx,y\n", encoding="utf-8")
    with pytest.raises(DataError, match="no question column") as caught:
        read_sources(path)
    assert len(str(caught.value)) < 400


def test_named_id_column_must_exist(tmp_path, cli):
    path = write_faq(tmp_path / "faq.csv", FAQ)
    result = cli(
        "support", "index", "--kb", str(path), "--out", str(tmp_path / "kb"), "--id-col", "key"
    )
    assert result.exit_code == 2
    assert "no id column 'key'" in result.output


def test_bad_source_leaves_the_existing_kb_as_it_was(tmp_path, tiny_model):
    src = tmp_path / "faq.csv"
    write_faq(src, FAQ)
    kb = tmp_path / "kb"
    build_index(src, kb, model=str(tiny_model))
    before = (kb / "kb.json").read_text()
    src.write_text("id,question,answer\nx,,broken\n", encoding="utf-8")
    with pytest.raises(DataError):
        build_index(src, kb)
    assert (kb / "kb.json").read_text() == before
    assert len(stored_entries(open_index(kb, load_encoder(kb)))) == 3


def test_kb_built_with_another_encoder_is_refused_in_one_line(tmp_path, tiny_model, cli):
    from tunesmith.testing import make_tiny_base_model

    src = write_faq(tmp_path / "faq.csv", FAQ)
    kb = tmp_path / "kb"
    build_index(src, kb, model=str(tiny_model))
    other = make_tiny_base_model(tmp_path / "other", ["some other words"], seed=3)
    with pytest.raises(UserInputError, match="built with another encoder"):
        build_index(src, kb, model=str(other))
    result = cli("support", "index", "--kb", str(src), "--out", str(kb), "--model", str(other))
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("Error:")


def test_reindexing_a_kb_kept_inside_its_source_folder_skips_the_kb_own_files(tmp_path, tiny_model):
    # `index --kb . --out kb` twice: the second run read kb/kb.json and the index's JSON
    # files as FAQ files and failed.
    write_faq(tmp_path / "faq.csv", FAQ)
    kb = tmp_path / "kb"
    build_index(tmp_path, kb, model=str(tiny_model))
    report = build_index(tmp_path, kb)
    assert (report.entries, report.unchanged) == (3, 3)


def test_first_index_killed_before_kb_json_can_be_run_again(tmp_path, tiny_model):
    src = write_faq(tmp_path / "faq.csv", FAQ)
    kb = tmp_path / "kb"
    build_index(src, kb, model=str(tiny_model))
    (kb / "kb.json").unlink()  # what a kill before the last write leaves: the index alone
    report = build_index(src, kb, model=str(tiny_model))
    assert (report.added, report.entries) == (3, 3)
    assert len(stored_entries(open_index(kb, load_encoder(kb)))) == 3


def test_index_refuses_and_keeps_a_folder_holding_other_files(tmp_path, tiny_model):
    src = write_faq(tmp_path / "faq.csv", FAQ)
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(UserInputError, match="not a knowledge base"):
        build_index(src, kb, model=str(tiny_model))
    assert (kb / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_documents_with_the_same_name_in_two_folders_get_distinct_passage_ids(tmp_path):
    for folder in ("billing", "shipping"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "README.md").write_text(
            f"# Overview\n\nHow {folder} works here.\n", encoding="utf-8"
        )
    (tmp_path / "returns.md").write_text("# Overview\n\nReturns within 60 days.\n")
    ids = sorted(e.id for e in read_sources(tmp_path))
    # a unique name keeps its short id; the two READMEs are told apart by their paths
    assert ids == ["billing/README.md#overview", "returns#overview", "shipping/README.md#overview"]


def _kb_from_a_relative_model_folder(tmp_path, tiny_model, monkeypatch):
    """A KB indexed from ``work`` with ``--model runs/enc``; returns ``work``."""
    import shutil

    work = tmp_path / "work"
    shutil.copytree(tiny_model, work / "runs" / "enc")
    src = write_faq(tmp_path / "faq.csv", FAQ)
    monkeypatch.chdir(work)
    build_index(src, work / "kb", model="runs/enc")
    return work


def test_a_kb_indexed_with_a_relative_model_directory_opens_from_any_folder(
    tmp_path, tiny_model, monkeypatch
):
    # `support index --model runs/enc` recorded "runs/enc" as typed, so `calibrate` or `ask`
    # run from another folder looked for it there (and said to pass --allow-network).
    work = _kb_from_a_relative_model_folder(tmp_path, tiny_model, monkeypatch)
    assert json.loads((work / "kb" / "kb.json").read_text())["model"] == str(work / "runs" / "enc")
    monkeypatch.chdir(tmp_path)
    assert len(stored_entries(open_index(work / "kb", load_encoder(work / "kb")))) == 3


def test_a_kb_indexed_before_the_model_folder_was_recorded_absolute_opens_from_any_folder(
    tmp_path, tiny_model, monkeypatch
):
    # Upgrading keeps a KB whose kb.json holds the model folder as it was typed ("runs/enc",
    # as the previous version wrote it): from another folder that named no model directory.
    work = _kb_from_a_relative_model_folder(tmp_path, tiny_model, monkeypatch)
    meta_path = work / "kb" / "kb.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "model": "runs/enc"}))  # the old kb.json
    monkeypatch.chdir(tmp_path)
    assert len(stored_entries(open_index(work / "kb", load_encoder(work / "kb")))) == 3


def test_a_missing_model_directory_is_not_answered_with_a_flag_support_lacks(tmp_path, cli):
    # The core's message said "pass --allow-network", which no support command takes.
    src = write_faq(tmp_path / "faq.csv", FAQ)
    result = cli("support", "index", "--kb", str(src), "--out", str(tmp_path / "kb"), "-m", "enc")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "model directory enc does not exist" in result.output
    assert "--allow-network" not in result.output


def test_an_empty_file_in_a_folder_is_skipped_and_reported_not_fatal(tmp_path, tiny_model, cli):
    # One placeholder (a 0-byte notes.md, a CSV with a header only) stopped the import of
    # every other file in the folder.
    src = tmp_path / "src"
    (src / "docs").mkdir(parents=True)
    write_faq(src / "faq.csv", FAQ)
    (src / "docs" / "notes.md").write_text("", encoding="utf-8")
    (src / "new.csv").write_text("id,question,answer\n", encoding="utf-8")
    skipped: list[str] = []
    assert [e.id for e in read_sources(src, skipped=skipped)] == ["a", "b", "c"]
    assert skipped == [
        "docs/notes.md: the document has no text",
        "new.csv: the FAQ file has no rows",
    ]
    kb = tmp_path / "kb"
    result = cli("support", "index", "--kb", str(src), "--out", str(kb), "--model",
                 str(tiny_model), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["entries"] == 3 and report["skipped"] == skipped
    # Named alone, an empty file is still an error; so is a folder of empty files only.
    with pytest.raises(DataError, match="notes.md: the document has no text"):
        read_sources(src / "docs" / "notes.md")
    (src / "faq.csv").unlink()
    with pytest.raises(UserInputError, match="every knowledge-base file is empty"):
        read_sources(src)
