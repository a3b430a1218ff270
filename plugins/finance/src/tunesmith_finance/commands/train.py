"""``tunesmith finance train``: fine-tune a sentiment classifier, or a topic one (``--topics``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from tunesmith.devices import device_option, precision_option
from tunesmith_finance.commands.output import echo_err


def train_command(
    data: Path = typer.Option(
        ...,
        "--data",
        help="Labelled finance text (CSV, TSV, JSONL, JSON, Parquet or Excel .xlsx; 'book.xlsx#Sheet').",
    ),
    out: Path = typer.Option(..., "--out", help="Model directory to write."),
    eval_data: Path | None = typer.Option(None, "--eval", help="Labelled evaluation file."),
    model: str = typer.Option(
        "default",
        "--model",
        "-m",
        help="Base model: 'default', a local directory or a hub id (with --allow-network).",
    ),
    text_col: str = typer.Option("text", "--text-col", help="Column holding the text."),
    label_col: str = typer.Option("label", "--label-col", help="Column holding the label."),
    strategy: str = typer.Option(
        "full", "--strategy", help="full | freeze:K | head | lora (see `tunesmith train`)."
    ),
    epochs: float | None = typer.Option(None, "--epochs", help="Epochs (default: from the data)."),
    lr: float | None = typer.Option(None, "--lr", help="Learning rate (default: from the model)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Training batch size."),
    max_length: int | None = typer.Option(
        None, "--max-length", help="Max tokens per text (default: 99th percentile of the data)."
    ),
    seed: int = typer.Option(42, "--seed", help="Random seed (of the first member)."),
    members: int = typer.Option(
        1,
        "--members",
        help="Train N models with seeds seed..seed+N-1 and average their probabilities "
        "(an ensemble: scoring costs N times as much).",
    ),
    head_init: str = typer.Option(
        "auto",
        "--head-init",
        help="auto | probe | random: the classifier head's start (engine --head-init). On the "
        "finance tweets' valid split a random head scored about 1.3 points higher with a "
        "worse-calibrated confidence, while a held-out slice of train preferred the probe "
        "start (docs/finance.md).",
    ),
    lexical: float | None = typer.Option(
        None,
        "--lexical",
        help="Share of a TF-IDF n-gram regression in the probabilities (engine --lexical; "
        "default 0.3 for sentiment, chosen on a held-out slice of the finance tweets' train "
        "split, and 0 for --topics; 0 is off).",
    ),
    topics: bool = typer.Option(
        False,
        "--topics",
        help="Train a topic classifier (any labels) instead of a sentiment model; use it with "
        "`ingest --topic-model`. Several topics per text (a list in JSONL/JSON/Parquet, or a "
        "cell split with --label-sep) train a multi-label one.",
    ),
    label_sep: str | None = typer.Option(
        None,
        "--label-sep",
        help="With --topics: the separator of several topics in one label cell (e.g. '|').",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    allow_network: bool = typer.Option(
        False, "--allow-network", help="Allow downloading a hub --model (off by default)."
    ),
    device: str = device_option(),
    precision: str = precision_option(),
) -> None:
    """Fine-tune a sentiment classifier (negative / neutral / positive) on your finance text.

    Runs the core engine (`tunesmith train`) with its defaults, except that full fine-tuning on
    2,000 or more texts runs 6 epochs (the engine would choose 4 or 6); the labels must include
    negative and positive (neutral optional) unless --topics is given. --members N trains an
    ensemble (docs/finance.md).
    """
    from tunesmith.data.load import load_text_dataset
    from tunesmith.errors import UserInputError
    from tunesmith_finance.scoring import sentiment_indices
    from tunesmith_finance.training import (
        LEXICAL_SHARE,
        SentimentRecipe,
        check_sentiment_run,
        train_sentiment,
    )

    if topics and members > 1:
        raise UserInputError("--members applies to sentiment models, not --topics")
    if label_sep is not None and not topics:
        raise UserInputError("--label-sep goes with --topics: a sentiment model takes one label")
    if topics:
        _train_topics(
            data,
            out,
            eval_data=eval_data,
            model=model,
            text_col=text_col,
            label_col=label_col,
            label_sep=label_sep,
            strategy=strategy,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            max_length=max_length,
            seed=seed,
            lexical=lexical,
            head_init=head_init,
            force=force,
            allow_network=allow_network,
            device=device,
            precision=precision,
        )
        return
    recipe = SentimentRecipe(
        strategy=strategy,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        max_length=max_length,
        seed=seed,
        members=members,
        lexical=lexical if lexical is not None else LEXICAL_SHARE,
        device=device,
        precision=precision,
        extra={"head_init": head_init} if head_init != "auto" else {},
    )
    settings: dict[str, Any] = {
        "eval_data": eval_data,
        "model": model,
        "text_col": text_col,
        "label_col": label_col,
        "force": force,
        "allow_network": allow_network,
    }
    # Reading a large file takes seconds: an existing --out (or a bad setting) is one line first.
    check_sentiment_run(data, out, recipe, **settings)
    dataset = load_text_dataset(data, text_col=text_col, label_col=label_col)
    if dataset.multilabel:
        # The engine's message would point to `--task multilabel`, which this command has
        # not: several labels per text are topics.
        raise UserInputError(
            f"{data}, column '{label_col}': lists of labels; a sentiment model takes one "
            "label per text (several topics per text train a topic model: add --topics)"
        )
    sentiment_indices(dataset.label_names, str(data))
    path = train_sentiment(data, out, recipe, n_rows=len(dataset.texts), **settings)
    echo_saved(path, members)


def _train_topics(
    data: Path,
    out: Path,
    *,
    eval_data: Path | None,
    model: str,
    text_col: str,
    label_col: str,
    label_sep: str | None,
    head_init: str,
    lexical: float | None,
    force: bool,
    allow_network: bool,
    **recipe_options: Any,
) -> None:
    """`finance train --topics`: rows without a topic train "none of these" (topic_data)."""
    from tunesmith_finance.topic_data import topic_training_files
    from tunesmith_finance.training import SentimentRecipe, check_sentiment_run, train_sentiment

    recipe = SentimentRecipe(
        lexical=lexical if lexical is not None else 0.0,
        extra={"head_init": head_init} if head_init != "auto" else {},
        **recipe_options,
    )
    # Before the topics are read (and a line printed about them): an existing --out is refused
    # in one line. The task (multilabel or not) is known only from the data; neither changes
    # what is checked here.
    check_sentiment_run(
        data,
        out,
        recipe,
        eval_data=eval_data,
        model=model,
        text_col=text_col,
        label_col=label_col,
        label_sep=label_sep,
        force=force,
        allow_network=allow_network,
    )
    with topic_training_files(
        data, eval_data, text_col=text_col, label_col=label_col, label_sep=label_sep
    ) as files:
        if files.without_topic:
            echo_err(f"{files.without_topic} row(s) without a topic: they train 'none of these'")
        else:
            echo_err(
                "every row has a topic, so the model will give every document one of them "
                "(above --topic-threshold); rows with an empty topic teach it 'none of these'"
            )
        path = train_sentiment(
            files.data,
            out,
            recipe,
            eval_data=files.eval_data,
            model=model,
            text_col=files.text_col,
            label_col=files.label_col,
            task="multilabel" if files.multilabel else "classification",
            label_sep=files.label_sep,
            force=force,
            allow_network=allow_network,
            n_rows=files.rows,
        )
    echo_saved(path, 1)


def echo_saved(path: Path, members: int) -> None:
    """The line `tunesmith train` ends with: where the model is and its held-out score.

    Only the path was printed, so a run given --eval said nothing of how it scored."""
    import json

    from tunesmith.engine.distributed import is_main_process
    from tunesmith.engine.train import headline
    from tunesmith.model_dir import METRICS_FILE

    if not is_main_process():  # under torchrun / accelerate launch the main process reports
        return
    metrics = json.loads((path / METRICS_FILE).read_text(encoding="utf-8"))
    measured_on = f" on {metrics.get('eval_source')}" if metrics.get("report") else ""
    if members > 1 and metrics.get("report"):
        # Only the first member is measured while training; evaluate scores the mean.
        measured_on += f" (its first member; `tunesmith evaluate --model {path}` scores the mean)"
    ensemble = f" ({members} members)" if members > 1 else ""
    typer.echo(f"saved {path}{ensemble}: {headline(metrics)}{measured_on}")


def register(app: typer.Typer) -> None:
    """Add ``train`` to ``app``."""
    app.command("train")(train_command)
