"""The support API's error contract, as a front end that must handle every error in code sees it:
every error body is one shape (``detail`` a line, a stable ``code`` that the OpenAPI schema
declares, ``errors`` a 422's problems); plus the JSON and conversation details such a page trips
over."""

from __future__ import annotations

import threading
from types import SimpleNamespace

TOKEN = "s3cret-token-for-tests-0123456789"
ASK = {"question": "how much does shipping cost"}
JSON = {"content-type": "application/json"}


def _clarified(service, options: list[str]) -> str:
    """A conversation whose last turn asked "Which of these do you mean?" with ``options``."""
    conversations = service.conversations
    conversation = conversations.start("api")
    clarify = SimpleNamespace(
        entry=None, question="where is my parcel", query="where is my parcel",
        decision="clarify", reason="close_candidates", confidence=0.6,
        text="Which of these do you mean?", candidates=[], options=options,
    )  # fmt: skip
    conversations.record_turn(conversation, clarify)
    return conversation


def _answered(service, entry_id: str) -> tuple[str, int]:
    """(conversation, turn) of a turn answered with ``entry_id``."""
    conversations = service.conversations
    conversation = conversations.start("api")
    answer = SimpleNamespace(
        entry={"id": entry_id}, question="q", query="q", decision="answer", reason="",
        confidence=0.9, text="t", candidates=[],
    )  # fmt: skip
    return conversation, conversations.record_turn(conversation, answer)


# ------------------------------------------------------------------------- the schema's word


def _resolve(schema: dict, document: dict) -> dict:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _fits(value, schema: dict, document: dict, where: str = "body") -> None:
    """Assert ``value`` fits the JSON schema ``schema`` (the subset FastAPI writes)."""
    schema = _resolve(schema, document)
    for part in schema.get("allOf", []):
        _fits(value, part, document, where)
    if "anyOf" in schema:
        failures = []
        for option in schema["anyOf"]:
            try:
                _fits(value, option, document, where)
                return
            except AssertionError as exc:
                failures.append(str(exc))
        raise AssertionError(f"{where}: fits none of {failures}")
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} is not one of {schema['enum']}"
    kind = schema.get("type")
    types = {"string": str, "integer": int, "array": list, "object": dict, "null": type(None)}
    if kind in types:
        assert isinstance(value, types[kind]), f"{where}: {value!r} is not {kind}"
    if kind == "array":
        for index, item in enumerate(value):
            _fits(item, schema.get("items", {}), document, f"{where}[{index}]")
    if kind == "object" or "properties" in schema:
        missing = set(schema.get("required", [])) - set(value)
        assert not missing, f"{where}: lacks {missing}"
        for name, field in schema.get("properties", {}).items():
            if name in value:
                _fits(value[name], field, document, f"{where}.{name}")


