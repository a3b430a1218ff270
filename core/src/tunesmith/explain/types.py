"""What an explanation is: plain dataclasses, light to import (no torch), easy to turn into JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class WordScore:
    """One word of the input and its attribution; ``start``/``end`` are character offsets."""

    word: str
    score: float
    start: int = -1
    end: int = -1

    def to_dict(self) -> dict[str, Any]:
        return {"word": self.word, "score": self.score}


@dataclass
class TokenAttribution:
    """What an attribution method returns for one text: a score per token position.

    ``scores`` is aligned with the token ids the method was given (special tokens included);
    ``delta`` is the integrated-gradients convergence delta, ``None`` for other methods.
    """

    scores: list[float]
    delta: float | None = None


@dataclass
class Explanation:
    """Why a classifier decided as it did for one text.

    ``label``/``probability`` are the prediction; ``target``/``target_probability`` the label
    explained (the prediction unless asked otherwise). ``comprehensiveness`` is the drop in the
    target's probability when the ``k`` top-attributed words are removed (higher is more
    faithful); ``sufficiency`` the drop when only they are kept (lower is more faithful).
    """

    text: str
    label: str
    probability: float
    target: str
    target_probability: float
    tokens: list[WordScore]
    method: str
    delta: float | None = None
    comprehensiveness: float | None = None
    sufficiency: float | None = None
    k: int = 0
    truncated: bool = False
    n_steps: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``tunesmith explain --json``."""
        data: dict[str, Any] = {
            "text": self.text,
            "label": self.label,
            "probability": self.probability,
            "target": self.target,
            "target_probability": self.target_probability,
            "tokens": [t.to_dict() for t in self.tokens],
            "delta": self.delta,
            "comprehensiveness": self.comprehensiveness,
            "sufficiency": self.sufficiency,
            "k": self.k,
            "method": self.method,
            "truncated": self.truncated,
        }
        if self.n_steps is not None:
            data["n_steps"] = self.n_steps
        data.update(self.extra)
        return data


@dataclass
class PairExplanation:
    """Which words of a query and of a passage drove their cosine similarity.

    Each side is scored against the other as it is: the query's scores add up to
    ``similarity - query_baseline_similarity`` (the similarity with the query blanked out), the
    passage's to ``similarity - passage_baseline_similarity``; ``delta`` is the larger miss.
    """

    query: str
    passage: str
    similarity: float
    query_tokens: list[WordScore]
    passage_tokens: list[WordScore]
    delta: float
    query_baseline_similarity: float = 0.0
    passage_baseline_similarity: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "passage": self.passage,
            "similarity": self.similarity,
            "query_baseline_similarity": self.query_baseline_similarity,
            "passage_baseline_similarity": self.passage_baseline_similarity,
            "query_tokens": [t.to_dict() for t in self.query_tokens],
            "passage_tokens": [t.to_dict() for t in self.passage_tokens],
            "delta": self.delta,
        }


@dataclass
class EntityExplanation:
    """One predicted entity of a tagger and the words that made the model tag it."""

    text: str
    entity: str
    label: str
    start: int
    end: int
    probability: float
    tokens: list[WordScore]
    delta: float | None = None
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "entity": self.entity,
            "label": self.label,
            "start": self.start,
            "end": self.end,
            "probability": self.probability,
            "tokens": [t.to_dict() for t in self.tokens],
            "delta": self.delta,
        }
