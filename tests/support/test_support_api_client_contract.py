"""The support API as an integrator's client code meets it: one error shape to parse for every
status, the codes of each error response in the served schema, optional ids sent as ``""``, and
requests that are not what a handler expects (not an object, not UTF-8, a client that leaves)."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

TOKEN = "s3cret-token-for-tests-0123456789"
JSON = {"content-type": "application/json"}
ERROR_REF = {"$ref": "#/components/schemas/ErrorMessage"}


def _is_error_message(body: dict) -> None:
    """The one shape of every error body: a line, a code, a list."""
    assert set(body) == {"detail", "code", "errors"}, body
    assert isinstance(body["detail"], str) and "\n" not in body["detail"], body
    assert isinstance(body["code"], str) and isinstance(body["errors"], list), body


def test_every_error_body_has_one_shape_whatever_its_status(make_client):
    client = make_client(token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    refusals = [
        client.post("/v1/ask", json={"question": "hi"}),  # 401, written by the token check
        client.post("/v1/ask", json={"question": " "}, headers=auth),  # 400
        client.post("/v1/ask", content=b'{"question": "\xff"}', headers={**auth, **JSON}),
        client.post("/v1/ask", content=b"{}", headers={**auth, "content-type": "text/plain"}),
        client.get("/v1/nothing", headers=auth),  # 404
        client.post("/v1/ask", json={}, headers=auth),  # 422
    ]
    for response in refusals:
        assert response.status_code >= 400
        _is_error_message(response.json())
    invalid = refusals[-1].json()
    # A 422's detail was FastAPI's list, every other error's a string.
    assert invalid["detail"] == "the request does not fit the schema: question: field required"
    assert [(p["type"], p["loc"]) for p in invalid["errors"]] == [("missing", ["body", "question"])]
    assert all(response.json()["errors"] == [] for response in refusals[:-1])


def test_a_422_names_its_first_problems_on_one_line_and_lists_them_all_in_errors(client):
    body = {"question": "x", "conversationId": "a", "b": 1, "c": 2, "d": 3}
    refused = client.post("/v1/ask", json=body).json()
    assert refused["detail"] == (
        "the request does not fit the schema: conversationId: no such field; b: no such field; "
        "c: no such field (and 1 more: see errors)"
    )
    assert [p["loc"][-1] for p in refused["errors"]] == ["conversationId", "b", "c", "d"]
    broken = client.post("/v1/ask", content=b'{"question": "', headers=JSON).json()
    assert broken["detail"].startswith("the request does not fit the schema: the body is not valid")
    assert broken["errors"][0]["type"] == "json_invalid"


def test_a_422_echoes_a_long_refused_value_cut_short_not_whole(client):
    long_id = "x" * 5000
    refused = client.post("/v1/ask", json={"question": "hi", "conversationId": long_id}).json()
    echoed = refused["errors"][0]["input"]
    assert echoed.startswith("x" * 200) and echoed.endswith("(5,000 characters)")
    big = client.post(
        "/v1/ask", content=("[" + ",".join(["1"] * 50_000) + "]").encode(), headers=JSON
    )
    assert big.status_code == 422 and len(big.content) < 2_000  # was the whole array back
    assert "not echoed" in big.json()["errors"][0]["input"]


@pytest.mark.parametrize(
    ("raw", "kind"),
    [(b"[]", "an array"), (b'"how much is delivery?"', "a string"), (b"null", "null"),
     (b"3", "a number"), (b"", None)],
)  # fmt: skip
def test_a_body_that_is_not_a_json_object_is_a_422_saying_what_it_is(client, raw, kind):
    response = client.post("/v1/ask", content=raw, headers=JSON)
    assert response.status_code == 422
    expected = "the body is empty" if kind is None else f"must be a JSON object, not {kind}"
    assert expected in response.json()["detail"]
    assert client.service.conversations.stats() == []


def test_a_body_that_is_not_utf8_says_so(client):
    response = client.post("/v1/ask", content=b'{"question": "caf\xe9"}', headers=JSON)
    assert response.status_code == 400 and response.json()["code"] == "invalid_body"
    assert "not UTF-8" in response.json()["detail"]  # was "There was an error parsing the body"


# ---------------------------------------------------------------------- "" as "none"


def test_an_empty_request_id_is_no_request_id_as_an_empty_conversation_id_is_none(client):
    body = {"question": "how much does shipping cost", "request_id": "", "conversation_id": ""}
    first, second = (client.post("/v1/ask", json=body) for _ in range(2))
    assert first.status_code == second.status_code == 200, first.text  # was a 422
    # No request id: each request is a turn of its own, as with null.
    assert first.json()["turn_id"] != second.json()["turn_id"]


def test_a_short_request_id_is_refused_with_what_a_request_id_must_be(client):
    refused = client.post("/v1/ask", json={"question": "hello", "request_id": "1"}).json()
    assert refused["errors"][0]["loc"] == ["body", "request_id"]
    assert "16 to 128 visible ASCII characters" in refused["detail"]  # not a bare pattern
    schema = client.get("/openapi.json").json()["components"]["schemas"]["AskRequest"]
    pattern = schema["properties"]["request_id"]["pattern"]  # what a generated client checks
    assert re.fullmatch(pattern, "") and re.fullmatch(pattern, "a" * 16)
    assert not re.fullmatch(pattern, "1") and not re.fullmatch(pattern, "a" * 15 + " ")


def test_feedback_with_an_empty_conversation_id_is_feedback_without_one(client):
    answered = client.post("/v1/ask", json={"question": "how much does shipping cost"}).json()
    body = {"turn_id": answered["turn_id"], "conversation_id": "", "helpful": True}
    response = client.post("/v1/feedback", json=body)
    # It was a 400 "no turn N in this conversation" for the page's own turn.
    assert response.status_code == 200, response.text


def test_where_feedback_needs_its_conversation_an_empty_one_is_refused_by_name(make_client):
    client = make_client(feedback_needs_conversation=True)
    answered = client.post("/v1/ask", json={"question": "how much does shipping cost"}).json()
    for sent in ("", None):
        body = {"turn_id": answered["turn_id"], "conversation_id": sent, "helpful": True}
        refused = client.post("/v1/feedback", json=body)
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["loc"] == ["body", "conversation_id"]
        assert "conversation_id is required on this server" in refused.json()["detail"]


def test_a_feedback_post_retried_at_once_is_stored_once(client):
    answered = client.post("/v1/ask", json={"question": "how much does shipping cost"}).json()
    body = {"turn_id": answered["turn_id"], "conversation_id": answered["conversation_id"],
            "helpful": True}  # fmt: skip
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: client.post("/v1/feedback", json=body), range(8)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["feedback_id"] for r in responses}) == 1
    assert len(client.service.conversations.feedback()) == 1


# ---------------------------------------------------------------------- the served schema


def test_the_schema_gives_each_error_response_the_codes_it_may_carry(make_client):
    from tunesmith_support.api import (
        ASK_REFUSALS,
        CLAIM_REFUSALS,
        CONFLICTS,
        FEEDBACK_REFUSALS,
        HANDOFF_REFUSALS,
        HISTORY_REFUSALS,
    )
    from tunesmith_support.api_errors import CODES

    client = make_client(token=TOKEN, loopback_only=True)
    client.base_url = "http://127.0.0.1"  # a loopback host, as `serve` is asked at
    document = client.get("/openapi.json").json()
    assert {"ErrorMessage", "ValidationError"} <= set(document["components"]["schemas"])
    assert "HTTPValidationError" not in document["components"]["schemas"]
    refusals = {"/v1/ask": list(ASK_REFUSALS), "/v1/feedback": list(FEEDBACK_REFUSALS),
                "/v1/handoffs": ["bad_request"],
                "/v1/handoffs/{turn_id}/close": list(HANDOFF_REFUSALS),
                "/v1/handoffs/{turn_id}/history": list(HISTORY_REFUSALS),
                **{f"/v1/handoffs/{{turn_id}}/{action}": list(CLAIM_REFUSALS)
                   for action in ("claim", "release", "reopen")}}  # fmt: skip
    for path, operations in document["paths"].items():
        for operation in operations.values():
            errors = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
            assert {"401", "421", "500"} <= set(errors), path
            for status, response in errors.items():
                media = response["content"]["application/json"]
                assert media["schema"]["allOf"] == [ERROR_REF], (path, status)
                codes = media["schema"]["properties"]["code"]["enum"]
                assert set(codes) <= set(CODES) and codes, (path, status)
                assert all(code in response["description"] for code in codes)
                assert list(media["examples"]) == codes
                for example in media["examples"].values():
                    _is_error_message(example["value"])
                if status == "400":
                    assert codes == refusals[path]
                elif status == "422":
                    assert codes == ["invalid_request"]
                    assert media["examples"]["invalid_request"]["value"]["errors"]
                elif status == "409":  # the queue's conflicts: closed, claimed, waiting
                    assert set(codes) <= set(CONFLICTS), (path, codes)
                else:
                    assert len(codes) == 1
    page = make_client().get("/docs").text
    assert "ErrorMessage</a> with <code>code</code> one of" in page


# ---------------------------------------------------------------------- a client that leaves


def test_a_client_that_leaves_before_sending_its_body_is_no_server_error(kb_copy):
    from tunesmith_support.api import create_app
    from tunesmith_support.service import SupportService

    service = SupportService(kb_copy)
    app = create_app(service)
    sent: list[dict] = []
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/ask", "raw_path": b"/v1/ask", "query_string": b"",
        "root_path": "", "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    try:
        # It raised ClientDisconnect, and uvicorn logged a traceback for every such client.
        asyncio.run(app(scope, receive, send))
    finally:
        service.close()
    assert sent[0]["status"] == 400
