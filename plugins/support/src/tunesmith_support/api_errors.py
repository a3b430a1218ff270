"""The HTTP API's error contract: every error body is JSON with ``detail`` and a ``code``.

``detail`` is what it always was: one line of text, or (422) FastAPI's list of problems, so
clients written before ``code`` existed keep working. ``code`` is a stable, documented word a
program acts on (``unknown_conversation``: start a new conversation) instead of matching the
English of ``detail``. A refused request (400) carries the service's code
(:mod:`refusals`); any other error status has one code of its own (:data:`STATUS_CODES`).

Also here: JSON bodies are read strictly (a key given twice is a 422 naming it; Python's
reader kept the last value without a word).
"""

from __future__ import annotations

import json
import logging
import math
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
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    421: "misdirected_request",
    422: "invalid_request",
    500: "internal_error",
    503: "service_unavailable",
}

#: Every code an error body may carry, with what it means (the schema lists them).
CODES: dict[str, str] = {
    **REFUSALS,
    "invalid_body": "400: the body is not UTF-8 (or not readable at all).",
    "unauthorized": "401: no token, or not the server's (WWW-Authenticate says which).",
    "not_found": "404: no such route.",
    "method_not_allowed": "405: the route does not take this method.",
    "payload_too_large": "413: the body is over 1 MiB.",
    "unsupported_media_type": "415: a POST body not sent as Content-Type: application/json.",
    "misdirected_request": "421: the request named another host than the loopback one the "
    "server is bound to.",
    "invalid_request": "422: the body does not fit the schema; detail lists the problems.",
    "internal_error": "500: a failure of the server's own; try again, and tell its operator.",
    "service_unavailable": "503: the conversation database is busy or unusable; try again later.",
    "error": "Any other error status.",
}

CODE_DESCRIPTION = "What went wrong, as a stable word to act on (detail says it for people): " + (
    "; ".join(f"{code}: {meaning.rstrip('.')}" for code, meaning in CODES.items()) + "."
)


class ErrorMessage(BaseModel):
    detail: str = Field(..., description="One line saying what was wrong.")
    code: str = Field(..., description=CODE_DESCRIPTION, json_schema_extra={"enum": list(CODES)})


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


class HTTPValidationError(BaseModel):
    """A body that does not fit the schema (422): FastAPI's body, with a code."""

    detail: list[ValidationError] = Field(..., description="Every problem found.")
    code: str = Field(
        ...,
        description="Always invalid_request.",
        json_schema_extra={"enum": ["invalid_request"]},
    )


class ApiError(HTTPException):
    """An HTTP error with its code (:data:`CODES`)."""

    def __init__(self, status_code: int, code: str, detail: str) -> None:
        super().__init__(status_code=status_code, detail=detail)
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


def error_body(status: int, detail: Any, code: str | None = None) -> dict[str, Any]:
    """The JSON body of an error: ``detail`` as given and the code (``status``'s unless
    named)."""
    return {"detail": detail, "code": code or STATUS_CODES.get(status, "error")}


def install_error_handlers(app: Any) -> None:
    """Make every error ``app`` answers itself a JSON body with a code: HTTP errors (a
    refusal's :class:`ApiError`, FastAPI's 400 for a body that is not UTF-8, 404, 405, a
    chunked body's 413), FastAPI's 422 and an unexpected exception (a 500, which Starlette
    answered as the plain text ``Internal Server Error``)."""
    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response

    @app.exception_handler(HTTPException)
    async def http_error(_request: Any, exc: HTTPException) -> Any:
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=exc.headers)
        body = error_body(exc.status_code, exc.detail, getattr(exc, "error_code", None))
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Any, exc: RequestValidationError) -> Any:
        # FastAPI's own 422 body, with the values it echoes made writable as JSON.
        detail = json_safe(jsonable_encoder(exc.errors()))
        return JSONResponse(error_body(422, detail), status_code=422)

    @app.exception_handler(Exception)
    async def internal_error(_request: Any, _exc: Exception) -> Any:
        # A failure outside a route (a middleware's); Starlette logs the traceback after this.
        return internal_error_response()


def internal_error_response() -> Any:
    """The 500 of a failure of the server's own; the client learns nothing of its code."""
    from fastapi.responses import JSONResponse

    detail = "the server failed to answer this request; try again"
    return JSONResponse(error_body(500, detail), status_code=500)


class ErrorCodes:
    """ASGI middleware: a JSON error response whose body is an object without ``code`` gets
    its status's (:data:`STATUS_CODES`). The API's own errors carry one already; this covers
    the ones written elsewhere (the token check's 401) and any added later, so that no error
    body lacks a code."""

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
    """``body`` with its status's code added, when it is a JSON object without one."""
    try:
        value = json.loads(body)
    except ValueError:
        return body
    if not isinstance(value, dict) or "code" in value:
        return body
    value["code"] = STATUS_CODES.get(status, "error")
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

        handler = super().get_route_handler()

        async def strict(request: Any) -> Any:
            if request.method == "POST":
                # Read once: Starlette keeps the body for the handler.
                repeated = repeated_keys(await request.body())
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
