"""The hand-off queue against an attacker: it holds every customer's questions, so only a
server with a token serves it (not one bound to 127.0.0.1 that a reverse proxy or another user
of the machine reaches), a `since` that overflows is a 400, not a 500, and the agent's panel
shows a customer's "$$" as typed, not as LaTeX that hides the hand-offs after it."""

from __future__ import annotations

TOKEN = "s3cret-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_a_loopback_server_without_a_token_does_not_serve_the_queue(make_client):
    # nginx's default proxy_pass sends Host: 127.0.0.1:8000, which the loopback check lets in:
    # anyone reaching the proxy read every customer's conversation.
    client = make_client(loopback_only=True)
    host = {"Host": "127.0.0.1:8000"}
    turn = client.post("/v1/ask", json={"question": "talk to a human"}, headers=host).json()
    listed = client.get("/v1/handoffs", headers=host)
    assert listed.status_code == 403 and listed.json()["code"] == "forbidden"
    assert "with a token (--token-file)" in listed.json()["detail"]
    closed = client.post(
        f"/v1/handoffs/{turn['turn_id']}/close", json={"no_answer": True}, headers=host
    )
    assert closed.status_code == 403
    assert client.service.conversations.handoffs()[0]["status"] == "waiting"
    # With a token, the same server serves it.
    served = make_client(loopback_only=True, token=TOKEN)
    queue = served.get("/v1/handoffs", headers={**host, **AUTH})
    assert queue.status_code == 200 and len(queue.json()["handoffs"]) == 1


def test_a_since_beyond_the_calendar_is_a_400_not_a_500(make_client):
    client = make_client(token=TOKEN)
    for since in ("99999999d", "1" * 300 + "w", "0001-01-01T00:00:00+05:00"):
        listed = client.get("/v1/handoffs", params={"since": since}, headers=AUTH)
        assert listed.status_code == 400, (since, listed.text)
        assert listed.json()["code"] == "bad_request"
        assert "not a time between the years 1 and 9999" in listed.json()["detail"]


def test_the_agents_panel_renders_no_latex_from_customers_questions():
    import gradio as gr

    from tunesmith.ui.a11y import live_status
    from tunesmith_support.demo_handoffs import handoff_panel

    with gr.Blocks() as blocks:
        live = live_status()
        handoff_panel(blocks, gr.State(""), live, gr.Dataframe())
    shown = {
        block.elem_id: block
        for block in blocks.blocks.values()
        if block.elem_id in ("support-handoff-queue", "support-handoff-note")
    }
    # Gradio's default renders the text between two "$$" as raw LaTeX wherever they are: one
    # customer's "$$" and another's later swallowed every hand-off between them (seen in
    # Chromium: turn 2's heading and question were gone).
    assert set(shown) == {"support-handoff-queue", "support-handoff-note"}
    assert all(block.latex_delimiters == [] for block in shown.values())
