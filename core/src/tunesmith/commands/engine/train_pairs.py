"""``tunesmith train --task pairs``: an encoder fine-tuned on matching pairs, and the train
options that task reads."""

from __future__ import annotations

from pathlib import Path

import typer

from tunesmith.commands.engine.output import clean_nan, echo_json, fmt, print_table

#: The train options ``--task pairs`` reads; any other one given is refused, not ignored.
_PAIR_OPTIONS = frozenset(
    {
        "data", "eval_data", "out", "model", "allow_network", "task", "text_col", "pair_col",
        "negative_col", "epochs", "lr", "batch_size", "max_length", "seed", "force", "as_json",
        "device",
    }
)  # fmt: skip
#: The options only ``--task pairs`` reads.
_PAIRS_ONLY = ("pair_col", "negative_col")


def _train_pairs(
    *,
    data: Path,
    eval_data: Path | None,
    out: Path | None,
    model: str,
    allow_network: bool,
    text_col: str,
    pair_col: str | None,
    negative_col: str | None,
    epochs: float | None,
    lr: float | None,
    batch_size: int | None,
    max_length: int | None,
    seed: int,
    force: bool,
    as_json: bool,
    device: str = "auto",
) -> None:
    """``train --task pairs``: fine-tune an encoder on matching pairs, print its metrics."""
    from tunesmith.engine.distributed import world_size
    from tunesmith.errors import UserInputError
    from tunesmith.io import check_writable_dir
    from tunesmith.retrieval.pairs import read_pairs

    if world_size() > 1:  # its own training loop: each process would train and write alone
        raise UserInputError(
            "--task pairs trains in one process; run it without torchrun or accelerate launch"
        )
    if not pair_col:
        raise UserInputError("--task pairs needs --pair-col COLUMN: the text each text matches")
    if out is None:
        raise UserInputError("--task pairs needs --out DIR: where to save the tuned encoder")
    from tunesmith.engine.checks import check_settings
    from tunesmith.engine.config import check_model_output

    # train_pair_encoder checks them again, but only once the pairs (a large file) are read
    check_settings(
        {
            "seed": seed,
            "epochs": epochs,
            "lr": lr,
            "batch_size": batch_size,
            "max_length": max_length,
        }
    )
    check_model_output(out, force=force, inputs=((str(data), "--data"), (eval_data, "--eval")))
    check_writable_dir(out, force=force)
    queries, targets, negatives = read_pairs(data, text_col, pair_col, negative_col)
    eval_queries = eval_targets = None
    if eval_data is not None:
        eval_queries, eval_targets, _ = read_pairs(eval_data, text_col, pair_col, None)
    from tunesmith.models import allow_network as set_network
    from tunesmith.retrieval.pairs import train_pair_encoder

    set_network(allow_network)
    result = train_pair_encoder(
        queries,
        targets,
        out,
        model=model,
        eval_queries=eval_queries,
        eval_targets=eval_targets,
        hard_negatives=negatives,
        epochs=epochs if epochs is not None else 1.0,
        batch_size=batch_size if batch_size is not None else 32,
        lr=lr,
        max_length=max_length,
        seed=seed,
        force=force,
        device=device,
    )
    metrics = result.metrics
    if as_json:
        echo_json(clean_nan({"model_dir": str(result.path), "metrics": metrics}))
        return
    typer.echo(
        f"saved {result.path}: {metrics['n_train']} training pairs, {metrics['steps']} steps; "
        f"{metrics['n_eval']} queries against {metrics['n_candidates']} candidates "
        f"({metrics['eval_source']})"
    )
    names = ["recall@1", "recall@5", "recall@10", "mrr"]
    rows = [[which] + [fmt(metrics[which][n]) for n in names] for which in ("untuned", "tuned")]
    print_table(["encoder", *names], rows)
