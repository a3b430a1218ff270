from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest


@pytest.fixture
def client(kb_copy):
    from fastapi.testclient import TestClient

    from tunesmith_support.api import create_app
    from tunesmith_support.service import SupportService

    service = SupportService(kb_copy)
    with TestClient(create_app(service)) as test_client:
        test_client.service = service
        yield test_client
    service.close()


def test_health_and_openapi_schema(client):
    health = client.get("/v1/health").json()
    assert health["status"] == "ok" and health["entries"] == 75
    schema = client.get("/openapi.json").json()
    assert {"/v1/ask", "/v1/feedback", "/v1/health"} <= set(schema["paths"])


def test_ask_then_feedback_is_stored(client):
    answer = client.post("/v1/ask", json={"question": "how much does shipping cost"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["decision"] in {"answer", "clarify", "handoff"} and body["text"]
    follow = client.post(
        "/v1/ask", json={"question": "and express?", "conversation_id": body["conversation_id"]}
    ).json()
    assert follow["conversation_id"] == body["conversation_id"]
    fb = client.post("/v1/feedback", json={"turn_id": body["turn_id"], "helpful": True})
    assert fb.status_code == 200
    rows = client.service.conversations.feedback()
    assert [(r["turn_id"], r["helpful"]) for r in rows] == [(body["turn_id"], 1)]


def test_bad_requests_are_400_with_one_line(client):
    empty = client.post("/v1/ask", json={"question": ""})
    assert empty.status_code == 400 and "empty" in empty.json()["detail"]
    unknown = client.post("/v1/ask", json={"question": "hi", "conversation_id": "nope"})
    assert unknown.status_code == 400
    assert client.post("/v1/feedback", json={"turn_id": 12345, "helpful": False}).status_code == 400
    assert client.post("/v1/ask", json={}).status_code == 422


def test_concurrent_requests_all_succeed_and_every_turn_is_stored(client):
    questions = [f"question number {i} about shipping" for i in range(24)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(
            pool.map(lambda q: client.post("/v1/ask", json={"question": q}), questions)
        )
    assert [r.status_code for r in responses] == [200] * 24
    turn_ids = {r.json()["turn_id"] for r in responses}
    assert len(turn_ids) == 24
    stored = client.service.conversations.store.query("SELECT COUNT(*) AS n FROM support_turns")
    assert stored[0]["n"] == 24
