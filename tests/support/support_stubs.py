"""Stand-ins the support tests share: a calibration whose confidence is high for a clear winner
only, so that answer, clarify and hand-off can be driven by made-up retrieval scores."""

from __future__ import annotations

import threading

from tunesmith_support.answer import Answerer
from tunesmith_support.calibrate import Calibration, Logistic
from tunesmith_support.kb import Entry
from tunesmith_support.scoring import Weights


def clear_winner_calibration() -> Calibration:
    """Confidence = sigmoid(20 * (top - 0.5) + 10 * margin); answer at 0.8, clarify at 0.7."""
    return Calibration(
        answer=Logistic([20.0, 10.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], -10.0),
        shortlist=Logistic([20.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], -8.0),
        weights=Weights(),
        answer_threshold=0.8,
        clarify_threshold=0.7,
        clarify_margin=0.05,
        out_of_scope_score=0.3,
        target_precision=0.9,
    )


def scripted_answerer(scorer: object) -> Answerer:
    """An :class:`Answerer` without a KB: :func:`clear_winner_calibration` over ``scorer`` (an
    object whose ``candidates(queries, k)`` returns made-up candidates), locked as a loaded one."""
    answerer = Answerer.__new__(Answerer)
    answerer.calibration = clear_winner_calibration()
    answerer.scorer = scorer
    answerer._lock = threading.Lock()
    return answerer


class ScriptedScorer:
    """A scorer over ``entries`` whose ``candidates(queries, k)`` a test writes (made-up
    retrieval scores); ``components`` gives the same, as the answerer asks for both."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self.position = {e.id: i for i, e in enumerate(entries)}
        self.weights = Weights()

    def components(self, queries: list[str]) -> list:
        return self.candidates(queries)
