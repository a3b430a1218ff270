"""The hand-off queue at a bank's volume: closed hand-offs listed a page at a time, with a
cursor a new hand-off does not move, a conversation's waiting questions kept in one item
across a page boundary, the waiting queue whole unless a limit is asked; and a hand-off event
that says which agent already holds the conversation."""

from __future__ import annotations

import json
import shlex

import pytest
from test_support_handoff_queue import AUTH, TOKEN, _turn

from tunesmith.errors import UserInputError
from tunesmith_support.conversations import Conversations


def _closed_and_waiting(path) -> tuple[Conversations, list[int], list[int]]:
    """Four customers whose hand-off an agent closed, then three waiting."""
    log = Conversations.open(path)
    closed = []
    for i in range(4):
        turn = _turn(
            log, log.start("api"), f"closed question {i}", "handoff", reason="low_confidence"
        )
        log.close_handoff(turn, agent="alice")
        closed.append(turn)
    waiting = [
        _turn(log, log.start("api"), f"waiting {i}", "handoff", reason="low_confidence")
        for i in range(3)
    ]
    return log, closed, waiting


def _every_page(log: Conversations, **options) -> list[list[int]]:
    pages, after = [], None
    while True:
        page = log.handoff_page(after=after, **options)
        pages.append([item["turn_id"] for item in page["handoffs"]])
        after = page["next_after"]
        if after is None:
            return pages


def test_closed_handoffs_come_a_page_at_a_time_and_a_new_one_does_not_move_the_cursor(tmp_path):
    log, closed, waiting = _closed_and_waiting(tmp_path / "c.sqlite")
    try:
        first = log.handoff_page(waiting_only=False, limit=3)
        assert [i["turn_id"] for i in first["handoffs"]] == closed[:3]
        assert first["next_after"] == closed[2]
        # Handed off while the report reads: on a later page, nothing read shifts.
        new = _turn(log, log.start("api"), "a newcomer", "handoff")
        second = log.handoff_page(waiting_only=False, limit=3, after=first["next_after"])
        assert [i["turn_id"] for i in second["handoffs"]] == [closed[3], *waiting[:2]]
        third = log.handoff_page(waiting_only=False, limit=3, after=second["next_after"])
        assert [i["turn_id"] for i in third["handoffs"]] == [waiting[2], new]
        assert third["next_after"] is None
        # Without a limit the listing is whole, as before.
        assert len(log.handoffs(waiting_only=False)) == 8
        with pytest.raises(UserInputError, match="limit must be 1 to 1000"):
            log.handoff_page(limit=0)
    finally:
        log.close()


def test_a_conversations_waiting_questions_stay_in_one_item_across_a_page_boundary(tmp_path):
    log = Conversations.open(tmp_path / "c.sqlite")
    try:
        a, b = log.start("api"), log.start("api")
        a1 = _turn(log, a, "my card is blocked", "handoff")
        b1 = _turn(log, b, "refund please", "handoff")
        a2 = _turn(log, a, "hello?? still blocked", "handoff")
        b2 = _turn(log, b, "human please", "handoff")
        first = log.handoff_page(limit=1)
        (item,) = first["handoffs"]
        # The page holds the customer's newest question and every earlier one waiting.
        assert item["turn_id"] == a2 and [e["turn_id"] for e in item["earlier_waiting"]] == [a1]
        assert first["next_after"] == a1  # its position: the first waiting hand-off
        # A third question of that customer joins their item: the next page is the other one.
        a3 = _turn(log, a, "anyone??", "handoff")
        second = log.handoff_page(limit=1, after=first["next_after"])
        (other,) = second["handoffs"]
        assert other["turn_id"] == b2 and [e["turn_id"] for e in other["earlier_waiting"]] == [b1]
        assert second["next_after"] is None
        assert [i["turn_id"] for i in log.handoffs()] == [a3, b2]
        # One item per turn: each turn on its own, none lost between pages.
        assert _every_page(log, per_turn=True, limit=2) == [[a1, b1], [a2, b2], [a3]]
    finally:
        log.close()


def test_paging_lists_what_the_whole_listing_lists_with_since(tmp_path):
    log, closed, waiting = _closed_and_waiting(tmp_path / "c.sqlite")
    try:
        log.store.execute(
            "UPDATE support_turns SET created_at = '2020-01-01T00:00:00+00:00' WHERE id IN (?, ?)",
            (closed[1], waiting[0]),
        )
        from datetime import UTC, datetime

        since = datetime(2024, 1, 1, tzinfo=UTC)
        whole = [i["turn_id"] for i in log.handoffs(waiting_only=False, since=since)]
        assert closed[1] not in whole and waiting[0] not in whole
        pages = _every_page(log, waiting_only=False, since=since, limit=2)
        assert [turn for page in pages for turn in page] == whole
        assert all(len(page) <= 2 for page in pages)
    finally:
        log.close()


# ---------------------------------------------------------------------- the HTTP API


