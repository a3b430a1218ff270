"""Pair fine-tuning: teach an encoder that each query lies closest to its own target text.

The loss is the multiple-negatives ranking loss: in a batch of (query, target) pairs, every other
target is a negative for a query, and the loss is the cross-entropy of picking the query's own
target among them by cosine similarity times 20 (sentence-transformers' ``MultipleNegatives
RankingLoss`` with its default scale). Targets may repeat (several questions share one answer),
so an in-batch target whose text equals the query's own target, or that belongs to another copy
of the same query text, is masked rather than pushed away. Optional hard negatives (one text per
pair) join the candidates of every query in the batch.

Training is a plain torch loop, CPU-friendly: texts are tokenised once; batches are drawn at
random, then grouped by length within buckets of 32 batches, so each batch is padded only to its
own longest text; queries and targets are padded separately. AdamW with a linear warm-up (10 %)
and decay, gradients clipped to norm 1.

Held-out metrics: without ``eval_queries``, a seeded 20 % of the distinct query texts (at most
2,000) is held out, whole: a question that occurs with several answers is either all in the
training split or all held out, so nothing leaks. Every held-out query ranks every distinct
target text (training and held-out); it counts as right at k when one of its target texts is in
the top k (see :mod:`tunesmith.retrieval.ranking`). The untuned encoder is measured the same way.

The saved directory is a plain Hugging Face encoder (``config.json``, ``model.safetensors``,
tokenizer) plus the sentence-transformers files (``modules.json``, ``sentence_bert_config.json``,
``1_Pooling/config.json``, ``2_Normalize``, ``config_sentence_transformers.json``), so
``transformers.AutoModel``, ``sentence_transformers.SentenceTransformer`` and
:meth:`tunesmith.retrieval.Encoder.load` all load it; ``metrics.json`` holds the metrics and the
settings, ``int8_ranges.json`` the activation ranges for ``quantize="int8"``.
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.data.limits import text_problem
from tunesmith.data.load import (
    _check_column,
    _existing_file,
    _missing,
    _Problems,
    _read_rows,
    _text_of,
)
from tunesmith.devices import model_device
from tunesmith.engine.checks import check_settings
from tunesmith.engine.quantize import RANGES_FILE
from tunesmith.errors import UserInputError
from tunesmith.hf_quiet import quiet_transformers
from tunesmith.io import (
    atomic_directory,
    atomic_write_json,
    check_writable_dir,
    share_safetensors,
)
from tunesmith.model_dir import (
    ADAPTER_KEY,
    METRICS_FILE,
    POOLING_KEY,
    SENTENCE_POOLING_CONFIG,
    TASK_KEY,
)
from tunesmith.retrieval.encoder import Encoder, record_int8_ranges
from tunesmith.retrieval.ranking import retrieval_metrics

#: Multiplier of the cosine similarities in the loss (sentence-transformers' default).
SCALE = 20.0
#: Share of distinct query texts held out when no evaluation pairs are given, and its cap.
EVAL_FRACTION = 0.2
MAX_EVAL_QUERIES = 2000
#: Fewer distinct query texts than this: nothing is held out (too few to train and measure).
MIN_QUERIES_TO_HOLD_OUT = 10
#: Learning rate when none is given (see docs/benchmarks.md, "Pair fine-tuning").
DEFAULT_LR = 5e-5
WARMUP_FRACTION = 0.1
#: Batches per bucket when grouping by length: wide enough to keep batches random.
BUCKET_BATCHES = 32


@dataclass
class PairTrainingResult:
    """Where the tuned encoder was saved, and its held-out metrics (also in metrics.json)."""

    path: Path
    metrics: dict[str, Any]


def _texts(values: Sequence[Any], what: str) -> list[str]:
    if isinstance(values, str):
        raise UserInputError(f"{what} must be a list of texts, not one string")
    out = []
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise UserInputError(f"{what}[{i}] is {type(value).__name__}, not a string")
        problem = text_problem(value)  # a lone surrogate fails deep in the tokenizer
        if problem:
            raise UserInputError(f"{what}[{i}]: {problem}")
        out.append(value)
    return out


def _pairs(
    queries: Sequence[str], targets: Sequence[str], what: str
) -> tuple[list[str], list[str], list[int]]:
    """The non-empty pairs and their positions; an error when the lists differ in length."""
    q, t = _texts(queries, f"{what} queries"), _texts(targets, f"{what} targets")
    if len(q) != len(t):
        raise UserInputError(f"{len(q)} {what} queries but {len(t)} targets; give one per query")
    keep = [i for i in range(len(q)) if q[i].strip() and t[i].strip()]
    return [q[i] for i in keep], [t[i] for i in keep], keep


def split_by_query(
    queries: Sequence[str], seed: int, fraction: float = EVAL_FRACTION
) -> tuple[list[int], list[int]]:
    """Positions of the training and held-out pairs; all copies of a query text go together."""
    distinct = list(dict.fromkeys(queries))
    if len(distinct) < MIN_QUERIES_TO_HOLD_OUT:
        return list(range(len(queries))), []
    n_eval = min(MAX_EVAL_QUERIES, max(1, round(fraction * len(distinct))))
    held = set(random.Random(seed).sample(distinct, n_eval))
    train = [i for i, q in enumerate(queries) if q not in held]
    evaluation = [i for i, q in enumerate(queries) if q in held]
    return train, evaluation


def evaluate_pairs(
    encoder: Any,
    queries: Sequence[str],
    targets: Sequence[str],
    candidates: Sequence[str],
    *,
    candidate_vectors: Any = None,
    batch_size: int = 64,
) -> dict[str, float]:
    """recall@1/5/10 and MRR of ``queries`` against all ``candidates`` (distinct target texts).

    A query text that occurs with several targets is one query whose right answers are all of
    them.
    """
    position = {text: i for i, text in enumerate(candidates)}
    relevant: dict[str, set[int]] = {}
    for query, target in zip(queries, targets, strict=True):
        relevant.setdefault(query, set()).add(position[target])
    texts = list(relevant)
    if candidate_vectors is None:
        candidate_vectors = encoder.encode(list(candidates), batch_size=batch_size)
    query_vectors = encoder.encode(texts, batch_size=batch_size)
    if not encoder.normalize:  # the loss and the metrics use cosine whatever the model does
        query_vectors = _unit(query_vectors)
        candidate_vectors = _unit(candidate_vectors)
    return retrieval_metrics(query_vectors, candidate_vectors, [sorted(relevant[t]) for t in texts])


def _unit(vectors: Any) -> Any:
    import numpy as np

    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _pad(rows: Sequence[Sequence[int]], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def _batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """One epoch of batches: shuffled, grouped by length within buckets, in shuffled order."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    bucket = batch_size * BUCKET_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), bucket):
        chunk = sorted(order[start : start + bucket], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def _show_progress(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else bool(progress)


def _fit(
    encoder: Any,
    queries: list[str],
    targets: list[str],
    negatives: list[str | None] | None,
    *,
    epochs: float,
    batch_size: int,
    lr: float,
    seed: int,
    progress: bool | None,
) -> list[float]:
    """Fine-tune ``encoder.model`` in place; returns the loss of every step."""
    import torch

    # The encoder's own tokenisation (its do_lower_case too): trained on the ids it will read.
    tokenize = encoder.token_ids
    q_ids, t_ids = tokenize(queries), tokenize(targets)
    n_ids: list[list[int] | None] = [None] * len(queries)
    if negatives is not None:
        present = [i for i, n in enumerate(negatives) if n]
        for i, ids in zip(present, tokenize([negatives[i] for i in present]), strict=True):
            n_ids[i] = ids
    # Equal texts share an id, so masking compares integers.
    target_key = {text: i for i, text in enumerate(dict.fromkeys(targets))}
    t_key = torch.tensor([target_key[t] for t in targets])
    query_key = {text: i for i, text in enumerate(dict.fromkeys(queries))}
    q_key = torch.tensor([query_key[q] for q in queries])
    n_key = torch.tensor(
        [target_key.get(n, -1 - i) if n else -1 - i for i, n in enumerate(negatives or [])] or [0]
    )

    batch_size = max(1, min(batch_size, len(queries)))
    steps_per_epoch = math.ceil(len(queries) / batch_size)
    total = max(1, math.ceil(epochs * steps_per_epoch))
    warmup = max(1, int(WARMUP_FRACTION * total))
    model = encoder.model
    torch.manual_seed(seed)
    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup))),
    )
    pad_id = encoder.tokenizer.pad_token_id
    pad = pad_id if pad_id is not None else 0
    lengths = [len(q) + len(t) for q, t in zip(q_ids, t_ids, strict=True)]
    bar = None
    if _show_progress(progress):
        from tqdm import tqdm

        bar = tqdm(total=total, desc="pair training", unit="step", file=sys.stderr, leave=False)
    losses: list[float] = []
    model.train()
    try:
        while len(losses) < total:
            for batch in _batches(lengths, batch_size, rng):
                if len(losses) >= total:
                    break
                losses.append(
                    _step(
                        encoder,
                        batch,
                        (q_ids, t_ids, n_ids),
                        (q_key, t_key, n_key),
                        pad,
                        optimizer,
                        schedule,
                    )
                )
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses[-1]:.3f}")
    finally:
        if bar is not None:
            bar.close()
        model.eval()
    return losses


