"""The linear probe: logistic regression on frozen pooled features, used to initialise the head.

Starting full fine-tuning from a probed head (LP-FT) rather than a random one keeps the early,
large gradients of a random head from distorting the pretrained sentence space (measured in
docs/benchmarks.md, "Engine measurements that used to live in its docstrings").
"""

from __future__ import annotations

from typing import Any


def fit_linear_probe(
    features: Any,
    targets: Any,
    task: str,
    *,
    num_labels: int | None = None,
    l2: float | None = None,
    seed: int = 0,
) -> tuple[Any, Any, float]:
    """Logistic regression on frozen features (full-batch L-BFGS); returns (weight, bias, l2).

    With ``l2=None`` the penalty is chosen from a small grid on a 20 % slice of the data (when
    there are at least 200 examples), the way the frozen-embedding baseline tunes C.
    """
    import torch

    x = features.float()
    multilabel = task == "multilabel"
    y = torch.as_tensor(targets, dtype=torch.float32 if multilabel else torch.long)
    k = y.shape[1] if multilabel else (num_labels or int(y.max()) + 1)

    def fit(xs: Any, ys: Any, penalty: float, classes: int) -> tuple[Any, Any]:
        w = torch.zeros(classes, xs.shape[1], requires_grad=True)
        b = torch.zeros(classes, requires_grad=True)
        opt = torch.optim.LBFGS(
            [w, b], lr=1.0, max_iter=300, history_size=20, line_search_fn="strong_wolfe"
        )

        def closure() -> Any:
            opt.zero_grad()
            logits = xs @ w.T + b
            if multilabel:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, ys)
            else:
                loss = torch.nn.functional.cross_entropy(logits, ys)
            loss = loss + penalty * (w * w).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return w.detach(), b.detach()

    def score(w: Any, b: Any, xs: Any, ys: Any) -> float:
        logits = xs @ w.T + b
        if multilabel:
            return -float(torch.nn.functional.binary_cross_entropy_with_logits(logits, ys))
        return float((logits.argmax(-1) == ys).float().mean())

    grid = (1e-5, 1e-4, 1e-3)
    if l2 is None:
        if len(x) >= 200:
            gen = torch.Generator().manual_seed(seed)
            order = torch.randperm(len(x), generator=gen)
            cut = len(x) // 5
            val, fit_idx = order[:cut], order[cut:]
            scores = []
            for penalty in grid:
                w, b = fit(x[fit_idx], y[fit_idx], penalty, k)
                scores.append(score(w, b, x[val], y[val]))
            l2 = grid[max(range(len(grid)), key=lambda i: (scores[i], grid[i]))]
        else:
            l2 = 1e-4
    w, b = fit(x, y, l2, k)
    return w, b, l2
