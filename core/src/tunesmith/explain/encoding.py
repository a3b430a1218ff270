"""Tokenise texts for explanation and map word-pieces back to the words a reader sees.

Words come from the fast tokenizer's ``word_ids`` and character offsets, so an attribution
summed over a word's pieces lands on the exact span of the original text.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tunesmith.engine.modeling import usable_positions
from tunesmith.errors import UserInputError

#: Upper bound when neither the tokenizer nor the model states a limit.
FALLBACK_MAX_LENGTH = 512


@dataclass
class EncodedText:
    """One text tokenised: ids (special tokens included), each token's word, word spans."""

    text: str
    input_ids: list[int]
    word_ids: list[int | None]
    spans: list[tuple[int, int]]
    words: list[str]
    truncated: bool = False

    @property
    def n_words(self) -> int:
        return len(self.words)

    def ids_without(self, drop: Iterable[int]) -> list[int]:
        """Token ids with the given words removed (special tokens always stay)."""
        drop = set(drop)
        return [t for t, w in zip(self.input_ids, self.word_ids, strict=True) if w not in drop]

    def ids_keeping(self, keep: Iterable[int]) -> list[int]:
        """Token ids with only the given words (and the special tokens) kept."""
        keep = set(keep)
        return [
            t for t, w in zip(self.input_ids, self.word_ids, strict=True) if w is None or w in keep
        ]

    def merge(self, token_scores: Sequence[float]) -> list[float]:
        """Sum per-token scores over each word's pieces; special tokens are dropped."""
        totals = [0.0] * self.n_words
        for score, word in zip(token_scores, self.word_ids, strict=True):
            if word is not None:
                totals[word] += float(score)
        return totals


def check_texts(texts: Sequence[str]) -> None:
    """Reject empty texts with a message naming which one."""
    for index, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            where = "the text" if len(texts) == 1 else f"text {index + 1}"
            raise UserInputError(f"{where} is empty; there is nothing to explain")


def max_input_length(model: Any, tokenizer: Any) -> int:
    """The longest input the model accepts, from the tokenizer and the model's position table."""
    limits = []
    tok_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_limit, int) and 0 < tok_limit < 100_000:
        limits.append(tok_limit)
    positions = usable_positions(getattr(model, "config", None))
    if positions is not None:
        limits.append(positions)
    return min(limits) if limits else FALLBACK_MAX_LENGTH


def encode_texts(
    tokenizer: Any,
    texts: Sequence[str],
    *,
    max_length: int,
    warn: bool = True,
) -> list[EncodedText]:
    """Tokenise ``texts``, truncating to ``max_length`` tokens (and saying so on stderr)."""
    encoded: list[EncodedText] = []
    fast = bool(getattr(tokenizer, "is_fast", False))
    for index, text in enumerate(texts):
        # verbose=False: the length warning is ours to give, once, below (not transformers')
        full = tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)
        truncated = len(full["input_ids"]) > max_length
        batch = tokenizer(
            text,
            add_special_tokens=True,
            truncation=True,
            max_length=max_length,
            return_offsets_mapping=fast,
        )
        ids = list(batch["input_ids"])
        if fast:
            word_ids = list(batch.word_ids())
            offsets = list(batch["offset_mapping"])
            # Renumber words densely: a truncated text keeps only the words it still shows.
            order: dict[int, int] = {}
            for w in word_ids:
                if w is not None and w not in order:
                    order[w] = len(order)
            word_ids = [order[w] if w is not None else None for w in word_ids]
            spans = [(10**9, -1)] * len(order)
            for w, (start, end) in zip(word_ids, offsets, strict=True):
                if w is not None:
                    s, e = spans[w]
                    spans[w] = (min(s, start), max(e, end))
            words = [text[s:e] for s, e in spans]
        else:
            specials = set(getattr(tokenizer, "all_special_ids", []) or [])
            word_ids = []
            words = []
            for tok in ids:
                if tok in specials:
                    word_ids.append(None)
                else:
                    word_ids.append(len(words))
                    words.append(tokenizer.convert_ids_to_tokens(tok))
            spans = [(-1, -1)] * len(words)
        if truncated and warn:
            print(
                f"warning: text {index + 1} has {len(full['input_ids'])} tokens, more than the "
                f"model's limit of {max_length}; explaining its first {max_length} tokens only",
                file=sys.stderr,
            )
        encoded.append(EncodedText(text, ids, word_ids, spans, words, truncated))
    return encoded


def encode_words(
    tokenizer: Any,
    text: str,
    words: Sequence[tuple[str, int, int]],
    *,
    max_length: int,
) -> EncodedText:
    """Tokenise pre-split ``(word, start, end)`` words, as a tagger sees them (NER)."""
    batch = tokenizer(
        [w for w, _, _ in words], is_split_into_words=True, truncation=True, max_length=max_length
    )
    full = tokenizer([w for w, _, _ in words], is_split_into_words=True, truncation=False)
    word_ids = list(batch.word_ids())
    kept = max((w for w in word_ids if w is not None), default=-1) + 1
    return EncodedText(
        text=text,
        input_ids=list(batch["input_ids"]),
        word_ids=word_ids,
        spans=[(s, e) for _, s, e in words[:kept]],
        words=[w for w, _, _ in words[:kept]],
        truncated=len(full["input_ids"]) > max_length,
    )


def baseline_ids(encoded: EncodedText, pad_id: int) -> list[int]:
    """The [PAD] baseline: every word-piece replaced by [PAD], special tokens kept."""
    return [
        t if w is None else pad_id for t, w in zip(encoded.input_ids, encoded.word_ids, strict=True)
    ]


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any]:
    """Right-pad id lists into ``(input_ids, attention_mask)`` long tensors.

    Not ``tokenizer.pad``: the rows are id lists the explainers make (texts with words removed,
    interpolation batches), scored thousands at a time with only the pad id at hand, and a tensor
    fill is several times faster than the tokenizer's per-row padding on that path.
    """
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask
