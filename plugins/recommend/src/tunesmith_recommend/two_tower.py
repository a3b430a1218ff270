"""The text two-tower: item tower = the (fine-tuned) encoder on item text; user tower = a learned,
recency-aware pooling of the history's item vectors.

User tower: attention logits are a learned bias per recency position (0 = the latest item) plus
a learned content term ``e_j . q``; the softmax-weighted mean of the history vectors goes through
a residual linear layer (``p + W p``, ``W`` starting at zero, so training starts from plain
recency-free mean pooling), then L2 normalisation. It is trained in torch to predict the next
item with in-batch negatives (a batch's other targets; copies of the positive are masked), with
the item vectors frozen, so a new item is placed by its text alone. Inference is numpy only.

Content prior: a vector ``b`` such that ``softmax(E b)`` over the catalogue fits the recency-
weighted training events. It is popularity learned from text, so it also ranks items that have
no events yet (the ranker uses it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tunesmith.retrieval.pairs import train_pair_encoder

MAX_HISTORY = 20


@dataclass
class UserTower:
    """The user tower's weights (numpy) and its forward pass."""

    position_bias: np.ndarray  # [MAX_HISTORY]
    query: np.ndarray  # [dim]
    linear: np.ndarray  # [dim, dim]
    temperature: float = 0.05

    def attention(self, vectors: np.ndarray) -> np.ndarray:
        """Attention weights over one history's vectors (oldest first)."""
        n = len(vectors)
        positions = np.minimum(np.arange(n)[::-1], MAX_HISTORY - 1)
        logits = self.position_bias[positions] + vectors @ self.query
        logits = logits - logits.max()
        weights = np.exp(logits)
        return weights / weights.sum()

    def encode_one(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(user vector, attention weights) for one history's item vectors, oldest first."""
        vectors = vectors[-MAX_HISTORY:]
        weights = self.attention(vectors)
        pooled = weights @ vectors
        user = pooled + pooled @ self.linear
        return user / max(float(np.linalg.norm(user)), 1e-12), weights

    def encode(self, item_vectors: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
        """User vectors [len(histories), dim] from catalogue positions."""
        return np.stack([self.encode_one(item_vectors[h])[0] for h in histories])

    def save(self, path: str | Path) -> None:
        """Write the weights as one .npz file (atomic: temp file + rename)."""
        from tunesmith.io import atomic_open

        with atomic_open(path, binary=True) as handle:
            np.savez(
                handle,
                position_bias=self.position_bias,
                query=self.query,
                linear=self.linear,
                temperature=np.float64(self.temperature),
            )

    @classmethod
    def load(cls, path: str | Path) -> UserTower:
        """Read weights written by :meth:`save`."""
        with np.load(path) as data:
            return cls(
                position_bias=data["position_bias"].astype(np.float32),
                query=data["query"].astype(np.float32),
                linear=data["linear"].astype(np.float32),
                temperature=float(data["temperature"]),
            )


def next_item_examples(
    sequences: Sequence[tuple[np.ndarray, np.ndarray]],
) -> tuple[list[np.ndarray], np.ndarray]:
    """(history, next item) for every position after the first of every training sequence."""
    histories: list[np.ndarray] = []
    targets: list[int] = []
    for items, _ in sequences:
        for t in range(1, len(items)):
            histories.append(items[max(0, t - MAX_HISTORY) : t])
            targets.append(int(items[t]))
    return histories, np.asarray(targets, dtype=np.int64)


def _padded(histories: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histories right-aligned in [n, MAX_HISTORY]: item ids, mask, recency positions."""
    ids = np.zeros((len(histories), MAX_HISTORY), dtype=np.int64)
    mask = np.zeros((len(histories), MAX_HISTORY), dtype=bool)
    for row, history in enumerate(histories):
        history = history[-MAX_HISTORY:]
        ids[row, MAX_HISTORY - len(history) :] = history
        mask[row, MAX_HISTORY - len(history) :] = True
    positions = np.broadcast_to(np.arange(MAX_HISTORY)[::-1], ids.shape).copy()
    return ids, mask, positions


def train_user_tower(
    item_vectors: np.ndarray,
    sequences: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    epochs: int = 5,
    batch_size: int = 256,
    lr: float = 3e-3,
    temperature: float = 0.05,
    seed: int = 42,
    max_examples: int | None = None,
) -> UserTower:
    """Fit the user tower to predict each next item with in-batch negatives.

    ``max_examples`` caps the (history, next item) examples with a seeded sample.
    """
    import torch

    histories, targets = next_item_examples(sequences)
    if max_examples is not None and len(targets) > max_examples:
        keep = np.sort(np.random.default_rng(seed).choice(len(targets), max_examples, False))
        histories, targets = [histories[i] for i in keep], targets[keep]
    dim = item_vectors.shape[1]
    if len(targets) < 2:
        # Nothing to learn from: plain mean pooling of the latest items.
        return UserTower(
            position_bias=np.zeros(MAX_HISTORY, dtype=np.float32),
            query=np.zeros(dim, dtype=np.float32),
            linear=np.zeros((dim, dim), dtype=np.float32),
            temperature=temperature,
        )
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    vectors = torch.as_tensor(item_vectors, dtype=torch.float32)
    ids, mask, positions = (torch.as_tensor(a) for a in _padded(histories))
    target_ids = torch.as_tensor(targets)
    position_bias = torch.zeros(MAX_HISTORY, requires_grad=True)
    query = torch.zeros(dim, requires_grad=True)
    linear = torch.zeros(dim, dim, requires_grad=True)
    optimiser = torch.optim.Adam([position_bias, query, linear], lr=lr)
    for _ in range(epochs):
        order = torch.randperm(len(target_ids), generator=generator)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            if len(rows) < 2:
                continue
            hist = vectors[ids[rows]]  # [b, L, d]
            logits = position_bias[positions[rows]] + hist @ query
            logits = logits.masked_fill(~mask[rows], float("-inf"))
            weights = torch.softmax(logits, dim=1)
            pooled = (weights.unsqueeze(-1) * hist).sum(1)
            user = torch.nn.functional.normalize(pooled + pooled @ linear, dim=-1)
            batch_targets = target_ids[rows]
            scores = user @ vectors[batch_targets].T / temperature
            # Another row with the same target is not a negative.
            same = batch_targets[:, None] == batch_targets[None, :]
            scores = scores.masked_fill(same & ~torch.eye(len(rows), dtype=torch.bool), -1e9)
            loss = torch.nn.functional.cross_entropy(scores, torch.arange(len(rows)))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return UserTower(
        position_bias=position_bias.detach().numpy().astype(np.float32),
        query=query.detach().numpy().astype(np.float32),
        linear=linear.detach().numpy().astype(np.float32),
        temperature=temperature,
    )


def train_content_prior(
    item_vectors: np.ndarray,
    weights: np.ndarray,
    *,
    steps: int = 300,
    lr: float = 0.05,
    l2: float = 1e-3,
) -> np.ndarray:
    """The vector ``b`` whose ``softmax(E b)`` best fits the (recency-weighted) item counts."""
    import torch

    vectors = torch.as_tensor(item_vectors, dtype=torch.float32)
    target = torch.as_tensor(weights / max(float(weights.sum()), 1e-12), dtype=torch.float32)
    b = torch.zeros(vectors.shape[1], requires_grad=True)
    optimiser = torch.optim.Adam([b], lr=lr)
    for _ in range(steps):
        log_p = torch.log_softmax(vectors @ b, dim=0)
        loss = -(target * log_p).sum() + l2 * (b * b).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return b.detach().numpy().astype(np.float32)


def pair_training_texts(
    sequences: Sequence[tuple[np.ndarray, np.ndarray]],
    texts: Sequence[str],
    *,
    max_pairs: int | None = None,
    seed: int = 42,
) -> tuple[list[str], list[str]]:
    """(previous item text, next item text) for consecutive training events of each user."""
    queries: list[str] = []
    targets: list[str] = []
    for items, _ in sequences:
        for t in range(1, len(items)):
            if items[t] != items[t - 1]:
                queries.append(texts[items[t - 1]])
                targets.append(texts[items[t]])
    if max_pairs is not None and len(queries) > max_pairs:
        keep = np.random.default_rng(seed).choice(len(queries), max_pairs, replace=False)
        queries = [queries[i] for i in sorted(keep)]
        targets = [targets[i] for i in sorted(keep)]
    return queries, targets


def fine_tune_item_encoder(
    sequences: Sequence[tuple[np.ndarray, np.ndarray]],
    texts: Sequence[str],
    out: str | Path,
    *,
    model: str = "default",
    epochs: float = 1.0,
    batch_size: int = 32,
    max_pairs: int | None = None,
    seed: int = 42,
    device: str = "cpu",
) -> Path | None:
    """Fine-tune the encoder on (previous item -> next item) text pairs, on ``device``; None
    when too few."""
    queries, targets = pair_training_texts(sequences, texts, max_pairs=max_pairs, seed=seed)
    if len(queries) < 8:
        return None
    result = train_pair_encoder(
        queries,
        targets,
        out,
        model=model,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        force=True,
        device=device,
    )
    return Path(result.path)
