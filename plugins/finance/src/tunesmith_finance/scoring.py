"""Sentiment scores: P(positive) − P(negative) from a classifier whose labels are found by name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.engine.ensemble import load_ensemble, mean_probabilities
from tunesmith.engine.loading import load_model
from tunesmith.engine.predict import predict_texts
from tunesmith.errors import UserInputError
from tunesmith_finance.topic_data import NO_TOPIC

#: Label names a model may use for each sentiment, compared lower-cased.
LABEL_NAMES = {
    "negative": ("negative", "neg", "bearish"),
    "neutral": ("neutral", "neu"),
    "positive": ("positive", "pos", "bullish"),
}


def sentiment_indices(labels: Sequence[str], source: str = "the model") -> dict[str, int | None]:
    """Output index of ``negative``, ``neutral`` and ``positive`` in ``labels``, found by name.

    Negative and positive are required; a model without a neutral label gets ``None`` for it.
    """
    lowered = [str(label).strip().lower() for label in labels]
    found: dict[str, int | None] = {}
    for sentiment, names in LABEL_NAMES.items():
        found[sentiment] = next((lowered.index(n) for n in names if n in lowered), None)
    missing = [s for s in ("negative", "positive") if found[s] is None]
    if missing:
        raise UserInputError(
            f"{source} has labels {list(labels)}; a sentiment model needs labels named "
            f"negative and positive (and optionally neutral); missing: {', '.join(missing)}"
        )
    return found


@dataclass(frozen=True)
class Score:
    """One document's sentiment: probabilities, the predicted sentiment and the score."""

    p_negative: float
    p_neutral: float
    p_positive: float
    label: str

    @property
    def score(self) -> float:
        """P(positive) − P(negative), in [-1, 1]."""
        return self.p_positive - self.p_negative

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "score": round(self.score, 6),
            "p_negative": round(self.p_negative, 6),
            "p_neutral": round(self.p_neutral, 6),
            "p_positive": round(self.p_positive, 6),
        }


class SentimentModel:
    """A loaded sentiment classifier that scores texts in batches.

    An ensemble from ``finance train --members N`` scores with the mean of its members'
    calibrated probabilities; ``loaded`` is its first member and ``members`` the others, which
    explanations take together (``explain_loaded(loaded, texts, members=members)``).
    """

    def __init__(self, loaded: Any, members: Sequence[Any] = ()) -> None:
        for model in (loaded, *members):
            if model.task != "classification":
                raise UserInputError(
                    f"{model.path}: a {model.task} model; sentiment needs a single-label classifier"
                )
            if list(model.labels) != list(loaded.labels):
                raise UserInputError(
                    f"{model.path}: labels {list(model.labels)} differ from the first member's "
                    f"{list(loaded.labels)}"
                )
        self.loaded = loaded
        self.members = list(members)
        self.path = Path(loaded.path)
        self.indices = sentiment_indices(loaded.labels, str(loaded.path))

    @classmethod
    def load(
        cls, path: str | Path, *, quantize: str | None = None, device: str = "cpu"
    ) -> SentimentModel:
        """Load a model directory (``quantize="int8"`` for the faster int8 copy), with the other
        members of a seed ensemble (:mod:`tunesmith.engine.ensemble`), on ``device``
        (``--device``; int8 runs on the CPU)."""
        first, *members = load_ensemble(path, quantize=quantize, device=device)
        return cls(first, members)

    def __repr__(self) -> str:
        # What a notebook shows for `finance.load_model(...)`: which model, int8 or not, how
        # many members, not an object address.
        extra = ", quantize='int8'" if getattr(self.loaded, "quantized", False) else ""
        extra += f", members={self.size}" if self.members else ""
        return f"SentimentModel({str(self.path)!r}{extra})"

    @property
    def size(self) -> int:
        """How many models score each text (1, or an ensemble's member count)."""
        return 1 + len(self.members)

    def probabilities(self, texts: Sequence[str], *, batch_size: int = 32) -> Any:
        """Calibrated class probabilities, ``(len(texts), len(labels))``; an ensemble's mean."""
        return mean_probabilities([self.loaded, *self.members], texts, batch_size=batch_size)

    def model_label(self, sentiment: str) -> str | None:
        """The model's own name for a :class:`Score`'s ``label`` (``None`` when it has none: a
        model without a neutral label). Explanations target it: the label the score shows,
        which with a lexical share or several members is often not the first transformer's."""
        index = self.indices.get(sentiment)
        return None if index is None else str(self.loaded.labels[index])

    def score(self, texts: Sequence[str], *, batch_size: int = 32) -> list[Score]:
        """One :class:`Score` per text, in input order."""
        if not texts:
            return []
        probs = self.probabilities(texts, batch_size=batch_size)
        neg, neu, pos = (self.indices[k] for k in ("negative", "neutral", "positive"))
        names = {i: s for s, i in self.indices.items() if i is not None}
        best = probs.argmax(axis=1).tolist()
        rows = probs.tolist()
        return [
            Score(
                p_negative=row[neg],
                p_neutral=row[neu] if neu is not None else 0.0,
                p_positive=row[pos],
                # A label outside the three (e.g. "other") reads as neutral for trends.
                label=names.get(b, "neutral"),
            )
            for row, b in zip(rows, best, strict=True)
        ]


class TopicModel:
    """An optional user-trained topic classifier: its labels become topics when confident.

    A single-label model gives its best label when its probability is at least ``threshold``;
    a multi-label one (trained on several topics per text) every label at least that probable.
    The label :data:`~tunesmith_finance.topic_data.NO_TOPIC` (learned from rows without a
    topic) is never a topic: a text whose best label it is gets none.
    """

    def __init__(self, loaded: Any, threshold: float = 0.5) -> None:
        if loaded.task not in ("classification", "multilabel"):
            raise UserInputError(
                f"--topic-model {loaded.path}: a {loaded.task} model; topics need a text "
                "classifier (`finance train --topics`)"
            )
        self.loaded = loaded
        self.threshold = threshold

    @classmethod
    def load(cls, path: str | Path, *, threshold: float = 0.5, device: str = "cpu") -> TopicModel:
        """Load the topic classifier at ``path`` on ``device`` (``--device``)."""
        return cls(load_model(path, device=device), threshold)

    def topics(self, texts: Sequence[str], *, batch_size: int = 32) -> list[list[str]]:
        """For each text, the predicted topic(s) at or above the threshold (lower-cased)."""
        out = []
        for result in predict_texts(self.loaded, list(texts), batch_size=batch_size):
            if "labels" in result:
                # Multi-label: every label at or above --topic-threshold, most probable first
                # (the engine's own "labels" are those above 0.5, whatever the threshold said).
                ranked = sorted(result["probabilities"].items(), key=lambda kv: -kv[1])
                out.append(
                    [
                        str(k).lower()
                        for k, p in ranked
                        if p >= self.threshold and str(k).lower() != NO_TOPIC
                    ]
                )
            elif result["score"] >= self.threshold and str(result["label"]).lower() != NO_TOPIC:
                out.append([str(result["label"]).lower()])
            else:
                out.append([])
        return out
