from __future__ import annotations

import csv
import json

import pytest

from tunesmith_support.sample import sample_paths


def test_ask_json_gives_answer_source_confidence_and_decision(kb_copy, cli):
    result = cli("support", "ask", "--kb", str(kb_copy), "--json", "how much does shipping cost")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["decision"] in {"answer", "clarify", "handoff"}
    assert 0.0 <= data["confidence"] <= 1.0
    assert data["candidates"] and {"id", "source", "score"} <= set(data["candidates"][0])
    assert data["turn_id"] == 1 and data["conversation_id"]


def test_ask_json_continues_a_conversation(kb_copy, cli):
    first = json.loads(
        cli("support", "ask", "--kb", str(kb_copy), "--json", "how do I return boots").stdout
    )
    second = cli(
        "support",
        "ask",
        "--kb",
        str(kb_copy),
        "--json",
        "--conversation",
        first["conversation_id"],
        "how long does that take?",
    )
    assert json.loads(second.stdout)["query"] == "how do I return boots how long does that take?"


def test_empty_and_huge_questions(kb_copy, cli):
    empty = cli("support", "ask", "--kb", str(kb_copy), "  ")
    assert (
        empty.exit_code == 2 and empty.output == "Error: the question is empty; type a question\n"
    )
    huge = cli("support", "ask", "--kb", str(kb_copy), "--json", "shipping " * 12_500)
    assert huge.exit_code == 0
    data = json.loads(huge.stdout)
    assert len(data["question"]) == 2000 and "112,499 characters" in data["notes"][0]


def test_chat_answers_several_turns_and_takes_feedback(kb_copy, cli):
    script = "how much does shipping cost\n+\nand how long does that take?\n=shp-02\n\n"
    result = cli("support", "chat", "--kb", str(kb_copy), input=script)
    assert result.exit_code == 0, result.output
    assert result.output.count("feedback stored") == 2
    stats = json.loads(cli("support", "stats", "--kb", str(kb_copy), "--json").stdout)
    assert stats[0]["turns"] == 2 and stats[0]["feedback"] == 2


