"""Who may use the HTTP API: a shared-secret bearer token and the browser origins allowed to call
it (CORS). ``support serve`` reads and checks them before the model loads; :mod:`api` applies
them.

The token comes from a file (``--token-file``) or the environment (:data:`TOKEN_ENV`), never from
the command line, where ``ps`` shows it to every user of the machine.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError

#: The environment variable holding the token when no ``--token-file`` is given.
TOKEN_ENV = "TUNESMITH_SUPPORT_TOKEN"

#: The shortest token taken: a short shared secret is guessed by trying them all.
MIN_TOKEN_CHARS = 16

#: Paths served without the token: the schema and its page say how to call the API and hold no
#: data, and an integrator generates a client from the schema before they have the token.
OPEN_PATHS = frozenset({"/docs", "/openapi.json"})

REALM = "tunesmith-support"

MAKE_ONE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def check_token(token: str, source: str) -> str:
    """``token`` if it can be a bearer token: at least :data:`MIN_TOKEN_CHARS` visible ASCII
    characters (an HTTP header carries ASCII, and a space would end the token)."""
    if not token:
        raise UserInputError(f"{source}: the token is empty; make one with {MAKE_ONE}")
    bad = next((ch for ch in token if not "!" <= ch <= "~"), None)
    if bad is not None:
        raise UserInputError(
            f"{source}: the token holds {bad!r}; a token is one line of visible ASCII "
            f"characters (no spaces), such as {MAKE_ONE} prints"
        )
    if len(token) < MIN_TOKEN_CHARS:
        raise UserInputError(
            f"{source}: the token has {len(token)} characters; at least {MIN_TOKEN_CHARS} are "
            f"needed (make one with {MAKE_ONE})"
        )
    return token


def read_token(token_file: Path | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The API's token: ``token_file``'s text without surrounding blanks (a trailing newline),
    else :data:`TOKEN_ENV`'s value, else None (no token: the API is open). A file that cannot
    be read, or a token that is empty or too short, is one error line."""
    environ = os.environ if environ is None else environ
    if token_file is not None:
        try:
            text = token_file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UserInputError(f"{token_file}: the token file is not UTF-8 text") from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise UserInputError(f"{token_file}: cannot read the token file: {reason}") from None
        return check_token(text.strip(), str(token_file))
    if TOKEN_ENV not in environ:
        return None
    # Set but empty (`export TUNESMITH_SUPPORT_TOKEN=$(cat missing-file)`) is refused, not read
    # as "no token": the operator meant to require one.
    return check_token(environ[TOKEN_ENV].strip(), f"${TOKEN_ENV}")


def token_matches(given: str, token: str) -> bool:
    """Whether ``given`` is ``token``, in a time that tells nothing of either: digests of equal
    length compared with :func:`hmac.compare_digest` (which alone returns early on a length
    difference)."""
    digest = hashlib.sha256
    return hmac.compare_digest(
        digest(given.encode("utf-8", "surrogateescape")).digest(), digest(token.encode()).digest()
    )


def bearer(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (the scheme in any case), or
    None for another scheme or none."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


class BearerToken:
    """ASGI middleware: an HTTP request without ``Authorization: Bearer <token>`` is a 401 with
    one line in ``detail`` and a ``WWW-Authenticate`` header (RFC 6750), read before the body;
    the paths in :data:`OPEN_PATHS` and CORS preflights (``OPTIONS``, which a browser sends
    without credentials) are served without it."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from fastapi.responses import JSONResponse

        if (
            scope["type"] != "http"
            or scope.get("path") in OPEN_PATHS
            or scope.get("method") == "OPTIONS"
        ):
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        given = bearer(header)
        if given and token_matches(given, self.token):
            await self.app(scope, receive, send)
            return
        challenge = f'Bearer realm="{REALM}"'
        if given is None:
            detail = "this server needs a token: send the header Authorization: Bearer <token>"
        else:
            challenge += ', error="invalid_token"'
            detail = "the token sent in the Authorization header is not this server's token"
        response = JSONResponse(
            {"detail": detail}, status_code=401, headers={"WWW-Authenticate": challenge}
        )
        await response(scope, receive, send)


def with_cors(app: Any, origins: Sequence[str]) -> Any:
    """``app`` behind Starlette's CORS middleware for the ``--cors-origin`` origins (``GET``
    and ``POST``, the ``Authorization`` and ``Content-Type`` headers, preflights cached 10
    minutes, ``WWW-Authenticate`` and ``Retry-After`` readable: why a 401 refused it, when to
    try a 503 again); ``app`` as it
    is without origins. The API and the 503 sent past ``--limit-concurrency`` (before the API
    runs) both use it, so that a widget can read either."""
    if not origins:
        return app
    from starlette.middleware.cors import CORSMiddleware

    return CORSMiddleware(
        app,
        allow_origins=list(origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["WWW-Authenticate", "Retry-After"],
        max_age=600,
    )


def check_origin(origin: str) -> str:
    """``origin`` as a browser sends it in an ``Origin`` header (``https://shop.example``,
    ``http://localhost:3000``: scheme, host and port, nothing after), lowercased; anything
    else is one error line, since it would never match and the widget would fail with a CORS
    error in the browser's console only."""
    from urllib.parse import urlsplit

    text = origin.strip()
    if text == "*":
        raise UserInputError(
            "--cors-origin '*': name the origins of the pages that embed the widget "
            "(https://shop.example); any page on the web could otherwise use the API from its "
            "visitors' browsers"
        )
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if (
        parts is None
        or parts.scheme.lower() not in {"http", "https"}
        or not parts.hostname
        or parts.path not in {"", "/"}  # a copied address's trailing slash is dropped
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
    ):
        raise UserInputError(
            f"--cors-origin {origin!r}: an origin is a scheme, a host and maybe a port, with "
            "nothing after it (https://shop.example, http://localhost:3000)"
        )
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")