def test_the_api_pages_closed_handoffs_and_keeps_the_waiting_queue_whole(make_client, monkeypatch):
    from tunesmith_support import api

    monkeypatch.setattr(api, "DEFAULT_LIMIT", 2)
    client = make_client(token=TOKEN)
    log, closed, waiting = _closed_and_waiting(client.service.conversations.store.path)
    log.close()
    queue = client.get("/v1/handoffs", headers=AUTH).json()
    # An agent sees everything waiting, whatever the default page of all=true.
    assert ([i["turn_id"] for i in queue["handoffs"]], queue["next_after"]) == (waiting, None)
    page = client.get("/v1/handoffs?all=true", headers=AUTH).json()
    assert [i["turn_id"] for i in page["handoffs"]] == closed[:2]
    seen = [i["turn_id"] for i in page["handoffs"]]
    while page["next_after"] is not None:
        url = f"/v1/handoffs?all=true&limit=3&after={page['next_after']}"
        page = client.get(url, headers=AUTH).json()
        seen += [i["turn_id"] for i in page["handoffs"]]
    assert seen == closed + waiting
    limited = client.get("/v1/handoffs?limit=1", headers=AUTH).json()
    assert ([i["turn_id"] for i in limited["handoffs"]], limited["next_after"]) == (
        waiting[:1], waiting[0]
    )  # fmt: skip
    for query in ("limit=0", "limit=1001", "after=-1", "limit=many"):
        refused = client.get(f"/v1/handoffs?{query}", headers=AUTH)
        assert refused.status_code == 422, query
        assert refused.json()["code"] == "invalid_request"


def test_the_schema_documents_the_page_size_and_the_cursor(make_client):
    client = make_client(token=TOKEN, loopback_only=True)
    client.base_url = "http://127.0.0.1"
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/v1/handoffs"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    limit = params["limit"]["schema"]
    assert (limit["anyOf"][0]["minimum"], limit["anyOf"][0]["maximum"]) == (1, 1000)
    assert (
        "100" in params["limit"]["description"] and "next_after" in params["after"]["description"]
    )
    queue = document["components"]["schemas"]["HandoffQueue"]
    assert set(queue["required"]) == {"handoffs", "next_after"}
    assert "after=next_after" in queue["properties"]["next_after"]["description"]


# ---------------------------------------------------------------------- the CLI


def test_support_handoffs_all_lists_a_page_and_says_how_to_list_the_next(kb_copy, cli):
    log, closed, waiting = _closed_and_waiting(kb_copy / "conversations.sqlite")
    log.close()
    kb = ("support", "handoffs", "--kb", str(kb_copy))
    first = cli(*kb, "--all", "--limit", "3")
    assert first.exit_code == 0, first.output
    assert f"turn {closed[2]}  waited" in first.output and f"turn {closed[3]}" not in first.output
    assert "0 waiting, 3 closed on this page" in first.output
    said = first.output.rstrip().splitlines()[-1]
    assert (
        said
        == f"more: tunesmith support handoffs --kb {kb_copy} --all --limit 3 --after {closed[2]}"
    )
    rest = cli(*shlex.split(said)[2:])
    assert rest.exit_code == 0, rest.output
    assert (
        f"turn {closed[3]}  waited" in rest.output and f"turn {waiting[1]}  waiting" in rest.output
    )
    assert "2 waiting, 1 closed on this page" in rest.output
    assert rest.output.rstrip().endswith(f"--after {waiting[1]}")
    # JSON stays a list; where the next page starts is said on stderr.
    listed = cli(*kb, "--all", "--limit", "2", "--json")
    assert [i["turn_id"] for i in json.loads(listed.stdout)] == closed[:2]
    assert f"--after {closed[1]}" in listed.stderr
    # The waiting queue is whole by default; --all alone pages by 100.
    assert [i["turn_id"] for i in json.loads(cli(*kb, "--json").stdout)] == waiting
    assert len(json.loads(cli(*kb, "--all", "--json").stdout)) == 7
    for args, said in (
        (("--limit", "0"), "--limit"),
        (("--claim", "1", "--limit", "2"), "not with --claim"),
    ):
        refused = cli(*kb, *args)
        assert refused.exit_code != 0 and said in refused.output, refused.output


# ---------------------------------------------------------------------- the event


def test_a_handoff_event_says_which_agent_already_holds_the_conversation(kb_copy):
    from test_conversations import read_handoffs

    from tunesmith_support.service import SupportService

    service = SupportService(kb_copy)
    try:
        first = service.ask("I want to talk to a human please")
        service.conversations.claim_handoff(first.turn_id, "alice")
        again = service.ask("talk to a human please", first.conversation_id)
        elsewhere = service.ask("agent please")
        events = {e["id"]: e["payload"] for e in read_handoffs(kb_copy)}
        assert events[first.handoff_event]["claimed_by"] is None  # nobody held it yet
        assert events[again.handoff_event]["claimed_by"] == "alice"
        assert events[elsewhere.handoff_event]["claimed_by"] is None
        # The stored event (what a retry delivers) says the same.
        (row,) = service.conversations.store.query(
            "SELECT payload FROM outbox_events WHERE id = ?", (again.handoff_event,)
        )
        assert json.loads(row["payload"])["claimed_by"] == "alice"
    finally:
        service.close()
