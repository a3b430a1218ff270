"""The HTTP API's error contract: every error body is one JSON shape, ``ErrorMessage``.

``{"detail": "<one line>", "code": "<word>", "errors": [...]}`` whatever the status: ``detail``
is always one line for people (a 422's lists its problems), ``code`` a stable, documented word
a program acts on (``unknown_conversation``: start a new conversation) instead of matching the
English of ``detail``, and ``errors`` the problems of a body that does not fit the schema, one
per field (FastAPI's ``loc``, ``msg``, ``type``), empty for every other error. A client parses
every error the same way: FastAPI's 422 had a list in ``detail`` where every other error had a
string. A refused request (400) carries the service's code (:mod:`refusals`); any other error
status has one code of its own (:data:`STATUS_CODES`).

Also here: JSON bodies are read strictly (a key given twice is a 422 naming it; Python's
reader kept the last value without a word).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from typing import Any

# Imported by `api` only (never at CLI start-up), and StrictJsonRoute subclasses APIRoute: FastAPI
# loads at import time.
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from tunesmith_support.refusals import REFUSALS

#: The code of each error status other than a refusal's 400 (whose codes are REFUSALS).
STATUS_CODES: dict[int, str] = {
    400: "invalid_body",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    421: "misdirected_request",
    422: "invalid_request",
    431: "headers_too_large",
    500: "internal_error",
    503: "service_unavailable",
}

#: Every code an error body may carry, with what it means (the schema lists them).
CODES: dict[str, str] = {
    **REFUSALS,
    "invalid_body": "400: the body is not UTF-8 (or not readable at all).",
    "unauthorized": "401: no token, or not the server's (WWW-Authenticate says which).",
    "forbidden": "403: this server does not serve the hand-off queue (it has no token, or "
    "--cors-origin).",
    "not_found": "404: no such route.",
    "method_not_allowed": "405: the route does not take this method.",
    "request_timeout": "408: the body did not arrive in time (serve --request-timeout); the "
    "connection is closed.",
    "payload_too_large": "413: the body is over 1 MiB.",
    "unsupported_media_type": "415: a POST body not sent as Content-Type: application/json.",
    "misdirected_request": "421: the request named another host than the loopback one the "
    "server is bound to.",
    "invalid_request": "422: the body does not fit the schema; detail lists the problems.",
    "headers_too_large": "431: the request line and headers are over 16 KiB; the connection "
    "is closed.",
    "internal_error": "500: a failure of the server's own; try again, and tell its operator.",
    "service_unavailable": "503: the conversation database is busy or unusable, or the server "
    "has too many connections at once (serve --limit-concurrency); try again later.",
    "error": "Any other error status.",
}

CODE_DESCRIPTION = "What went wrong, as a stable word to act on (detail says it for people): " + (
    "; ".join(f"{code}: {meaning.rstrip('.')}" for code, meaning in CODES.items()) + "."
)


class ValidationError(BaseModel):
    """One problem with a request body (FastAPI's)."""

    loc: list[str | int] = Field(..., description="Where: 'body', then the field's path.")
    msg: str = Field(..., description="What is wrong, for people.")
    type: str = Field(
        ...,
        description="What is wrong, as a word: missing, string_type, extra_forbidden, "
        "json_invalid, duplicate_key (a key given twice in one JSON object), ...",
    )
    input: Any = Field(None, description="The value refused, when there is one.")
    ctx: dict[str, Any] | None = Field(None, description="More about the problem.")


class ErrorMessage(BaseModel):
    """Every error body, whatever its status: read ``code`` (and show ``detail``)."""

    detail: str = Field(..., description="One line saying what was wrong, for people.")
    code: str = Field(..., description=CODE_DESCRIPTION, json_schema_extra={"enum": list(CODES)})
    errors: list[ValidationError] = Field(
        ...,
        description="A 422's problems, one per field (where, what, as a word); empty for every "
        "other error.",
    )


#: The most problems a 422's ``detail`` line names (``errors`` has them all).
SUMMARY_PROBLEMS = 3


class ApiError(HTTPException):
    """An HTTP error with its code (:data:`CODES`)."""

    def __init__(
        self, status_code: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.error_code = code


def json_safe(value: Any) -> Any:
    """``value`` with each NaN or infinity as the text a client sent (``"NaN"``,
    ``"Infinity"``): Python's JSON reader accepts them, but a response holding them cannot be
    written, and a 422 that echoes ``{"question": NaN}`` back would become a 500."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def error_body(
    status: int, detail: str, code: str | None = None, errors: list[Any] | None = None
) -> dict[str, Any]:
    """The JSON body of an error (:class:`ErrorMessage`): ``detail``, the code (``status``'s
    unless named) and ``errors`` (a 422's problems; none otherwise)."""
    return {
        "detail": detail,
        "code": code or STATUS_CODES.get(status, "error"),
        "errors": errors or [],
    }


#: Where the schema keeps :class:`ErrorMessage` (:func:`add_error_schemas`).
ERROR_REF = "#/components/schemas/ErrorMessage"


def _example(code: str) -> dict[str, Any]:
    """An example body of ``code``, for the schema: its meaning as the detail."""
    if code == "invalid_request":
        problem = {
            "type": "extra_forbidden",
            "loc": ["body", "conversationId"],
            "msg": "Extra inputs are not permitted",
            "input": "7f3c...",
        }
        return error_body(422, validation_summary([problem]), errors=[problem])
    meaning = CODES[code].split(": ", 1)[-1] if code in STATUS_CODES.values() else CODES[code]
    return error_body(400, meaning, code)


def error_response(description: str, codes: Sequence[str]) -> dict[str, Any]:
    """An error response of the OpenAPI schema: an :class:`ErrorMessage` whose ``code`` is one
    of ``codes`` (an enum a generated client types it with), an example body of each, and
    ``description`` with the codes named (for people)."""
    return {
        "description": f"{description} code: {', '.join(codes)}.",
        "content": {
            "application/json": {
                "schema": {
                    "allOf": [{"$ref": ERROR_REF}],
                    "type": "object",
                    "properties": {"code": {"type": "string", "enum": list(codes)}},
                },
                "examples": {
                    code: {"summary": CODES[code], "value": _example(code)} for code in codes
                },
            }
        },
    }


def add_error_schemas(document: dict[str, Any]) -> None:
    """Put :class:`ErrorMessage` (and what it holds) into ``document``'s components: the
    error responses (:func:`error_response`) refer to it, and FastAPI adds only the models
    a route names."""
    schema = ErrorMessage.model_json_schema(ref_template="#/components/schemas/{model}")
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.update(schema.pop("$defs", {}))
    components["ErrorMessage"] = schema


def _kind(value: Any) -> str:
    """What a JSON value is, in a word (for "must be an object, not ...")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "a JSON value"


def problem_line(problem: dict[str, Any]) -> str:
    """One problem of a 422 (FastAPI's ``loc``, ``msg``, ``type``) in a few words."""
    loc = list(problem.get("loc") or [])
    if loc[:1] == ["body"]:
        loc = loc[1:]
    kind, msg = problem.get("type"), str(problem.get("msg", ""))
    if kind == "json_invalid":
        reason = str((problem.get("ctx") or {}).get("error") or msg)
        where = f" (character {loc[0]})" if loc and isinstance(loc[0], int) else ""
        return f"the body is not valid JSON: {reason[:1].lower()}{reason[1:]}{where}"
    if not loc:
        if kind == "missing":
            return "the body is empty; send a JSON object"
        if kind == "model_attributes_type":
            return f"the body must be a JSON object, not {_kind(problem.get('input'))}"
        return f"the body: {msg}"
    field = ".".join(str(part) for part in loc)
    msg = msg.removeprefix("Value error, ")  # pydantic's prefix to a validator's own words
    if kind == "extra_forbidden":
        return f"{field}: no such field"
    return f"{field}: {msg[:1].lower()}{msg[1:]}"


def validation_summary(problems: list[dict[str, Any]]) -> str:
    """A 422's ``detail``: its first few problems on one line (``errors`` holds them all)."""
    lines = [problem_line(problem) for problem in problems[:SUMMARY_PROBLEMS]]
    more = len(problems) - len(lines)
    tail = f" (and {more} more: see errors)" if more > 0 else ""
    return "the request does not fit the schema: " + "; ".join(lines) + tail


def install_error_handlers(app: Any) -> None:
    """Make every error ``app`` answers itself an :class:`ErrorMessage`: HTTP errors (a
    refusal's :class:`ApiError`, FastAPI's 400 for a body that is not UTF-8, 404, 405, a
    chunked body's 413), FastAPI's 422 (its list of problems moved to ``errors``) and an
    unexpected exception (a 500, which Starlette answered as the plain text ``Internal Server
    Error``)."""
    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response

    @app.exception_handler(HTTPException)
    async def http_error(_request: Any, exc: HTTPException) -> Any:
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=exc.headers)
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 400 and not isinstance(exc, ApiError):
            # FastAPI's "There was an error parsing the body" said nothing of why.
            detail = UNREADABLE_BODY
        body = error_body(exc.status_code, detail, getattr(exc, "error_code", None))
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Any, exc: RequestValidationError) -> Any:
        # FastAPI's problems, with the values they echo made writable as JSON.
        problems = [short_input(p) for p in json_safe(jsonable_encoder(exc.errors()))]
        body = error_body(422, validation_summary(problems), errors=problems)
        return JSONResponse(body, status_code=422)

    @app.exception_handler(Exception)
    async def internal_error(_request: Any, _exc: Exception) -> Any:
        # A failure outside a route (a middleware's); Starlette logs the traceback after this.
        return internal_error_response()


#: The longest refused value a 422 echoes back in ``errors[].input`` (characters of its JSON).
ECHO_CHARS = 200


def short_input(problem: dict[str, Any]) -> dict[str, Any]:
    """``problem`` with its echoed ``input`` cut to :data:`ECHO_CHARS`: FastAPI echoes the
    refused value whole, so a 1 MiB body came back whole in the error."""
    if "input" not in problem:
        return problem
    value = problem["input"]
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(text) <= ECHO_CHARS:
        return problem
    if isinstance(value, str):
        shown = f"{value[:ECHO_CHARS]}... ({len(value):,} characters)"
    else:
        kind = "an array" if isinstance(value, list) else "an object"
        shown = f"({kind}, {len(text):,} characters of JSON, not echoed)"
    return {**problem, "input": shown}


#: The detail of FastAPI's 400: it raises one for any failure to read the body but bad JSON.
UNREADABLE_BODY = (
    "the request body cannot be read: it is not UTF-8 text, or its JSON is nested too deeply"
)


def internal_error_response() -> Any:
    """The 500 of a failure of the server's own; the client learns nothing of its code."""
    from fastapi.responses import JSONResponse

    detail = "the server failed to answer this request; try again"
    return JSONResponse(error_body(500, detail), status_code=500)


class ErrorCodes:
    """ASGI middleware: a JSON error response whose body is an object but not an
    :class:`ErrorMessage` becomes one (its status's code, ``errors``, a ``detail`` line). The
    API's own errors are one already; this covers the ones written elsewhere (the token
    check's 401) and any added later, so that every error body has the one shape."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def coded(message: Any) -> None:
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers") or []).get(b"content-type", b"")
                if message["status"] >= 400 and b"json" in content_type.lower():
                    held["start"] = message  # sent with the body, whose length may change
                    return
            elif message["type"] == "http.response.body" and "start" in held:
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                start = held.pop("start")
                body = _with_code(b"".join(chunks), start["status"])
                headers = [
                    (name, value)
                    for name, value in start.get("headers") or []
                    if name.lower() != b"content-length"
                ]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, coded)


def _with_code(body: bytes, status: int) -> bytes:
    """``body`` as an :class:`ErrorMessage`, when it is a JSON object that is not one: its
    status's code added, ``errors`` added, a list in ``detail`` (a 422 written by FastAPI's own
    handler) moved to ``errors`` and summed up in ``detail``."""
    try:
        value = json.loads(body)
    except ValueError:
        return body
    if not isinstance(value, dict):
        return body
    detail = value.get("detail", "")
    if (
        isinstance(detail, str)
        and isinstance(value.get("code"), str)
        and isinstance(value.get("errors"), list)
    ):
        return body
    if isinstance(detail, list):
        problems = [problem for problem in detail if isinstance(problem, dict)]
        value["errors"] = value.get("errors") or problems
        detail = validation_summary(problems)
    elif not isinstance(detail, str):
        detail = json.dumps(detail, ensure_ascii=False)
    value["detail"] = detail
    value.setdefault("code", STATUS_CODES.get(status, "error"))
    value.setdefault("errors", [])
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class _Object(dict[str, Any]):
    """A JSON object as read, with the keys it gave more than once."""

    repeated: list[str]


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    value = _Object(pairs)
    seen: set[str] = set()
    value.repeated = []
    for key, _ in pairs:
        if key in seen and key not in value.repeated:
            value.repeated.append(key)
        seen.add(key)
    return value


def repeated_keys(body: bytes) -> list[tuple[str | int, ...]]:
    """The path of every key ``body``'s JSON gives twice in one object (``("question",)``),
    or none; a body that is not JSON has none here (FastAPI says what is wrong with it)."""
    found: list[tuple[str | int, ...]] = []

    def walk(value: Any, path: tuple[str | int, ...]) -> None:
        if isinstance(value, _Object):
            found.extend((*path, key) for key in value.repeated)
            for key, item in value.items():
                walk(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*path, index))

    try:
        walk(json.loads(body, object_pairs_hook=_object), ())
    except (ValueError, RecursionError):
        return []
    return found


class StrictJsonRoute(APIRoute):
    """A route whose JSON body may not give a key twice: ``{"question": "x", "question":
    "y"}`` is a 422 naming the key (type ``duplicate_key``). Python's reader keeps the last
    value, and another reader (a proxy, a log) may keep the first: the server would answer a
    question other than the one checked or logged."""

    def get_route_handler(self) -> Any:
        from fastapi.exceptions import RequestValidationError
        from starlette.requests import ClientDisconnect
        from starlette.responses import Response

        handler = super().get_route_handler()

        async def strict(request: Any) -> Any:
            if request.method == "POST":
                try:
                    # Read once: Starlette keeps the body for the handler.
                    body = await request.body()
                except ClientDisconnect:
                    # The client left before sending its body (closed its tab, timed out):
                    # nobody reads an answer, and uvicorn logged a traceback for each one.
                    return Response(status_code=400)
                repeated = repeated_keys(body)
                if repeated:
                    raise RequestValidationError(
                        [
                            {
                                "type": "duplicate_key",
                                "loc": ("body", *path),
                                "msg": f"the key {path[-1]!r} is given more than once; "
                                "give each key once",
                            }
                            for path in repeated
                        ]
                    )
            try:
                return await handler(request)
            except (HTTPException, RequestValidationError):
                raise
            except Exception:
                # Answered here, inside the middleware, so that CORS headers are added and a
                # widget on another origin can read the code (Starlette's own 500 handler runs
                # outside every middleware: the browser saw a network error).
                logging.getLogger(__name__).exception(
                    "%s %s failed", request.method, request.url.path
                )
                return internal_error_response()

        return strict
