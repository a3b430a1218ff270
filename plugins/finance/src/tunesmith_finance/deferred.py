"""Models loaded when first needed: the sentiment model and the optional topic model.

Loading one (torch, transformers, scikit-learn) takes seconds, while many runs need none:
`finance alerts` from cron mostly finds no new alert, and `finance ingest` run again over files
already stored, or a `finance watch` pass with no new line, has nothing to score. So the model
is named up front (its path checked by the command) and loaded at its first real use, once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


class Deferred:
    """A model at ``path``, loaded by ``load(path)`` the first time :meth:`get` is called."""

    def __init__(self, path: str | Path, load: Callable[[Path], Any]) -> None:
        self.path = Path(path)
        self._load = load
        self._model: Any = None

    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded yet."""
        return self._model is not None

    def get(self) -> Any:
        """The loaded model (loaded once)."""
        if self._model is None:
            self._model = self._load(self.path)
        return self._model


class DeferredModel(Deferred):
    """The sentiment model at ``path`` (:class:`~tunesmith_finance.scoring.SentimentModel`),
    loaded when a window first needs explaining words or a batch first needs scoring."""

    def __init__(
        self, path: str | Path, *, quantize: str | None = None, device: str = "cpu"
    ) -> None:
        def load(where: Path) -> Any:
            from tunesmith_finance.scoring import SentimentModel

            return SentimentModel.load(where, quantize=quantize, device=device)

        super().__init__(path, load)
        self.quantize = quantize

    def score(self, texts: Sequence[str], *, batch_size: int = 32) -> list[Any]:
        """:meth:`SentimentModel.score <tunesmith_finance.scoring.SentimentModel.score>`,
        loading the model first if nothing did yet; no texts load nothing."""
        if not texts:
            return []
        return list(self.get().score(texts, batch_size=batch_size))


class DeferredTopicModel(Deferred):
    """The topic model at ``path`` (:class:`~tunesmith_finance.scoring.TopicModel`), loaded
    when a batch first has new documents to give topics to."""

    def __init__(self, path: str | Path, *, threshold: float = 0.5, device: str = "cpu") -> None:
        def load(where: Path) -> Any:
            from tunesmith_finance.scoring import TopicModel

            return TopicModel.load(where, threshold=threshold, device=device)

        super().__init__(path, load)
        self.threshold = threshold

    def topics(self, texts: Sequence[str], *, batch_size: int = 32) -> list[list[str]]:
        """:meth:`TopicModel.topics <tunesmith_finance.scoring.TopicModel.topics>`, loading
        the model first if nothing did yet; no texts load nothing."""
        if not texts:
            return []
        return self.get().topics(texts, batch_size=batch_size)
