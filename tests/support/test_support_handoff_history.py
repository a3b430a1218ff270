"""An agent's day on the hand-off queue, second pass: a new question of a claimed customer is
the claimer's, each hand-off's history (who claimed, released, closed and reopened it, when,
with what note) in the CLI, the API and the demo, $TUNESMITH_AGENT as the agent's name, the
demo's Release and Reopen, and hand-off events delivered without holding the customer's
answer back (`ask`, `chat`, the demo)."""

from __future__ import annotations

import json
import sys
import threading
import time

import pytest
from test_support_handoff_claims import _asked_three_times, _refused
from test_support_handoff_queue import AUTH, TOKEN, _entry, _handed_off, _turn

from tunesmith_support.conversations import Conversations

# ---------------------------------------------------------------------- a claimed customer


def test_a_new_handoff_in_a_claimed_conversation_is_stored_as_the_claimers(tmp_path):
    log, (one, _two, three), _ = _asked_three_times(tmp_path / "c.sqlite")
    try:
        claimed = log.claim_handoff(three, "alice")
        conversation = log.handoff(three)["conversation_id"]
        four = _turn(log, conversation, "anyone there??", "handoff", reason="asked_for_person")
        new = log.handoff(four)
        # Hers since her claim, not a free item another agent (or feedback) closes alone.
        assert (new["claimed_by"], new["claimed_at"]) == ("alice", claimed["claimed_at"])
        assert log.handoffs(per_turn=True)[-1]["claimed_by"] == "alice"
        refused = _refused(log.close_handoff, four, agent="bob", with_earlier=False)
        assert refused.code == "handoff_claimed" and "claimed by alice" in str(refused)
        log.add_feedback(four, correct_id="war-03", close_handoff=True)
        assert log.handoff(four)["status"] == "waiting"
        closed = log.close_handoff(four, entry_id="war-03", agent="alice")
        assert closed["closed_with_it"] == [one, _two, three]
        assert closed["claimed_by"] == "alice"
        (logged,) = [e for e in log.handoff_history(four)["history"] if e["action"] == "claim"]
        assert logged["agent"] == "alice" and logged["detail"]["with_turn"] == three
        # A conversation nobody claimed: its new hand-off is nobody's.
        other = log.start("api")
        free = _turn(log, other, "human please", "handoff", reason="asked_for_person")
        assert log.handoff(free)["claimed_by"] is None
    finally:
        log.close()


# ---------------------------------------------------------------------- history


def test_a_handoffs_history_says_who_did_what_when_with_what_note(tmp_path):
    log, (one, _two, three), _ = _asked_three_times(tmp_path / "c.sqlite")
    try:
        log.claim_handoff(three, "alice")
        log.release_handoff(three, "alice")
        log.claim_handoff(three, "bob")
        log.close_handoff(three, entry_id="war-03", agent="bob", note="sent the repair form")
        log.reopen_handoff(three, "carol", "wrong entry")
        found = log.handoff_history(three)
        assert (found["turn_id"], found["status"]) == (three, "waiting")
        steps = [(e["action"], e["agent"]) for e in found["history"]]
        assert steps == [("handoff", ""), ("claim", "alice"), ("release", "alice"),
                         ("claim", "bob"), ("close", "bob"), ("reopen", "carol")]  # fmt: skip
        close, reopen = found["history"][4:]
        assert close["detail"]["note"] == "sent the repair form"
        assert close["detail"]["entry"] == "war-03"
        assert reopen["detail"]["note"] == "wrong entry"
        # The earlier question closed with it says with which turn.
        superseded = log.handoff_history(one)["history"]
        assert superseded[-2]["detail"]["closed_with"] == three
        assert _refused(log.handoff_history, 999).code == "unknown_turn"
    finally:
        log.close()


def test_support_handoffs_history_prints_it_and_its_json(kb_copy, cli):
    turn = _handed_off(kb_copy, cli)["turn_id"]
    kb = ("support", "handoffs", "--kb", str(kb_copy))
    cli(*kb, "--claim", str(turn), "--agent", "alice")
    cli(*kb, "--close", str(turn), "--no-answer", "--agent", "alice", "--note", "no kayaks")
    cli(*kb, "--reopen", str(turn), "--agent", "bob", "--note", "they wrote back")
    shown = cli(*kb, "--history", str(turn))
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0].startswith(f"turn {turn}'s hand-off (waiting)")
    assert "handed off (asked_for_person)" in lines[1]
    assert lines[2].endswith("claimed by alice")
    assert "closed by alice: no entry (a gap in the knowledge base), note: no kayaks" in lines[3]
    assert "reopened by bob, note: they wrote back" in lines[4]
    found = json.loads(cli(*kb, "--history", str(turn), "--json").stdout)
    assert [e["action"] for e in found["history"]] == ["handoff", "claim", "close", "reopen"]