def false_negatives(query_keys: Any, target_keys: Any) -> Any:
    """``[b, b]`` mask of in-batch targets that are right answers for another row's query: the
    same target text, or the target of another copy of the same query text (never the diagonal)."""
    import torch

    same = (target_keys[:, None] == target_keys[None, :]) | (
        query_keys[:, None] == query_keys[None, :]
    )
    return same & ~torch.eye(len(target_keys), dtype=torch.bool)


def ranking_loss(queries: Any, candidates: Any, masked: Any) -> Any:
    """Multiple-negatives ranking loss: row i's positive is candidate i; ``masked`` candidates
    (false negatives) are left out of row i's softmax. Cosine similarity times :data:`SCALE`."""
    import torch
    import torch.nn.functional as F

    scores = SCALE * F.normalize(queries, dim=1) @ F.normalize(candidates, dim=1).T
    scores = scores.masked_fill(masked.to(scores.device), float("-inf"))
    return F.cross_entropy(scores, torch.arange(len(queries), device=scores.device))


def _step(
    encoder: Any,
    batch: list[int],
    ids: tuple[list, list, list],
    keys: tuple[Any, Any, Any],
    pad: int,
    optimizer: Any,
    schedule: Any,
) -> float:
    """One optimisation step of the multiple-negatives ranking loss on ``batch``."""
    import torch

    q_ids, t_ids, n_ids = ids
    q_key, t_key, n_key = keys
    index = torch.tensor(batch)
    queries = encoder.embed_batch(_pad([q_ids[i] for i in batch], pad))
    candidates = encoder.embed_batch(_pad([t_ids[i] for i in batch], pad))
    mask = false_negatives(q_key[index], t_key[index])
    with_negative = [i for i in batch if n_ids[i] is not None]
    if with_negative:
        hard = encoder.embed_batch(_pad([n_ids[i] for i in with_negative], pad))
        candidates = torch.cat([candidates, hard])
        # A "hard negative" that is the query's own target text is no negative.
        hard_keys = n_key[torch.tensor(with_negative)]
        mask = torch.cat([mask, t_key[index][:, None] == hard_keys[None, :]], dim=1)
    loss = ranking_loss(queries, candidates, mask)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(encoder.model.parameters(), 1.0)
    optimizer.step()
    schedule.step()
    return float(loss.detach())


