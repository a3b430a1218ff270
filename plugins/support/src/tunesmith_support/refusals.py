"""Why the support service refuses a request, as a stable code a program can act on.

The service's refusals are :class:`~tunesmith.errors.UserInputError` lines written for people
(the CLI prints them); the HTTP API also sends a code with each (:mod:`api_errors`), so that a
web page never has to match English text to know, say, that its conversation is gone and it
should start a new one. :class:`Refusal` carries its code, wherever in the plugin it is raised (the service, the
conversation log, the question cleaner).
"""

from __future__ import annotations

from tunesmith.errors import UserInputError

#: Every code a refused request (HTTP 400) may carry, with what it means. Stable: a code is
#: never renamed or reused for another meaning; new ones may be added.
REFUSALS: dict[str, str] = {
    "empty_question": "The question is empty (or only blanks and control characters).",
    "invalid_text": "A text field is not valid Unicode (a lone surrogate such as \\ud800).",
    "unknown_conversation": "No conversation has this conversation_id (the database was reset, "
    "or the id is wrong): send the question again without conversation_id to start a new one.",
    "unknown_turn": "No turn has this turn_id (in this conversation, when one is named).",
    "unknown_entry": "correct_id names no entry of the knowledge base the server loaded.",
    "rating_missing": "Feedback needs helpful (true/false) or a correct_id.",
    "note_too_long": "The note is over 10,000 characters.",
    "small_talk_turn": "The turn is small talk (a greeting, thanks or goodbye): rate the turn "
    "that answered.",
    "contradictory_feedback": "correct_id names the entry the turn answered with, and helpful "
    "is false: send helpful false alone.",
    "feedback_limit": "The turn has 20 pieces of feedback already.",
    "not_a_handoff": "The turn was not handed off to a person: there is no hand-off to close.",
    "handoff_closed": "HTTP 409: the hand-off was closed already (another agent): detail says "
    "how, by whom and when; nothing was stored.",
    "handoff_claimed": "HTTP 409: another agent has claimed the hand-off (or an earlier one of "
    "its conversation): detail says who and since when; nothing was stored (force: true takes "
    "it over).",
    "handoff_waiting": "HTTP 409: the hand-off is waiting already, so there is nothing to reopen.",
    "bad_request": "Another refusal; detail says what.",
}


class Refusal(UserInputError):
    """A refused request with its code (:data:`REFUSALS`); to the CLI, an ordinary
    :class:`UserInputError`."""

    def __init__(self, code: str, message: str) -> None:
        if code not in REFUSALS:
            raise ValueError(f"unknown refusal code {code!r}")  # a typo in this plugin
        super().__init__(message)
        self.code = code


def refusal_code(exc: UserInputError) -> str:
    """``exc``'s code: its own (:class:`Refusal`), else ``bad_request``."""
    code = getattr(exc, "code", None)
    if code in REFUSALS:
        return str(code)
    return "bad_request"
