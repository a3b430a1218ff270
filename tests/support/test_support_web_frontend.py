"""Bugs found by embedding the support API in a help-centre web page, each pinned by a test."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

from tunesmith_support.conversations import Conversations


def _answered(log: Conversations, entry_id: str) -> int:
    """A turn answered with ``entry_id``, in a conversation of its own."""
    answer = SimpleNamespace(
        entry={"id": entry_id}, question="q", query="q", decision="answer", reason="",
        confidence=0.9, text="t", candidates=[],
    )  # fmt: skip
    return log.record_turn(log.start("api"), answer)


def _old_style_pick(log: Conversations, turn_id: int, correct_id: str) -> None:
    """Feedback as it was stored before an agent's pick of the answered entry became a rating:
    a correction naming that entry, no rating."""
    log.store.execute(
        "INSERT INTO support_feedback (turn_id, created_at, helpful, correct_id, note) "
        "SELECT id, created_at, NULL, ?, '' FROM support_turns WHERE id = ?",
        (correct_id, turn_id),
    )


def test_stats_read_an_old_pick_of_the_answered_entry_as_helpful_not_corrected(tmp_path):
    log = Conversations.open(tmp_path / "c.sqlite")
    try:
        right = _answered(log, "a")
        wrong = _answered(log, "a")
        _old_style_pick(log, right, "a")  # the agent confirmed the answer
        _old_style_pick(log, wrong, "b")  # a real correction
        (row,) = log.stats("day")
        exported = log.training_rows()
    finally:
        log.close()
    # It counted as a correction and stayed out of the helpful rate (none: no rating at all).
    assert row["feedback"] == 2
    assert row["corrected"] == 1
    assert row["helpful_rate"] == 1.0
    assert sorted(r["answer_id"] for r in exported) == ["a", "b"]


def test_stats_read_an_old_pick_of_a_renamed_answered_entry_as_helpful(tmp_path):
    log = Conversations.open(tmp_path / "c.sqlite")
    try:
        turn = _answered(log, "guide#gr-e")  # answered before a re-index renamed the entry
        _old_style_pick(log, turn, "guide#größe")
        renamed = {"guide#gr-e": "guide#größe"}
        (row,) = log.stats("day", renamed)
    finally:
        log.close()
    assert row["corrected"] == 0 and row["helpful_rate"] == 1.0


def test_a_later_not_helpful_overrules_an_old_pick_of_the_answered_entry(tmp_path):
    # Read as the rating it is, the old pick no longer wins over a newer rating, as a pick
    # stored today ("helpful") would not.
    log = Conversations.open(tmp_path / "c.sqlite")
    try:
        turn = _answered(log, "a")
        _old_style_pick(log, turn, "a")
        log.add_feedback(turn, helpful=False)
        rows = log.stats("day")
        exported = log.training_rows()
    finally:
        log.close()
    assert sum(r["corrected"] for r in rows) == 0 and rows[-1]["helpful_rate"] == 0.0
    assert exported == []


def _rename_in_kb(kb, renamed: dict[str, str]) -> None:
    """Record in ``kb``'s kb.json that a re-index renamed these ids (old -> new)."""
    meta = json.loads((kb / "kb.json").read_text(encoding="utf-8"))
    meta["renamed_ids"] = renamed
    (kb / "kb.json").write_text(json.dumps(meta), encoding="utf-8")


def test_chat_equals_an_id_a_reindex_renamed_stores_the_new_id(kb_copy, cli):
    _rename_in_kb(kb_copy, {"old-pay-08": "pay-08"})
    result = cli(
        "support", "chat", "--kb", str(kb_copy), input="do you price match\n=old-pay-08\n\n"
    )
    assert result.exit_code == 0, result.output
    assert "thanks, feedback stored" in result.output
    log = Conversations.open(kb_copy / "conversations.sqlite")
    try:
        (row,) = log.feedback()
    finally:
        log.close()
    # Refused before ("no entry 'old-pay-08'"); a pick of the entry that answered is a rating.
    if row["decision"] == "answer" and row["entry_id"] == "pay-08":
        assert row["helpful"] == 1 and row["correct_id"] is None
    else:
        assert row["correct_id"] == "pay-08"


