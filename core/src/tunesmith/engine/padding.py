"""Token rows padded to their batch's longest: with the tokenizer (:func:`pad_rows`), by hand
(:func:`pad_tokens`), and the Trainer's collator (dynamic padding)."""

from __future__ import annotations

from typing import Any

TOKEN_FIELDS = ("input_ids", "attention_mask", "token_type_ids")


def pad_rows(
    tokenizer: Any, rows: list[dict[str, Any]], *, attention_mask: bool | None = None
) -> dict[str, Any]:
    """Token rows (``input_ids`` and the like) padded to their longest, as int64 tensors.

    ``tokenizer.pad`` on the right, the side every tunesmith model was trained with;
    ``attention_mask=True`` adds the mask even where the tokenizer does not list it. A tokenizer
    without a pad token (GPT-2 style) cannot pad; :func:`pad_tokens` then pads with id 0, which
    the attention mask hides, as training did.
    """
    if tokenizer.pad_token_id is None:
        return pad_tokens(rows, 0)
    padded = tokenizer.pad(
        rows,
        padding=True,
        padding_side="right",
        return_attention_mask=attention_mask,
        return_tensors="pt",
    )
    return dict(padded)


def pad_tokens(batch: list[dict[str, Any]], pad_id: int) -> dict[str, Any]:
    """The token fields of ``batch`` padded to its longest item, as int64 tensors.

    Hand-written for the callers that hold token ids and a pad id but no tokenizer (the
    frozen-feature cache, whose key is the model and the ids), and for tokenizers without a pad
    token (padded with id 0, masked out).
    """
    import torch

    width = max(len(b["input_ids"]) for b in batch)
    return {
        name: torch.tensor([b[name] + [pad_id if name == "input_ids" else 0] * (width - len(b[name]))
                            for b in batch])
        for name in TOKEN_FIELDS
        if name in batch[0]
    }  # fmt: skip


class PaddingCollator:
    """Pads each batch to its own longest item (dynamic padding) with the tokenizer; NER tags
    are padded with -100, which the loss ignores."""

    def __init__(self, tokenizer: Any, task: str) -> None:
        self.tokenizer = tokenizer
        self.task = task

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        tokens = [{k: b[k] for k in TOKEN_FIELDS if k in b} for b in batch]
        out = pad_rows(self.tokenizer, tokens)
        width = out["input_ids"].shape[1]
        if "labels" in batch[0]:
            labels = [b["labels"] for b in batch]
            if self.task == "ner":
                out["labels"] = torch.tensor([t + [-100] * (width - len(t)) for t in labels])
            elif self.task == "multilabel":
                out["labels"] = torch.tensor(labels, dtype=torch.float32)
            else:
                out["labels"] = torch.tensor(labels, dtype=torch.long)
        return out
