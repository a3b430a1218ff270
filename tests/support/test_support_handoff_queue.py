"""The hand-off queue, from the agents' side: what waits for a person (oldest first, with the
conversation so far), closing one with the right entry or with none (a gap in the KB), two
agents closing the same one, a database from before the queue, and the same through the API."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import pytest

from tunesmith_support.conversations import MIGRATIONS, NAMESPACE, Conversations
from tunesmith_support.refusals import Refusal

TOKEN = "s3cret-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _turn(log: Conversations, conversation: str, question: str, decision: str, **more) -> int:
    answer = SimpleNamespace(
        entry={"id": more["entry"]} if more.get("entry") else None, question=question,
        query=question, decision=decision, reason=more.get("reason", ""), confidence=0.2,
        text=more.get("text", "..."), candidates=more.get("candidates", []), options=[],
    )  # fmt: skip
    turn_id = log.record_turn(conversation, answer)
    if decision == "handoff":
        log.mark_handoff(turn_id, f"event-{turn_id}")
    return turn_id


def _log_with_handoffs(path) -> tuple[Conversations, list[int]]:
    """A log with two hand-offs in two conversations, the first after an answered question."""
    log = Conversations.open(path)
    first = log.start("api")
    _turn(log, first, "how much is delivery?", "answer", entry="shp-01", text="4.95 EUR")
    candidates = [{"id": "ret-01", "title": "How do I return an item?", "score": 0.3}]
    one = _turn(log, first, "my parcel came broken", "handoff", reason="low_confidence",
                candidates=candidates)  # fmt: skip
    two = _turn(log, log.start("api"), "talk to a human", "handoff", reason="asked_for_person")
    return log, [one, two]


def test_the_queue_lists_waiting_handoffs_oldest_first_with_the_conversation_so_far(tmp_path):
    log, (one, two) = _log_with_handoffs(tmp_path / "c.sqlite")
    try:
        queue = log.handoffs()
        assert [item["turn_id"] for item in queue] == [one, two]
        item = queue[0]
        assert item["status"] == "waiting" and item["question"] == "my parcel came broken"
        assert item["reason"] == "low_confidence" and item["event_id"] == f"event-{one}"
        assert item["candidates"][0]["id"] == "ret-01"
        assert item["conversation"] == [
            {"question": "how much is delivery?", "decision": "answer", "reason": "",
             "answer": "4.95 EUR"},
        ]  # fmt: skip
        assert item["earlier_turns"] == 1 and item["waited_seconds"] >= 0
        assert queue[1]["conversation"] == []
    finally:
        log.close()


def test_closing_a_handoff_takes_it_off_the_queue_and_feeds_export_and_stats(tmp_path):
    log, (one, two) = _log_with_handoffs(tmp_path / "c.sqlite")
    try:
        resolved = log.close_handoff(one, entry_id="ret-01", agent="alice", note="return it")
        assert (resolved["status"], resolved["entry_id"], resolved["agent"]) == (
            "resolved", "ret-01", "alice"
        )  # fmt: skip
        gap = log.close_handoff(two)
        assert gap["status"] == "no_answer" and gap["entry_id"] is None
        assert log.handoffs() == []
        assert [item["status"] for item in log.handoffs(waiting_only=False)] == [
            "resolved", "no_answer"
        ]  # fmt: skip
        # The resolved pair is a training row; the gap is no row, but counted as a gap.
        assert log.training_rows() == [{"question": "my parcel came broken", "answer_id": "ret-01"}]
        (row,) = log.stats("day")
        assert (row["handoffs_waiting"], row["kb_gaps"]) == (0, 1)
    finally:
        log.close()


def test_stats_counts_the_handoffs_still_waiting(tmp_path):
    log, _ = _log_with_handoffs(tmp_path / "c.sqlite")
    try:
        (row,) = log.stats("day")
        assert (row["handoffs_waiting"], row["kb_gaps"]) == (2, 0)
    finally:
        log.close()


def test_a_second_agent_closing_the_same_handoff_is_told_how_the_first_closed_it(tmp_path):
    log, (one, _) = _log_with_handoffs(tmp_path / "c.sqlite")
    try:
        log.close_handoff(one, entry_id="ret-01", agent="alice")
        with pytest.raises(Refusal) as refused:
            log.close_handoff(one, agent="bob")
        assert refused.value.code == "handoff_closed"
        assert "resolved with 'ret-01' by alice" in str(refused.value)
        # Nothing of the second is stored, and the first's closure is kept.
        assert log.handoff(one)["status"] == "resolved"
        assert [row["correct_id"] for row in log.feedback()] == ["ret-01"]
        # The same closure sent again (a retry) is answered with it.
        assert log.close_handoff(one, entry_id="ret-01", agent="alice")["agent"] == "alice"
    finally:
        log.close()


def test_two_agents_closing_at_once_one_wins_and_the_other_is_refused(tmp_path):
    path = tmp_path / "c.sqlite"
    log, (one, _) = _log_with_handoffs(path)
    log.close()
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def close(agent: str, entry: str | None) -> None:
        own = Conversations.open(path)  # two processes' worth: two connections
        try:
            barrier.wait()
            outcomes.append(own.close_handoff(one, entry_id=entry, agent=agent)["agent"])
        except Refusal as exc:
            outcomes.append(exc.code)
        finally:
            own.close()

    threads = [threading.Thread(target=close, args=a) for a in (("a", "ret-01"), ("b", None))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(map(str, outcomes)) in (["a", "handoff_closed"], ["b", "handoff_closed"])
    log = Conversations.open(path)
    try:
        closed = log.handoff(one)
        # The winner's closure whole: its feedback row only if it named an entry.
        assert len(log.feedback()) == (1 if closed["agent"] == "a" else 0)
    finally:
        log.close()


def test_only_a_handoff_can_be_closed(tmp_path):
    log, _ = _log_with_handoffs(tmp_path / "c.sqlite")
    try:
        with pytest.raises(Refusal) as refused:
            log.close_handoff(1, entry_id="shp-01")  # the answered question
        assert refused.value.code == "not_a_handoff"
        with pytest.raises(Refusal) as refused:
            log.close_handoff(999)
        assert refused.value.code == "unknown_turn"
    finally:
        log.close()


def test_a_database_from_before_the_queue_opens_with_corrected_handoffs_resolved(tmp_path):
    from tunesmith.store import Store

    path = tmp_path / "c.sqlite"
    old = Store.open(path, namespace=NAMESPACE, migrations=MIGRATIONS[:4])
    old.execute("INSERT INTO support_conversations (id, started_at) VALUES ('c', '2025-01-01')")
    for question in ("my parcel came broken", "do you sell kayaks"):
        old.execute(
            "INSERT INTO support_turns (conversation_id, created_at, question, query, decision, "
            "reason, confidence, handoff_event) VALUES ('c', '2025-01-01T10:00:00+00:00', ?, ?, "
            "'handoff', 'low_confidence', 0.1, 'e')",
            (question, question),
        )
    # The first was answered by an agent the old way: feedback with the right entry.
    old.execute(
        "INSERT INTO support_feedback (turn_id, created_at, correct_id) "
        "VALUES (1, '2025-01-01T11:00:00+00:00', 'ret-01')"
    )
    old.close()
    log = Conversations.open(path)
    try:
        assert [item["question"] for item in log.handoffs()] == ["do you sell kayaks"]
        done = log.handoff(1)
        assert (done["status"], done["entry_id"]) == ("resolved", "ret-01")
        assert done["waited_seconds"] == 3600
        assert log.training_rows() == [{"question": "my parcel came broken", "answer_id": "ret-01"}]
        log.close_handoff(2)
        assert log.stats("day")[0]["kb_gaps"] == 1
    finally:
        log.close()


# ---------------------------------------------------------------------- the CLI


def _handed_off(kb, cli) -> dict:
    result = cli("support", "ask", "--kb", str(kb), "--json", "I want to talk to a human")
    assert result.exit_code == 0, result.output
    turn = json.loads(result.stdout)
    assert turn["decision"] == "handoff"
    return turn


def _entry(kb) -> str:
    from tunesmith_support.kbindex import kb_entries

    return sorted(e.id for e in kb_entries(kb))[0]


def test_support_handoffs_lists_the_queue_and_close_resolves_one(kb_copy, cli):
    turn = _handed_off(kb_copy, cli)
    listed = cli("support", "handoffs", "--kb", str(kb_copy))
    assert listed.exit_code == 0, listed.output
    assert f"turn {turn['turn_id']}  waiting" in listed.output
    assert "customer: I want to talk to a human" in listed.output
    queue = json.loads(cli("support", "handoffs", "--kb", str(kb_copy), "--json").stdout)
    assert [item["turn_id"] for item in queue] == [turn["turn_id"]]
    entry = _entry(kb_copy)
    closed = cli("support", "handoffs", "--kb", str(kb_copy), "--close", str(turn["turn_id"]),
                 "--entry", entry, "--agent", "alice")  # fmt: skip
    assert closed.exit_code == 0, closed.output
    assert f"resolved with {entry}" in closed.output
    assert "no hand-offs waiting" in cli("support", "handoffs", "--kb", str(kb_copy)).output
    again = cli("support", "handoffs", "--kb", str(kb_copy), "--close", str(turn["turn_id"]),
                "--no-answer", "--agent", "bob")  # fmt: skip
    assert again.exit_code != 0
    assert "by alice" in again.output and "nothing was stored" in again.output
    everything = json.loads(
        cli("support", "handoffs", "--kb", str(kb_copy), "--all", "--json").stdout
    )
    assert [(i["status"], i["agent"]) for i in everything] == [("resolved", "alice")]
    # Nothing left to close: no "close one with" line under the closed ones.
    listed_all = cli("support", "handoffs", "--kb", str(kb_copy), "--all").output
    assert listed_all.rstrip().endswith("0 waiting, 1 closed")
    out = kb_copy.parent / "rows.csv"
    cli("support", "export-feedback", "--kb", str(kb_copy), "--out", str(out))
    # A request for a person with no question before it is no training row.
    assert out.read_text().splitlines()[1:] == []


def test_support_feedback_with_the_right_entry_resolves_a_waiting_handoff(kb_copy, cli):
    turn = _handed_off(kb_copy, cli)
    entry = _entry(kb_copy)
    result = cli("support", "feedback", "--kb", str(kb_copy), "--turn", str(turn["turn_id"]),
                 "--correct-id", entry)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"its hand-off is resolved with {entry}" in result.output
    assert json.loads(cli("support", "handoffs", "--kb", str(kb_copy), "--json").stdout) == []


def test_a_gap_closed_from_the_cli_shows_in_stats(kb_copy, cli):
    turn = _handed_off(kb_copy, cli)
    cli("support", "handoffs", "--kb", str(kb_copy), "--close", str(turn["turn_id"]), "--no-answer")
    (row,) = json.loads(cli("support", "stats", "--kb", str(kb_copy), "--json").stdout)
    assert (row["handoffs_waiting"], row["kb_gaps"]) == (0, 1)
    table = cli("support", "stats", "--kb", str(kb_copy)).output
    assert "kb_gaps" in table


@pytest.mark.parametrize(
    "args, said",
    [
        (("--since", "yesterday"), "--since 'yesterday'"),
        (("--close", "1"), "--entry ID (the answer) or --no-answer"),
        (("--close", "1", "--entry", "x", "--no-answer"), "one of them"),
        (("--entry", "x"), "go with --close TURN"),
    ],
)
def test_support_handoffs_mistakes_are_one_line(kb_copy, cli, args, said):
    _handed_off(kb_copy, cli)
    result = cli("support", "handoffs", "--kb", str(kb_copy), *args)
    assert result.exit_code != 0 and said in result.output, result.output


def test_support_handoffs_since_leaves_older_ones_out(tmp_path, kb_copy, cli):
    turn = _handed_off(kb_copy, cli)
    log = Conversations.open(kb_copy / "conversations.sqlite")
    try:
        log.store.execute(
            "UPDATE support_turns SET created_at = '2020-01-01T00:00:00+00:00' WHERE id = ?",
            (turn["turn_id"],),
        )
    finally:
        log.close()
    recent = _handed_off(kb_copy, cli)
    queue = json.loads(
        cli("support", "handoffs", "--kb", str(kb_copy), "--since", "2h", "--json").stdout
    )
    assert [item["turn_id"] for item in queue] == [recent["turn_id"]]


# ---------------------------------------------------------------------- the HTTP API


def test_the_api_serves_the_queue_and_closes_a_handoff_once(make_client):
    client = make_client(token=TOKEN)
    turn = client.post("/v1/ask", json={"question": "I want to talk to a human"}, headers=AUTH)
    turn_id = turn.json()["turn_id"]
    assert client.get("/v1/handoffs").status_code == 401  # the token, as everywhere
    queue = client.get("/v1/handoffs", headers=AUTH).json()["handoffs"]
    assert [(item["turn_id"], item["status"]) for item in queue] == [(turn_id, "waiting")]
    entry = _entry(client.service.kb_dir)
    body = {"correct_id": entry, "agent": "alice"}
    closed = client.post(f"/v1/handoffs/{turn_id}/close", json=body, headers=AUTH)
    assert closed.status_code == 200, closed.text
    assert (closed.json()["status"], closed.json()["entry_id"]) == ("resolved", entry)
    # A retry of the same closure gets it back; another agent's is a 409 naming the first.
    again = client.post(f"/v1/handoffs/{turn_id}/close", json=body, headers=AUTH)
    assert again.status_code == 200 and again.json() == closed.json()
    other = client.post(
        f"/v1/handoffs/{turn_id}/close", json={"no_answer": True, "agent": "bob"}, headers=AUTH
    )
    assert other.status_code == 409 and other.json()["code"] == "handoff_closed"
    assert "by alice" in other.json()["detail"]
    assert client.get("/v1/handoffs", headers=AUTH).json() == {"handoffs": [], "next_after": None}
    closed_too = client.get("/v1/handoffs?all=true", headers=AUTH).json()["handoffs"]
    assert [item["agent"] for item in closed_too] == ["alice"]


def test_the_api_refuses_a_close_that_says_neither_or_both(make_client):
    client = make_client(token=TOKEN)
    turn_id = client.post("/v1/ask", json={"question": "agent please"}, headers=AUTH).json()[
        "turn_id"
    ]
    for body in ({}, {"correct_id": "x", "no_answer": True}):
        refused = client.post(f"/v1/handoffs/{turn_id}/close", json=body, headers=AUTH)
        assert refused.status_code == 422 and "one of them" in refused.json()["detail"]
    bad = client.post(f"/v1/handoffs/{turn_id}/close", json={"correct_id": "nope"}, headers=AUTH)
    assert bad.status_code == 400 and bad.json()["code"] == "unknown_entry"
    since = client.get("/v1/handoffs?since=soon", headers=AUTH)
    assert since.status_code == 400 and "since 'soon'" in since.json()["detail"]


def test_a_public_widget_server_does_not_serve_other_customers_handoffs(make_client):
    for options in ({"cors_origins": ["https://shop.example"]}, {}):
        client = make_client(**options)
        turn = client.post("/v1/ask", json={"question": "talk to a human"}).json()
        listed = client.get("/v1/handoffs")
        assert listed.status_code == 403 and listed.json()["code"] == "forbidden"
        closed = client.post(f"/v1/handoffs/{turn['turn_id']}/close", json={"no_answer": True})
        assert closed.status_code == 403
    # Feedback from a customer never takes a hand-off off the queue.
    client.post("/v1/feedback", json={"turn_id": turn["turn_id"], "correct_id": _entry(
        client.service.kb_dir)})  # fmt: skip
    assert client.service.conversations.handoffs()[0]["status"] == "waiting"


def test_the_schema_describes_the_handoff_routes(make_client):
    client = make_client(token=TOKEN)
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/handoffs", "/v1/handoffs/{turn_id}/close"} <= set(paths)
    responses = paths["/v1/handoffs/{turn_id}/close"]["post"]["responses"]
    assert {"200", "401", "403", "409", "422"} <= set(responses)
    page = client.get("/docs").text
    assert "/v1/handoffs/{turn_id}/close" in page and "no_answer" in page


def test_a_request_for_a_person_exports_the_question_before_it_or_no_row(tmp_path):
    # Closing "agent please" with an entry exported ("agent please", entry): the next train
    # taught the encoder that asking for a person means that entry.
    log = Conversations.open(tmp_path / "c.sqlite")
    try:
        asked = log.start("api")
        _turn(log, asked, "my parcel came broken", "answer", entry="shp-01")
        _turn(log, asked, "thanks", "clarify", reason="small_talk")
        after = _turn(log, asked, "agent please", "handoff", reason="asked_for_person")
        alone = _turn(log, log.start("api"), "a human now", "handoff", reason="asked_for_person")
        log.close_handoff(after, entry_id="ret-01")
        log.close_handoff(alone, entry_id="ret-01")
        assert log.training_rows() == [{"question": "my parcel came broken", "answer_id": "ret-01"}]
    finally:
        log.close()
