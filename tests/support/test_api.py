from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


def test_health_and_openapi_schema(client):
    health = client.get("/v1/health").json()
    assert health["status"] == "ok" and health["entries"] == 75
    schema = client.get("/openapi.json").json()
    assert {"/v1/ask", "/v1/feedback", "/v1/health", "/v1/handoffs",
            "/v1/handoffs/{turn_id}/close"} <= set(schema["paths"])  # fmt: skip


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


def test_a_loopback_server_refuses_requests_addressed_to_another_host(kb_copy):
    """DNS rebinding: a page whose domain points at 127.0.0.1 sends its own name as Host."""
    from fastapi.testclient import TestClient

    from tunesmith_support.api import create_app
    from tunesmith_support.service import SupportService

    service = SupportService(kb_copy)
    try:
        with TestClient(create_app(service, loopback_only=True)) as client:
            for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "localhost"):
                assert client.get("/v1/health", headers={"host": host}).status_code == 200
            refused = client.post(
                "/v1/ask", json={"question": "how much is shipping"}, headers={"host": "evil.test"}
            )
            assert refused.status_code == 421
            assert "127.0.0.1 or localhost only, not 'evil.test'" in refused.json()["detail"]
            assert (
                client.get("/v1/health", headers={"host": "127.0.0.1.evil.test"}).status_code == 421
            )
            # The schema lists the refusal with every route's other answers.
            paths = client.get("/openapi.json", headers={"host": "localhost"}).json()["paths"]
            for path, method in (
                ("/v1/ask", "post"),
                ("/v1/feedback", "post"),
                ("/v1/health", "get"),
            ):
                assert "421" in paths[path][method]["responses"], path
        assert service.conversations.stats() == []  # the refused question was not stored
    finally:
        service.close()


def test_host_names_are_read_without_their_port():
    from tunesmith_support.api import host_name, is_loopback

    assert host_name("[::1]:8000") == "::1" and host_name("localhost:80") == "localhost"
    assert host_name("::1") == "::1" and host_name("127.0.0.1") == "127.0.0.1"
    assert is_loopback("127.0.0.2") and is_loopback("LOCALHOST") and is_loopback("::1")
    assert is_loopback("localhost.")  # the fully qualified spelling
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")


def test_health_says_a_restart_is_needed_once_the_kb_changed_on_disk(client, kb_copy):
    import os

    assert client.get("/v1/health").json()["restart_needed"] is False
    calibration = kb_copy / "calibration.json"
    later = calibration.stat().st_mtime_ns + 5_000_000_000
    os.utime(calibration, ns=(later, later))  # as `support calibrate` rewrites it
    health = client.get("/v1/health").json()
    assert health["restart_needed"] is True and health["status"] == "ok"