def test_stats_command_reads_an_old_pick_of_a_renamed_answered_entry_as_helpful(kb_copy, cli):
    log = Conversations.open(kb_copy / "conversations.sqlite")
    try:
        turn = _answered(log, "guide#gr-e")
        _old_style_pick(log, turn, "shp-01")
    finally:
        log.close()
    _rename_in_kb(kb_copy, {"guide#gr-e": "shp-01"})
    result = cli("support", "stats", "--kb", str(kb_copy), "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["corrected"] == 0 and row["helpful_rate"] == 1.0


# ---------------------------------------------------------------- a request sent again

RID = "0b6a3c1e-5f7d-4e2a-9c8b-1d2e3f4a5b6c"  # crypto.randomUUID(), kept by the page's retry


def _handoffs(client) -> int:
    """Hand-off events in the outbox (whose tables the first one makes)."""
    store = client.service.conversations.store
    if not store.query("SELECT 1 FROM sqlite_master WHERE name = 'outbox_events'"):
        return 0
    return int(store.query("SELECT COUNT(*) AS n FROM outbox_events")[0]["n"])


def test_a_retried_request_for_a_person_is_one_turn_and_one_handoff(client):
    body = {"question": "I want to talk to a human", "request_id": RID}
    first = client.post("/v1/ask", json=body)
    again = client.post("/v1/ask", json=body)  # the page's fetch timed out and retried
    assert first.status_code == again.status_code == 200
    assert first.json()["decision"] == "handoff" and first.json()["handoff_event"]
    # Each was a turn of its own, in a conversation of its own, and a second ticket.
    assert again.json() == first.json()
    assert client.service.conversations.count_turns(first.json()["conversation_id"]) == 1
    assert _handoffs(client) == 1


def test_a_retried_pick_from_a_clarifying_question_is_the_pick_not_a_handoff(client):
    conversations = client.service.conversations
    conversation = conversations.start("api")
    ids = sorted(client.service.answerer.scorer.position)[:2]
    clarify = SimpleNamespace(
        entry=None, question="where is my parcel", query="where is my parcel",
        decision="clarify", reason="close_candidates", confidence=0.6,
        text="Which of these do you mean?", candidates=[], options=ids,
    )  # fmt: skip
    conversations.record_turn(conversation, clarify)
    body = {"question": "2", "conversation_id": conversation, "request_id": RID}
    first = client.post("/v1/ask", json=body).json()
    again = client.post("/v1/ask", json=body).json()
    assert first["reason"] == "chosen" and first["entry"]["id"] == ids[1]
    # Searched as a question, the second "2" was handed off to a person.
    assert again == first
    assert conversations.count_turns(conversation) == 2 and _handoffs(client) == 0


def test_a_request_id_reused_for_another_question_is_another_turn(client):
    first = client.post("/v1/ask", json={"question": "hello", "request_id": RID}).json()
    body = {"question": "agent please", "conversation_id": first["conversation_id"]}
    other = client.post("/v1/ask", json={**body, "request_id": RID}).json()
    assert other["turn_id"] != first["turn_id"] and other["decision"] == "handoff"
    plain = [client.post("/v1/ask", json=body).json()["turn_id"] for _ in range(2)]
    assert plain[0] != plain[1]  # without a request_id, each request is a turn, as before


def test_the_same_request_sent_at_once_is_answered_once(client):
    body = {"question": "I want to talk to a human", "request_id": RID}
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(lambda _: client.post("/v1/ask", json=body), range(6)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["turn_id"] for r in responses}) == 1
    assert _handoffs(client) == 1


def test_a_short_request_id_is_refused_so_counters_never_share_one(client):
    response = client.post("/v1/ask", json={"question": "hello", "request_id": "1"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "request_id"]
    schema = client.get("/openapi.json").json()["components"]["schemas"]["AskRequest"]
    assert "request_id" in schema["properties"] and "request_id" not in schema["required"]


def test_a_request_answered_twice_at_once_keeps_only_the_first_turn(client, monkeypatch):
    # The race the unique key settles: a second copy got past the lookup before the first
    # stored its response; its turn, new conversation and hand-off event are rolled back.
    service = client.service
    first = service.ask_request("I want to talk to a human", None, RID)
    counts = "SELECT (SELECT COUNT(*) FROM support_turns) AS turns, (SELECT COUNT(*) FROM "
    counts += "support_conversations) AS conversations, (SELECT COUNT(*) FROM outbox_events) AS ev"
    before = dict(service.conversations.store.query(counts)[0])
    answers = iter([None, first])
    monkeypatch.setattr(service.conversations, "answered_request", lambda _key: next(answers))
    assert service.ask_request("I want to talk to a human", None, RID) == first
    assert dict(service.conversations.store.query(counts)[0]) == before
