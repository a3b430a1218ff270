"""A team working the hand-off queue: claiming a hand-off so that two agents do not both answer
the customer, releasing and taking over a claim, reopening a closed one, one item per
conversation (closing it closes the customer's earlier questions), a database from before
claims, and the same in the CLI, the HTTP API and its schema."""

from __future__ import annotations

import json

import pytest
from test_support_handoff_queue import AUTH, TOKEN, _entry, _handed_off, _turn

from tunesmith_support.conversations import MIGRATIONS, NAMESPACE, Conversations
from tunesmith_support.refusals import Refusal


def _asked_three_times(path) -> tuple[Conversations, list[int], int]:
    """A log where one customer was handed off three times in one conversation (after an
    answer), and another customer once."""
    log = Conversations.open(path)
    first = log.start("api")
    _turn(log, first, "how much is delivery?", "answer", entry="shp-01")
    turns = [
        _turn(log, first, "my tent pole snapped", "handoff", reason="low_confidence"),
        _turn(log, first, "hello?? the pole is broken", "handoff", reason="out_of_scope"),
        _turn(log, first, "talk to a human", "handoff", reason="asked_for_person"),
    ]
    other = _turn(log, log.start("api"), "bitcoin on the moon?", "handoff", reason="low_confidence")
    return log, turns, other


def _refused(call, *args, **kwargs) -> Refusal:
    with pytest.raises(Refusal) as refused:
        call(*args, **kwargs)
    return refused.value


def test_the_queue_shows_one_item_per_conversation_with_the_earlier_questions(tmp_path):
    log, (one, two, three), other = _asked_three_times(tmp_path / "c.sqlite")
    try:
        queue = log.handoffs()
        assert [item["turn_id"] for item in queue] == [three, other]
        item = queue[0]
        assert item["question"] == "talk to a human" and item["waiting_turns"] == 3
        assert [e["turn_id"] for e in item["earlier_waiting"]] == [one, two]
        assert item["earlier_waiting"][0]["question"] == "my tent pole snapped"
        assert item["waiting_since"] == log.handoff(one)["created_at"]
        # The old view, one item per turn, is still there.
        assert [i["turn_id"] for i in log.handoffs(per_turn=True)] == [one, two, three, other]
    finally:
        log.close()


def test_closing_a_conversations_item_closes_its_earlier_questions_as_superseded(tmp_path):
    log, (one, two, three), other = _asked_three_times(tmp_path / "c.sqlite")
    try:
        closed = log.close_handoff(three, entry_id="war-03", agent="alice")
        assert closed["closed_with_it"] == [one, two]
        assert [i["turn_id"] for i in log.handoffs()] == [other]
        earlier = log.handoff(one)
        assert (earlier["status"], earlier["closed_with"], earlier["agent"]) == (
            "superseded", three, "alice"
        )  # fmt: skip
        # One training row (the agent's pick, for the question before "talk to a human"),
        # and the earlier questions are not gaps in the KB.
        assert log.training_rows() == [
            {"question": "hello?? the pole is broken", "answer_id": "war-03"}
        ]
        (row,) = log.stats("day")
        assert (row["handoffs_waiting"], row["kb_gaps"]) == (1, 0)
    finally:
        log.close()


def test_closing_this_turn_only_leaves_the_earlier_questions_waiting(tmp_path):
    log, (one, two, three), _ = _asked_three_times(tmp_path / "c.sqlite")
    try:
        assert log.close_handoff(three, with_earlier=False)["closed_with_it"] == []
        assert [i["turn_id"] for i in log.handoffs(per_turn=True)][:2] == [one, two]
        # A later question of the conversation stays waiting when an earlier one is closed.
        log.close_handoff(one, entry_id="war-03")
        assert log.handoff(two)["status"] == "waiting"
    finally:
        log.close()


def test_a_claim_by_another_agent_refuses_a_claim_a_release_and_a_close(tmp_path):
    log, (one, _two, three), _ = _asked_three_times(tmp_path / "c.sqlite")
    try:
        claimed = log.claim_handoff(three, "alice")
        assert claimed["claimed_by"] == "alice" and claimed["claimed_at"]
        # The conversation's earlier questions are alice's too: nobody closes them under her.
        assert log.handoff(one)["claimed_by"] == "alice"
        for refused in (
            _refused(log.claim_handoff, three, "bob"),
            _refused(log.release_handoff, three, "bob"),
            _refused(log.close_handoff, one, agent="bob", with_earlier=False),
            _refused(log.close_handoff, three),  # no agent named: not alice
        ):
            assert refused.code == "handoff_claimed"
            assert "claimed by alice since" in str(refused) and "nothing was changed" in str(
                refused
            )
        assert "--agent alice" in str(_refused(log.close_handoff, three))
        assert log.handoff(three)["status"] == "waiting" and log.feedback() == []
        # Her own claim again changes nothing; her close is hers.
        assert log.claim_handoff(three, "alice")["claimed_at"] == claimed["claimed_at"]
        closed = log.close_handoff(three, entry_id="war-03", agent="alice")
        assert (closed["claimed_by"], closed["agent"]) == ("alice", "alice")
    finally:
        log.close()


