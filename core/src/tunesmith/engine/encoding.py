"""Texts and pre-split words to token ids (truncated, unpadded: padding happens per batch),
and the dataset the Trainer reads them from."""

from __future__ import annotations

from typing import Any


def encode_texts(tokenizer: Any, texts: list[str], max_length: int) -> list[dict[str, list[int]]]:
    """Token ids per text, truncated to ``max_length``, unpadded (padding happens per batch)."""
    encoded = tokenizer(texts, truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
    return [{k: list(encoded[k][i]) for k in keys} for i in range(len(texts))]


def encode_words(
    tokenizer: Any, sentences: list[list[str]], tags: list[list[int]] | None, max_length: int
) -> tuple[list[dict[str, list[int]]], list[list[int]]]:
    """Tokenise pre-split words; each word's tag goes on its first sub-token, -100 elsewhere.

    Returns the encodings and, per sentence, the index of each word's first sub-token (-1 when
    truncation cut the word off) so that predictions map back to words.
    """
    encoded = tokenizer(sentences, is_split_into_words=True, truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
    items: list[dict[str, list[int]]] = []
    firsts: list[list[int]] = []
    for i, words in enumerate(sentences):
        item = {k: list(encoded[k][i]) for k in keys}
        word_ids = encoded.word_ids(i)
        first = [-1] * len(words)
        aligned = []
        previous = None
        for pos, word in enumerate(word_ids):
            if word is None or word == previous:
                aligned.append(-100)
            else:
                first[word] = pos
                aligned.append(tags[i][word] if tags is not None else 0)
            previous = word
        item["labels"] = aligned
        items.append(item)
        firsts.append(first)
    return items, firsts


class EncodedDataset:
    """Token-id items with labels; ``lengths`` feed the length-grouped sampler."""

    def __init__(self, items: list[dict[str, Any]], labels: list[Any] | None = None) -> None:
        self.items = items
        self.labels = labels
        self.lengths = [len(item["input_ids"]) for item in items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.items[index])
        if self.labels is not None:
            item["labels"] = self.labels[index]
        return item
