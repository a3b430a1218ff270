"""``tunesmith train``: its options, the checks of which options go together, and the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from tunesmith.commands.engine.output import clean_nan, echo_json
from tunesmith.commands.engine.train_config import _run_config
from tunesmith.commands.engine.train_pairs import _PAIR_OPTIONS, _PAIRS_ONLY, _train_pairs
from tunesmith.devices import DEVICE_HELP, PRECISION_HELP
from tunesmith.engine.self_training import ROUNDS as PSEUDO_ROUNDS
from tunesmith.engine.self_training import THRESHOLD as PSEUDO_THRESHOLD
from tunesmith.model_dir import METRICS_FILE


def _flag(option: str) -> str:
    """The command-line spelling of a train option (``eval_data`` -> ``--eval``)."""
    import inspect

    info = inspect.signature(train_command).parameters[option].default
    return info.param_decls[0] if info.param_decls else "--" + option.replace("_", "-")


def _check_task_options(options: dict[str, Any]) -> None:
    """Refuse options the chosen task would silently ignore: a pair column without
    ``--task pairs``, or a classification option with it."""
    import inspect

    from tunesmith.errors import UserInputError

    if options["task"] != "pairs":
        for option in _PAIRS_ONLY:
            if options[option] is not None:
                raise UserInputError(f"{_flag(option)} goes with --task pairs")
        return
    defaults = inspect.signature(train_command).parameters
    for option, value in options.items():
        if option not in _PAIR_OPTIONS and value != defaults[option].default.default:
            raise UserInputError(
                f"{_flag(option)} does not apply to --task pairs; it reads only --data, --eval, "
                "--out, --model, --text-col, --pair-col, --negative-col, --epochs, --lr, "
                "--batch-size, --max-length, --seed, --device, --force, --json and "
                "--allow-network"
            )


def check_train_options(options: dict[str, Any]) -> None:
    """Refuse, before any work, train options that do not go together (``options``: every
    parameter of :func:`train_command` by name); the Python API checks its keywords here too."""
    _check_task_options(options)
    strategy = options["strategy"]
    if options["task"] != "pairs" and strategy.partition(":")[0] != "lora":
        given = [flag for flag, name in (("--lora-r", "lora_r"), ("--lora-alpha", "lora_alpha"))
                 if options[name] is not None]  # fmt: skip
        if given:
            from tunesmith.errors import UserInputError

            raise UserInputError(
                f"{' and '.join(given)} go{'es' if len(given) == 1 else ''} with --strategy "
                f"lora, not --strategy {strategy}"
            )


def train_report(run: Any, path: Path) -> dict[str, Any]:
    """What ``train --json`` prints for the model ``run`` saved at ``path`` (NaN as null)."""
    metrics = json.loads((path / METRICS_FILE).read_text(encoding="utf-8"))
    return clean_nan(
        {
            "model_dir": str(path),
            "task": run.resolved.task,
            "strategy": run.strategy,
            "metrics": metrics,
            "resolved": run.resolved.to_dict(),
        }
    )


def train_command(
    data: Path = typer.Option(
        ...,
        "--data",
        help="Labelled training file: CSV, TSV, JSONL, JSON, Parquet, Excel .xlsx "
        "('book.xlsx#Sheet') or CoNLL tokens (.conll/.txt).",
    ),
    eval_data: Path | None = typer.Option(
        None, "--eval", help="Labelled evaluation file; else a slice of --data is held out."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Model directory to write (models/<data>)."
    ),
    model: str = typer.Option(
        "default", "--model", "-m", help="Base model: 'default', a local directory or a hub id."
    ),
    allow_network: bool = typer.Option(
        False, "--allow-network", help="Allow downloading a hub model (off by default)."
    ),
    task: str = typer.Option(
        "auto", "--task", help="auto | classification | multilabel | ner | pairs."
    ),
    text_col: str = typer.Option("text", "--text-col", help="Column holding the text."),
    label_col: str = typer.Option("label", "--label-col", help="Column holding the label(s)."),
    pair_col: str | None = typer.Option(
        None, "--pair-col", help="--task pairs: column of the text each --text-col text matches."
    ),
    negative_col: str | None = typer.Option(
        None, "--negative-col", help="--task pairs: column of a wrong match (hard negative)."
    ),
    label_sep: str | None = typer.Option(
        None, "--label-sep", help="Separator of several labels in one cell (multi-label)."
    ),
    strategy: str = typer.Option(
        "full",
        "--strategy",
        help="full | freeze:K (embeddings and bottom K layers frozen, K >= 1) | head | lora.",
    ),
    epochs: float | None = typer.Option(None, "--epochs", help="Epochs (default: from the data)."),
    lr: float | None = typer.Option(None, "--lr", help="Learning rate (default: from the model)."),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="Training batch size (default 16; 32 for --task pairs)."
    ),
    max_length: int | None = typer.Option(
        None, "--max-length", help="Max tokens per text (default: 99th percentile of the data)."
    ),
    seed: int = typer.Option(42, "--seed", help="Random seed (split, initialisation, order)."),
    class_weights: str = typer.Option(
        "none", "--class-weights", help="none | auto (inverse class frequency in the loss)."
    ),
    early_stopping: int | None = typer.Option(
        None,
        "--early-stopping",
        help="Stop after N held-out evaluations without improvement (0: off). Default: 3 when there is held-out data; no early stopping without it.",
    ),
    eval_fraction: float | None = typer.Option(
        None, "--eval-fraction", help="Share of --data held out when there is no --eval."
    ),
    no_calibrate: bool = typer.Option(
        False, "--no-calibrate", help="Do not fit a temperature on the held-out data."
    ),
    clean: bool = typer.Option(
        False, "--clean", help="Apply the safe fixes of the cleaning report first."
    ),
    augment: list[str] | None = typer.Option(
        None, "--augment", help="Augmenter(s) for the training split; repeat or comma-separate."
    ),
    label_examples: str = typer.Option(
        "auto",
        "--label-examples",
        help="auto | on | off: add each label's name as a training example "
        "(auto: few-shot single-label data whose label names read as words).",
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue an interrupted run from its last checkpoint: the same command plus "
        "--resume ends with the uninterrupted run's model (docs/cli.md).",
    ),
    save_steps: int | None = typer.Option(
        None,
        "--save-steps",
        help="Also a checkpoint every N steps, for --resume only: evaluations and the model "
        "stay as they are (default: a checkpoint after each held-out evaluation, else about "
        "every 200 steps).",
    ),
    tensorboard: bool = typer.Option(
        False, "--tensorboard", help="Write TensorBoard logs into the model directory."
    ),
    data_license: str | None = typer.Option(
        None, "--data-license", help="Licence of the training data, for the model card."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out directory."),
    pooling: str = typer.Option(
        "auto", "--pooling", help="auto | mean | cls: what the classifier head reads."
    ),
    head_init: str = typer.Option(
        "auto", "--head-init", help="auto | probe (linear probe first) | random."
    ),
    no_feature_cache: bool = typer.Option(
        False, "--no-feature-cache", help="head/freeze:K: rerun the frozen part every epoch."
    ),
    cache_dir: Path | None = typer.Option(
        None,
        "--cache-dir",
        help="Cache folder (default $TUNESMITH_CACHE_DIR or ~/.cache/tunesmith).",
    ),
    work_dir: Path | None = typer.Option(
        None, "--work-dir", help="Checkpoint folder for --resume (default <out>.work)."
    ),
    contrastive: float | None = typer.Option(
        None,
        "--contrastive",
        help="Weight of a supervised contrastive loss on the pooled embeddings "
        "(default: 1 for few-shot single-label data, else 0).",
    ),
    wise_ft: float | None = typer.Option(
        None,
        "--wise-ft",
        help="Weight-space ensemble with the starting weights after full fine-tuning: 1 keeps "
        "the fine-tuned weights (default: chosen on held-out data; 0.4 for few-shot data).",
    ),
    nearest: str = typer.Option(
        "auto",
        "--nearest",
        help="Mix nearest-training-example scores into the saved model's probabilities: "
        "auto (few-shot single-label data) | on | off.",
    ),
    unlabelled: Path | None = typer.Option(
        None,
        "--unlabelled",
        help="CSV, TSV, JSONL, JSON, Parquet or Excel .xlsx file of unlabelled texts (column "
        "--text-col) for self-training: "
        "confident predictions join the stored examples and the head is refitted with them.",
    ),
    pseudo_threshold: float = typer.Option(
        PSEUDO_THRESHOLD,
        "--pseudo-threshold",
        help="--unlabelled: lowest predicted probability that makes a text a pseudo-label.",
    ),
    pseudo_rounds: int = typer.Option(
        PSEUDO_ROUNDS, "--pseudo-rounds", help="--unlabelled: self-training rounds."
    ),
    label_smoothing: float = typer.Option(
        0.0,
        "--label-smoothing",
        help="Label smoothing of the cross-entropy (0: off; single-label and NER).",
    ),
    layer_decay: float = typer.Option(
        1.0,
        "--layer-decay",
        help="Layer-wise learning-rate decay: layer i of n trains at lr * D^(n - i), the head "
        "at lr (1: off).",
    ),
    rdrop: float = typer.Option(
        0.0,
        "--rdrop",
        help="R-Drop: run each batch twice with different dropout and add this weight of the "
        "two predictions' symmetric KL to the loss (0: off; single-label; about 2x the time).",
    ),
    lexical: float = typer.Option(
        0.0,
        "--lexical",
        help="Mix a TF-IDF word and character n-gram logistic regression into a single-label "
        "classifier's probabilities with this share (0: off).",
    ),
    average_epochs: int = typer.Option(
        0,
        "--average-epochs",
        help="Average the weights of the last N epochs after full fine-tuning (0: off); kept "
        "only if the held-out score does not drop.",
    ),
    lora_r: int | None = typer.Option(
        None, "--lora-r", help="--strategy lora: the adapter's rank (default 8)."
    ),
    lora_alpha: int | None = typer.Option(
        None, "--lora-alpha", help="--strategy lora: the adapter's alpha (default 16)."
    ),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON document."),
) -> None:
    """Fine-tune a model on labelled text (or CoNLL token files) and save it with its metrics.

    Writes a Hugging Face model directory plus run_config.json, metrics.json, the cleaning
    report, calibration.json and a model card. Checks flags and data before any heavy work.

    --task pairs fine-tunes an encoder on matching pairs (--text-col to --pair-col) instead, and
    prints held-out recall@k and MRR for the tuned and untuned encoder.
    """
    options = dict(locals())  # first, so it holds the options and nothing else
    check_train_options(options)
    if task == "pairs":
        _train_pairs(**{name: options[name] for name in _PAIR_OPTIONS if name != "task"})
        return
    run = _run_config(options).validate()
    from tunesmith.engine.distributed import is_main_process
    from tunesmith.engine.train import train

    path = train(run)
    if is_main_process():  # under torchrun / accelerate launch the main process reports
        _say_trained(run, path, as_json=as_json)


def _say_trained(run: Any, path: Path, *, as_json: bool) -> None:
    """Print what ``train`` saved: the JSON report, or one line with the headline metric."""
    from tunesmith.engine.train import headline

    report = train_report(run, path)
    if as_json:
        echo_json(report)
        return
    metrics = report["metrics"]
    measured_on = f" on {metrics.get('eval_source')}" if metrics.get("report") else ""
    typer.echo(f"saved {path}: {headline(metrics)}{measured_on}")
