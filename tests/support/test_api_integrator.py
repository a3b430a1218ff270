"""The HTTP API as an integrator meets it: odd input is a 400 or 422 with one clear message,
never a 500, and the OpenAPI schema says what the responses hold."""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest


def count(client, table: str) -> int:
    rows = client.service.conversations.store.query(f"SELECT COUNT(*) AS n FROM {table}")
    return int(rows[0]["n"])


def one_turn(client) -> int:
    response = client.post("/v1/ask", json={"question": "how much does shipping cost"})
    assert response.status_code == 200
    return response.json()["turn_id"]


@pytest.mark.parametrize(
    "body",
    [
        {"turn_id": True, "helpful": True},
        {"turn_id": "1", "helpful": True},
        {"turn_id": 1.0, "helpful": True},
        {"turn_id": 1, "helpful": "yes"},
        {"turn_id": 1, "helpful": 1},
    ],
)
def test_feedback_of_the_wrong_json_type_is_422_not_coerced(client, body):
    one_turn(client)
    response = client.post("/v1/feedback", json=body)
    assert response.status_code == 422
    assert count(client, "support_feedback") == 0


def test_misspelt_request_field_is_422_not_a_silent_new_conversation(client):
    first = client.post("/v1/ask", json={"question": "how much does shipping cost"}).json()
    response = client.post(
        "/v1/ask", json={"question": "and express?", "conversationId": first["conversation_id"]}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "conversationId"]
    assert count(client, "support_conversations") == 1
    assert client.post("/v1/feedback", json={"turn_id": 1, "helpfull": True}).status_code == 422


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/ask", {"question": "\ud800 returns"}, "question"),
        ("/v1/ask", {"question": "returns", "conversation_id": "\udc00"}, "conversation id"),
        ("/v1/feedback", {"turn_id": 1, "helpful": True, "note": "ok \ud800"}, "note"),
    ],
)
def test_lone_surrogate_is_400_naming_the_field_not_500(client, path, body, field):
    one_turn(client)
    # As JSON escapes ("\\ud800"), the way a client that cut a string mid-emoji sends them.
    raw = json.dumps(body)
    response = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"the {field} is not valid Unicode text")
    assert count(client, "support_turns") == 1 and count(client, "support_feedback") == 0


def test_paired_surrogates_emoji_and_html_are_answered(client):
    for question in ["can I return 🥾 boots? ñandú", "<script>alert(1)</script><b>refund</b>"]:
        assert client.post("/v1/ask", json={"question": question}).status_code == 200


@pytest.mark.parametrize("turn_id", [2**63, 10**20, -(2**64), 0])
def test_turn_id_outside_sqlite_range_is_400_not_500(client, turn_id):
    one_turn(client)
    response = client.post("/v1/feedback", json={"turn_id": turn_id, "helpful": True})
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"no turn {turn_id} ")


@pytest.mark.parametrize("question", ["", "   \n"])
def test_refused_question_leaves_no_empty_conversation(client, question):
    response = client.post("/v1/ask", json={"question": question})
    assert response.status_code == 400
    assert count(client, "support_conversations") == 0


def test_unknown_long_ids_are_not_echoed_whole(client):
    turn_id = one_turn(client)
    long_id = "c" * 100_000
    ask = client.post("/v1/ask", json={"question": "hi", "conversation_id": long_id})
    assert ask.status_code == 400 and len(ask.json()["detail"]) < 200
    assert ask.json()["detail"].startswith("no conversation 'cccc")
    feedback = client.post("/v1/feedback", json={"turn_id": turn_id, "correct_id": long_id})
    assert feedback.status_code == 400 and len(feedback.json()["detail"]) < 300