def _declared(client, method: str, path: str, status: int) -> dict:
    document = client.get("/openapi.json").json()
    responses = document["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method} {path} does not declare {status}"
    return responses[str(status)]["content"]["application/json"]["schema"], document


def _check(client, response, method: str, path: str, status: int, code: str) -> dict:
    """The response has ``status`` and ``code``, and fits what the schema declares for it."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    schema, document = _declared(client, method, path, status)
    _fits(body, schema, document)
    return body


def test_every_error_status_has_a_code_and_fits_the_schema_declared_for_it(make_client):
    from tunesmith.store import StoreError
    from tunesmith_support.api import MAX_BODY_BYTES

    client = make_client(token=TOKEN, loopback_only=True)
    client.base_url = "http://127.0.0.1"  # a loopback host, as `serve` is asked at
    auth = {"Authorization": f"Bearer {TOKEN}"}
    post = lambda path, **kw: client.post(path, headers={**auth, **kw.pop("headers", {})}, **kw)  # noqa: E731

    # 401, for each route; its detail is a line, as before.
    for method, path in (("post", "/v1/ask"), ("post", "/v1/feedback"), ("get", "/v1/health")):
        refused = client.request(method, path, json=ASK if method == "post" else None)
        body = _check(client, refused, method, path, 401, "unauthorized")
        assert body["detail"].startswith("this server needs a token")
    # 400, the service's refusals, by their own codes.
    body = _check(
        client, post("/v1/ask", json={"question": " "}), "post", "/v1/ask", 400, "empty_question"
    )
    assert body == {
        "detail": "the question is empty; type a question",
        "code": "empty_question",
        "errors": [],
    }
    unknown = post("/v1/ask", json={**ASK, "conversation_id": "gone"})
    assert _check(client, unknown, "post", "/v1/ask", 400, "unknown_conversation")["detail"] == (
        "no conversation 'gone'"
    )
    surrogate = post("/v1/ask", content=b'{"question": "\\ud800"}', headers=JSON)
    _check(client, surrogate, "post", "/v1/ask", 400, "invalid_text")
    not_utf8 = post("/v1/ask", content=b'{"question": "\xff"}', headers=JSON)
    _check(client, not_utf8, "post", "/v1/ask", 400, "invalid_body")
    # 413, declared and sent in chunks; 415; 422 (its problems in errors).
    huge = b'{"question": "' + b"a" * MAX_BODY_BYTES + b'"}'
    declared = post("/v1/ask", content=huge, headers=JSON)
    _check(client, declared, "post", "/v1/ask", 413, "payload_too_large")
    chunked = post(
        "/v1/ask",
        content=iter([huge[:1000], huge[1000:]]),
        headers=JSON,
    )
    _check(client, chunked, "post", "/v1/ask", 413, "payload_too_large")
    as_text = post("/v1/ask", content=b'{"question": "x"}', headers={"content-type": "text/plain"})
    _check(client, as_text, "post", "/v1/ask", 415, "unsupported_media_type")
    invalid = _check(client, post("/v1/ask", json={}), "post", "/v1/ask", 422, "invalid_request")
    assert invalid["errors"][0]["loc"] == ["body", "question"]
    # 421: a host name a DNS-rebinding page would send.
    elsewhere = post("/v1/ask", json=ASK, headers={"host": "evil.example"})
    _check(client, elsewhere, "post", "/v1/ask", 421, "misdirected_request")
    # 503: the conversation database is locked.
    service = client.service
    real = service.ask_request

    def locked(*_args, **_kwargs):
        raise StoreError("the conversation database is locked")

    service.ask_request = locked
    _check(client, post("/v1/ask", json=ASK), "post", "/v1/ask", 503, "service_unavailable")

    # 500: JSON with a code too (Starlette answered the plain text "Internal Server Error").
    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug")

    service.ask_request = broken
    failed = _check(client, post("/v1/ask", json=ASK), "post", "/v1/ask", 500, "internal_error")
    assert "a bug" not in failed["detail"]
    service.ask_request = real
    # 404 and 405 name no route in the schema, but carry a code (405 keeps its Allow header).
    assert client.get("/v1/nothing", headers=auth).json() == {
        "detail": "Not Found",
        "code": "not_found",
        "errors": [],
    }
    wrong_method = client.delete("/v1/ask", headers=auth)
    assert wrong_method.json() == {
        "detail": "Method Not Allowed",
        "code": "method_not_allowed",
        "errors": [],
    }
    assert wrong_method.headers["allow"] == "POST"


def test_each_feedback_refusal_has_a_code_of_its_own(client):
    service = client.service
    entry = sorted(service.answerer.scorer.position)[0]
    conversation, turn = _answered(service, entry)
    hello = client.post("/v1/ask", json={"question": "hi"}).json()
    assert hello["reason"] == "small_talk"

    def code(**body) -> str:
        response = client.post("/v1/feedback", json=body)
        assert response.status_code == 400, response.text
        schema, document = _declared(client, "post", "/v1/feedback", 400)
        _fits(response.json(), schema, document)
        return response.json()["code"]

    assert code(turn_id=99_999, helpful=True) == "unknown_turn"
    assert code(turn_id=turn, conversation_id="another", helpful=True) == "unknown_turn"
    assert code(turn_id=turn) == "rating_missing"
    assert code(turn_id=turn, correct_id="no-such-entry") == "unknown_entry"
    assert code(turn_id=turn, helpful=True, note="x" * 10_001) == "note_too_long"
    surrogate = b'{"turn_id": %d, "helpful": true, "note": "\\ud800"}' % turn
    response = client.post("/v1/feedback", content=surrogate, headers=JSON)
    assert response.json()["code"] == "invalid_text"
    assert code(turn_id=hello["turn_id"], helpful=True) == "small_talk_turn"
    assert code(turn_id=turn, correct_id=entry, helpful=False) == "contradictory_feedback"
    for n in range(20):
        rated = client.post("/v1/feedback", json={"turn_id": turn, "helpful": True, "note": str(n)})
        assert rated.status_code == 200
    assert code(turn_id=turn, helpful=True, note="one more") == "feedback_limit"


def test_the_schema_names_every_code_and_the_docs_page_lists_them(client):
    from tunesmith_support.api_errors import CODES

    document = client.get("/openapi.json").json()
    code = document["components"]["schemas"]["ErrorMessage"]["properties"]["code"]
    assert code["enum"] == list(CODES)
    assert set(document["components"]["schemas"]["ErrorMessage"]["required"]) == {
        "detail",
        "code",
        "errors",
    }
    responses = document["paths"]["/v1/ask"]["post"]["responses"]
    assert "unknown_conversation" in responses["400"]["description"]
    assert responses["422"]["content"]["application/json"]["schema"]["allOf"] == [
        {"$ref": "#/components/schemas/ErrorMessage"}
    ]
    page = client.get("/docs").text
    assert "unknown_conversation" in page and "invalid_request" in page


# ------------------------------------------------------------- conversations a page keeps


def test_a_page_told_its_conversation_is_gone_starts_a_new_one_by_asking_without_it(client):
    gone = client.post("/v1/ask", json={**ASK, "conversation_id": "7f3c0000deadbeef"})
    assert gone.status_code == 400 and gone.json()["code"] == "unknown_conversation"
    assert client.service.conversations.stats() == []  # nothing was stored
    again = client.post("/v1/ask", json=ASK)
    assert again.status_code == 200 and again.json()["conversation_id"] != "7f3c0000deadbeef"


def test_an_empty_conversation_id_starts_a_conversation_as_null_does(client):
    # A page's `conversationId || ""`: it was a 400 "no conversation ''".
    first = client.post("/v1/ask", json={**ASK, "conversation_id": ""})
    assert first.status_code == 200, first.text
    conversation = first.json()["conversation_id"]
    assert conversation and client.service.conversations.count_turns(conversation) == 1
    schema = client.get("/openapi.json").json()["components"]["schemas"]["AskRequest"]
    assert '""' in schema["properties"]["conversation_id"]["description"]


# ------------------------------------------------------------------------- strict JSON


def test_a_json_key_given_twice_is_a_422_naming_it_and_nothing_is_stored(client):
    twice = b'{"question": "where is my parcel", "question": "agent please"}'
    response = client.post("/v1/ask", content=twice, headers=JSON)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_request"
    assert [(p["type"], p["loc"]) for p in body["errors"]] == [
        ("duplicate_key", ["body", "question"])
    ]
    assert "'question'" in body["errors"][0]["msg"] and "'question'" in body["detail"]
    assert client.service.conversations.stats() == []
    rated = b'{"turn_id": 1, "helpful": true, "helpful": false}'
    response = client.post("/v1/feedback", content=rated, headers=JSON)
    assert response.status_code == 422 and response.json()["errors"][0]["loc"] == [
        "body",
        "helpful",
    ]


def test_repeated_keys_are_found_at_any_depth_and_a_body_that_is_not_json_has_none():
    from tunesmith_support.api_errors import repeated_keys

    assert repeated_keys(b'{"a": 1, "b": [{"c": 1, "c": 2}], "a": 3, "a": 4}') == [
        ("a",),
        ("b", 0, "c"),
    ]
    assert repeated_keys(b'{"a": 1}') == []
    assert repeated_keys(b"not json") == []
    assert repeated_keys(b"[" * 100_000 + b"]" * 100_000) == []  # FastAPI refuses it (400)


# ------------------------------------------------------------- picks sent one after another


def test_a_second_pick_answers_its_option_when_the_first_pick_was_stored_first(client):
    service = client.service
    options = sorted(service.answerer.scorer.position)[:3]
    conversation = _clarified(service, options)
    first = client.post("/v1/ask", json={"question": "1", "conversation_id": conversation}).json()
    second = client.post("/v1/ask", json={"question": "2", "conversation_id": conversation}).json()
    # The second was searched as the question "2" (another answer, or a hand-off).
    assert (first["reason"], first["entry"]["id"]) == ("chosen", options[0])
    assert (second["reason"], second["entry"]["id"]) == ("chosen", options[1])
    assert second["notes"] == first["notes"] == []
    third = client.post(
        "/v1/ask", json={"question": "the last one", "conversation_id": conversation}
    )
    assert third.json()["entry"]["id"] == options[2]


def test_two_picks_sent_at_once_answer_both_options_whichever_order_they_are_read(client):
    # Forced: both requests have read the conversation (its last turn the clarifying question)
    # before either stores its turn, the interleaving the previous test cannot produce.
    service = client.service
    options = sorted(service.answerer.scorer.position)[:2]
    conversation = _clarified(service, options)
    both_read = threading.Barrier(2, timeout=30)
    choose = service.answerer.answer_choice

    def after_both_read(*args, **kwargs):
        both_read.wait()
        return choose(*args, **kwargs)

    service.answerer.answer_choice = after_both_read
    results: dict[str, dict] = {}

    def pick(number: str) -> None:
        body = {"question": number, "conversation_id": conversation}
        results[number] = client.post("/v1/ask", json=body).json()

    threads = [threading.Thread(target=pick, args=(n,)) for n in ("1", "2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [(results[n]["reason"], results[n]["entry"]["id"]) for n in ("1", "2")] == [
        ("chosen", options[0]),
        ("chosen", options[1]),
    ]
    assert service.conversations.count_turns(conversation) == 3


def test_a_number_after_a_searched_answer_is_not_read_against_an_older_clarifying_question():
    from tunesmith_support.service import open_clarify

    clarify = {"decision": "clarify", "reason": "close_candidates", "options": ["a", "b"]}
    chosen = {"decision": "answer", "reason": "chosen", "options": []}
    searched = {"decision": "answer", "reason": "", "options": []}
    thanks = {"decision": "clarify", "reason": "small_talk", "options": []}
    assert open_clarify([clarify]) is clarify
    assert open_clarify([clarify, chosen, chosen]) is clarify
    assert open_clarify([clarify, chosen, searched]) is None
    assert open_clarify([clarify, chosen, thanks]) is None
    assert open_clarify([]) is None


def test_a_server_failure_is_json_a_widget_on_another_origin_can_read(make_client, caplog):
    origin = "https://shop.example"
    client = make_client(cors_origins=[origin])

    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug")

    client.service.ask_request = broken
    failed = client.post("/v1/ask", json=ASK, headers={"Origin": origin})
    assert failed.status_code == 500
    assert failed.json()["code"] == "internal_error" and "a bug" not in failed.text
    # Without it the browser reports a network error, never the code.
    assert failed.headers["access-control-allow-origin"] == origin
    assert "RuntimeError: a bug" in caplog.text  # the operator still sees why