@pytest.mark.parametrize(
    "args, said",
    [
        (("--history", "1", "--claim", "1"), "one action at a time"),
        (("--history", "1", "--agent", "x"), "--agent goes with --claim"),
        (("--history", "1", "--note", "x"), "--note goes with --close or --reopen"),
        (("--history", "1", "--all"), "not with --history"),
        (("--history", "999"), "no turn 999"),
    ],
)
def test_support_handoffs_history_mistakes_are_one_line(kb_copy, cli, args, said):
    _handed_off(kb_copy, cli)
    result = cli("support", "handoffs", "--kb", str(kb_copy), *args)
    assert result.exit_code != 0 and said in result.output, result.output


def test_the_api_serves_a_handoffs_history_as_it_serves_the_queue(make_client):
    client = make_client(token=TOKEN)
    turn = client.post("/v1/ask", json={"question": "agent please"}, headers=AUTH).json()
    url = f"/v1/handoffs/{turn['turn_id']}"
    client.post(f"{url}/claim", json={"agent": "alice"}, headers=AUTH)
    client.post(
        f"{url}/close", json={"no_answer": True, "agent": "alice", "note": "n"}, headers=AUTH
    )
    found = client.get(f"{url}/history", headers=AUTH)
    assert found.status_code == 200, found.text
    body = found.json()
    assert (body["status"], body["conversation_id"]) == ("no_answer", turn["conversation_id"])
    assert [(e["action"], e["agent"]) for e in body["history"]] == [
        ("handoff", ""), ("claim", "alice"), ("close", "alice")
    ]  # fmt: skip
    assert body["history"][-1]["detail"]["note"] == "n"
    assert client.get(f"{url}/history").status_code == 401
    missing = client.get("/v1/handoffs/999/history", headers=AUTH)
    assert missing.status_code == 400 and missing.json()["code"] == "unknown_turn"
    answered = client.post("/v1/ask", json={"question": "hello"}, headers=AUTH).json()
    if answered["decision"] != "handoff":
        refused = client.get(f"/v1/handoffs/{answered['turn_id']}/history", headers=AUTH)
        assert refused.status_code == 400 and refused.json()["code"] == "not_a_handoff"
    route = client.get("/openapi.json").json()["paths"]["/v1/handoffs/{turn_id}/history"]["get"]
    assert {"200", "400", "401", "403", "422"} <= set(route["responses"])
    public = make_client()
    assert public.get(f"{url}/history").status_code == 403


# ---------------------------------------------------------------------- $TUNESMITH_AGENT


def test_tunesmith_agent_names_the_agent_when_agent_is_not_given(kb_copy, cli, monkeypatch):
    turn = _handed_off(kb_copy, cli)["turn_id"]
    kb = ("support", "handoffs", "--kb", str(kb_copy))
    monkeypatch.setenv("TUNESMITH_AGENT", "alice")
    listed = cli(*kb)  # a listing with it set is no action's mistake
    assert listed.exit_code == 0 and "--claim TURN;" in listed.output, listed.output
    claimed = cli(*kb, "--claim", str(turn))
    assert claimed.exit_code == 0 and "claimed by alice" in claimed.output, claimed.output
    # --agent wins over it.
    taken = cli(*kb, "--claim", str(turn), "--agent", "bob")
    assert taken.exit_code != 0 and "claimed by alice since" in taken.output
    closed = cli(*kb, "--close", str(turn), "--entry", _entry(kb_copy), "--json")
    assert closed.exit_code == 0, closed.output
    assert json.loads(closed.stdout)["agent"] == "alice"
    monkeypatch.setenv("TUNESMITH_AGENT", "  ")  # blank: no name, as before
    reopened = cli(*kb, "--reopen", str(turn), "--json")
    assert reopened.exit_code == 0 and json.loads(reopened.stdout)["status"] == "waiting"
    assert cli(*kb, "--claim", str(turn)).exit_code != 0


