"""The hand-off API as a bank's security reviewer and the integrator of its helpdesk see it: a
server that does not serve the queue says 403 before it reads a body, an agent's name cannot
forge a line of a hand-off's history, every history entry's ``detail`` has its action's keys,
two agents racing for one hand-off (one wins, the other gets the documented 409), and every
real response of the hand-off routes, errors too, fits what ``/openapi.json`` declares."""

from __future__ import annotations

import threading

from test_support_handoff_queue import AUTH, TOKEN, _entry

FORGED = "mallory\n  2026-12-08T00:26:34+00:00  released by alice"


def _conforms(value, schema: dict, document: dict, where: str = "body", part: bool = False):
    """The problems of ``value`` against the JSON schema ``schema`` (the OpenAPI subset FastAPI
    writes): types (an integer is no number's bool), enums, required fields, and fields the
    schema does not name (``part``: an ``allOf`` member, which names only what it narrows)."""
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    part = part or "allOf" in schema  # beside allOf, properties narrow the members' fields
    problems = []
    for member in schema.get("allOf", []):
        problems += _conforms(value, member, document, where, part=True)
    if "anyOf" in schema and all(
        _conforms(value, option, document, where, part) for option in schema["anyOf"]
    ):
        problems.append(f"{where}: {value!r:.60} fits none of its anyOf")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is not one of {schema['enum']}")
    kinds = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
        "null": lambda v: v is None,
    }
    kind = schema.get("type")
    if kind is not None and not kinds[kind](value):
        return [*problems, f"{where}: {value!r:.60} is not {kind}"]
    if isinstance(value, list):
        for index, item in enumerate(value):
            problems += _conforms(item, schema.get("items", {}), document, f"{where}[{index}]")
    if isinstance(value, dict) and ("properties" in schema or kind == "object"):
        fields = schema.get("properties", {})
        problems += [f"{where}: lacks {name!r}" for name in schema.get("required", [])
                     if name not in value]  # fmt: skip
        for name, item in value.items():
            if name in fields:
                problems += _conforms(item, fields[name], document, f"{where}.{name}")
            elif isinstance(schema.get("additionalProperties"), dict):
                extra = schema["additionalProperties"]
                problems += _conforms(item, extra, document, f"{where}.{name}")
            elif fields and not part and schema.get("additionalProperties") is not True:
                problems.append(f"{where}: {name!r} is not in the schema")
    return problems


def _fits(client, response, method: str, path: str) -> dict:
    """``response``'s body, asserted to fit what the schema declares for its status."""
    document = client.get("/openapi.json").json()
    declared = document["paths"][path][method]["responses"]
    status = str(response.status_code)
    assert status in declared, f"{method} {path} does not declare {status}: {response.text}"
    schema = declared[status]["content"]["application/json"]["schema"]
    body = response.json()
    assert _conforms(body, schema, document) == [], body
    return body


def _handed_off(client, question: str = "talk to a human", conversation=None) -> dict:
    asked = client.post(
        "/v1/ask", json={"question": question, "conversation_id": conversation}, headers=AUTH
    )
    assert asked.status_code == 200 and asked.json()["decision"] == "handoff", asked.text
    return asked.json()


# ---------------------------------------------------------------------- who is served


