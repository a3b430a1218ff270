"""How many tokens a text is given: training's cut (the data's 99th percentile, or
``--max-length``) and the limit a saved model reads at prediction."""

from __future__ import annotations

import math
from typing import Any


def token_lengths(tokenizer: Any, texts: list[str]) -> list[int]:
    """Token counts with special tokens, without truncation."""
    encoded = tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
    return [len(ids) for ids in encoded]


def choose_max_length(lengths: list[int], model_limit: int, requested: int | None) -> int:
    """``requested``, or the 99th percentile of the data's lengths; never above the model's limit.

    The 99th percentile keeps batches short for the common case; the 1 % longest texts lose
    their tail, which rarely decides a label.
    """
    if requested is not None:
        return min(requested, model_limit)
    if not lengths:
        return min(128, model_limit)
    ordered = sorted(lengths)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return max(8, min(p99, model_limit))


#: The longest input a loaded model is given when nothing smaller is recorded: models with
#: longer position tables are rare here and cost quadratically in attention.
MAX_INPUT_TOKENS = 512


def model_max_length(tokenizer: Any, config: Any) -> int:
    """The longest input the model takes (position embeddings, tokenizer limit)."""
    limits = [getattr(config, "max_position_embeddings", None), tokenizer.model_max_length]
    usable = [int(x) for x in limits if isinstance(x, int) and 0 < x < 100_000]
    return min(usable) if usable else 512


def input_limit(tokenizer: Any, config: Any, requested: int | None = None) -> int:
    """The most tokens a saved model reads at prediction: the model's limit, at most
    ``MAX_INPUT_TOKENS`` and at most ``--max-length`` when it was given (``requested``).

    Training truncates its texts at the data's 99th percentile instead (``choose_max_length``);
    the held-out data is read at this limit, so that the metrics and the temperature describe
    what ``predict`` computes.
    """
    limits = [model_max_length(tokenizer, config), MAX_INPUT_TOKENS]
    if isinstance(requested, int) and not isinstance(requested, bool) and requested > 0:
        limits.append(requested)
    return min(limits)
