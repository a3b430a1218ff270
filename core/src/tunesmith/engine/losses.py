"""The loss's parts beyond plain cross-entropy: class weights, the supervised contrastive
loss and R-Drop's doubled batch and symmetric KL (the Trainer subclass combines them)."""

from __future__ import annotations

from typing import Any


def class_weights(label_ids: list[Any], num_labels: int, task: str) -> list[float]:
    """Inverse-frequency weights (``n / (k * count)``), or BCE positive weights for multi-label.

    Weights are capped at 10 so that a class with one example cannot dominate the loss.
    """
    if task == "multilabel":
        n = len(label_ids)
        positives = [sum(row[j] for row in label_ids) for j in range(num_labels)]
        return [min(10.0, (n - p) / p) if p else 1.0 for p in positives]
    counts = [0] * num_labels
    for y in label_ids:
        counts[y] += 1
    n = len(label_ids)
    present = sum(1 for c in counts if c)
    return [min(10.0, n / (present * c)) if c else 1.0 for c in counts]


def supervised_contrastive_loss(embeddings: Any, labels: Any, temperature: float = 0.1) -> Any:
    """Supervised contrastive loss (Khosla et al., 2020) over one batch of sentence embeddings.

    Pulls together the normalised embeddings of examples that share a label and pushes the
    others apart. With few examples per label this reshapes the sentence space itself, which
    cross-entropy alone, already near zero on the training set, barely does.
    """
    import torch
    import torch.nn.functional as F

    z = F.normalize(embeddings.float(), dim=-1)
    sim = z @ z.T / temperature
    eye = torch.eye(len(labels), dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(eye, float("-inf"))
    positives = (labels[:, None] == labels[None, :]) & ~eye
    anchors = positives.any(dim=1)
    if not anchors.any():
        return z.sum() * 0.0
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    log_prob = log_prob.masked_fill(eye, 0.0)
    per_anchor = (log_prob * positives).sum(dim=1)[anchors] / positives.sum(dim=1)[anchors]
    return -per_anchor.mean()


def doubled_rows(value: Any, rows: int) -> Any:
    """``value`` written twice along its first axis when it is a per-example tensor of ``rows``
    rows (R-Drop's two passes in one batch); anything else as it is."""
    import torch

    if torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == rows:
        return torch.cat([value, value])
    return value


def symmetric_kl(first: Any, second: Any) -> Any:
    """R-Drop's regulariser (Liang et al., 2021) for two passes' logits of the same examples:
    the mean of KL(p1 || p2) and KL(p2 || p1), averaged over examples, halved so that, with the
    two passes' mean cross-entropy, the loss is the paper's divided by two at the paper's weight.
    """
    import torch.nn.functional as F

    log_p, log_q = F.log_softmax(first, dim=-1), F.log_softmax(second, dim=-1)
    forward = F.kl_div(log_q, log_p, log_target=True, reduction="batchmean")  # KL(p || q)
    backward = F.kl_div(log_p, log_q, log_target=True, reduction="batchmean")  # KL(q || p)
    return (forward + backward) / 4