def test_eval_json_reports_retrieval_decisions_and_ece(kb_copy, cli):
    result = cli(
        "support",
        "eval",
        "--kb",
        str(kb_copy),
        "--data",
        str(sample_paths()["questions"]),
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["questions"] == 88 and data["out_of_scope"] == 15
    assert 0 <= data["hit@1"] <= data["hit@5"] <= 1
    assert abs(data["answer_rate"] + data["clarify_rate"] + data["handoff_rate"] - 1) < 1e-3
    assert 0 <= data["ece"] <= 1


def test_eval_on_out_of_scope_questions_only_reports_no_retrieval_figures(kb_copy, cli, tmp_path):
    # hit@1, hit@5 and MRR were 0.0 with no in-scope question: nothing was there to find
    data = tmp_path / "oos.csv"
    data.write_text("question,answer_id\nwhat is the weather,\nwho won the match,\n")
    result = cli("support", "eval", "--kb", str(kb_copy), "--data", str(data), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["in_scope"] == 0
    assert report["hit@1"] is None and report["hit@5"] is None and report["mrr"] is None


def test_eval_measures_follow_ups_on_conversations_and_standalone_questions(kb_copy, cli):
    paths = sample_paths()
    args = ["support", "eval", "--kb", str(kb_copy), "--data", str(paths["questions"])]
    result = cli(*args, "--follow-ups", str(paths["followups"]), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["follow_ups"] == 20 and data["standalone_questions"] == 88 - 15
    # Measurements, not guarantees (a random tiny model here): how often each kind of
    # question was read with the conversation's topic, and hit@1.
    for key in ("follow_up_hit@1", "follow_up_hit@1_alone", "standalone_hit@1_in_sequence",
                "follow_ups_read_with_topic", "standalone_read_with_topic"):  # fmt: skip
        assert 0 <= data[key] <= 1


def test_export_feedback_writes_rows_train_can_read(kb_copy, cli, tmp_path):
    turn = json.loads(
        cli("support", "ask", "--kb", str(kb_copy), "--json", "can I rent a kayak").stdout
    )
    assert (
        cli(
            "support",
            "feedback",
            "--kb",
            str(kb_copy),
            "--turn",
            str(turn["turn_id"]),
            "--correct-id",
            "ren-01",
        ).exit_code
        == 0
    )
    out = tmp_path / "fb.csv"
    result = cli("support", "export-feedback", "--kb", str(kb_copy), "--out", str(out))
    assert result.exit_code == 0 and "1 questions" in result.output
    assert list(csv.DictReader(out.open())) == [
        {"question": "can I rent a kayak", "answer_id": "ren-01"}
    ]


def test_calibrate_rejects_unknown_answer_ids_naming_the_row(kb_copy, cli, tmp_path):
    data = tmp_path / "q.csv"
    data.write_text(
        "question,answer_id\nhow much is shipping,shp-01\nwhat,zzz-99\n", encoding="utf-8"
    )
    result = cli("support", "calibrate", "--kb", str(kb_copy), "--data", str(data))
    assert result.exit_code == 2
    assert (
        "q.csv:3, column 'answer_id': answer id 'zzz-99' is not in the knowledge base"
        in result.output
    )


def test_not_a_kb_is_one_error_line(tmp_path, cli):
    result = cli("support", "ask", "--kb", str(tmp_path), "hello")
    assert result.exit_code == 2 and "not a knowledge base" in result.output


def test_chat_rating_before_any_answer_is_refused_not_asked_or_handed_off(kb_copy, cli):
    # "+" asked as a question was handed off to a person, and "=ID" then made it a training row.
    result = cli("support", "chat", "--kb", str(kb_copy), input="+\n=shp-01\n\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("Error: no answer to rate yet; ask a question first") == 2
    assert json.loads(cli("support", "stats", "--kb", str(kb_copy), "--json").stdout) == []
    assert not (kb_copy / "handoffs.jsonl").exists()


def test_chat_equals_without_an_id_asks_for_the_entry_id(kb_copy, cli):
    result = cli("support", "chat", "--kb", str(kb_copy), input="how much is shipping\n=\n\n")
    assert result.exit_code == 0, result.output
    assert "Error: '=' needs the right entry's id, e.g. =shp-01" in result.output


def test_export_feedback_from_a_folder_that_is_not_a_kb_says_so(tmp_path, cli):
    out = tmp_path / "fb.csv"
    result = cli("support", "export-feedback", "--kb", str(tmp_path), "--out", str(out))
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: {tmp_path}: not a knowledge base (no kb.json)")
    assert not out.exists()


def test_calibrate_on_out_of_scope_questions_only_is_refused(kb_copy, cli, tmp_path):
    # Fitted anyway, the KB answered nothing (threshold 1.01) and said nothing about it.
    data = tmp_path / "oos.csv"
    data.write_text(
        "question,answer_id\n" + "".join(f"what is the weather on day {i},\n" for i in range(25)),
        encoding="utf-8",
    )
    before = (kb_copy / "calibration.json").read_text()
    result = cli("support", "calibrate", "--kb", str(kb_copy), "--data", str(data))
    assert result.exit_code == 2
    assert result.output.startswith("Error: all 25 calibration questions are out of scope")
    assert (kb_copy / "calibration.json").read_text() == before


def test_calibrate_on_questions_it_all_gets_right_is_refused(kb_copy, cli, tmp_path):
    # The FAQ's own questions: fitted anyway, the confidence was a constant 0.999 and the KB
    # answered every question, "what is the weather" too.
    with sample_paths()["faq"].open(encoding="utf-8") as handle:
        faq = list(csv.DictReader(handle))[:25]
    data = tmp_path / "own.csv"
    with data.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question", "answer_id"])
        writer.writerows([row["question"], row["id"]] for row in faq)
    before = (kb_copy / "calibration.json").read_text()
    result = cli("support", "calibrate", "--kb", str(kb_copy), "--data", str(data))
    assert result.exit_code == 2
    assert result.output.startswith("Error: the top entry is right for all 25 calibration")
    assert (kb_copy / "calibration.json").read_text() == before


def test_serve_on_a_port_in_use_is_one_error_line(kb_copy, cli):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("support", "serve", "--kb", str(kb_copy), "--port", str(port))
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: cannot serve on 127.0.0.1:{port}: ")
    assert result.output.count("\n") == 1


def test_serve_delivers_hand_offs_in_the_background(kb_copy, cli, monkeypatch, free_port):
    import uvicorn

    import tunesmith_support.api as api

    served = []

    def create_app(service, **kwargs):
        served.append((service, kwargs))
        return "app"

    monkeypatch.setattr(api, "create_app", create_app)
    monkeypatch.setattr(uvicorn, "run", lambda app, **_kwargs: None)
    result = cli("support", "serve", "--kb", str(kb_copy), "--port", free_port)
    assert result.exit_code == 0, result.output
    service, kwargs = served[0]
    assert service.background_delivery is True
    # Bound to 127.0.0.1, it answers requests addressed to this machine only.
    # The reloader (reload.py) has its own tests; here, that the server got one.
    assert kwargs.pop("reloader").every == 30
    assert kwargs == {
        "loopback_only": True,
        "token": None,
        "cors_origins": [],
        "feedback_needs_conversation": False,
    }
    service.close()
    result = cli("support", "serve", "--kb", str(kb_copy), "--host", "0.0.0.0", "--port", free_port)
    assert result.exit_code == 0, result.output
    service, kwargs = served[1]
    # The reloader (reload.py) has its own tests; here, that the server got one.
    assert kwargs.pop("reloader").every == 30
    assert kwargs == {
        "loopback_only": False,
        "token": None,
        "cors_origins": [],
        "feedback_needs_conversation": False,
    }
    service.close()


def test_serve_refuses_a_port_out_of_range_without_a_traceback(kb_copy, cli):
    result = cli("support", "serve", "--kb", str(kb_copy), "--port", "99999")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--port" in result.output


def test_stats_on_a_kb_without_conversations_does_not_create_the_database(kb_copy, cli):
    db = kb_copy / "conversations.sqlite"
    db.unlink(missing_ok=True)
    result = cli("support", "stats", "--kb", str(kb_copy))
    assert result.exit_code == 0 and "no conversations yet" in result.output
    assert not db.exists()
    bad = cli("support", "stats", "--kb", str(kb_copy), "--by", "year")
    assert bad.exit_code == 2 and "--by must be day, week or month" in bad.output


def test_export_and_feedback_with_a_mistyped_db_say_so_and_create_nothing(kb_copy, cli, tmp_path):
    # It used to create an empty database at the typo and export 0 rows as if nobody had
    # given feedback.
    typo = tmp_path / "conversation.sqlite"
    out = tmp_path / "fb.csv"
    exported = cli(
        "support", "export-feedback", "--kb", str(kb_copy), "--db", str(typo), "--out", str(out)
    )
    rated = cli("support", "feedback", "--kb", str(kb_copy), "--db", str(typo), "--turn", "1",
                "--helpful")  # fmt: skip
    for result in (exported, rated):
        assert result.exit_code != 0
        assert f"{typo}: no conversation database" in result.output
    assert not typo.exists() and not out.exists()


def test_an_unreachable_threshold_is_printed_as_never_not_as_a_probability_above_one():
    from tunesmith_support.cli import threshold_text

    assert threshold_text(0.8) == ">= 0.800"
    assert threshold_text(1.01).startswith("never")


def test_demo_on_a_folder_that_is_not_a_kb_is_one_error_line_before_serving(cli, tmp_path):
    result = cli("support", "demo", "--kb", str(tmp_path), "--port", "1")
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: {tmp_path}: not a knowledge base")


def test_train_refuses_zero_classifier_members_naming_its_own_flag(kb_copy, cli):
    history = str(sample_paths()["history"])
    result = cli("support", "train", "--kb", str(kb_copy), "--data", history, "--classifier",
                 "--no-encoder", "--classifier-members", "0")  # fmt: skip
    assert result.exit_code == 2
    # it named --members, which `support train` does not have
    assert result.stderr.startswith("Error: Invalid value for '--classifier-members'")


@pytest.mark.parametrize("command", ["index", "train", "calibrate"])
def test_kb_writers_are_refused_while_another_process_rewrites_the_kb(kb_copy, cli, command):
    """Two `support train` at once tuned into one encoders/gN folder and removed each other's
    new index (the second died with "has no config.json"); now one writer at a time."""
    from tunesmith.locks import run_lock
    from tunesmith_support.sample import sample_paths

    before = (kb_copy / "kb.json").read_bytes()
    listing = sorted(p.name for p in kb_copy.iterdir())
    history = str(sample_paths()["history"])
    args = {
        "index": ["--kb", str(sample_paths()["kb"]), "--out", str(kb_copy)],
        "train": ["--kb", str(kb_copy), "--data", history, "--epochs", "1"],
        "calibrate": ["--kb", str(kb_copy), "--data", history],
    }[command]
    with run_lock(kb_copy):
        result = cli("support", command, *args)
    assert result.exit_code == 2, result.output
    flag = "--out" if command == "index" else "--kb"
    assert f"is writing {kb_copy}; wait for it to finish or choose another {flag}" in result.output
    assert (kb_copy / "kb.json").read_bytes() == before
    assert sorted(p.name for p in kb_copy.iterdir()) == listing


def test_ask_refuses_a_stdout_sink_with_json_so_stdout_stays_one_document(kb_copy, cli):
    # The hand-off event's JSON line came before the result: two documents where --json is one.
    result = cli(
        "support", "ask", "--kb", str(kb_copy), "I want a human", "--sink", "stdout", "--json"
    )
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert "--sink stdout cannot be combined with --json" in result.output


def test_feedback_without_a_rating_names_the_flags_to_give(kb_copy, cli):
    result = cli("support", "feedback", "--kb", str(kb_copy), "--turn", "1")
    assert result.exit_code == 2
    assert "give --helpful, --not-helpful or --correct-id ID" in result.output


def test_index_json_reports_what_changed(kb_copy, cli):
    # `index` was the one support command without --json: a script had to parse the summary.
    result = cli("support", "index", "--kb", str(sample_paths()["kb"]), "--out", str(kb_copy),
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kb"] == str(kb_copy)
    assert (report["entries"], report["unchanged"], report["added"]) == (75, 75, 0)
    assert report["skipped"] == [] and report["encoder"]


def test_export_feedback_keeps_an_existing_out_unless_forced(kb_copy, cli, tmp_path):
    # An earlier export, or a hand-edited history CSV, was overwritten without a word, where
    # every other --out of the CLI asks for --force.
    assert cli("support", "ask", "--kb", str(kb_copy), "hi").exit_code == 0
    out = tmp_path / "history.csv"
    out.write_text("question,answer_id\nmy own row,shp-01\n", encoding="utf-8")
    args = ("support", "export-feedback", "--kb", str(kb_copy), "--out", str(out))
    refused = cli(*args)
    assert refused.exit_code == 2
    assert refused.output.strip() == f"Error: {out} exists already; pass --force to replace it"
    assert out.read_text(encoding="utf-8") == "question,answer_id\nmy own row,shp-01\n"
    forced = cli(*args, "--force")
    assert forced.exit_code == 0, forced.output
    assert out.read_text(encoding="utf-8") == "question,answer_id\n"


def test_about_prints_a_start_command_that_runs_as_copied(cli):
    import shlex

    from tunesmith_support.sample import SAMPLE_DIR

    result = cli("support", "about")
    assert result.exit_code == 0, result.output
    start = next(line for line in result.output.splitlines() if line.startswith("Start: "))
    words = shlex.split(start.removeprefix("Start: ").split(";")[0])
    assert words[:3] == ["tunesmith", "support", "index"]
    kb = words[words.index("--kb") + 1]
    assert kb == str(SAMPLE_DIR / "kb") and (SAMPLE_DIR / "kb" / "faq.csv").is_file()
