"""Calibrated confidence and decision thresholds, fitted on held-out questions.

Two logistic models (Platt scaling) read features of a question's candidates:

- ``answer``: the probability that the top candidate is right (the confidence shown);
- ``shortlist``: the probability that the right entry is among the top three (for clarifying).

Out-of-scope questions count as wrong for both. Thresholds are chosen for a target precision on
cross-validated probabilities (each question scored by models that did not see it), then the
models are refitted on every question. The combination weights of lexical and intent scores are
chosen first, by mean reciprocal rank on the same questions; a weight stays zero unless it helps.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.engine.metrics import expected_calibration_error
from tunesmith.errors import UserInputError
from tunesmith.io import atomic_write_json, read_json_object
from tunesmith_support.kbgenerations import calibration_path, check_matches
from tunesmith_support.scoring import Candidate, Scorer, Weights, rank

SHORTLIST = 3
#: Candidates `ask` ranks for a question (:meth:`Answerer.search`); the confidence reads them.
ASKED = 5
#: Fewer labelled questions give thresholds that mean nothing.
MIN_QUESTIONS = 20
#: Features of the confidence models; a calibration file lists the ones it was fitted on.
#: ``nearest`` is the best retrieval cosine among the candidates: how close the question comes
#: to what is indexed, whatever the ranking weights (on CLINC150's validation split it raised
#: the confidence's AUROC for out-of-scope questions from 0.977 to 0.984). ``intent_knn`` is
#: the question's best cosine with the classifier's own training questions
#: (:meth:`IntentModel.similarity`).
FEATURES = ["top", "margin", "second", "third", "intent", "intent_oos", "nearest", "intent_knn"]


def features(candidates: list[Candidate], names: list[str] | None = None) -> list[float]:
    """Features ``names`` (default :data:`FEATURES`) of one question's ranked candidates."""
    scores = [c.score for c in candidates] + [0.0] * 3
    top = candidates[0] if candidates else None
    values = {
        "top": scores[0],
        "margin": scores[0] - scores[1],
        "second": scores[1],
        "third": scores[2],
        "intent": top.intent if top is not None else 0.0,
        "intent_oos": top.out_of_scope if top is not None else 0.0,
        "nearest": max((c.retrieval for c in candidates), default=0.0),
        "intent_knn": top.knn if top is not None else 0.0,
    }
    return [values[name] for name in names or FEATURES]


