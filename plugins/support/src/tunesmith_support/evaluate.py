"""`support eval`: how a KB answers labelled questions (retrieval, decisions, calibration)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tunesmith_support.answer import Answerer, clean_question


def evaluate(answerer: Answerer, questions: list[str], expected: list[str]) -> dict[str, Any]:
    """Hit@1/5 and MRR on in-scope questions; answer/clarify/hand-off rates, precision of the
    answers, out-of-scope hand-off recall and the ECE of the confidence over all questions."""
    from tunesmith.engine.metrics import expected_calibration_error

    cleaned = [clean_question(q)[0] for q in questions]
    with answerer._lock:
        ranked = answerer.scorer.candidates(cleaned, k=10)
    decisions, confidence, top1 = [], [], []
    hits1 = hits5 = 0
    rr = 0.0
    n_in = 0
    for question, cands, want in zip(cleaned, ranked, expected, strict=True):
        result = answerer.decide(question, question, cands[:5], [])
        decisions.append(result.decision)
        confidence.append(result.confidence)
        ids = [c.entry.id for c in cands]
        top1.append(bool(want) and ids[:1] == [want])
        if want:
            n_in += 1
            hits1 += ids[:1] == [want]
            hits5 += want in ids[:5]
            rr += 1.0 / (ids.index(want) + 1) if want in ids else 0.0
    d = np.asarray(decisions)
    right = np.asarray(top1)
    oos = np.asarray([not w for w in expected])
    answered = d == "answer"
    n = max(1, len(d))
    return {
        "questions": len(questions),
        "in_scope": n_in,
        "out_of_scope": int(oos.sum()),
        "hit@1": round(hits1 / max(1, n_in), 4),
        "hit@5": round(hits5 / max(1, n_in), 4),
        "mrr": round(rr / max(1, n_in), 4),
        "answer_rate": round(float(answered.sum()) / n, 4),
        "answer_precision": round(float(right[answered].mean()), 4) if answered.any() else None,
        "clarify_rate": round(float((d == "clarify").sum()) / n, 4),
        "handoff_rate": round(float((d == "handoff").sum()) / n, 4),
        "out_of_scope_handoff": round(float((d[oos] == "handoff").mean()), 4)
        if oos.any()
        else None,
        "ece": round(
            expected_calibration_error(np.asarray(confidence)[:, None], np.where(right, 0, 1)),
            4,
        ),
        "target_precision": answerer.calibration.target_precision if answerer.calibration else None,
    }