def ask_while_locked(client, kb_copy, timeout):
    """POST a question while another connection holds the conversation database's write lock."""
    from tunesmith_support.conversations import Conversations
    from tunesmith_support.service import default_db

    client.service.conversations.close()
    client.service.conversations = Conversations.open(default_db(kb_copy), timeout=timeout)
    holder = sqlite3.connect(default_db(kb_copy), timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        return client.post("/v1/ask", json={"question": "how much does shipping cost"})
    finally:
        holder.rollback()
        holder.close()


def test_locked_conversation_database_is_503_not_a_client_error(client, kb_copy):
    response = ask_while_locked(client, kb_copy, timeout=0.2)
    assert response.status_code == 503
    assert "locked" in response.json()["detail"]


def test_error_bodies_name_no_path_of_the_server(client, kb_copy):
    turn_id = one_turn(client)
    details = []
    for body in ({"turn_id": 999_999, "helpful": True}, {"turn_id": turn_id, "correct_id": "x"}):
        response = client.post("/v1/feedback", json=body)
        assert response.status_code == 400
        details.append(response.json()["detail"])
    locked = ask_while_locked(client, kb_copy, timeout=0.1)
    assert locked.status_code == 503
    details.append(locked.json()["detail"])
    assert details == [
        "no turn 999999 in the conversation database",
        "no entry 'x' in the knowledge base",
        "the conversation database: the database is locked by another process (waited 0.1 s); "
        "try again when it has finished",
    ]
    assert not any(str(kb_copy.parent) in detail for detail in details)


def test_openapi_lists_error_responses_and_every_field_an_answer_has(client):
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    for path in ("/v1/ask", "/v1/feedback"):
        responses = schema["paths"][path]["post"]["responses"]
        assert {"200", "400", "422", "503"} <= set(responses)
        error = responses["400"]["content"]["application/json"]["schema"]["allOf"][0]["$ref"]
        assert components[error.rsplit("/", 1)[1]]["properties"]["detail"]["type"] == "string"
    ask = components["AskResponse"]["properties"]
    assert ask["decision"]["enum"] == ["answer", "clarify", "handoff"]
    entry = components["Entry"]["properties"]
    answered = None
    for question in ["how much does shipping cost", "how do I return an item", "rent a tent"]:
        body = client.post("/v1/ask", json={"question": question}).json()
        assert set(body) == set(ask)
        answered = answered or body["entry"]
    if answered is not None:
        assert set(answered) == set(entry)
    assert set(entry) == {"id", "question", "heading", "category", "source", "kind", "answer"}
    assert components["FeedbackRequest"]["additionalProperties"] is False


def test_concurrent_hand_offs_are_stored_and_written_to_the_outbox_once(client, kb_copy):
    questions = ["talk to a human please", "how much does shipping cost"] * 12
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(
            pool.map(lambda q: client.post("/v1/ask", json={"question": q}), questions)
        )
    assert [r.status_code for r in responses] == [200] * 24
    bodies = [r.json() for r in responses]
    events = [b["handoff_event"] for b in bodies if b["handoff_event"]]
    asked = [b for b in bodies if b["reason"] == "asked_for_person"]
    assert len(asked) == 12 and all(b["handoff_event"] for b in asked)
    assert len(set(events)) == len(events)
    lines = (kb_copy / "handoffs.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(events)
    assert count(client, "outbox_events") == len(events)
    assert len({b["turn_id"] for b in bodies}) == 24 == count(client, "support_turns")


@pytest.mark.parametrize(
    ("path", "raw", "field"),
    [
        ("/v1/ask", '{"question": NaN}', "question"),
        ("/v1/ask", '{"question": "returns", "extra": -Infinity}', "extra"),
        ("/v1/feedback", '{"turn_id": 1e400, "helpful": true}', "turn_id"),
    ],
)
def test_nan_or_infinity_in_a_body_is_422_naming_the_field_not_500(client, path, raw, field):
    # Python's JSON reader takes NaN and 1e400 (infinity); echoing them back in FastAPI's 422
    # list made the error response itself unwritable.
    one_turn(client)
    response = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", field]
    assert count(client, "support_turns") == 1 and count(client, "support_feedback") == 0


def test_a_body_over_the_limit_is_413_whether_declared_or_sent_in_chunks(client):
    from tunesmith_support.api import MAX_BODY_BYTES

    # Without a limit a client's gigabyte was read into memory whole (three times over).
    head, filler = b'{"question": "shipping ', b"x" * (MAX_BODY_BYTES // 2)
    declared = client.post(
        "/v1/ask",
        content=head + filler * 2 + b'"}',
        headers={"content-type": "application/json"},
    )
    chunked = client.post(
        "/v1/ask",
        content=iter([head, filler, filler, b'"}']),
        headers={"content-type": "application/json"},
    )
    for response in (declared, chunked):
        assert response.status_code == 413
        assert response.json()["detail"] == f"the request body is over {MAX_BODY_BYTES:,} bytes"
    assert count(client, "support_conversations") == 0
    assert client.post("/v1/ask", json={"question": "x" * 100_000}).status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert all("413" in paths[p]["post"]["responses"] for p in ("/v1/ask", "/v1/feedback"))


def test_candidates_carry_the_snippet_the_docs_name(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert "snippet" in schema["Candidate"]["required"]
    body = client.post("/v1/ask", json={"question": "how much does shipping cost"}).json()
    assert body["candidates"]
    for candidate in body["candidates"]:
        entry = client.service.answerer.entry(candidate["id"])
        assert candidate["snippet"] == entry.snippet
        assert set(candidate) == set(schema["Candidate"]["properties"])


def test_every_field_an_ask_response_always_holds_is_required_in_the_schema(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("AskResponse", "Candidate", "Entry"):
        assert set(schema[name]["required"]) == set(schema[name]["properties"]), name
    ask = schema["AskResponse"]["properties"]
    # Nullable fields say so, as the server sends null for them.
    for field in ("entry", "handoff_event"):
        assert {"type": "null"} in ask[field]["anyOf"]


REASONS = {
    ("answer", ""),
    ("answer", "chosen"),
    ("clarify", "narrowed"),
    ("clarify", "close_candidates"),
    ("clarify", "small_talk"),
    ("handoff", "asked_for_person"),
    ("handoff", "out_of_scope"),
    ("handoff", "low_confidence"),
}


def test_the_reason_enum_lists_every_reason_the_server_sends(client, monkeypatch):
    from tunesmith_support.answer import Answer

    ask = client.get("/openapi.json").json()["components"]["schemas"]["AskResponse"]
    assert set(ask["properties"]["reason"]["enum"]) == {reason for _, reason in REASONS}
    for decision, reason in sorted(REASONS):
        answer = Answer("q", "q", decision, 0.5, 0.5, reason)
        monkeypatch.setattr(client.service.answerer, "ask", lambda *_a, answer=answer: answer)
        body = client.post("/v1/ask", json={"question": "anything"}).json()
        assert (body["decision"], body["reason"]) == (decision, reason)