@dataclass
class Logistic:
    """``p = sigmoid(w . x + b)``."""

    coef: list[float]
    intercept: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = np.asarray(x, dtype=np.float64) @ np.asarray(self.coef) + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, c: float = 10.0) -> Logistic:
        """L2-regularised logistic regression (``1/c`` on the weights, not the intercept) by
        Newton's method: a handful of features, so this is exact and needs no sklearn."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if len(set(y.tolist())) < 2:
            # All right (or all wrong): a constant confidence equal to the observed rate.
            rate = float(np.clip(y.mean(), 1e-3, 1 - 1e-3))
            return cls([0.0] * x.shape[1], math.log(rate / (1 - rate)))
        design = np.hstack([x, np.ones((len(x), 1))])
        penalty = np.full(design.shape[1], 1.0 / c)
        penalty[-1] = 0.0
        w = np.zeros(design.shape[1])
        for _ in range(100):
            p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -50, 50)))
            grad = design.T @ (p - y) + penalty * w
            hess = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
            step = np.linalg.solve(hess, grad)
            w -= step
            if np.max(np.abs(step)) < 1e-8:
                break
        return cls([float(v) for v in w[:-1]], float(w[-1]))


@dataclass
class Calibration:
    """Everything `ask` needs to turn candidate scores into a decision."""

    answer: Logistic
    shortlist: Logistic
    weights: Weights
    answer_threshold: float
    clarify_threshold: float
    clarify_margin: float
    out_of_scope_score: float
    target_precision: float
    report: dict[str, Any] = field(default_factory=dict)
    #: The features the models read (files written before ``intent_oos`` list five).
    feature_names: list[str] = field(default_factory=lambda: list(FEATURES))
    #: Whether it was fitted with the KB's intent classifier (`ask` then loads it too).
    uses_classifier: bool = False
    #: The encoder and classifier ``kb.json`` named when it was fitted
    #: (:func:`tunesmith_support.kbgenerations.fitted_on`); None in files written before.
    fitted_on: dict[str, Any] | None = None

    def confidence(self, candidates: list[Candidate]) -> tuple[float, float]:
        """(P(top candidate right), P(right one in the top three))."""
        x = np.asarray([features(candidates, self.feature_names)])
        return float(self.answer.predict(x)[0]), float(self.shortlist.predict(x)[0])

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": 1,
            "features": self.feature_names,
            "uses_classifier": self.uses_classifier,
            "answer": {"coef": self.answer.coef, "intercept": self.answer.intercept},
            "shortlist": {"coef": self.shortlist.coef, "intercept": self.shortlist.intercept},
            "weights": self.weights.to_dict(),
            "answer_threshold": self.answer_threshold,
            "clarify_threshold": self.clarify_threshold,
            "clarify_margin": self.clarify_margin,
            "out_of_scope_score": self.out_of_scope_score,
            "target_precision": self.target_precision,
            "report": self.report,
            **({"fitted_on": self.fitted_on} if self.fitted_on is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        return cls(
            answer=Logistic(**data["answer"]),
            shortlist=Logistic(**data["shortlist"]),
            weights=Weights(**data.get("weights", {})),
            answer_threshold=float(data["answer_threshold"]),
            clarify_threshold=float(data["clarify_threshold"]),
            clarify_margin=float(data["clarify_margin"]),
            out_of_scope_score=float(data["out_of_scope_score"]),
            target_precision=float(data["target_precision"]),
            report=data.get("report", {}),
            feature_names=list(data.get("features") or FEATURES[:5]),
            uses_classifier=bool(data.get("uses_classifier", False)),
            fitted_on=data["fitted_on"] if isinstance(data.get("fitted_on"), dict) else None,
        )

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Calibration | None:
        data = read_json_object(path) if Path(path).exists() else None
        return cls.from_dict(data) if data else None

    @classmethod
    def load_for(cls, kb_dir: str | Path, meta: dict[str, Any]) -> Calibration | None:
        """The calibration of the KB whose ``kb.json`` is ``meta`` (None when it has none); one
        fitted on another encoder or classifier than the KB's is a one-line error naming what
        to run (:func:`~tunesmith_support.kbgenerations.check_matches`)."""
        path = calibration_path(kb_dir, meta)
        data = read_json_object(path) if path.exists() else None
        check_matches(kb_dir, meta, data)
        return cls.from_dict(data) if data else None


def threshold_for_precision(
    probs: np.ndarray, correct: np.ndarray, target: float, *, min_count: int = 3
) -> float:
    """The lowest threshold whose accepted questions (``prob >= t``) are right at least
    ``target`` of the time, with at least ``min_count`` accepted; 1.01 (accept nothing) if none."""
    order = np.argsort(-probs)
    hits = np.cumsum(correct[order])
    counts = np.arange(1, len(order) + 1)
    precision = hits / counts
    best = 1.01
    for i in range(len(order)):
        # Only cut between different probabilities, so ties stay on one side.
        if i + 1 < len(order) and probs[order[i + 1]] == probs[order[i]]:
            continue
        if counts[i] >= min_count and precision[i] >= target:
            best = float(probs[order[i]])
    return best


def _score_arrays(found: list[list[Candidate]]) -> list[tuple[list[str], np.ndarray]]:
    """Per question: candidate ids and a ``[4, n]`` array of question, answer, lexical and
    intent scores (to try many weights without Python loops)."""
    out = []
    for cands in found:
        ids = [c.entry.id for c in cands]
        arr = np.asarray(
            [[c.question_score, c.answer_score, c.lexical, c.intent] for c in cands],
            dtype=np.float64,
        ).reshape(-1, 4)
        out.append((ids, arr.T))
    return out


def _mrr(arrays: list[tuple[list[str], np.ndarray]], expected: list[str], w: Weights) -> float:
    """Mean reciprocal rank of the expected entries (in-scope questions only)."""
    total, n = 0.0, 0
    for (ids, arr), want in zip(arrays, expected, strict=True):
        if not want:
            continue
        n += 1
        if want not in ids:
            continue
        q, a, lex, intent = arr
        s = np.maximum(a, q - w.question_offset) + w.lexical * lex + w.intent * intent
        total += 1.0 / (1 + int((s > s[ids.index(want)]).sum()))
    return total / max(1, n)


#: Offsets tried for indexed questions (2.0: match on answer texts only, cosines are <= 1).
QUESTION_OFFSETS = [0.0, 0.05, 0.1, 0.2, 2.0]


def choose_weights(
    found: list[list[Candidate]], expected: list[str], scorer: Scorer
) -> tuple[Weights, dict[str, Any]]:
    """Question offset, lexical and intent weights by validation MRR; lexical and intent each
    measured against leaving them out, and kept only when they raise MRR."""
    lexical_grid = [0.0, 0.05, 0.1, 0.2, 0.3] if scorer.lexical is not None else [0.0]
    intent_grid = [0.0, 0.1, 0.25, 0.5, 1.0] if scorer.intent is not None else [0.0]
    arrays = _score_arrays(found)
    results = {}
    for offset, lex, intent in itertools.product(QUESTION_OFFSETS, lexical_grid, intent_grid):
        results[(offset, lex, intent)] = _mrr(arrays, expected, Weights(lex, intent, offset))
    # The plain retrieval choice first, then extras only where they beat it.
    offset = max(QUESTION_OFFSETS, key=lambda o: (round(results[(o, 0.0, 0.0)], 6), -o))
    base = results[(offset, 0.0, 0.0)]
    best_key = max(
        (k for k in results if k[0] == offset),
        key=lambda k: (round(results[k], 6), -k[1] - k[2]),
    )
    if results[best_key] <= base + 1e-9:
        best_key = (offset, 0.0, 0.0)
    measured = {
        "mrr_retrieval_only": round(base, 4),
        "mrr_chosen": round(results[best_key], 4),
        "mrr_questions_as_answers": round(results[(0.0, 0.0, 0.0)], 4),
        "mrr_answers_only": round(results[(2.0, 0.0, 0.0)], 4),
    }
    if scorer.lexical is not None:
        measured["mrr_best_with_lexical"] = round(
            max(
                v for k, v in results.items() if k[0] == offset and k[1] > 0 and k[2] == best_key[2]
            ),
            4,
        )
    if scorer.intent is not None:
        measured["mrr_best_with_intent"] = round(
            max(
                v for k, v in results.items() if k[0] == offset and k[2] > 0 and k[1] == best_key[1]
            ),
            4,
        )
    return Weights(best_key[1], best_key[2], best_key[0]), measured


def _cross_val(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fold_of = rng.permutation(len(y)) % folds
    probs = np.zeros(len(y))
    for f in range(folds):
        test = fold_of == f
        if not test.any():
            continue
        probs[test] = Logistic.fit(x[~test], y[~test]).predict(x[test])
    return probs


def check_target_precision(target_precision: float) -> None:
    """Refuse a target precision outside (0, 1) (`support train` checks it before training)."""
    if not 0.0 < target_precision < 1.0:
        raise UserInputError(f"--target-precision must be between 0 and 1, got {target_precision}")


def check_calibration_data(n_questions: int, target_precision: float) -> None:
    """Refuse a target precision outside (0, 1) or fewer than :data:`MIN_QUESTIONS` questions."""
    check_target_precision(target_precision)
    if n_questions < MIN_QUESTIONS:
        raise UserInputError(
            f"calibration needs at least {MIN_QUESTIONS} labelled questions, got {n_questions}"
        )


def fit_calibration(
    scorer: Scorer,
    questions: list[str],
    expected: list[str],
    *,
    target_precision: float = 0.9,
) -> Calibration:
    """Fit weights, confidence models and thresholds on labelled held-out questions.

    ``expected[i]`` is the right entry id, or ``""`` for an out-of-scope question.
    """
    check_calibration_data(len(questions), target_precision)
    if not any(expected):
        # Nothing could be right, so no threshold is reachable: the KB would hand off everything.
        raise UserInputError(
            f"all {len(expected)} calibration questions are out of scope (no answer id); "
            "calibration needs questions with the id of the entry that answers them"
        )
    known = set(scorer.position)
    unknown = sorted({e for e in expected if e and e not in known})
    if unknown:
        raise UserInputError(
            f"{len(unknown)} answer id(s) of the calibration questions are not in the KB, "
            f"e.g. '{unknown[0]}'"
        )
    found = scorer.components(questions, everything=True)
    weights, measured = choose_weights(found, expected, scorer)
    ranked = [rank(f, weights, 10) for f in found]
    # The features of the candidates `ask` ranks (its top ASKED): ``nearest`` read over ten
    # would be fitted on a cosine that `ask` never sees when the weights reorder them.
    x = np.asarray([features(r[:ASKED]) for r in ranked], dtype=np.float64)
    top_ids = [[c.entry.id for c in r] for r in ranked]
    want = np.asarray(expected, dtype=object)
    y1 = np.asarray([bool(w) and ids[:1] == [w] for ids, w in zip(top_ids, want, strict=True)])
    y3 = np.asarray(
        [bool(w) and w in ids[:SHORTLIST] for ids, w in zip(top_ids, want, strict=True)]
    )
    if y1.all():
        # One class only: the confidence would be a constant 0.999, and every question, out of
        # scope or not, answered (the FAQ's own questions, or only answers rated helpful).
        raise UserInputError(
            f"the top entry is right for all {len(questions)} calibration questions, so the "
            "confidence cannot learn what a wrong answer looks like and would answer "
            "everything; calibrate on questions that include some the KB cannot answer (an "
            "empty answer id) or answers wrongly"
        )
    p1 = _cross_val(x, y1.astype(int))
    p3 = _cross_val(x, y3.astype(int))
    answer_t = threshold_for_precision(p1, y1, target_precision)
    rest = p1 < answer_t
    clarify_t = (
        threshold_for_precision(p3[rest], y3[rest], target_precision) if rest.any() else 1.01
    )
    # How far below the top the right entry sits when it is in the shortlist but not first.
    gaps = [
        r[0].score - next(c.score for c in r if c.entry.id == w)
        for r, w, a, b in zip(ranked, want, y1, y3, strict=True)
        if b and not a
    ]
    margin = float(np.quantile(gaps, 0.9)) if gaps else 0.05
    in_scope_top = [r[0].score for r, w in zip(ranked, want, strict=True) if w and r]
    oos_score = float(np.quantile(in_scope_top, 0.05)) if in_scope_top else 0.0

    answered = p1 >= answer_t
    n_oos = int(sum(1 for w in want if not w))
    report = {
        "questions": len(questions),
        "out_of_scope": n_oos,
        "top1_accuracy_in_scope": round(
            float(y1[want != ""].mean()) if len(want) > n_oos else 0.0, 4
        ),
        "top3_accuracy_in_scope": round(
            float(y3[want != ""].mean()) if len(want) > n_oos else 0.0, 4
        ),
        "ece": round(expected_calibration_error(p1[:, None], np.where(y1, 0, 1)), 4),
        "ece_uncalibrated_top_score": round(
            expected_calibration_error(np.clip(x[:, :1], 0, 1), np.where(y1, 0, 1)), 4
        ),
        "answer_rate": round(float(answered.mean()), 4),
        "answer_precision": round(float(y1[answered].mean()) if answered.any() else 0.0, 4),
        **measured,
    }
    return Calibration(
        answer=Logistic.fit(x, y1.astype(int)),
        shortlist=Logistic.fit(x, y3.astype(int)),
        weights=weights,
        answer_threshold=answer_t,
        clarify_threshold=clarify_t,
        clarify_margin=max(margin, 1e-3),
        out_of_scope_score=oos_score,
        target_precision=target_precision,
        report=report,
        uses_classifier=scorer.intent is not None,
    )