def test_a_claim_can_be_released_or_taken_over_with_force_and_the_log_says_so(tmp_path):
    log, (_one, _two, three), other = _asked_three_times(tmp_path / "c.sqlite")
    try:
        log.claim_handoff(other, "alice")
        assert log.release_handoff(other, "alice")["claimed_by"] is None
        log.claim_handoff(three, "alice")
        assert log.claim_handoff(three, "bob", force=True)["claimed_by"] == "bob"
        closed = log.close_handoff(other, agent="carol")  # unclaimed: anyone closes it
        assert closed["agent"] == "carol"
        log_rows = log.store.query(
            "SELECT action, agent, detail FROM support_handoff_log WHERE turn_id = ? ORDER BY id",
            (three,),
        )
        assert [(r["action"], r["agent"]) for r in log_rows] == [
            ("claim", "alice"),
            ("claim", "bob"),
        ]
        assert json.loads(log_rows[1]["detail"])["taken_from"] == "alice"
        refused = _refused(log.claim_handoff, other, "dave")
        assert refused.code == "handoff_closed" and "reopen it" in str(refused)
        assert _refused(log.claim_handoff, three, "").code == "bad_request"
    finally:
        log.close()


def test_reopening_puts_it_back_withdraws_its_training_row_and_keeps_the_closure(tmp_path):
    log, (one, two, three), _ = _asked_three_times(tmp_path / "c.sqlite")
    try:
        log.claim_handoff(three, "alice")
        log.close_handoff(three, entry_id="war-03", agent="alice", note="sent the repair form")
        assert _refused(log.reopen_handoff, 99).code == "unknown_turn"
        reopened = log.reopen_handoff(three, "bob", "wrong entry")
        assert reopened["reopened"] == [one, two, three]
        assert (reopened["status"], reopened["claimed_by"], reopened["entry_id"]) == (
            "waiting", None, None
        )  # fmt: skip
        assert log.handoffs()[0]["waiting_turns"] == 3
        # The wrong pick is no training row any more, but nothing is deleted: the feedback row
        # is marked, and the log keeps the closure undone.
        assert log.training_rows() == []
        assert log.store.query("SELECT COUNT(*) AS n FROM support_feedback")[0]["n"] == 1
        (undone,) = log.store.query(
            "SELECT agent, detail FROM support_handoff_log WHERE turn_id = ? AND action = 'reopen'",
            (three,),
        )
        closure = json.loads(undone["detail"])
        assert undone["agent"] == "bob" and closure["note"] == "wrong entry"
        assert closure["closed"]["entry"] == "war-03" and closure["closed"]["agent"] == "alice"
        assert _refused(log.reopen_handoff, three).code == "handoff_waiting"
        # Closed again with the same entry: a training row again.
        log.close_handoff(three, entry_id="war-03", agent="bob")
        assert [r["answer_id"] for r in log.training_rows()] == ["war-03"]
    finally:
        log.close()


def test_a_database_from_before_claims_upgrades_and_keeps_every_closure(tmp_path):
    from tunesmith.store import Store

    path = tmp_path / "c.sqlite"
    old = Store.open(path, namespace=NAMESPACE, migrations=MIGRATIONS[:5])
    old.execute("INSERT INTO support_conversations (id, started_at) VALUES ('c', '2025-01-01')")
    for question in ("my parcel came broken", "do you sell kayaks", "agent please"):
        old.execute(
            "INSERT INTO support_turns (conversation_id, created_at, question, query, decision, "
            "reason, confidence, handoff_event) VALUES ('c', '2025-01-01T10:00:00+00:00', ?, ?, "
            "'handoff', 'low_confidence', 0.1, 'e')",
            (question, question),
        )
    old.execute(
        "UPDATE support_turns SET handoff_closed_at = '2025-01-01T11:00:00+00:00', "
        "handoff_outcome = 'no_answer', handoff_agent = 'alice' WHERE id = 1"
    )
    old.close()
    log = Conversations.open(path)
    try:
        closed = log.handoff(1)
        assert (closed["status"], closed["agent"], closed["claimed_by"]) == (
            "no_answer", "alice", None
        )  # fmt: skip
        (logged,) = log.store.query("SELECT turn_id, at, action, agent FROM support_handoff_log")
        assert tuple(logged) == (1, "2025-01-01T11:00:00+00:00", "close", "alice")
        (item,) = log.handoffs()
        assert (item["turn_id"], item["waiting_turns"]) == (3, 2)
        log.claim_handoff(3, "bob")
        assert log.reopen_handoff(1, "bob")["status"] == "waiting"
    finally:
        log.close()