def _write_sentence_transformers_files(encoder: Any, directory: Path) -> None:
    """``modules.json`` and the module configs, in the layout all-MiniLM-L6-v2 ships with
    (legacy pooling keys, which sentence-transformers still reads and
    :func:`tunesmith.engine.modeling.sentence_pooling_mode` understands)."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    if encoder.normalize:
        modules.append(
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            }
        )
        (directory / "2_Normalize").mkdir()
    atomic_write_json(directory / "modules.json", modules)
    atomic_write_json(
        directory / "sentence_bert_config.json",
        {"max_seq_length": int(encoder.max_length), "do_lower_case": encoder.layout.lowercase},
    )
    hidden = int(encoder.model.config.hidden_size)
    pooling = {"word_embedding_dimension": hidden}
    for key, mode in (
        ("pooling_mode_cls_token", "cls"),
        ("pooling_mode_mean_tokens", "mean"),
        ("pooling_mode_max_tokens", "max"),
        ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"),
        ("pooling_mode_lasttoken", "lasttoken"),
    ):
        pooling[key] = mode in encoder.pooling
    atomic_write_json(directory / SENTENCE_POOLING_CONFIG, pooling)
    atomic_write_json(
        directory / "config_sentence_transformers.json",
        {
            "__version__": _versions(),
            "prompts": {},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("sentence_transformers", "transformers", "pytorch", "tunesmith"):
        dist = {"pytorch": "torch", "sentence_transformers": "sentence-transformers"}.get(
            name, name
        )
        try:
            out[name] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def _save(encoder: Any, directory: Path, range_texts: Sequence[str], seed: int) -> None:
    """The weights, tokenizer and sentence-transformers files, plus recorded int8 ranges."""
    # Back to the CPU after a GPU run: the int8 ranges are recorded where int8 runs.
    model = encoder.model.to("cpu")
    # A classifier's encoder carries the classifier's keys; the saved encoder is a plain one.
    for key in (TASK_KEY, POOLING_KEY, ADAPTER_KEY):
        if hasattr(model.config, key):
            delattr(model.config, key)
    with quiet_transformers():
        model.save_pretrained(directory, safe_serialization=True)
        encoder.tokenizer.save_pretrained(directory)
    share_safetensors(directory)  # safetensors writes 0600: others could not load the encoder
    _write_sentence_transformers_files(encoder, directory)
    atomic_write_json(directory / RANGES_FILE, record_int8_ranges(encoder, range_texts, seed=seed))


def read_pairs(
    path: str | Path, text_col: str, pair_col: str, negative_col: str | None = None
) -> tuple[list[str], list[str], list[str | None] | None]:
    """Queries, their targets and (with ``negative_col``) hard negatives from a data file.

    A missing column, an empty file or an empty query/target cell is a ``DataError`` naming
    file, row and column; an empty hard-negative cell means none for that row.
    """
    named = [("--text-col", text_col), ("--pair-col", pair_col), ("--negative-col", negative_col)]
    for i, (flag, column) in enumerate(named):
        for other_flag, other in named[i + 1 :]:
            if column is not None and column == other:
                # Every pair would match a text with itself: an encoder that learns nothing.
                raise UserInputError(
                    f"{flag} and {other_flag} both name column '{column}'; a pair needs two columns"
                )
    path = _existing_file(path)
    rows = _read_rows(path)
    columns = [text_col, pair_col] + ([negative_col] if negative_col else [])
    for column in columns:
        _check_column(rows, column, path)
    problems = _Problems(path)
    queries, targets, negatives = [], [], []
    for row in rows:
        query, target = _text_of(row, text_col, problems), _text_of(row, pair_col, problems)
        negative = None
        if negative_col and _missing(row.get(negative_col)) is None:
            negative = _text_of(row, negative_col, problems)
        queries.append(query or "")
        targets.append(target or "")
        negatives.append(negative)
    problems.raise_if_any()
    return queries, targets, negatives if negative_col else None


def check_pair_settings(
    *, epochs: float, batch_size: int = 32, lr: float | None = None, max_length: int | None = None
) -> None:
    """Raise :class:`UserInputError` for settings :func:`train_pair_encoder` refuses; cheap, so
    that a caller (``support train``) checks them before it reads data or says it is training.
    The rules are ``tunesmith train``'s (:mod:`tunesmith.engine.checks`), under its flags."""
    check_settings({"epochs": epochs, "batch_size": batch_size, "lr": lr, "max_length": max_length})


