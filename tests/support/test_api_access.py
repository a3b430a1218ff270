"""Who may use `support serve`: a bearer token, browser origins (CORS), the /docs page that loads
nothing from elsewhere, and the server's start and stop."""

from __future__ import annotations

import pytest

from tunesmith.errors import UserInputError

TOKEN = "s3cret-token-for-tests-0123456789"


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_server_answers_401_with_a_challenge_without_the_right_token(make_client):
    client = make_client(token=TOKEN)
    ask = {"question": "how much does shipping cost"}
    for method, path, body in (
        ("post", "/v1/ask", ask),
        ("post", "/v1/feedback", {"turn_id": 1, "helpful": True}),
        ("get", "/v1/health", None),
    ):
        missing = client.request(method, path, json=body)
        assert missing.status_code == 401, path
        assert missing.headers["www-authenticate"] == 'Bearer realm="tunesmith-support"'
        assert missing.json() == {
            "detail": "this server needs a token: send the header Authorization: Bearer <token>",
            "code": "unauthorized",
            "errors": [],
        }
        for wrong in (bearer("not-the-token-at-all-0123456789"), bearer(TOKEN[:-1])):
            refused = client.request(method, path, json=body, headers=wrong)
            assert refused.status_code == 401, path
            assert 'error="invalid_token"' in refused.headers["www-authenticate"]
        basic = client.request(method, path, json=body, headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401
    assert client.service.conversations.stats() == []  # nothing refused was stored
    answered = client.post("/v1/ask", json=ask, headers=bearer())
    assert answered.status_code == 200
    turn_id = answered.json()["turn_id"]
    # The scheme is case-insensitive (RFC 7235).
    rated = client.post(
        "/v1/feedback",
        json={"turn_id": turn_id, "helpful": True},
        headers={"Authorization": f"bearer {TOKEN}"},
    )
    assert rated.status_code == 200
    assert client.get("/v1/health", headers=bearer()).json()["status"] == "ok"


def test_the_token_is_checked_before_the_body_is_read_or_judged(make_client):
    """A client without the token learns 401, not what the server thinks of its body."""
    from tunesmith_support.api import MAX_BODY_BYTES

    client = make_client(token=TOKEN)
    huge = client.post(
        "/v1/ask", content=b"x" * (MAX_BODY_BYTES + 1), headers={"content-type": "application/json"}
    )
    plain = client.post("/v1/ask", content=b"hi", headers={"content-type": "text/plain"})
    broken = client.post("/v1/ask", content=b"{", headers={"content-type": "application/json"})
    assert [r.status_code for r in (huge, plain, broken)] == [401, 401, 401]


def test_the_schema_and_the_docs_page_are_open_and_say_a_token_is_needed(make_client):
    client = make_client(token=TOKEN)
    schema = client.get("/openapi.json")
    assert schema.status_code == 200
    spec = schema.json()
    assert spec["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    for path, method in (("/v1/ask", "post"), ("/v1/feedback", "post"), ("/v1/health", "get")):
        operation = spec["paths"][path][method]
        assert operation["security"] == [{"bearerToken": []}], path
        assert "401" in operation["responses"], path
    docs = client.get("/docs")
    assert docs.status_code == 200 and "Authorization: Bearer &lt;token&gt;" in docs.text
    # Without a token the schema promises no 401.
    open_spec = make_client().get("/openapi.json").json()
    assert "securitySchemes" not in open_spec.get("components", {})
    assert "401" not in open_spec["paths"]["/v1/ask"]["post"]["responses"]


def test_the_docs_page_loads_nothing_from_elsewhere_and_names_every_route_and_field(make_client):
    """FastAPI's /docs loaded Swagger UI from a CDN: a blank page offline."""
    import re

    client = make_client()
    docs = client.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in docs.headers["content-security-policy"]
    page = docs.text
    assert "<script" not in page.lower() and "src=" not in page.lower()
    assert not re.search(r"(href|url)\s*[=(]\s*['\"]?(https?:)?//", page, re.IGNORECASE)
    for text in ("/v1/ask", "/v1/feedback", "/v1/health", "conversation_id", "turn_id"):
        assert text in page, text
    assert "how much is delivery?" in page  # the request example, in a curl line
    assert "Authorization" not in page  # no token on this server
    # FastAPI's other CDN page is gone too.
    assert client.get("/redoc").status_code == 404


def test_the_docs_page_examples_name_the_address_the_server_was_asked_at(make_client):
    """The page's `$API` said http://127.0.0.1:8000 whatever --port the server was on."""
    client = make_client()
    page = client.get("/docs", headers={"host": "localhost:8765"}).text
    assert "<code>http://localhost:8765</code>" in page
    assert "127.0.0.1:8000" not in page


def test_a_named_origin_may_call_the_api_from_a_browser_and_others_may_not(make_client):
    client = make_client(token=TOKEN, cors_origins=["https://shop.example"])
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    allowed = client.options("/v1/ask", headers={"Origin": "https://shop.example", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    other = client.options("/v1/ask", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
    # A refusal carries the header too, so the widget can read why.
    refused = client.post(
        "/v1/ask", json={"question": "hi"}, headers={"Origin": "https://shop.example"}
    )
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == "https://shop.example"
    assert refused.headers["access-control-expose-headers"] == "WWW-Authenticate, Retry-After"
    # No --cors-origin: no CORS headers at all.
    closed = make_client().post(
        "/v1/ask", json={"question": "hi"}, headers={"Origin": "https://shop.example"}
    )
    assert "access-control-allow-origin" not in closed.headers


def test_origins_are_checked_as_a_browser_sends_them():
    from tunesmith_support.api_access import check_origin

    assert check_origin("https://Shop.Example/") == "https://shop.example"
    assert check_origin("http://localhost:3000") == "http://localhost:3000"
    assert check_origin("http://[::1]:8080") == "http://[::1]:8080"
    for bad in ("*", "shop.example", "https://shop.example/chat", "ftp://x", "https://a:b@x"):
        with pytest.raises(UserInputError, match="--cors-origin"):
            check_origin(bad)


def test_the_token_comes_from_its_file_else_the_environment(tmp_path):
    from tunesmith_support.api_access import TOKEN_ENV, read_token, token_matches

    path = tmp_path / "token"
    path.write_text(f"{TOKEN}\n", encoding="utf-8")
    assert read_token(path, {TOKEN_ENV: "x" * 40}) == TOKEN  # the file wins
    assert read_token(None, {TOKEN_ENV: f" {TOKEN} "}) == TOKEN
    assert read_token(None, {}) is None
    for environ, message in (
        ({TOKEN_ENV: ""}, "the token is empty"),  # set but empty: meant to require one
        ({TOKEN_ENV: "short"}, "has 5 characters; at least 16"),
        ({TOKEN_ENV: "two words " * 3}, "holds ' '"),
        ({TOKEN_ENV: "é" * 20}, "holds 'é'"),
    ):
        with pytest.raises(UserInputError, match=message):
            read_token(None, environ)
    with pytest.raises(UserInputError, match="cannot read the token file"):
        read_token(tmp_path / "missing", {})
    assert token_matches(TOKEN, TOKEN) and not token_matches(TOKEN + "x", TOKEN)
    assert not token_matches("", TOKEN)


@pytest.fixture
def served(monkeypatch):
    """Run `support serve` without serving: the create_app options it chose, and the services
    it opened (closed by the command once uvicorn returns)."""
    import uvicorn

    import tunesmith_support.api as api

    calls = []

    def create_app(service, **options):
        calls.append((service, options))
        return "app"

    monkeypatch.setattr(api, "create_app", create_app)
    monkeypatch.setattr(uvicorn, "run", lambda app, **_kwargs: None)
    monkeypatch.delenv("TUNESMITH_SUPPORT_TOKEN", raising=False)
    return calls


def test_serve_takes_the_token_from_a_file_or_the_environment_never_the_command_line(
    kb_copy, cli, served, tmp_path, monkeypatch, free_port
):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    args = ("support", "serve", "--kb", str(kb_copy), "--port", free_port)
    result = cli(*args, "--token-file", str(token_file))
    assert result.exit_code == 0, result.output
    assert served[-1][1]["token"] == TOKEN and "token required" in result.output
    assert "hand-off queue off" not in result.output
    monkeypatch.setenv("TUNESMITH_SUPPORT_TOKEN", "from-the-environment-0123")
    assert cli(*args).exit_code == 0
    assert served[-1][1]["token"] == "from-the-environment-0123"
    assert cli(*args, "--token", TOKEN).exit_code == 2  # no such option: `ps` would show it
    short = tmp_path / "short"
    short.write_text("abc", encoding="utf-8")
    refused = cli(*args, "--token-file", str(short))
    assert refused.exit_code == 2 and refused.output.count("\n") == 1
    assert refused.output.startswith(f"Error: {short}: the token has 3 characters")


def test_serve_warns_in_one_line_when_others_can_reach_it_without_a_token(
    kb_copy, cli, served, free_port
):
    args = ("support", "serve", "--kb", str(kb_copy), "--port", free_port)
    everyone = cli(*args, "--host", "0.0.0.0")
    assert everyone.exit_code == 0, everyone.output
    warnings = [line for line in everyone.output.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: serving 0.0.0.0 without a token: anyone who can reach port {free_port} can ask, "
        "send feedback and read answers (--token-file or $TUNESMITH_SUPPORT_TOKEN sets one)"
    ]
    options = dict(served[-1][1])
    assert options.pop("reloader").every == 30  # serve --reload-every's default
    assert options == {
        "loopback_only": False,
        "token": None,
        "cors_origins": [],
        "feedback_needs_conversation": False,
    }
    local = cli(*args)
    assert "warning" not in local.output
    assert served[-1][1]["loopback_only"] is True


def test_serve_passes_cors_origins_checked_and_refuses_a_wildcard(kb_copy, cli, served, free_port):
    args = ("support", "serve", "--kb", str(kb_copy), "--port", free_port)
    result = cli(*args, "--cors-origin", "https://shop.example/", "--cors-origin", "http://x:81")
    assert result.exit_code == 0, result.output
    assert served[-1][1]["cors_origins"] == ["https://shop.example", "http://x:81"]
    count = len(served)
    wildcard = cli(*args, "--cors-origin", "*")
    assert wildcard.exit_code == 2 and wildcard.output.startswith("Error: --cors-origin '*'")
    assert len(served) == count  # refused before the model loaded


def test_serve_closes_the_conversation_database_when_it_stops(kb_copy, cli, served, free_port):
    result = cli("support", "serve", "--kb", str(kb_copy), "--port", free_port)
    assert result.exit_code == 0 and result.output.rstrip().endswith("stopped")
    service = served[-1][0]
    with pytest.raises(Exception, match="closed"):
        service.conversations.store.query("SELECT 1")


def test_a_sigterm_while_serving_ends_like_ctrl_c_instead_of_killing_the_process():
    """uvicorn answers the requests in flight, then raises SIGTERM again with the handler it
    found: the default one killed the process before the database was closed."""
    import signal

    from tunesmith_support.cli import _sigterm_returns

    before = signal.getsignal(signal.SIGTERM)
    with _sigterm_returns():
        signal.raise_signal(signal.SIGTERM)  # as uvicorn does once it has stopped
    assert signal.getsignal(signal.SIGTERM) is before


def test_serve_says_at_start_that_without_a_token_the_handoff_queue_is_off(
    kb_copy, cli, served, free_port
):
    # The helpdesk's GET /v1/handoffs answered 403 with nothing said when the server started.
    result = cli("support", "serve", "--kb", str(kb_copy), "--port", free_port)
    assert result.exit_code == 0, result.output
    assert "hand-off queue off: it needs --token-file and no --cors-origin" in result.output
