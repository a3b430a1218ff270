"""The HTTP JSON API for integrators (FastAPI, which Gradio already brings).

``POST /v1/ask``, ``POST /v1/feedback``, ``GET /v1/health``, and for a helpdesk
``GET /v1/handoffs`` (and ``/{turn_id}/history``) and ``POST /v1/handoffs/{turn_id}/close``
(``/claim``, ``/release``, ``/reopen``); the OpenAPI schema is at
``/openapi.json`` and readable at ``/docs`` (a page without scripts, :mod:`api_docs`); who may
call it is :mod:`api_access`'s business (a bearer token, CORS origins). One model serves every request: the answerer holds a
lock around the encoder and index, and the store serialises SQLite writes. Handlers are plain
``def`` functions, so FastAPI runs them in its thread pool and the event loop stays free.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)
from starlette.requests import Request  # here: FastAPI resolves /docs' annotation in globals

from tunesmith.errors import UserInputError
from tunesmith.store import StoreError
from tunesmith_support import __version__, handoff_actions
from tunesmith_support.answer import kb_stamp
from tunesmith_support.api_errors import (
    STATUS_CODES,
    ApiError,
    add_error_schemas,
    error_body,
    error_response,
)
from tunesmith_support.conversations import feedback_request_key
from tunesmith_support.handoff_pages import DEFAULT_LIMIT, MAX_LIMIT
from tunesmith_support.refusals import refusal_code
from tunesmith_support.service import SupportService

# This module is imported only by `support serve`, the demo and tests, never at CLI start-up,
# so pydantic (and FastAPI below) may load at import time; the models must be module-level for
# FastAPI to resolve their annotations.


#: A request id: long enough that clients that make them at random never share one.
REQUEST_ID_PATTERN = r"^[!-~]{16,128}$"

#: The request id's pattern in the schema, for generated clients ("" allowed: it means none).
REQUEST_ID_SCHEMA = {"pattern": "^([!-~]{16,128})?$"}


def check_request_id(value: str | None) -> str | None:
    """``value`` when it is a request id (:data:`REQUEST_ID_PATTERN`) or None; otherwise a
    ``ValueError`` that says what is wanted (pydantic's named the pattern only)."""
    if value is not None and not re.fullmatch(REQUEST_ID_PATTERN, value):
        raise ValueError(
            "a request_id is 16 to 128 visible ASCII characters, no spaces (such as "
            f"crypto.randomUUID() gives); this one has {len(value)} characters"
        )
    return value


class _Request(BaseModel):
    # An unknown field is refused (422), not ignored: a misspelt "conversationId" would
    # otherwise start a new conversation without a word.
    model_config = ConfigDict(extra="forbid")


def empty_is_none(value: Any) -> Any:
    """``None`` for ``""``: an optional id sent as ``""`` (a page's ``conversationId || ""``)
    means "none", as null or no field does. No conversation or request has the id ``""``: a
    conversation_id ``""`` was a 400 ``no conversation ''`` (or, in feedback, ``no turn``) and
    a request_id ``""`` a 422, where null was fine."""
    return None if value == "" else value


class AskRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"question": "how much is delivery?"}]}
    )

    question: str = Field(
        ..., description="The customer's question; over 2,000 characters it is cut (see notes)."
    )
    conversation_id: str | None = Field(
        None,
        description='Continue a conversation (from an earlier answer); null, "" or no '
        "field starts one. An id the server does not know is a 400 with the code "
        "unknown_conversation (the database was reset): ask again without it.",
    )
    request_id: str | None = Field(
        None,
        json_schema_extra=REQUEST_ID_SCHEMA,  # checked by check_request_id
        description="A random id of this request, 16 to 128 visible ASCII characters (such as "
        "crypto.randomUUID() gives), kept when the request is sent again: the same request_id "
        "with the same conversation_id and question gets the first response back, with no "
        'second turn or hand-off (a retry after a network error, a double click). Null, "" '
        "or no field: each request is a new turn.",
    )

    @field_validator("conversation_id", "request_id", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return empty_is_none(value)

    @field_validator("request_id")
    @classmethod
    def _request_id(cls, value: str | None) -> str | None:
        return check_request_id(value)


class Candidate(BaseModel):
    id: str = Field(..., description="The entry's id.")
    title: str = Field(..., description="Its question, or a passage's heading.")
    snippet: str = Field(..., description="The start of its answer.")
    category: str
    source: str = Field(..., description="The file it came from.")
    heading: str = Field(..., description="A passage's heading ('' for an FAQ entry).")
    score: float = Field(..., description="Ranking score (not a probability).")


class Entry(BaseModel):
    id: str
    question: str = Field(..., description="The FAQ question ('' for a passage).")
    heading: str = Field(..., description="A passage's heading ('' for an FAQ entry).")
    category: str
    source: str = Field(..., description="The file it came from.")
    kind: Literal["faq", "passage"]
    answer: str = Field(..., description="The FAQ answer or the passage text.")


#: Every reason the service gives (:class:`~tunesmith_support.answer.Answer`): an enum in the
#: schema, so that a client generated from it handles each one.
Reason = Literal[
    "",
    "chosen",
    "narrowed",
    "close_candidates",
    "small_talk",
    "asked_for_person",
    "out_of_scope",
    "low_confidence",
]


class AskResponse(BaseModel):
    # Every field is required, nullable ones too: each response holds them all, and a field
    # with a default is optional in the schema, so a client generated from it would check for
    # its absence (or type it ``reason?: string``) for nothing.
    decision: Literal["answer", "clarify", "handoff"]
    reason: Reason = Field(
        ...,
        description="Why a clarify or hand-off happened: close_candidates, small_talk (a "
        "greeting, thanks or goodbye), asked_for_person, out_of_scope or low_confidence; "
        "'chosen' for an answer the customer picked from a clarifying question's options "
        "('' for another answer); 'narrowed' for a clarifying question asked again with the "
        "options the reply matched (a title several options share).",
    )
    text: str = Field(..., description="What to show the customer.")
    confidence: float = Field(..., description="Calibrated P(the top entry is right).")
    entry: Entry | None = Field(..., description="The entry answered from (answers only).")
    candidates: list[Candidate] = Field(..., description="The best entries, best first.")
    notes: list[str] = Field(..., description="Remarks for the user (a question was cut).")
    options: list[str] = Field(
        ...,
        description="A clarifying question's options, entry ids in the order they are "
        "numbered; send the number (or the title) back to get that answer.",
    )
    conversation_id: str = Field(..., description="Send it back to continue the conversation.")
    turn_id: int = Field(..., description="This turn's id, for feedback.")
    handoff_event: str | None = Field(
        ..., description="The support.handoff event's id when the turn was handed off."
    )


#: What the schema says of feedback's conversation_id, on either server.
CONVERSATION_CHECK = (
    "The conversation_id of the answer's conversation: the turn must be one of its turns (a "
    "turn of another conversation is refused as unknown, 400). Turn ids count up, so without "
    "it any client could rate other customers' answers. "
)


class FeedbackRequest(_Request):
    """Feedback on a server that no browser page calls directly (no --cors-origin): the
    conversation id is optional, as before it existed, and checked when sent."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"turn_id": 1, "conversation_id": "7f3c…", "helpful": True}]
        }
    )

    # Strict: JSON true is not turn 1, nor "yes" helpful.
    turn_id: StrictInt = Field(..., description="The turn_id of an answer.")
    conversation_id: str | None = Field(
        None,
        description=CONVERSATION_CHECK + 'Optional on this server (null, "" or no field: the '
        "turn is not checked; it was started without --cors-origin or "
        "--feedback-needs-conversation); send it anyway, since such a server requires it.",
    )
    helpful: StrictBool | None = Field(None, description="Whether the answer helped.")
    correct_id: str | None = Field(
        None, description='The right entry id (from an agent); null or "" for none.'
    )
    note: str = Field(
        "", description="Free text kept with the feedback (at most 10,000 characters)."
    )
    request_id: str | None = Field(
        None,
        json_schema_extra=REQUEST_ID_SCHEMA,  # checked by check_request_id
        description="A random id of this feedback, 16 to 128 visible ASCII characters (such "
        "as crypto.randomUUID() gives), kept when the request is sent again: the same "
        "request_id with the same turn, conversation and feedback gets the first feedback_id "
        "back and stores nothing, also after other feedback on the turn (a retry that "
        'arrives late is not the newest rating). Null, "" or no field: feedback the same '
        "as the turn's newest is stored once, any other is new.",
    )

    @field_validator("conversation_id", "correct_id", "request_id", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return empty_is_none(value)

    @field_validator("request_id")
    @classmethod
    def _request_id(cls, value: str | None) -> str | None:
        return check_request_id(value)


class ConversationFeedbackRequest(FeedbackRequest):
    """Feedback on a server that web pages call (--cors-origin) or that was told so
    (--feedback-needs-conversation): the conversation id is required."""

    conversation_id: str = Field(  # type: ignore[assignment]
        ..., description=CONVERSATION_CHECK + 'Required on this server (not null or "").'
    )

    @field_validator("conversation_id", mode="before")
    @classmethod
    def _needed(cls, value: Any) -> Any:
        # "" means "none", as on a server where it is optional: here that is refused by name
        # ("Input should be a valid string" said nothing of why).
        if value is None or value == "":
            raise ValueError(
                "conversation_id is required on this server: send the conversation_id the "
                "answer came with"
            )
        return value


class FeedbackResponse(BaseModel):
    feedback_id: int


class EarlierTurn(BaseModel):
    question: str = Field(..., description="What the customer wrote.")
    decision: Literal["answer", "clarify", "handoff"]
    reason: str = Field(..., description="As AskResponse.reason.")
    answer: str = Field(..., description="What the bot replied.")


class EarlierHandoff(BaseModel):
    turn_id: int = Field(..., description="Close it on its own by this id.")
    created_at: str
    question: str
    reason: str
    claimed_by: str | None


class Handoff(BaseModel):
    """A hand-off to a person: waiting in the queue, or closed."""

    turn_id: int = Field(..., description="The turn handed off; close it by this id.")
    conversation_id: str
    event_id: str | None = Field(..., description="Its support.handoff event's id.")
    created_at: str = Field(..., description="When it was handed off (ISO 8601, UTC).")
    waited_seconds: int = Field(
        ..., description="How long it has waited for a person (until now, or until closed)."
    )
    status: Literal["waiting", "resolved", "no_answer", "superseded"] = Field(
        ...,
        description="waiting for a person; resolved with an entry (entry_id); no_answer: closed "
        "with none, the knowledge base has no answer (a gap, counted by support stats); "
        "superseded: closed with a later hand-off of its conversation (closed_with).",
    )
    question: str = Field(..., description="What the customer asked.")
    reason: Reason = Field(..., description="Why it was handed off.")
    confidence: float
    candidates: list[dict[str, Any]] = Field(
        ..., description="The best entries, best first (as AskResponse.candidates)."
    )
    conversation: list[EarlierTurn] = Field(
        ..., description="The conversation before it, oldest first (its last 20 turns)."
    )
    earlier_turns: int = Field(..., description="How many turns came before it in all.")
    closed_at: str | None = Field(..., description="When a person closed it.")
    entry_id: str | None = Field(..., description="The entry it was resolved with.")
    agent: str = Field(..., description="Who closed it ('' when not said).")
    note: str = Field(..., description="The note kept with its closure.")
    closed_with: int | None = Field(
        ..., description="superseded: the turn whose closure closed it."
    )
    claimed_by: str | None = Field(
        ...,
        description="The agent working on it (claim); kept once closed. In the queue's "
        "per-conversation item, the newest claim among the conversation's waiting hand-offs.",
    )
    claimed_at: str | None = Field(..., description="When it was claimed (ISO 8601, UTC).")
    waiting_turns: int = Field(
        ...,
        description="The conversation's hand-offs this item stands for: itself and "
        "earlier_waiting (1 per turn, and for a closed one).",
    )
    earlier_waiting: list[EarlierHandoff] = Field(
        ...,
        description="The conversation's earlier hand-offs still waiting, oldest first: closing "
        "this one closes them too (unless this_turn_only).",
    )
    waiting_since: str = Field(
        ..., description="When the first of them was handed off: how long the customer waits."
    )


class ClosedHandoff(Handoff):
    closed_with_it: list[int] = Field(
        ...,
        description="The turns of the conversation's earlier waiting hand-offs closed with it "
        "(status superseded: no training row, not a gap).",
    )


class ReopenedHandoff(Handoff):
    reopened: list[int] = Field(
        ..., description="The turns back in the queue: it and those closed with it."
    )


class HandoffHistoryEntry(BaseModel):
    at: str = Field(..., description="When (ISO 8601, UTC).")
    action: Literal["handoff", "claim", "release", "close", "reopen"] = Field(
        ...,
        description="handoff: the bot handed it off (always first); then each agent's action.",
    )
    agent: str = Field(
        ..., description="Who did it, as they named themselves (empty: not named, or the bot)."
    )
    detail: dict[str, Any] = Field(
        ...,
        description="What else was kept: handoff: reason; claim: taken_from (the agent it was "
        "taken over from), with_turn (claimed with the conversation's earlier hand-off its "
        "agent held); release: held_by; close: outcome, entry, note, forced, closed_with (the "
        "later turn a superseded one closed with); reopen: note, closed (the closure undone). "
        "Each of its action's keys is always there (null, false or '' when it does not apply). "
        "Text as typed: escape it in a page.",
    )


class HandoffHistory(BaseModel):
    turn_id: int
    conversation_id: str
    status: Literal["waiting", "resolved", "no_answer", "superseded"]
    history: list[HandoffHistoryEntry] = Field(..., description="Oldest first.")


class HandoffQueue(BaseModel):
    handoffs: list[Handoff] = Field(
        ...,
        description="Oldest first: one item per conversation (its newest waiting hand-off), "
        "unless per_turn=true; closed ones (all=true) one per turn. Ordered by each item's "
        "position, the smallest turn id it stands for (its first waiting hand-off: the "
        "smallest of turn_id and earlier_waiting's; else turn_id).",
    )
    next_after: int | None = Field(
        ...,
        description="More items follow this page: ask again with after=next_after (and the "
        "same all, since and per_turn). null: this page is the last.",
    )


class ClaimHandoffRequest(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"agent": "alice"}]})

    agent: str = Field(..., description="Who claims it (at most 200 characters).")
    force: StrictBool = Field(
        False, description="true: take it over from another agent who claimed it."
    )


class ReleaseHandoffRequest(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"agent": "alice"}]})

    agent: str = Field("", description="Who releases it: the agent who claimed it.")
    force: StrictBool = Field(False, description="true: release another agent's claim.")


class ReopenHandoffRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"agent": "bob", "note": "the customer wrote back"}]}
    )

    agent: str = Field("", description="Who reopens it (at most 200 characters).")
    note: str = Field("", description="Why, kept in its log (at most 10,000 characters).")


class CloseHandoffRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"correct_id": "shp-01", "agent": "alice"}]}
    )

    correct_id: str | None = Field(
        None,
        description="The entry that answers the question: the hand-off is resolved, and the "
        "pair becomes a training row (support export-feedback). Give it or no_answer.",
    )
    no_answer: StrictBool = Field(
        False,
        description="true: close it with no entry, the knowledge base has no answer (a gap "
        "support stats counts).",
    )
    agent: str = Field("", description="Who closes it (at most 200 characters).")
    note: str = Field("", description="A note kept with it (at most 10,000 characters).")
    force: StrictBool = Field(
        False, description="true: close it although another agent claimed it (a 409 otherwise)."
    )
    this_turn_only: StrictBool = Field(
        False,
        description="true: leave the conversation's earlier waiting hand-offs waiting (by "
        "default they close with it, as superseded).",
    )

    @field_validator("correct_id", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return empty_is_none(value)

    @model_validator(mode="after")
    def _one_outcome(self) -> CloseHandoffRequest:
        if (self.correct_id is None) == (not self.no_answer):
            raise ValueError(
                "give correct_id (the entry that answers it) or no_answer: true, one of them"
            )
        return self


class Health(BaseModel):
    status: Literal["ok"]
    entries: int = Field(..., description="Entries in the knowledge base.")
    encoder: str = Field(..., description="The encoder the knowledge base was indexed with.")
    version: str = Field(..., description="The support plugin's version.")
    restart_needed: bool = Field(
        ...,
        description="The knowledge base was re-indexed, calibrated or trained since the copy "
        "served was loaded, and this server does not reload it (serve --reload-every 0): it "
        "answers from the copy it loaded until it is restarted.",
    )
    kb_changed: bool = Field(
        ...,
        description="The knowledge base on disk is not the copy served: a reload is due at the "
        "next check, waits for index, calibrate or train to finish, or failed (reload_error).",
    )
    generation: int = Field(
        ..., description="The copy served: 1 for the one loaded at start, one more per reload."
    )
    loaded_at: str = Field(..., description="When the copy served was loaded (ISO 8601, UTC).")
    reload_every: float = Field(
        ..., description="Seconds between checks for a changed knowledge base (0: never)."
    )
    reload_error: str | None = Field(
        ...,
        description="Why the last reload failed (the old copy keeps serving; the same files "
        "are not tried again until they change), null once a reload succeeds.",
    )
    reload_error_at: str | None = Field(..., description="When that reload failed.")


#: What ``/v1/health`` says of reloading on a server that does not reload.
NO_RELOAD: dict[str, Any] = {
    "generation": 1,
    "loaded_at": None,
    "reload_every": 0,
    "reload_error": None,
    "reload_error_at": None,
}

#: The largest request body read: a question is cut at 2,000 characters anyway, and without a
#: limit a client's gigabyte would be held in memory whole (three times, as bytes, text and
#: the parsed request).
MAX_BODY_BYTES = 1 << 20

#: The refusals (400) each route may answer, by code (:data:`~tunesmith_support.refusals.REFUSALS`;
#: ``invalid_body``: FastAPI's 400 for a body that is not UTF-8).
ASK_REFUSALS = (
    "empty_question", "invalid_text", "unknown_conversation", "invalid_body", "bad_request",
)  # fmt: skip
FEEDBACK_REFUSALS = (
    "unknown_turn", "unknown_entry", "rating_missing", "note_too_long", "small_talk_turn",
    "contradictory_feedback", "feedback_limit", "invalid_text", "invalid_body", "bad_request",
)  # fmt: skip

#: A close (not feedback_limit: an agent's closure is stored past a turn's feedback cap).
HANDOFF_REFUSALS = (
    "unknown_turn", "not_a_handoff", "unknown_entry", "note_too_long", "invalid_text",
    "invalid_body", "bad_request",
)  # fmt: skip
#: A hand-off's history (GET): a turn that is not there or was not handed off.
HISTORY_REFUSALS = ("unknown_turn", "not_a_handoff")
CLAIM_REFUSALS = (
    "unknown_turn", "not_a_handoff", "note_too_long", "invalid_text", "invalid_body",
    "bad_request",
)  # fmt: skip


def _only(status: int) -> tuple[str]:
    return (STATUS_CODES[status],)


#: A server bound to a loopback address answers requests addressed to it only (LoopbackHosts).
MISDIRECTED = error_response(
    "The request was addressed to a host name other than 127.0.0.1, localhost or ::1, and the "
    "server is bound to a loopback address.",
    _only(421),
)
UNAUTHORIZED = error_response(
    "No token, or not the server's token (a server started with one); the WWW-Authenticate "
    "header says which.",
    _only(401),
)
INTERNAL = error_response("The server failed (its log has why); try again.", _only(500))
FORBIDDEN = error_response(
    "This server does not serve the hand-off queue: it has no token, or --cors-origin (a token "
    "may be in a public page).",
    _only(403),
)
CLOSED_ALREADY = error_response(
    "The hand-off was closed already (by another agent); detail says how, by whom and when. "
    "Nothing was stored.",
    ("handoff_closed",),
)
TAKEN = error_response(
    "handoff_closed: the hand-off was closed already (detail says how, by whom and when); "
    "handoff_claimed: another agent claimed it (detail says who and since when; force: true "
    "takes it over). Nothing was stored.",
    ("handoff_closed", "handoff_claimed"),
)
WAITING_ALREADY = error_response(
    "The hand-off is waiting already: there is nothing to reopen.", ("handoff_waiting",)
)

#: The refusals an action on the queue answers with a 409: the hand-off is not in the state
#: the agent saw (another agent acted first), as opposed to a request that is wrong.
CONFLICTS = ("handoff_closed", "handoff_claimed", "handoff_waiting")


def error_responses(refusals: Sequence[str]) -> dict[int | str, dict[str, Any]]:
    """The error responses of a POST route whose refusals (400) are ``refusals``, for the
    OpenAPI schema: every body is an ``ErrorMessage``, its ``code`` one of the status's."""
    return {
        400: error_response("The request was refused (one line in detail).", refusals),
        413: error_response("The body is over 1 MiB.", _only(413)),
        415: error_response(
            "The body was not sent with Content-Type: application/json.", _only(415)
        ),
        422: error_response(
            "The body does not fit the schema: detail sums it up, errors has each problem "
            "(not JSON, not an object, a field missing, of the wrong type or unknown, a key "
            "given twice).",
            _only(422),
        ),
        503: error_response(
            "The conversation database is busy or unusable; try again later.", _only(503)
        ),
        421: MISDIRECTED,
        500: INTERNAL,
    }


def public_detail(message: str, service: SupportService) -> str:
    """``message`` without the server's own paths, for an HTTP client: the service's errors
    name the conversation database and the knowledge base by where they are on disk (right on
    the command line, but a client learned the server's folders from a 400)."""
    names: dict[str, str] = {}
    for path, name in (
        (service.conversations.store.path, "the conversation database"),
        (service.kb_dir, "the knowledge base"),
    ):
        for spelling in (path, path.absolute(), path.resolve()):
            names.setdefault(str(spelling), name)
    # Longest first: the database usually lies inside the knowledge base's folder.
    for spelling in sorted(names, key=len, reverse=True):
        name = names[spelling]
        message = message.replace(f"{name} {spelling}", name).replace(spelling, name)
    return message


def _call(service: SupportService, function: Any, *args: Any, **kwargs: Any) -> Any:
    """``function(...)``, its refusals as HTTP errors with their codes: 503 when the
    conversation store failed (a lock is not the caller's fault), 400 for any other
    :class:`UserInputError` (:func:`~tunesmith_support.refusals.refusal_code`); the detail
    names no path of the server (:func:`public_detail`)."""
    try:
        return function(*args, **kwargs)
    except StoreError as exc:
        detail = public_detail(str(exc), service)
        raise ApiError(503, STATUS_CODES[503], detail) from None
    except UserInputError as exc:
        raise ApiError(400, refusal_code(exc), public_detail(str(exc), service)) from None


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is a 413 with one line in
    ``detail``, whether its ``Content-Length`` says so (refused before it is read) or it is
    sent in chunks (refused once the chunks pass the limit)."""

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from fastapi.responses import JSONResponse

        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"the request body is over {self.limit:,} bytes"
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            response = JSONResponse(error_body(413, detail), status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # Raised while FastAPI reads the body, which passes an HTTPException on.
                    raise ApiError(413, STATUS_CODES[413], detail)
            return message

        await self.app(scope, limited, send)


def is_json_media_type(header: str) -> bool:
    """True for ``application/json`` or ``application/<x>+json``, with any parameters."""
    media = header.split(";", 1)[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


class JsonOnly:
    """ASGI middleware: a POST whose ``Content-Type`` is not JSON is a 415 with one line in
    ``detail``. A browser sends a body without Content-Type (``fetch`` with a Blob), or as
    ``text/plain`` or a form, from any web page without a CORS preflight: a page the operator
    visits could ask questions (hand-offs) and send feedback that ``support train`` learns from (after ``export-feedback``).
    FastAPI refuses these itself only since 0.132, and gradio>=5 allows older ones."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from fastapi.responses import JSONResponse

        if scope["type"] == "http" and scope.get("method") == "POST":
            header = dict(scope.get("headers") or []).get(b"content-type", b"")
            if not is_json_media_type(header.decode("latin-1")):
                detail = "a request body must be JSON, sent with Content-Type: application/json"
                response = JSONResponse(error_body(415, detail), status_code=415)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def is_loopback(host: str) -> bool:
    """True for a name or address of this machine only (``localhost``, ``127.x``, ``::1``)."""
    import ipaddress

    name = host.strip().lower().strip("[]").rstrip(".")  # "localhost." is fully qualified
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The host of a ``Host`` header without its port (``[::1]:8000`` gives ``::1``)."""
    header = header.strip()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


#: The paths of the hand-off queue (``/v1/handoffs`` and below): every customer's questions.
QUEUE_PATH = "/v1/handoffs"

#: Why a server does not serve the queue, in its 403.
QUEUE_FORBIDDEN = (
    "this server does not serve the hand-off queue: start it with a token (--token-file) and "
    "without --cors-origin"
)


class QueueClosed:
    """ASGI middleware for a server that does not serve the hand-off queue (no token, or
    ``--cors-origin``): a request to it is a 403 ``forbidden`` before its body is read. Checked
    in each route, it came after the body's: a POST with no JSON Content-Type was a 415, a
    body that did not fit a 422 listing the fields the route wants, as on a server that serves
    it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from fastapi.responses import JSONResponse

        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == QUEUE_PATH or path.startswith(QUEUE_PATH + "/"):
            response = JSONResponse(error_body(403, QUEUE_FORBIDDEN), status_code=403)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class LoopbackHosts:
    """ASGI middleware for a server bound to a loopback address: a request whose ``Host`` is
    not a loopback name is a 421 with one line in ``detail``. A web page that points its own
    domain at 127.0.0.1 (DNS rebinding) would otherwise read and write the API from the
    visitor's browser, which counts it as that page's own origin."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from fastapi.responses import JSONResponse

        if scope["type"] == "http":
            header = dict(scope.get("headers") or []).get(b"host", b"")
            host = host_name(header.decode("latin-1"))
            if not is_loopback(host):
                detail = (
                    f"this server answers requests to 127.0.0.1 or localhost only, not "
                    f"{host[:100]!r}; start it with --host to serve another address"
                )
                response = JSONResponse(error_body(421, detail), status_code=421)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(
    service: SupportService,
    *,
    loopback_only: bool = False,
    token: str | None = None,
    cors_origins: Sequence[str] = (),
    feedback_needs_conversation: bool = False,
    reloader: Any = None,
) -> Any:
    """A FastAPI app answering from ``service``'s knowledge base. ``loopback_only`` (a server
    bound to a loopback address) refuses requests addressed to any other host name; ``token``
    is required as ``Authorization: Bearer <token>`` on every route but ``/docs`` and
    ``/openapi.json``; ``cors_origins`` are the web origins whose pages may call the API from
    a browser (checked by :func:`~tunesmith_support.api_access.check_origin`). Feedback must
    name the turn's conversation with ``feedback_needs_conversation``, and whenever there are
    ``cors_origins``: the visitors of a public page are strangers to each other. ``reloader``
    (a :class:`~tunesmith_support.reload.KbReloader`, or None when the server does not
    reload) says in ``/v1/health`` which copy of the KB is served."""
    from fastapi import FastAPI, Query
    from fastapi.responses import HTMLResponse

    from tunesmith_support.api_access import BearerToken, with_cors
    from tunesmith_support.api_docs import CONTENT_SECURITY_POLICY, render_docs
    from tunesmith_support.api_errors import ErrorCodes, StrictJsonRoute, install_error_handlers

    app = FastAPI(
        title="tunesmith support API",
        version=__version__,
        description="Answers customer questions from a knowledge base; clarifies or hands off.",
        # FastAPI's /docs and /redoc load their scripts from a CDN: blank offline.
        docs_url=None,
        redoc_url=None,
    )
    # Routes added below read their JSON strictly (a key given twice is a 422).
    app.router.route_class = StrictJsonRoute
    install_error_handlers(app)

    # The last added runs first: the Host check, then CORS (a preflight is answered, and a
    # refusal below carries the headers a widget needs to read it), then the token, then the
    # queue's 403, before anything reads the body.
    #
    # The queue holds every customer's questions: a server whose token may be in a public
    # page (--cors-origin), or that has none, does not serve it. Bound to 127.0.0.1 is not
    # enough: a reverse proxy in front of it (nginx sends the upstream's "127.0.0.1:8000" as
    # Host by default) or any other user of the machine would read it without a token.
    queue_served = not cors_origins and token is not None
    app.add_middleware(BodyLimit)
    app.add_middleware(JsonOnly)
    if not queue_served:
        app.add_middleware(QueueClosed)  # after the token's 401, before the body is read
    if token is not None:
        app.add_middleware(BearerToken, token=token)
    if cors_origins:
        app.add_middleware(with_cors, origins=cors_origins)
    if loopback_only:
        app.add_middleware(LoopbackHosts)
    # Outermost: an error body written without a code (the token check's) gets its status's.
    app.add_middleware(ErrorCodes)

    @app.post("/v1/ask", response_model=AskResponse, responses=error_responses(ASK_REFUSALS))
    def ask(request: AskRequest) -> dict[str, Any]:
        """Answer a question, in a new conversation or in the one conversation_id names."""
        return _call(
            service,
            service.ask_request,
            request.question,
            request.conversation_id,
            request.request_id,
            channel="api",
        )

    def store_feedback(request: FeedbackRequest) -> dict[str, Any]:
        key = None
        if request.request_id is not None:
            key = feedback_request_key(
                request.request_id,
                request.turn_id,
                request.conversation_id,
                request.helpful,
                request.correct_id,
                request.note,
            )
            # A retry gets the first answer before any check, as /v1/ask's does: a server
            # restarted on a KB re-indexed since would refuse the correct_id it stored.
            answered = _call(service, service.conversations.answered_feedback, key)
            if answered is not None:
                return {"feedback_id": answered}
        feedback_id = _call(
            service,
            service.feedback,
            request.turn_id,
            helpful=request.helpful,
            correct_id=request.correct_id,
            note=request.note,
            conversation_id=request.conversation_id,
            key=key,
        )
        return {"feedback_id": feedback_id}

    # Two request models, so that the schema says which this server takes (FastAPI reads the
    # handler's annotation).
    if feedback_needs_conversation or cors_origins:

        @app.post(
            "/v1/feedback",
            response_model=FeedbackResponse,
            responses=error_responses(FEEDBACK_REFUSALS),
        )
        def feedback(request: ConversationFeedbackRequest) -> dict[str, Any]:
            """Rate an answer (helpful) or name the entry that was right (correct_id), in the
            conversation it was given in (conversation_id)."""
            return store_feedback(request)

    else:

        @app.post(
            "/v1/feedback",
            response_model=FeedbackResponse,
            responses=error_responses(FEEDBACK_REFUSALS),
        )
        def feedback(request: FeedbackRequest) -> dict[str, Any]:
            """Rate an answer (helpful) or name the entry that was right (correct_id)."""
            return store_feedback(request)

    @app.get(
        "/v1/handoffs",
        response_model=HandoffQueue,
        responses={
            **{status: error_responses(())[status] for status in (503, 421, 500)},
            422: error_response(
                "A query parameter does not fit (all is true or false; limit 1 to "
                f"{MAX_LIMIT}; after a whole number).",
                _only(422),
            ),
            400: error_response("since is not an age or a time.", ("bad_request",)),
            403: FORBIDDEN,
        },
    )
    def handoffs(
        show_all: bool = Query(False, alias="all"),
        since: str | None = None,
        per_turn: bool = False,
        limit: int | None = Query(
            None,
            ge=1,
            le=MAX_LIMIT,
            description=f"The most items on this page (at most {MAX_LIMIT}). Default: every "
            f"waiting one; with all=true, {DEFAULT_LIMIT}.",
        ),
        after: int | None = Query(
            None,
            ge=0,
            description="The page after this position: the previous page's next_after.",
        ),
    ) -> dict[str, Any]:
        """The hand-offs waiting for a person, oldest first, one per conversation (its newest;
        per_turn=true: one per hand-off turn); all=true: closed ones too; since: only those
        made since an age such as 2h or 7d, or an ISO 8601 time. Paged with limit and after
        (next_after); a new hand-off never moves a page already read, and a conversation's
        waiting hand-offs are never split between pages."""
        from tunesmith.events.ages import parse_moment

        moment = None if since is None else _call(service, parse_moment, since, "since")
        return _call(
            service,
            service.conversations.handoff_page,
            waiting_only=not show_all,
            since=moment,
            per_turn=per_turn,
            # Closed hand-offs grow without end; the waiting queue is whole unless asked.
            limit=DEFAULT_LIMIT if limit is None and show_all else limit,
            after=after,
        )

    def queue_call(function: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """An action on the queue: its conflicts (:data:`CONFLICTS`) a 409, other refusals 400
        (:class:`QueueClosed` answers for a server that does not serve it)."""
        try:
            return _call(service, function, *args, **kwargs)
        except ApiError as exc:
            if exc.error_code not in CONFLICTS:
                raise
            raise ApiError(409, exc.error_code, str(exc.detail)) from None

    @app.post(
        "/v1/handoffs/{turn_id}/close",
        response_model=ClosedHandoff,
        responses={**error_responses(HANDOFF_REFUSALS), 403: FORBIDDEN, 409: TAKEN},
    )
    def close_handoff(turn_id: int, request: CloseHandoffRequest) -> dict[str, Any]:
        """Close a hand-off: resolved by the entry that answers it (correct_id), or with none
        (no_answer), with its conversation's earlier waiting hand-offs (closed_with_it; not
        with this_turn_only). A hand-off closed already, or claimed by another agent (unless
        force), is a 409 saying by whom; the same closure sent again gets it back."""
        return queue_call(
            service.close_handoff,
            turn_id,
            entry_id=request.correct_id,
            agent=request.agent,
            note=request.note,
            force=request.force,
            with_earlier=not request.this_turn_only,
        )

    @app.post(
        "/v1/handoffs/{turn_id}/claim",
        response_model=Handoff,
        responses={**error_responses(CLAIM_REFUSALS), 403: FORBIDDEN, 409: TAKEN},
    )
    def claim_handoff(turn_id: int, request: ClaimHandoffRequest) -> dict[str, Any]:
        """Claim a waiting hand-off (and its conversation's earlier ones) for an agent, so that
        the others see it taken. Claimed by another agent: a 409 saying who and since when,
        unless force; claimed by this agent already: it is returned as it is."""
        return queue_call(
            handoff_actions.claim,
            service.conversations,
            turn_id,
            request.agent,
            force=request.force,
        )

    @app.post(
        "/v1/handoffs/{turn_id}/release",
        response_model=Handoff,
        responses={**error_responses(CLAIM_REFUSALS), 403: FORBIDDEN, 409: TAKEN},
    )
    def release_handoff(turn_id: int, request: ReleaseHandoffRequest) -> dict[str, Any]:
        """Release the claim on a waiting hand-off: the agent's own, another's with force."""
        return queue_call(
            handoff_actions.release,
            service.conversations,
            turn_id,
            request.agent,
            force=request.force,
        )

    @app.post(
        "/v1/handoffs/{turn_id}/reopen",
        response_model=ReopenedHandoff,
        responses={**error_responses(CLAIM_REFUSALS), 403: FORBIDDEN, 409: WAITING_ALREADY},
    )
    def reopen_handoff(turn_id: int, request: ReopenHandoffRequest) -> dict[str, Any]:
        """Put a closed hand-off back in the queue, unclaimed, with those closed with it; its
        closure is kept in its log, and the entry it named is no longer a training row. One
        waiting already is a 409."""
        return queue_call(
            handoff_actions.reopen,
            service.conversations,
            turn_id,
            request.agent,
            request.note,
        )

    @app.get(
        "/v1/handoffs/{turn_id}/history",
        response_model=HandoffHistory,
        responses={
            **{status: error_responses(())[status] for status in (503, 421, 500)},
            400: error_response("No such turn, or it was not handed off.", HISTORY_REFUSALS),
            422: error_response("turn_id is not a whole number.", _only(422)),
            403: FORBIDDEN,
        },
    )
    def handoff_history(turn_id: int) -> dict[str, Any]:
        """What was done with a hand-off, oldest first: handed off, then who claimed,
        released, closed and reopened it, when, with what note. Served as the queue is."""
        return _call(service, handoff_actions.history, service.conversations, turn_id)

    started = datetime.now(UTC).isoformat(timespec="seconds")  # the service's copy: loaded

    @app.get("/v1/health", response_model=Health, responses={421: MISDIRECTED, 500: INTERNAL})
    def health() -> dict[str, Any]:
        """The server is up; what it answers from."""
        answerer = service.answerer  # one copy, should a reload swap another in meanwhile
        changed = kb_stamp(answerer.kb_dir) != answerer.loaded_stamp
        reload = reloader.status() if reloader is not None else NO_RELOAD
        return {
            "status": "ok",
            "entries": len(answerer.entries),
            "encoder": str(answerer.encoder.name),
            "version": __version__,
            "restart_needed": changed and not reload["reload_every"],
            "kb_changed": changed,
            **reload,
            "loaded_at": reload["loaded_at"] or started,
        }

    _finish_schema(app, token_required=token is not None)

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> Any:
        # The address the page was asked at: a fixed 127.0.0.1:8000 was wrong for --port 8765.
        address = str(request.base_url).rstrip("/")
        page = render_docs(app.openapi(), token_required=token is not None, address=address)
        return HTMLResponse(page, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})

    return app


def _finish_schema(app: Any, *, token_required: bool) -> None:
    """Complete ``app``'s OpenAPI schema: the ``ErrorMessage`` every error response refers
    to, and with ``token_required`` the bearer token and the 401 on every route (so that a
    generated client sends it)."""
    from tunesmith_support.api_access import OPEN_PATHS

    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            add_error_schemas(schema)
            if token_required:
                schema["components"]["securitySchemes"] = {
                    "bearerToken": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "The server's token (serve --token-file, or "
                        "$TUNESMITH_SUPPORT_TOKEN).",
                    }
                }
                for path, operations in schema.get("paths", {}).items():
                    if path in OPEN_PATHS:
                        continue
                    for operation in operations.values():
                        operation["security"] = [{"bearerToken": []}]
                        operation.setdefault("responses", {})["401"] = UNAUTHORIZED
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