@dataclass
class _PairSplit:
    """The pairs trained on and the pairs measured on, and where the latter came from."""

    train_q: list[str]
    train_t: list[str]
    train_n: list[str | None] | None
    eval_q: list[str]
    eval_t: list[str]
    source: str


def _kept_negatives(
    hard_negatives: Sequence[str | None] | None, n_queries: int, kept: list[int]
) -> list[str | None] | None:
    """The hard negatives of the ``kept`` pairs (``None`` where a pair has none), checked."""
    if hard_negatives is None:
        return None
    if len(hard_negatives) != n_queries:
        raise UserInputError(
            f"{len(hard_negatives)} hard negatives for {n_queries} queries; give one per "
            "query (None for none)"
        )
    negatives: list[str | None] = []
    for i in kept:
        value = hard_negatives[i]
        if value is not None and not isinstance(value, str):
            raise UserInputError(f"hard_negatives[{i}] is {type(value).__name__}, not a string")
        if value is not None and (problem := text_problem(value)):
            raise UserInputError(f"hard_negatives[{i}]: {problem}")
        negatives.append(value if value and value.strip() else None)
    return negatives


def _split_pairs(
    q: list[str],
    t: list[str],
    negatives: list[str | None] | None,
    eval_queries: Sequence[str] | None,
    eval_targets: Sequence[str] | None,
    seed: int,
) -> _PairSplit:
    """The given evaluation pairs, else a held-out share of the distinct queries, else (too
    few to hold any out) the training pairs themselves, said so in ``source``."""
    if (eval_queries is None) != (eval_targets is None):
        raise UserInputError("give both eval_queries and eval_targets, or neither")
    if eval_queries is not None:
        eq, et, _ = _pairs(eval_queries, eval_targets or [], "evaluation")
        split = _PairSplit(q, t, negatives, eq, et, "given")
    else:
        train_idx, eval_idx = split_by_query(q, seed)
        eq = [q[i] for i in eval_idx]
        split = _PairSplit(
            train_q=[q[i] for i in train_idx],
            train_t=[t[i] for i in train_idx],
            train_n=[negatives[i] for i in train_idx] if negatives is not None else None,
            eval_q=eq,
            eval_t=[t[i] for i in eval_idx],
            source=f"held out: {len(set(eq))} distinct queries, seed {seed}",
        )
    if not split.eval_q:
        split.eval_q, split.eval_t = split.train_q, split.train_t
        split.source = "training pairs (too few queries to hold out)"
    return split