# ---------------------------------------------------------------------- the CLI


def test_support_handoffs_claim_close_and_reopen_from_the_cli(kb_copy, cli):
    turn = _handed_off(kb_copy, cli)["turn_id"]
    kb = ("support", "handoffs", "--kb", str(kb_copy))
    claimed = cli(*kb, "--claim", str(turn), "--agent", "alice")
    assert claimed.exit_code == 0 and "claimed by alice" in claimed.output, claimed.output
    assert "claimed by alice" in cli(*kb).output
    taken = cli(*kb, "--claim", str(turn), "--agent", "bob")
    assert taken.exit_code != 0 and "claimed by alice since" in taken.output
    closed = cli(*kb, "--close", str(turn), "--no-answer", "--agent", "bob")
    assert closed.exit_code != 0 and "--force to close it anyway" in closed.output
    forced = cli(*kb, "--close", str(turn), "--no-answer", "--agent", "bob", "--force")
    assert forced.exit_code == 0, forced.output
    (item,) = json.loads(cli(*kb, "--all", "--json").stdout)
    assert (item["claimed_by"], item["agent"], item["status"]) == ("alice", "bob", "no_answer")
    reopened = cli(*kb, "--reopen", str(turn), "--agent", "bob", "--note", "customer wrote back")
    assert reopened.exit_code == 0 and "reopened" in reopened.output, reopened.output
    assert [i["status"] for i in json.loads(cli(*kb, "--json").stdout)] == ["waiting"]


def test_support_handoffs_lists_one_item_per_conversation_unless_per_turn(kb_copy, cli):
    first = _handed_off(kb_copy, cli)
    again = cli("support", "ask", "--kb", str(kb_copy), "--conversation",
                first["conversation_id"], "--json", "a human please, now")  # fmt: skip
    second = json.loads(again.stdout)
    assert second["decision"] == "handoff"
    kb = ("support", "handoffs", "--kb", str(kb_copy))
    listed = cli(*kb)
    assert "2 questions waiting in this conversation" in listed.output
    assert "1 waiting (2 hand-off turns)" in listed.output
    (item,) = json.loads(cli(*kb, "--json").stdout)
    assert item["turn_id"] == second["turn_id"] and item["waiting_turns"] == 2
    per_turn = json.loads(cli(*kb, "--per-turn", "--json").stdout)
    assert [i["turn_id"] for i in per_turn] == [first["turn_id"], second["turn_id"]]
    closed = cli(*kb, "--close", str(second["turn_id"]), "--no-answer")
    assert f"closed with it: turn {first['turn_id']}" in closed.output, closed.output
    assert "no hand-offs waiting" in cli(*kb).output


@pytest.mark.parametrize(
    "args, said",
    [
        (("--claim", "1", "--close", "1"), "one action at a time"),
        (("--claim", "1", "--note", "x"), "--note goes with --close or --reopen"),
        (("--reopen", "1", "--force"), "--force goes with --claim"),
        (("--force",), "go with --claim, --release, --close or --reopen"),
        (("--claim", "1", "--per-turn"), "not with --claim"),
        (("--claim", "1"), "a claim needs the agent's name"),
        (("--reopen", "1"), "waiting already; nothing to reopen"),
    ],
)
def test_support_handoffs_claim_mistakes_are_one_line(kb_copy, cli, args, said):
    _handed_off(kb_copy, cli)
    result = cli("support", "handoffs", "--kb", str(kb_copy), *args)
    assert result.exit_code != 0 and said in result.output, result.output


def test_support_feedback_leaves_a_claimed_handoff_to_its_agent(kb_copy, cli):
    turn = _handed_off(kb_copy, cli)["turn_id"]
    cli("support", "handoffs", "--kb", str(kb_copy), "--claim", str(turn), "--agent", "alice")
    result = cli("support", "feedback", "--kb", str(kb_copy), "--turn", str(turn),
                 "--correct-id", _entry(kb_copy))  # fmt: skip
    assert result.exit_code == 0 and "claimed by alice and stays in the queue" in result.output
    (item,) = json.loads(cli("support", "handoffs", "--kb", str(kb_copy), "--json").stdout)
    assert item["status"] == "waiting"


def test_support_handoffs_release_says_whose_claim_went_and_when_there_was_none(kb_copy, cli):
    turn = str(_handed_off(kb_copy, cli)["turn_id"])
    kb = ("support", "handoffs", "--kb", str(kb_copy))
    cli(*kb, "--claim", turn, "--agent", "alice")
    released = cli(*kb, "--release", turn, "--agent", "alice")
    assert f"turn {turn}'s hand-off released from alice's claim" in released.output
    again = cli(*kb, "--release", turn, "--agent", "alice")
    assert again.exit_code == 0, again.output
    assert "was not claimed: nothing to release; it is waiting" in again.output


