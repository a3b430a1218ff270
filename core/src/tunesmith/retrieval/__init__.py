"""Text encoder and FAISS index with a sidecar table of ids and payloads.

``from tunesmith.retrieval import Encoder, VectorIndex, Hit`` works, but the names are resolved
on first use (PEP 562), so importing this package costs nothing: torch, transformers and faiss
load only when an encoder or index is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - for type checkers and editors only
    from tunesmith.retrieval.encoder import Encoder
    from tunesmith.retrieval.index import Hit, VectorIndex
    from tunesmith.retrieval.pairs import PairTrainingResult, train_pair_encoder

_EXPORTS = {
    "Encoder": "tunesmith.retrieval.encoder",
    "VectorIndex": "tunesmith.retrieval.index",
    "Hit": "tunesmith.retrieval.index",
    "train_pair_encoder": "tunesmith.retrieval.pairs",
    "PairTrainingResult": "tunesmith.retrieval.pairs",
}

__all__ = ["Encoder", "Hit", "PairTrainingResult", "VectorIndex", "train_pair_encoder"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
