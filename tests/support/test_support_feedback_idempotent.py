"""Feedback a client sends again (its request_id) and `stats` that count each turn's feedback
once: found by a support lead reading `stats` weekly and an integrator whose client retries."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

from tunesmith_support.conversations import MIGRATIONS, NAMESPACE, Conversations

RID = "5d1f0c9e-8a7b-4c3d-9e2f-1a2b3c4d5e6f"  # crypto.randomUUID(), kept by the widget's retry
OTHER_RID = "c2e4a6b8-0d1f-4e3a-8b5c-7d9e1f2a3b4c"


def _answered(log: Conversations, entry_id: str = "a", conversation: str | None = None) -> int:
    """A turn answered with ``entry_id`` (in a new conversation unless one is named)."""
    answer = SimpleNamespace(
        entry={"id": entry_id}, question="how much is delivery?", query="how much is delivery?",
        decision="answer", reason="", confidence=0.9, text="...", candidates=[], options=[],
    )  # fmt: skip
    return log.record_turn(conversation or log.start("api"), answer)


def _api_turn(client) -> dict:
    """A turn the API's service answered with the KB's first entry: its ids for feedback."""
    from tunesmith_support.kbindex import kb_entries

    log = client.service.conversations
    conversation = log.start("api")
    entry_id = sorted(e.id for e in kb_entries(client.service.kb_dir))[0]
    return {"turn_id": _answered(log, entry_id, conversation), "conversation_id": conversation}


def _feedback_rows(client) -> list[tuple]:
    rows = client.service.conversations.store.query(
        "SELECT helpful, correct_id FROM support_feedback ORDER BY id"
    )
    return [tuple(row) for row in rows]


# ---------------------------------------------------------------- a request_id on /v1/feedback


def test_a_feedback_retry_after_a_newer_rating_gets_its_first_answer_and_stores_nothing(client):
    turn = _api_turn(client)
    first = client.post("/v1/feedback", json={**turn, "helpful": False, "request_id": RID})
    changed = client.post("/v1/feedback", json={**turn, "helpful": True, "request_id": OTHER_RID})
    # The widget's first POST timed out; its retry arrives after the customer's new rating.
    retry = client.post("/v1/feedback", json={**turn, "helpful": False, "request_id": RID})
    assert first.status_code == changed.status_code == retry.status_code == 200, retry.text
    assert retry.json() == first.json()
    # It was stored again and became the newest rating: "not helpful" won over the change.
    assert _feedback_rows(client) == [(0, None), (1, None)]
    log = client.service.conversations
    entry_id = log.feedback()[0]["entry_id"]  # export-feedback keeps the customer's change
    assert log.training_rows() == [{"question": "how much is delivery?", "answer_id": entry_id}]
    (day,) = log.stats("day")
    assert day["feedback"] == 1 and day["helpful_rate"] == 1.0


def test_a_feedback_request_id_reused_for_other_feedback_is_another_request(client):
    turn = _api_turn(client)
    first = client.post("/v1/feedback", json={**turn, "helpful": False, "request_id": RID})
    other = client.post("/v1/feedback", json={**turn, "helpful": True, "request_id": RID})
    assert first.status_code == other.status_code == 200
    assert other.json()["feedback_id"] != first.json()["feedback_id"]
    assert _feedback_rows(client) == [(0, None), (1, None)]


def test_copies_of_a_feedback_request_crossing_other_feedback_are_stored_once(client):
    turn = _api_turn(client)
    retried = {**turn, "helpful": False, "request_id": RID}
    changed = {**turn, "helpful": True}  # no request_id: stored whenever it is not the newest
    bodies = [retried, changed] * 4
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda body: client.post("/v1/feedback", json=body), bodies))
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["feedback_id"] for r in responses[::2]}) == 1
    assert [row for row in _feedback_rows(client) if row[0] == 0] == [(0, None)]


def test_a_feedback_request_id_follows_the_rules_of_asks(client):
    turn = _api_turn(client)
    # "" is none, as for conversation_id: feedback the same as the newest is stored once.
    empty = [client.post("/v1/feedback", json={**turn, "helpful": True, "request_id": ""})]
    empty.append(client.post("/v1/feedback", json={**turn, "helpful": True, "request_id": None}))
    assert [r.status_code for r in empty] == [200, 200], empty[0].text
    assert empty[0].json() == empty[1].json()
    short = client.post("/v1/feedback", json={**turn, "helpful": True, "request_id": "1"})
    assert short.status_code == 422
    refused = short.json()
    assert refused["code"] == "invalid_request"
    assert refused["errors"][0]["loc"] == ["body", "request_id"]
    assert "16 to 128 visible ASCII characters" in refused["detail"]
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    field = schemas["FeedbackRequest"]["properties"]["request_id"]
    assert field["pattern"] == schemas["AskRequest"]["properties"]["request_id"]["pattern"]
    assert "request_id" not in schemas["FeedbackRequest"]["required"]
    assert re.fullmatch(field["pattern"], "") and re.fullmatch(field["pattern"], RID)


def test_a_server_that_needs_the_conversation_takes_a_feedback_request_id_too(make_client):
    client = make_client(feedback_needs_conversation=True)
    turn = _api_turn(client)
    first = client.post("/v1/feedback", json={**turn, "helpful": False, "request_id": RID})
    client.post("/v1/feedback", json={**turn, "helpful": True})
    retry = client.post("/v1/feedback", json={**turn, "helpful": False, "request_id": RID})
    assert retry.status_code == 200 and retry.json() == first.json()
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert "request_id" in schema["ConversationFeedbackRequest"]["properties"]
    assert _feedback_rows(client) == [(0, None), (1, None)]


def test_a_conversation_database_from_before_feedback_request_ids_keeps_its_feedback(tmp_path):
    from tunesmith.store import Store

    path = tmp_path / "c.sqlite"
    # A turn and its feedback stored by the earlier version: no request key anywhere.
    old = Store.open(path, namespace=NAMESPACE, migrations=MIGRATIONS[:3])
    old.execute("INSERT INTO support_conversations (id, started_at) VALUES ('c', '2025-01-01')")
    old.execute(
        "INSERT INTO support_turns (conversation_id, created_at, question, query, decision, "
        "confidence, entry_id) VALUES ('c', '2025-01-01', 'how much is delivery?', "
        "'how much is delivery?', 'answer', 0.9, 'a')"
    )
    old.execute(
        "INSERT INTO support_feedback (turn_id, created_at, helpful) VALUES (1, '2025-01-01', 1)"
    )
    old.close()
    turn = 1
    log = Conversations.open(path)
    try:
        first = log.add_feedback(turn, helpful=False, key="k" * 64)
        log.add_feedback(turn, helpful=True)
        assert log.add_feedback(turn, helpful=False, key="k" * 64) == first
        assert log.answered_feedback("k" * 64) == first
        assert [row["helpful"] for row in log.feedback()] == [1, 0, 1]
        assert sum(row["feedback"] for row in log.stats("day")) == 1
        assert log.training_rows() == [{"question": "how much is delivery?", "answer_id": "a"}]
    finally:
        log.close()


def test_the_cli_feedback_command_still_stores_feedback_without_a_request_id(kb_copy, cli):
    log = Conversations.open(kb_copy / "conversations.sqlite")
    try:
        turn = _answered(log, "shp-01")
    finally:
        log.close()
    kb = str(kb_copy)
    assert cli("support", "feedback", "--kb", kb, "--turn", str(turn), "--helpful").exit_code == 0
    result = cli("support", "feedback", "--kb", kb, "--turn", str(turn), "--not-helpful")
    assert result.exit_code == 0, result.output
    log = Conversations.open(kb_copy / "conversations.sqlite")
    try:
        assert [row["helpful"] for row in log.feedback()] == [1, 0]
    finally:
        log.close()


# ---------------------------------------------------------------- stats: each turn once


def _dated(log: Conversations, feedback_id: int, created_at: str) -> None:
    log.store.execute(
        "UPDATE support_feedback SET created_at = ? WHERE id = ?", (created_at, feedback_id)
    )


def test_stats_count_a_turn_rated_three_times_as_one_turn_with_feedback(tmp_path):
    log = Conversations.open(tmp_path / "c.sqlite")
    try:
        rated, corrected = _answered(log), _answered(log)
        for helpful in (True, False, True):  # a customer who changes their mind twice
            log.add_feedback(rated, helpful=helpful)
        log.add_feedback(corrected, correct_id="b")  # an agent who picks, then picks again
        log.add_feedback(corrected, correct_id="c")
        (row,) = log.stats("day")
    finally:
        log.close()
    # It read 5 pieces of feedback and 2 corrections for two turns.
    assert (row["feedback"], row["corrected"], row["helpful_rate"]) == (2, 1, 1.0)


def test_stats_count_a_turn_in_the_period_of_its_newest_feedback(tmp_path):
    log = Conversations.open(tmp_path / "c.sqlite")
    try:
        turn = _answered(log)
        log.store.execute("UPDATE support_turns SET created_at = '2025-03-03T10:00:00+00:00'")
        _dated(log, log.add_feedback(turn, helpful=False), "2025-03-03T11:00:00+00:00")
        _dated(log, log.add_feedback(turn, correct_id="b"), "2025-03-04T09:00:00+00:00")
        rows = log.stats("day")
        exported = log.training_rows()
    finally:
        log.close()
    # Monday and Tuesday each counted the turn: two turns with feedback, for one.
    assert [(r["period"], r["feedback"]) for r in rows] == [("2025-03-03", 0), ("2025-03-04", 1)]
    assert rows[0]["helpful_rate"] is None
    assert (rows[1]["helpful_rate"], rows[1]["corrected"]) == (0.0, 1)
    # export-feedback reads the same verdict: the agent's pick.
    assert exported == [{"question": "how much is delivery?", "answer_id": "b"}]


def test_stats_table_says_what_its_feedback_columns_count(kb_copy, cli):
    log = Conversations.open(kb_copy / "conversations.sqlite")
    try:
        turn = _answered(log, "shp-01")
        log.add_feedback(turn, helpful=True)
        log.add_feedback(turn, helpful=False)
    finally:
        log.close()
    result = cli("support", "stats", "--kb", str(kb_copy))
    assert result.exit_code == 0, result.output
    header, row, legend = result.output.splitlines()
    assert row.split()[header.split().index("feedback")] == "1"
    assert legend.startswith("feedback: turns given feedback, each once")