def test_a_server_that_does_not_serve_the_queue_says_403_before_it_reads_the_body(make_client):
    # Checked in each route, the 403 came after the body's checks: a body without its fields
    # was a 422 listing what the route wants, one sent as text a 415, as if it served them.
    public = make_client()
    turn = public.post("/v1/ask", json={"question": "talk to a human"}).json()["turn_id"]
    for method, path, body in (
        ("post", f"/v1/handoffs/{turn}/claim", {}),
        ("post", f"/v1/handoffs/{turn}/close", {"no_answer": "yes"}),
        ("post", f"/v1/handoffs/{turn}/reopen", {"agent": 1}),
        ("get", "/v1/handoffs/abc/history", None),
        ("get", "/v1/handoffs?all=maybe", None),
    ):
        refused = public.request(method, path, json=body)
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden"), path
    as_text = public.post(
        f"/v1/handoffs/{turn}/claim", content=b"agent=bob", headers={"content-type": "text/plain"}
    )
    assert as_text.status_code == 403
    assert public.service.conversations.handoff(turn)["claimed_by"] is None
    # A widget's server with a token: the token is checked first, then the queue refused,
    # with the CORS headers its page needs to read the refusal.
    origin = {"Origin": "https://shop.example"}
    widget = make_client(token=TOKEN, cors_origins=["https://shop.example"])
    path = f"/v1/handoffs/{turn}/claim"
    assert widget.post(path, json={}, headers=origin).status_code == 401
    refused = widget.post(path, json={}, headers={**origin, **AUTH})
    assert refused.status_code == 403
    assert refused.headers["access-control-allow-origin"] == "https://shop.example"
    _fits(widget, refused, "post", "/v1/handoffs/{turn_id}/claim")
    # Other routes are served as before.
    assert widget.post("/v1/ask", json={"question": "hi"}, headers=AUTH).status_code == 200


# ---------------------------------------------------------------------- who did what


def test_an_agents_name_is_one_line_and_a_note_adds_no_line_to_the_history(
    make_client, kb_copy, cli
):
    client = make_client(token=TOKEN)
    turn = _handed_off(client)["turn_id"]
    url = f"/v1/handoffs/{turn}"
    claimed = client.post(f"{url}/claim", json={"agent": FORGED}, headers=AUTH)
    assert claimed.status_code == 200, claimed.text
    # The name as it is kept: one line, its blanks one space each.
    assert claimed.json()["claimed_by"] == ("mallory 2026-12-08T00:26:34+00:00 released by alice")
    note = "sent the form\n  2026-12-08T00:27:00+00:00  reopened by alice"
    closed = client.post(
        f"{url}/close", json={"no_answer": True, "agent": FORGED, "note": note}, headers=AUTH
    )
    assert closed.status_code == 200 and closed.json()["note"] == note  # kept as written
    client.post(f"{url}/reopen", json={"agent": "bob"}, headers=AUTH)
    shown = cli("support", "handoffs", "--kb", str(kb_copy), "--history", str(turn))
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    # The title, the hand-off, then one line for each of the three actions: none forged.
    assert len(lines) == 5, shown.output
    assert [line.split()[1] for line in lines[1:]] == ["handed", "claimed", "closed", "reopened"]
    assert "note: sent the form ⏎ 2026-12-08T00:27:00+00:00  reopened by alice" in lines[3]


def test_every_history_entry_has_the_detail_keys_of_its_action(make_client, kb_copy):
    # A close made by `support feedback --correct-id` was logged without forced and
    # closed_with, and a claim had with_turn only when inherited: detail["forced"] raised.
    client = make_client(token=TOKEN)
    log = client.service.conversations
    entry = _entry(kb_copy)
    first = _handed_off(client)
    second = _handed_off(client, "agent please")["turn_id"]
    client.post(f"/v1/handoffs/{second}/claim", json={"agent": "alice"}, headers=AUTH)
    client.post(f"/v1/handoffs/{second}/release", json={"agent": "alice"}, headers=AUTH)
    log.add_feedback(first["turn_id"], correct_id=entry, close_handoff=True)
    client.post(f"/v1/handoffs/{first['turn_id']}/reopen", json={}, headers=AUTH)
    keys = {
        "handoff": {"reason"},
        "claim": {"taken_from", "with_turn"},
        "release": {"held_by"},
        "close": {"outcome", "entry", "note", "forced", "closed_with"},
        "reopen": {"note", "closed"},
    }
    seen = set()
    for turn in (first["turn_id"], second):
        found = client.get(f"/v1/handoffs/{turn}/history", headers=AUTH)
        for step in _fits(client, found, "get", "/v1/handoffs/{turn_id}/history")["history"]:
            assert set(step["detail"]) == keys[step["action"]], step
            seen.add(step["action"])
    assert seen == set(keys)
    close = [s for s in log.handoff_history(first["turn_id"])["history"] if s["action"] == "close"]
    assert (close[0]["detail"]["forced"], close[0]["detail"]["closed_with"]) == (False, None)


