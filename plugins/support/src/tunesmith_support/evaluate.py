"""`support eval`: how a KB answers labelled questions (retrieval, decisions, calibration)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tunesmith.engine.metrics import expected_calibration_error
from tunesmith_support.answer import TOPIC_TURNS, Answerer, clean_question
from tunesmith_support.calibrate import ASKED


def evaluate(answerer: Answerer, questions: list[str], expected: list[str]) -> dict[str, Any]:
    """Hit@1/5 and MRR on in-scope questions; answer/clarify/hand-off rates, precision of the
    answers, out-of-scope hand-off recall and the ECE of the confidence over all questions."""
    cleaned = [clean_question(q)[0] for q in questions]
    with answerer._lock:
        ranked = answerer.scorer.candidates(cleaned, k=10)
    decisions, confidence, top1 = [], [], []
    hits1 = hits5 = 0
    rr = 0.0
    n_in = 0
    for question, cands, want in zip(cleaned, ranked, expected, strict=True):
        result = answerer.decide(question, question, cands[:ASKED], [])
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
        # None, not 0.0, with no in-scope question: there was nothing to find
        "hit@1": round(hits1 / n_in, 4) if n_in else None,
        "hit@5": round(hits5 / n_in, 4) if n_in else None,
        "mrr": round(rr / n_in, 4) if n_in else None,
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


def follow_up_report(
    answerer: Answerer,
    questions: list[str],
    expected: list[str],
    conversations: list[tuple[str, str, str]],
) -> dict[str, Any]:
    """How follow-up questions are searched (:meth:`Answerer.search`), by hit@1.

    - On real follow-ups (``(previous question, follow-up, right id)``): searched as `ask` does
      (alone, and with the topic with each entry scored on both; the surer reading kept),
      alone, and always joined to the previous question (one query); and how often the
      reading with the topic was kept.
    - On stand-alone questions played in file order as one conversation (each after the one
      before it): how often the reading with the topic was kept, and what `ask` then loses in
      hit@1.
    """

    def played(pairs: list[tuple[str, list[str]]], want: list[str]) -> list[tuple[bool, bool]]:
        """Per question: (right at 1, read with the topic: its query is the question joined
        to the topic, longer than the question; alone, the query is the question or less)."""
        out = []
        for (q, h), w in zip(pairs, want, strict=True):
            text = clean_question(q)[0]
            query, found = answerer.search(text, h, k=1)
            out.append((bool(found) and found[0].entry.id == w, len(query) > len(text)))
        return out

    def mean(values: list[bool]) -> float:
        return round(float(np.mean(values)), 4) if values else 0.0

    def hits(pairs: list[tuple[str, list[str]]], want: list[str]) -> float:
        return mean([right for right, _ in played(pairs, want)])

    want = [c[2] for c in conversations]
    inside = [(q, w) for q, w in zip(questions, expected, strict=True) if w]
    standalone = [q for q, _ in inside]
    wanted = [w for _, w in inside]
    follow = played([(c[1], [c[0]]) for c in conversations], want)
    # Each with the questions before it as its conversation, as `ask` has them.
    sequence = played(
        [(q, standalone[max(0, i - TOPIC_TURNS) : i]) for i, q in enumerate(standalone)], wanted
    )
    return {
        "follow_ups": len(conversations),
        "follow_ups_read_with_topic": mean([joined for _, joined in follow]),
        "follow_up_hit@1": mean([right for right, _ in follow]),
        "follow_up_hit@1_alone": hits([(c[1], []) for c in conversations], want),
        "follow_up_hit@1_always_joined": hits(
            [(f"{c[0]} {c[1]}", []) for c in conversations], want
        ),
        "standalone_questions": len(standalone),
        # The first question has no conversation before it.
        "standalone_read_with_topic": mean([joined for _, joined in sequence[1:]]),
        "standalone_hit@1_alone": hits([(q, []) for q in standalone], wanted),
        "standalone_hit@1_in_sequence": mean([right for right, _ in sequence]),
    }
