"""Serving a demo: every ``tunesmith ... demo`` command and ``tunesmith ui`` start it here.

transformers resolves its names lazily, and not thread-safely: two first uses at once (a question
in one tab while another tab's set-up loads its model in a background thread) can fail with
"cannot import name 'AutoModel'". Resolving them once, in the serving thread, before the first
request avoids that for every demo.
"""

from __future__ import annotations

from typing import Any

#: The transformers names the demos' handlers import.
TRANSFORMERS_NAMES = (
    "AutoConfig",
    "AutoModel",
    "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification",
    "AutoTokenizer",
    "Trainer",
    "TrainerCallback",
    "TrainingArguments",
)


def preload_transformers() -> None:
    """Resolve :data:`TRANSFORMERS_NAMES` in this thread (a few seconds; no model is loaded)."""
    import importlib

    transformers = importlib.import_module("transformers")
    for name in TRANSFORMERS_NAMES:
        getattr(transformers, name)


def launch(blocks: Any, *, host: str, port: int, **options: Any) -> None:
    """Preload transformers, then serve ``blocks`` (a ``gr.Blocks``) on ``host:port``."""
    preload_transformers()
    blocks.launch(server_name=host, server_port=port, **options)