# ---------------------------------------------------------------------- the demo


def test_the_demo_panel_releases_reopens_and_shows_each_handoffs_history(kb_copy, home):
    from tunesmith_support import demo_handoffs as handoffs
    from tunesmith_support.service import SupportService

    service = SupportService(kb_copy)
    try:
        turn = service.ask("talk to a human please").turn_id
    finally:
        service.close()
    kb = str(kb_copy)
    handoffs.claim_handoff(kb, turn, "alice")
    refused, *_ = handoffs.release_handoff(kb, turn, "bob")
    assert "claimed by alice since" in refused
    said, shown, _chosen, _ = handoffs.release_handoff(kb, turn, "alice")
    assert said == f"Hand-off of turn {turn} released: not claimed, waiting."
    assert "**Not claimed.**" in shown
    assert "History: " in shown and "claimed by alice; " in shown and "released by alice." in shown
    handoffs.close_handoff(kb, turn, None, "alice", "no <b>kayaks</b>", no_answer=True)
    closed = handoffs.closed_choices(kb)
    assert closed["choices"][0][1] == turn
    assert closed["choices"][0][0].startswith(f"Turn {turn}, closed with no entry")
    refused, *_ = handoffs.reopen_handoff(kb, None, "bob", "")
    assert "Choose a closed hand\\-off to reopen first." in refused
    said, shown, chosen, _entries, closed, note = handoffs.reopen_handoff(
        kb, turn, "bob", "they wrote back"
    )
    assert said == f"Hand-off of turn {turn} reopened: waiting, not claimed."
    assert chosen["value"] == turn and closed["choices"] == [] and note == ""
    assert "note: no &lt;b&gt;kayaks&lt;/b&gt;" in shown  # escaped: a note is text
    assert "reopened by bob, note: they wrote back" in shown
    again, *_ = handoffs.reopen_handoff(kb, turn, "bob", "")
    assert "waiting already" in again


# ---------------------------------------------------------------------- delivery


def _output_so_far() -> str:
    stream = sys.stdout
    return stream.buffer.getvalue().decode() if hasattr(stream, "buffer") else ""


def _watched_send(monkeypatch, seen: list) -> None:
    """Record, for each hand-off sent, whether it was sent from the main thread and whether
    the answer was on the terminal by then (given up to 2 s to get there)."""
    import tunesmith_support.service as service_module
    from tunesmith.events import send

    def watched(outgoing):
        on_main = threading.current_thread() is threading.main_thread()
        deadline = time.monotonic() + (0 if on_main else 2)
        while "passing you" not in _output_so_far() and time.monotonic() < deadline:
            time.sleep(0.02)
        seen.append((on_main, "passing you" in _output_so_far()))
        return send(outgoing)

    monkeypatch.setattr(service_module, "send", watched)


def _statuses(kb_copy) -> list[str]:
    from tunesmith.events import list_deliveries

    log = Conversations.open(kb_copy / "conversations.sqlite")
    try:
        return [d.status for d in list_deliveries(log.store)]
    finally:
        log.close()


def test_support_ask_answers_before_the_handoff_is_sent_and_sends_it_before_it_ends(
    kb_copy, cli, monkeypatch
):
    seen: list = []
    _watched_send(monkeypatch, seen)
    result = cli("support", "ask", "--kb", str(kb_copy), "I want to talk to a human")
    assert result.exit_code == 0 and "passing you" in result.output, result.output
    # From a thread of its own, after the answer was out; delivered, not left pending.
    assert seen == [(False, True)]
    assert _statuses(kb_copy) == ["delivered"]


def test_support_chat_sends_handoffs_from_its_own_thread_and_all_before_it_ends(
    kb_copy, cli, monkeypatch
):
    seen: list = []
    _watched_send(monkeypatch, seen)
    asked = "I want to talk to a human\nhuman please, now\n\n"
    result = cli("support", "chat", "--kb", str(kb_copy), input=asked)
    assert result.exit_code == 0, result.output
    assert [on_main for on_main, _ in seen] == [False, False]
    assert _statuses(kb_copy) == ["delivered", "delivered"]


def test_the_demo_sends_handoffs_from_its_services_own_thread(kb_copy, home):
    from tunesmith_support.demo import service_for

    assert service_for(str(kb_copy)).background_delivery is True
