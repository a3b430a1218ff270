"""Explain a similarity match: which words of a query and of a passage drove their cosine.

The score is the cosine similarity of the two pooled, L2-normalised embeddings, pooled and
truncated as the encoder that matched them does (:func:`explain_encoder_pair` reads that from a
``tunesmith.retrieval.Encoder``: mean pooling for all-MiniLM-L6-v2, the [CLS] token for a
classifier's encoder, its ``max_length`` and lower-casing), so the similarity explained is the
one the support and recommend plugins matched with. Each side is explained against the other as it
is: the query's words by integrated gradients from the query's [PAD] baseline to the query, with
the passage held fixed, and the passage's words the same way with the query held fixed. So the
query's scores add up to ``similarity - query_baseline_similarity`` (the match with the query
blanked out) and the passage's to ``similarity - passage_baseline_similarity``, up to the delta.

Why not move both sides at once: two blanked-out texts embed almost alike (cosine 0.87-0.99
with all-MiniLM-L6-v2), far above most real matches, so nearly every word came out negative,
the matching words ("reset", "password") among the most negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tunesmith.explain.encoding import EncodedText, check_texts, encode_texts, max_input_length
from tunesmith.explain.ig import gauss_legendre
from tunesmith.explain.model_io import (
    frozen_parameters,
    input_embeddings,
    model_device,
    replaced_embeddings,
    run_model,
)
from tunesmith.explain.types import PairExplanation, WordScore


def _sentence_embeddings(outputs: Any, mask: Any, pooling: Sequence[str] = ("mean",)) -> Any:
    """Token states pooled with ``pooling`` (sentence-transformers' modes, concatenated), or the
    model's own pooled vector if it returns one."""
    from tunesmith.retrieval.encoder import pool

    hidden = getattr(outputs, "last_hidden_state", None)
    if hidden is None:
        hidden = outputs[0] if isinstance(outputs, tuple | list) else outputs
    if hidden.dim() == 2:  # an encoder that already returns one vector per text
        return hidden
    return pool(hidden, mask, tuple(pooling))


def _shown_as(enc: EncodedText, original: str) -> EncodedText:
    """``enc`` (of the lower-cased text) with the words of ``original``, where lower-casing kept
    every character's place (it does except for a few letters, such as a dotted capital I)."""
    if enc.text == original or len(enc.text) != len(original):
        return enc
    enc.text = original
    enc.words = [original[s:e] for s, e in enc.spans]
    return enc


def explain_encoder_pair(
    encoder: Any, query: str, passage: str, *, n_steps: int = 50, max_tokens: int = 4096
) -> PairExplanation:
    """:func:`explain_pair` for a ``tunesmith.retrieval.Encoder``: its model, pooling,
    normalisation, lower-casing and ``max_length``, so that the similarity explained is the one
    ``encoder.encode`` gives."""
    layout = getattr(encoder, "layout", None)
    return explain_pair(
        encoder.model,
        encoder.tokenizer,
        query,
        passage,
        n_steps=n_steps,
        max_length=getattr(encoder, "max_length", None),
        max_tokens=max_tokens,
        pooling=tuple(getattr(layout, "pooling", ("mean",))),
        normalize=bool(getattr(layout, "normalize", True)),
        lowercase=bool(getattr(layout, "lowercase", False)),
    )


def explain_pair(
    model: Any,
    tokenizer: Any,
    query: str,
    passage: str,
    *,
    n_steps: int = 50,
    max_length: int | None = None,
    max_tokens: int = 4096,
    pooling: Sequence[str] = ("mean",),
    normalize: bool = True,
    lowercase: bool = False,
) -> PairExplanation:
    """Word attributions for the cosine similarity of ``query`` and ``passage``.

    ``model`` is a bare encoder (``AutoModel``) or any module called with ``input_ids`` and
    ``attention_mask`` that returns token states or one embedding per text. ``pooling`` (modes
    of ``tunesmith.retrieval.encoder.pool``), ``normalize`` (``False``: the inner product of
    the pooled vectors instead of their cosine), ``lowercase`` and ``max_length`` should be the
    encoder's: :func:`explain_encoder_pair` passes them.
    """
    import torch

    check_texts([query, passage])
    model.eval()
    limit = max_length or max_input_length(model, tokenizer)
    shown = [query, passage]
    read = [t.lower() for t in shown] if lowercase else shown
    q_enc, p_enc = (
        _shown_as(enc, text)
        for enc, text in zip(encode_texts(tokenizer, read, max_length=limit), shown, strict=True)
    )
    module = input_embeddings(model, len(tokenizer))
    device = model_device(model)
    pad = tokenizer.pad_token_id
    width = max(len(q_enc.input_ids), len(p_enc.input_ids))

    ids = torch.full((2, width), pad if pad is not None else 0, dtype=torch.long)
    mask = torch.zeros((2, width), dtype=torch.long)
    replace = torch.zeros((2, width), dtype=torch.bool)
    for row, enc in enumerate((q_enc, p_enc)):
        n = len(enc.input_ids)
        ids[row, :n] = torch.tensor(enc.input_ids)
        mask[row, :n] = 1
        replace[row, :n] = torch.tensor([w is not None for w in enc.word_ids])
    ids, mask, replace = ids.to(device), mask.to(device), replace.to(device)
    with torch.no_grad():
        x = module(ids)
        base = module.weight[pad] if pad is not None else torch.zeros_like(x[0, 0])
        b = torch.where(replace.unsqueeze(-1), base.to(x.dtype), x)
    diff = x - b

    def cosine(fixed: Any, steps: int) -> Any:
        """Cosine per step with the other side as it is; rows are [query steps, passage steps]."""
        emb = unit(
            _sentence_embeddings(
                run_model(model, ids.repeat_interleave(steps, 0), mask.repeat_interleave(steps, 0)),
                mask.repeat_interleave(steps, 0),
                pooling,
            )
        )
        return (emb * fixed.repeat_interleave(steps, 0)).sum(-1)

    def unit(vectors: Any) -> Any:
        return torch.nn.functional.normalize(vectors, dim=-1) if normalize else vectors

    alphas, weights = gauss_legendre(n_steps)
    totals = torch.zeros((2, width), dtype=torch.float64)
    per_pass = max(1, max_tokens // (2 * width))
    holder: dict[str, Any] = {}
    with frozen_parameters(model), replaced_embeddings(module, holder):
        with torch.no_grad():
            holder["value"] = torch.cat([b, x])  # rows: q_base, p_base, q, p
            ends = run_model(model, ids.repeat(2, 1), mask.repeat(2, 1))
            q_base, p_base, q_emb, p_emb = unit(
                _sentence_embeddings(ends, mask.repeat(2, 1), pooling)
            )
            similarity = float((q_emb * p_emb).sum())
            query_baseline = float((q_base * p_emb).sum())
            passage_baseline = float((q_emb * p_base).sum())
            fixed = torch.stack([p_emb, q_emb])  # what the query's and the passage's points meet
        for start in range(0, n_steps, per_pass):
            a = torch.tensor(alphas[start : start + per_pass], dtype=x.dtype, device=device)
            w = torch.tensor(weights[start : start + per_pass], dtype=x.dtype, device=device)
            k = a.shape[0]
            # Rows: k query points, then k passage points at the same alphas.
            point = b.repeat_interleave(k, 0) + a.repeat(2)[:, None, None] * diff.repeat_interleave(
                k, 0
            )
            point.requires_grad_(True)
            holder["value"] = point
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(cosine(fixed, k).sum(), point)
            contrib = (grad * diff.repeat_interleave(k, 0)).sum(-1) * w.repeat(2)[:, None]
            totals[0] += contrib[:k].sum(0).double().cpu()
            totals[1] += contrib[k:].sum(0).double().cpu()
        holder["value"] = None

    q_scores = q_enc.merge(totals[0, : len(q_enc.input_ids)].tolist())
    p_scores = p_enc.merge(totals[1, : len(p_enc.input_ids)].tolist())
    gaps = (
        float(totals[0].sum()) - (similarity - query_baseline),
        float(totals[1].sum()) - (similarity - passage_baseline),
    )
    return PairExplanation(
        query=query,
        passage=passage,
        similarity=similarity,
        query_baseline_similarity=query_baseline,
        passage_baseline_similarity=passage_baseline,
        query_tokens=[
            WordScore(wd, s, st, en)
            for wd, s, (st, en) in zip(q_enc.words, q_scores, q_enc.spans, strict=True)
        ],
        passage_tokens=[
            WordScore(wd, s, st, en)
            for wd, s, (st, en) in zip(p_enc.words, p_scores, p_enc.spans, strict=True)
        ],
        delta=max(gaps, key=abs),
    )
