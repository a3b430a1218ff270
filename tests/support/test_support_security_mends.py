"""The security review's mends in support: a knowledge base someone sent, and the HTTP API."""

from __future__ import annotations

import json
import shutil

import pytest

from tunesmith.errors import UserInputError
from tunesmith_support.sample import sample_paths


def point_index_at(kb, where: str) -> None:
    meta = json.loads((kb / "kb.json").read_text(encoding="utf-8"))
    meta["index"] = where
    (kb / "kb.json").write_text(json.dumps(meta), encoding="utf-8")


@pytest.mark.parametrize("where", ["../victim/index", "ABSOLUTE"])
def test_a_kb_json_pointing_outside_the_kb_cannot_make_an_update_write_there(
    built_kb, tmp_path, where
):
    """A KB someone sent chose, in its kb.json, the index folder `support index` rewrites:
    "../victim/index" (or an absolute path) made an update delete and write the vectors of
    another knowledge base of the user's."""
    from tunesmith_support.kbindex import build_index

    victim = tmp_path / "victim"
    shutil.copytree(built_kb, victim)
    before = sorted(p.name for p in (victim / "index").iterdir())
    sent = tmp_path / "sent"
    shutil.copytree(built_kb, sent)
    shutil.rmtree(sent / "index")
    point_index_at(sent, str(victim / "index") if where == "ABSOLUTE" else where)
    with pytest.raises(UserInputError, match="kb.json.*'index'"):
        build_index(sample_paths()["faq"], sent)
    assert sorted(p.name for p in (victim / "index").iterdir()) == before


def test_a_kb_index_that_is_a_symlink_out_of_the_kb_is_refused(built_kb, tmp_path):
    from tunesmith_support.kbindex import index_dir, read_meta

    victim = tmp_path / "victim"
    shutil.copytree(built_kb, victim)
    sent = tmp_path / "sent"
    shutil.copytree(built_kb, sent)
    shutil.rmtree(sent / "index")
    (sent / "index").symlink_to(victim / "index", target_is_directory=True)
    with pytest.raises(UserInputError, match="outside the knowledge base"):
        index_dir(sent, read_meta(sent))


def test_the_kb_index_folders_tunesmith_writes_are_accepted(built_kb):
    from tunesmith_support.kbindex import index_dir

    assert index_dir(built_kb, {}) == built_kb / "index"
    assert index_dir(built_kb, {"index": "index-g000002"}) == built_kb / "index-g000002"


def test_a_megabyte_feedback_note_is_refused_not_stored(client):
    """A question is cut at 2,000 characters, but a note was stored whole: each request of any
    client wrote up to a megabyte into the conversation database."""
    turn = client.post("/v1/ask", json={"question": "how much does shipping cost"}).json()
    response = client.post(
        "/v1/feedback", json={"turn_id": turn["turn_id"], "helpful": True, "note": "a" * 900_000}
    )
    assert response.status_code == 400 and "10,000" in response.json()["detail"]
    assert client.service.conversations.feedback() == []
    kept = client.post(
        "/v1/feedback", json={"turn_id": turn["turn_id"], "helpful": True, "note": "b" * 10_000}
    )
    assert kept.status_code == 200


@pytest.fixture
def lenient_fastapi(monkeypatch):
    """FastAPI before 0.132 (which gradio>=5 allows) read a body without Content-Type as JSON."""
    import functools

    import fastapi

    monkeypatch.setattr(
        fastapi, "FastAPI", functools.partial(fastapi.FastAPI, strict_content_type=False)
    )


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_cross_site_post_without_a_json_content_type_is_refused(
    kb_copy, lenient_fastapi, content_type
):
    """A web page the operator visits may POST to http://127.0.0.1:8000 without a CORS
    preflight when the body has no JSON Content-Type (fetch with a Blob body, or a form): it
    asked questions (hand-offs to the agents' webhook) and sent feedback with a `correct_id`
    that `support learn` trains on. Every POST must say it sends JSON."""
    from fastapi.testclient import TestClient

    from tunesmith_support.api import create_app
    from tunesmith_support.service import SupportService

    service = SupportService(kb_copy)
    try:
        with TestClient(create_app(service, loopback_only=True)) as client:
            headers = {"host": "127.0.0.1:8000"}
            if content_type:
                headers["content-type"] = content_type
            body = json.dumps({"question": "I want to talk to a person"}).encode()
            refused = client.post("/v1/ask", content=body, headers=headers)
            assert refused.status_code == 415
            assert "application/json" in refused.json()["detail"]
            rows = service.conversations.store.query("SELECT COUNT(*) AS n FROM support_turns")
            assert rows[0]["n"] == 0
            headers["content-type"] = "application/json; charset=utf-8"
            assert client.post("/v1/ask", content=body, headers=headers).status_code == 200
    finally:
        service.close()


def test_an_answer_with_escape_sequences_is_printed_escaped_with_its_lines_kept(capsys):
    from types import SimpleNamespace

    from tunesmith_support.cli import _print_turn

    answer = SimpleNamespace(
        notes=[],
        text="Step one.\nStep two\x1b]0;owned\x07\x1b[2J.",
        decision="answer",
        reason="",
        confidence=0.9,
        entry={"id": "e\x1b[1m", "source": "faq.csv", "heading": ""},
    )
    _print_turn(SimpleNamespace(answer=answer, turn_id=3))
    captured = capsys.readouterr()
    assert captured.out == "Step one.\nStep two\\x1b]0;owned\\x07\\x1b[2J.\n"
    assert "\x1b" not in captured.err and "source e\\x1b[1m (faq.csv)" in captured.err