# ---------------------------------------------------------------------- a helpdesk's client


def test_two_agents_claiming_or_closing_one_handoff_at_once_one_wins_the_other_gets_409(
    make_client, kb_copy
):
    client = make_client(token=TOKEN)
    turn = _handed_off(client)["turn_id"]
    url = f"/v1/handoffs/{turn}"

    def race(bodies: dict[str, dict], action: str) -> dict[str, object]:
        barrier = threading.Barrier(len(bodies))
        answers: dict[str, object] = {}

        def send(agent: str) -> None:
            barrier.wait()
            answers[agent] = client.post(f"{url}/{action}", json=bodies[agent], headers=AUTH)

        threads = [threading.Thread(target=send, args=(agent,)) for agent in bodies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return answers

    claims = race({"alice": {"agent": "alice"}, "bob": {"agent": "bob"}}, "claim")
    assert sorted(r.status_code for r in claims.values()) == [200, 409]
    (winner,) = [a for a, r in claims.items() if r.status_code == 200]
    (loser,) = [r for r in claims.values() if r.status_code == 409]
    assert (
        loser.json()["code"] == "handoff_claimed"
        and f"claimed by {winner}" in loser.json()["detail"]
    )
    _fits(client, loser, "post", "/v1/handoffs/{turn_id}/claim")
    assert client.service.conversations.handoff(turn)["claimed_by"] == winner
    entry = _entry(kb_copy)
    closes = race(
        {
            "alice": {"correct_id": entry, "agent": "alice", "force": True},
            "bob": {"no_answer": True, "agent": "bob", "force": True},
        },
        "close",
    )
    assert sorted(r.status_code for r in closes.values()) == [200, 409]
    (refused,) = [r for r in closes.values() if r.status_code == 409]
    assert refused.json()["code"] == "handoff_closed"
    _fits(client, refused, "post", "/v1/handoffs/{turn_id}/close")
    # Nothing of the loser's is stored: one closure, one log entry of it.
    history = client.service.conversations.handoff_history(turn)["history"]
    assert [s["action"] for s in history].count("close") == 1


def test_every_response_of_the_handoff_routes_fits_the_openapi_schema(make_client, kb_copy):
    client = make_client(token=TOKEN)
    first = _handed_off(client, "talk to a human")
    conversation = first["conversation_id"]
    turn = _handed_off(client, "agent please", conversation)["turn_id"]
    _handed_off(client, "speak to a manager")
    item = "/v1/handoffs/{turn_id}"
    url = f"/v1/handoffs/{turn}"
    entry = _entry(kb_copy)

    def post(action: str, body) -> dict:
        return _fits(
            client, client.post(f"{url}/{action}", json=body, headers=AUTH), "post",
            f"{item}/{action}",
        )  # fmt: skip

    for query in ("", "?per_turn=true", "?all=true", "?since=1h"):
        queue = client.get(f"/v1/handoffs{query}", headers=AUTH)
        assert queue.status_code == 200
        _fits(client, queue, "get", "/v1/handoffs")
    grouped = client.get("/v1/handoffs", headers=AUTH).json()["handoffs"]
    assert [i["waiting_turns"] for i in grouped] == [2, 1]
    assert post("claim", {"agent": "alice"})["claimed_by"] == "alice"
    assert post("claim", {"agent": "bob"})["code"] == "handoff_claimed"
    assert post("release", {"agent": "alice"})["claimed_by"] is None
    post("claim", {"agent": "alice"})
    closed = post("close", {"correct_id": entry, "agent": "alice", "note": "<b>sent</b>"})
    assert closed["closed_with_it"] == [first["turn_id"]] and closed["note"] == "<b>sent</b>"
    assert post("close", {"no_answer": True, "agent": "bob"})["code"] == "handoff_closed"
    assert post("reopen", {"agent": "bob", "note": "wrote back"})["reopened"] == [
        first["turn_id"], turn,
    ]  # fmt: skip
    assert post("reopen", {})["code"] == "handoff_waiting"
    history = client.get(f"{url}/history", headers=AUTH)
    assert len(_fits(client, history, "get", f"{item}/history")["history"]) == 6
    # Refusals, each with its code, in the shape the schema declares for its status.
    for body, code in (
        ({}, "invalid_request"),
        ({"agent": "x" * 201}, "bad_request"),
        ({"agent": "alice", "extra": 1}, "invalid_request"),
    ):
        assert post("claim", body)["code"] == code
    assert post("reopen", {"note": "x" * 10_001})["code"] == "note_too_long"
    assert post("close", {"correct_id": "no-such-entry"})["code"] == "unknown_entry"
    assert post("close", {"correct_id": entry, "no_answer": True})["code"] == "invalid_request"
    answered = client.post("/v1/ask", json={"question": "hello"}, headers=AUTH).json()
    missing = client.post("/v1/handoffs/999999/claim", json={"agent": "a"}, headers=AUTH)
    assert _fits(client, missing, "post", f"{item}/claim")["code"] == "unknown_turn"
    for path, code in (
        ("/v1/handoffs/999999/history", "unknown_turn"),
        ("/v1/handoffs/abc/history", "invalid_request"),
        (f"/v1/handoffs/{answered['turn_id']}/history", "not_a_handoff"),
    ):
        if code == "not_a_handoff" and answered["decision"] == "handoff":
            continue
        found = client.get(path, headers=AUTH)
        assert _fits(client, found, "get", f"{item}/history")["code"] == code
    as_text = client.post(
        f"{url}/claim", content=b'{"agent": "a"}', headers={**AUTH, "content-type": "text/plain"}
    )
    assert _fits(client, as_text, "post", f"{item}/claim")["code"] == "unsupported_media_type"
    unauthorized = client.post(f"{url}/claim", json={"agent": "a"})
    assert _fits(client, unauthorized, "post", f"{item}/claim")["code"] == "unauthorized"


def test_a_customer_filling_their_turns_feedback_cannot_stop_an_agent_resolving_it(
    make_client, kb_copy
):
    # A turn keeps 20 pieces of feedback, against a client filling the disk. A customer may
    # rate their own hand-off turn, so 20 of their ratings refused the agent's close with the
    # entry (feedback_limit): no resolution and no training row, only a gap.
    from tunesmith_support.conversations import MAX_FEEDBACK_PER_TURN

    client = make_client(token=TOKEN, feedback_needs_conversation=True)
    turn = _handed_off(client)
    for index in range(MAX_FEEDBACK_PER_TURN):
        rated = client.post(
            "/v1/feedback",
            json={"turn_id": turn["turn_id"], "conversation_id": turn["conversation_id"],
                  "helpful": index % 2 == 0, "note": f"hello? {index}"},
            headers=AUTH,
        )  # fmt: skip
        assert rated.status_code == 200, rated.text
    entry = _entry(kb_copy)
    url = f"/v1/handoffs/{turn['turn_id']}"
    closed = client.post(f"{url}/close", json={"correct_id": entry, "agent": "alice"}, headers=AUTH)
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "resolved"
    log = client.service.conversations
    assert [row["correct_id"] for row in log.feedback()][-1] == entry
    # Reopened and resolved again, the agent's entry still counts; the customer still cannot
    # add more.
    client.post(f"{url}/reopen", json={"agent": "bob"}, headers=AUTH)
    again = client.post(f"{url}/close", json={"correct_id": entry, "agent": "bob"}, headers=AUTH)
    assert again.status_code == 200, again.text
    more = client.post(
        "/v1/feedback",
        json={"turn_id": turn["turn_id"], "conversation_id": turn["conversation_id"],
              "helpful": True, "note": "one more"},
        headers=AUTH,
    )  # fmt: skip
    assert more.status_code == 400 and more.json()["code"] == "feedback_limit"
