"""The HTTP JSON API for integrators (FastAPI, which Gradio already brings).

``POST /v1/ask``, ``POST /v1/feedback``, ``GET /v1/health``; the OpenAPI schema is at
``/openapi.json`` and browsable at ``/docs``. One model serves every request: the answerer holds a
lock around the encoder and index, and the store serialises SQLite writes. Handlers are plain
``def`` functions, so FastAPI runs them in its thread pool and the event loop stays free.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from tunesmith.errors import UserInputError
from tunesmith_support import __version__
from tunesmith_support.service import SupportService

# This module is imported only by `support serve`, the demo and tests, never at CLI start-up,
# so pydantic (and FastAPI below) may load at import time; the models must be module-level for
# FastAPI to resolve their annotations.


class AskRequest(BaseModel):
    question: str = Field(..., description="The customer's question.")
    conversation_id: str | None = Field(
        None, description="Continue a conversation (from an earlier answer)."
    )


class Candidate(BaseModel):
    id: str
    title: str
    category: str
    source: str
    heading: str
    score: float


class AskResponse(BaseModel):
    decision: str = Field(..., description="answer, clarify or handoff")
    reason: str = Field("", description="Why a clarify or hand-off happened.")
    text: str = Field(..., description="What to show the customer.")
    confidence: float = Field(..., description="Calibrated P(the top entry is right).")
    entry: dict[str, Any] | None = Field(None, description="The entry answered from.")
    candidates: list[Candidate]
    notes: list[str]
    conversation_id: str
    turn_id: int
    handoff_event: str | None = None


class FeedbackRequest(BaseModel):
    turn_id: int
    helpful: bool | None = None
    correct_id: str | None = Field(None, description="The right entry id (from an agent).")
    note: str = ""


class FeedbackResponse(BaseModel):
    feedback_id: int


class Health(BaseModel):
    status: str
    entries: int
    encoder: str
    version: str


def create_app(service: SupportService) -> Any:
    """A FastAPI app answering from ``service``'s knowledge base."""
    from fastapi import FastAPI, HTTPException

    app = FastAPI(
        title="tunesmith support API",
        version=__version__,
        description="Answers customer questions from a knowledge base; clarifies or hands off.",
    )

    @app.post("/v1/ask", response_model=AskResponse)
    def ask(request: AskRequest) -> dict[str, Any]:
        try:
            turn = service.ask(request.question, request.conversation_id, channel="api")
        except UserInputError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        return turn.to_dict()

    @app.post("/v1/feedback", response_model=FeedbackResponse)
    def feedback(request: FeedbackRequest) -> dict[str, Any]:
        try:
            feedback_id = service.feedback(
                request.turn_id,
                helpful=request.helpful,
                correct_id=request.correct_id,
                note=request.note,
            )
        except UserInputError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        return {"feedback_id": feedback_id}

    @app.get("/v1/health", response_model=Health)
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "entries": len(service.answerer.entries),
            "encoder": str(service.answerer.encoder.name),
            "version": __version__,
        }

    return app