# ---------------------------------------------------------------------- the HTTP API


def test_the_api_claims_releases_and_reopens_with_409s_for_another_agent(make_client):
    client = make_client(token=TOKEN)
    turn_id = client.post("/v1/ask", json={"question": "agent please"}, headers=AUTH).json()[
        "turn_id"
    ]
    url = f"/v1/handoffs/{turn_id}"
    claimed = client.post(f"{url}/claim", json={"agent": "alice"}, headers=AUTH)
    assert claimed.status_code == 200 and claimed.json()["claimed_by"] == "alice", claimed.text
    taken = client.post(f"{url}/claim", json={"agent": "bob"}, headers=AUTH)
    assert taken.status_code == 409 and taken.json()["code"] == "handoff_claimed"
    close = client.post(f"{url}/close", json={"no_answer": True, "agent": "bob"}, headers=AUTH)
    assert close.status_code == 409 and "alice" in close.json()["detail"]
    listed = client.get("/v1/handoffs", headers=AUTH).json()["handoffs"]
    assert [i["claimed_by"] for i in listed] == ["alice"]
    released = client.post(f"{url}/release", json={"agent": "alice"}, headers=AUTH)
    assert released.status_code == 200 and released.json()["claimed_by"] is None
    closed = client.post(f"{url}/close", json={"no_answer": True, "agent": "bob"}, headers=AUTH)
    assert closed.status_code == 200 and closed.json()["closed_with_it"] == []
    reopened = client.post(f"{url}/reopen", json={"agent": "bob"}, headers=AUTH)
    assert reopened.status_code == 200 and reopened.json()["reopened"] == [turn_id]
    again = client.post(f"{url}/reopen", json={}, headers=AUTH)
    assert again.status_code == 409 and again.json()["code"] == "handoff_waiting"
    per_turn = client.get("/v1/handoffs?per_turn=true", headers=AUTH).json()["handoffs"]
    assert [i["turn_id"] for i in per_turn] == [turn_id]


def test_the_claim_routes_are_served_only_as_close_is_and_described_in_the_schema(make_client):
    public = make_client()
    turn = public.post("/v1/ask", json={"question": "talk to a human"}).json()["turn_id"]
    for action, body in (("claim", {"agent": "a"}), ("release", {}), ("reopen", {})):
        refused = public.post(f"/v1/handoffs/{turn}/{action}", json=body)
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    paths = make_client(token=TOKEN).get("/openapi.json").json()["paths"]
    for action in ("claim", "release", "reopen"):
        responses = paths[f"/v1/handoffs/{{turn_id}}/{action}"]["post"]["responses"]
        assert {"200", "401", "403", "409", "422"} <= set(responses)
    close = paths["/v1/handoffs/{turn_id}/close"]["post"]
    schema = json.dumps(close)
    assert "handoff_claimed" in schema


# ---------------------------------------------------------------------- the demo


def test_the_demo_panel_says_who_holds_each_handoff_and_claims_one(kb_copy, home):
    from tunesmith_support import demo_handoffs as handoffs
    from tunesmith_support.service import SupportService

    service = SupportService(kb_copy)
    try:
        first = service.ask("talk to a human please")
        again = service.ask("I want to talk to a human", first.conversation_id)
    finally:
        service.close()
    assert (first.answer.decision, again.answer.decision) == ("handoff", "handoff")
    kb = str(kb_copy)
    shown, chosen, _ = handoffs.show_queue(kb)
    assert shown.startswith("1 hand-off waiting") and "**Not claimed.**" in shown
    assert f"earlier turns {first.turn_id}); closing this one closes them too" in shown
    refused, *_ = handoffs.claim_handoff(kb, again.turn_id, " ")
    assert "Type your name" in refused
    said, shown, chosen, _ = handoffs.claim_handoff(kb, again.turn_id, "alice <b>")
    assert said.startswith(f"Hand-off of turn {again.turn_id} claimed by alice")
    assert "**Claimed by alice &lt;b&gt; just now.**" in shown  # escaped: a name is text
    assert chosen["choices"][0][0].startswith(f"Turn {again.turn_id} (claimed by alice <b>)")
    taken, *_ = handoffs.claim_handoff(kb, again.turn_id, "bob")
    assert "claimed by alice &lt;b&gt; since" in taken
    note, *_ = handoffs.close_handoff(kb, again.turn_id, None, "bob", "", no_answer=True)
    assert "claimed by alice &lt;b&gt; since" in note