def _loss_summary(losses: list[float]) -> dict[str, Any]:
    """The mean loss of the first and the last tenth of the steps, and the step count."""
    tenth = max(1, len(losses) // 10)
    return {
        "loss_first": round(sum(losses[:tenth]) / tenth, 4),
        "loss_last": round(sum(losses[-tenth:]) / tenth, 4),
        "steps": len(losses),
    }


def _train_and_measure(
    encoder: Any,
    split: _PairSplit,
    *,
    epochs: float,
    batch_size: int,
    lr: float,
    seed: int,
    progress: bool | None,
) -> dict[str, Any]:
    """Measure ``encoder`` untuned, fine-tune it in place, measure it again: ``metrics.json``
    without its settings."""
    candidates = list(dict.fromkeys([*split.train_t, *split.eval_t]))
    started = time.perf_counter()
    untuned = evaluate_pairs(encoder, split.eval_q, split.eval_t, candidates)
    train_started = time.perf_counter()
    losses = _fit(
        encoder,
        split.train_q,
        split.train_t,
        split.train_n,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        progress=progress,
    )
    train_seconds = time.perf_counter() - train_started
    tuned = evaluate_pairs(encoder, split.eval_q, split.eval_t, candidates)
    return {
        "tuned": tuned,
        "untuned": untuned,
        "n_train": len(split.train_q),
        "n_eval": len(set(split.eval_q)),
        "n_candidates": len(candidates),
        "eval_source": split.source,
        **_loss_summary(losses),
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
    }


def _settings(
    encoder: Any,
    split: _PairSplit,
    *,
    model: str | Path,
    epochs: float,
    batch_size: int,
    lr: float,
    seed: int,
) -> dict[str, Any]:
    """What the run used, as ``metrics.json`` records it (the encoder's resolved values)."""
    return {
        "model": str(model),
        "base_name": encoder.name,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "max_length": encoder.max_length,
        "seed": seed,
        "device": model_device(encoder.model),
        "scale": SCALE,
        "hard_negatives": sum(1 for n in split.train_n or [] if n),
        "pooling": list(encoder.pooling),
        "normalize": encoder.normalize,
    }


def train_pair_encoder(
    queries: Sequence[str],
    targets: Sequence[str],
    out: str | Path,
    *,
    model: str | Path = "default",
    eval_queries: Sequence[str] | None = None,
    eval_targets: Sequence[str] | None = None,
    hard_negatives: Sequence[str | None] | None = None,
    epochs: float = 1.0,
    batch_size: int = 32,
    lr: float | None = None,
    max_length: int | None = None,
    seed: int = 42,
    force: bool = False,
    progress: bool | None = None,
    device: str = "cpu",
) -> PairTrainingResult:
    """Fine-tune ``model`` so that each query embeds next to its target; save it to ``out``.

    ``queries[i]`` matches ``targets[i]``; targets may repeat. ``hard_negatives[i]`` (optional,
    ``None``/empty for none) is a wrong target for ``queries[i]``. Without ``eval_queries`` a
    seeded share of the distinct queries is held out for the metrics. Pairs with an empty side
    are skipped; texts longer than ``max_length`` tokens (default: the model's) are truncated.
    ``device`` (``cpu``, ``auto``, ``cuda``, ``cuda:N``, ``mps``) is where it trains; the saved
    encoder is float32 and loads on any machine.
    Raises :class:`UserInputError` for bad input, :class:`OutputExistsError` when ``out`` exists
    and ``force`` is not set. Returns the path and the metrics (also in ``out/metrics.json``).
    """
    check_pair_settings(epochs=epochs, batch_size=batch_size, lr=lr, max_length=max_length)
    q, t, kept = _pairs(queries, targets, "training")
    if not q:
        raise UserInputError("no (query, target) pairs to train on: every pair has an empty side")
    negatives = _kept_negatives(hard_negatives, len(queries), kept)
    out = check_writable_dir(out, force=force)
    split = _split_pairs(q, t, negatives, eval_queries, eval_targets, seed)

    encoder = Encoder.load(model, max_length=max_length, device=device)
    lr = DEFAULT_LR if lr is None else lr
    metrics = _train_and_measure(
        encoder, split, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, progress=progress
    )
    metrics["settings"] = _settings(
        encoder, split, model=model, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed
    )
    with atomic_directory(out, force=force) as tmp:
        _save(encoder, tmp, [*split.train_q, *split.train_t], seed)
        atomic_write_json(tmp / METRICS_FILE, metrics)
    return PairTrainingResult(path=Path(out), metrics=metrics)
