"""``tunesmith train``, ``evaluate`` and ``predict``: the engine's commands.

Heavy libraries are imported inside the command bodies, so ``tunesmith --help`` stays fast.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import typer

from tunesmith.engine.self_training import ROUNDS as PSEUDO_ROUNDS
from tunesmith.engine.self_training import THRESHOLD as PSEUDO_THRESHOLD
from tunesmith.model_dir import METRICS_FILE


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False, default=_jsonable))


def _jsonable(value: Any) -> Any:
    """numpy scalars and paths in reports become plain JSON values."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _clean_nan(value: Any) -> Any:
    """NaN (a metric with nothing to measure) becomes null, so the output is valid JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_nan(v) for v in value]
    return value


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-" if value is None else str(value)


def _print_table(headers: list[str], rows: list[list[str]]) -> None:
    """A borderless table on stdout (rich), two spaces between columns.

    On a terminal rich fits it to the window (long texts wrap inside their column); into a
    pipe or file every row stays one whole line, so scripts can split it.
    """
    import sys

    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, padding=(0, 1), show_edge=False, highlight=False)
    for header in headers:
        table.add_column(header, no_wrap=not sys.stdout.isatty(), overflow="fold")
    for row in rows:
        table.add_row(*row)
    console = Console(
        file=sys.stdout,
        width=None if sys.stdout.isatty() else 1_000_000,
        markup=False,
        emoji=False,
        highlight=False,
    )
    with console.capture() as captured:
        console.print(table)
    for line in captured.get().splitlines():
        typer.echo(line.rstrip())


def _print_evaluation(report: dict[str, Any]) -> None:
    if report.get("task") == "ner":
        typer.echo(
            f"entity F1 {_fmt(report['f1'])}  precision {_fmt(report['precision'])}  "
            f"recall {_fmt(report['recall'])}  (strict, {report['scheme']} tags, "
            f"{report['n_sentences']} sentences)"
        )
        rows = [
            [t, _fmt(m["precision"]), _fmt(m["recall"]), _fmt(m["f1"]), str(m["support"])]
            for t, m in report["per_type"].items()
        ]
        for name in ("micro", "macro"):
            m = report[name]
            rows.append(
                [
                    f"{name} avg",
                    _fmt(m["precision"]),
                    _fmt(m["recall"]),
                    _fmt(m["f1"]),
                    str(m["support"]),
                ]
            )
        _print_table(["type", "precision", "recall", "f1", "support"], rows)
        return
    head = [
        f"accuracy {_fmt(report['accuracy'])}",
        f"macro F1 {_fmt(report['macro_f1'])}",
        f"weighted F1 {_fmt(report['weighted_f1'])}",
    ]
    if report.get("task") == "multilabel":
        head.insert(1, f"micro F1 {_fmt(report['micro_f1'])}")
    typer.echo("  ".join(head) + f"  ({report['n_examples']} examples)")
    cal = report.get("calibration", {})
    if cal.get("applied"):
        typer.echo(
            f"calibration: ECE {_fmt(cal['ece_before'])} -> {_fmt(cal['ece_after'])}, "
            f"NLL {_fmt(cal['nll_before'])} -> {_fmt(cal['nll_after'])} (15 equal-width bins)"
        )
        if report.get("lexical"):  # those figures are the transformer's temperature at work
            typer.echo(
                f"with the lexical model's {report['lexical']['weight']:g} share: ECE "
                f"{_fmt(report['ece'])}, NLL {_fmt(report['nll'])} (the line above: the "
                "transformer alone)"
            )
    else:
        typer.echo(
            f"ECE {_fmt(report['ece'])}  NLL {_fmt(report['nll'])} (not calibrated; "
            "`tunesmith calibrate` fits a temperature)"
        )
    rows = [
        [label, _fmt(m["precision"]), _fmt(m["recall"]), _fmt(m["f1"]), str(m["support"])]
        for label, m in report["per_label"].items()
    ]
    _print_table(["label", "precision", "recall", "f1", "support"], rows)
    for name, path in (report.get("plots") or {}).items():
        typer.echo(f"{name.replace('_', ' ')}: {path}", err=True)


def evaluate_command(
    model: Path = typer.Option(
        ..., "--model", "-m", help="A model directory (from `tunesmith train`)."
    ),
    data: Path = typer.Option(..., "--data", help="Labelled evaluation file (.csv/.jsonl/...)."),
    text_col: str = typer.Option("text", "--text-col", help="Column holding the text."),
    label_col: str = typer.Option("label", "--label-col", help="Column holding the label(s)."),
    label_sep: str | None = typer.Option(
        None, "--label-sep", help="Separator of several labels in one cell (multi-label)."
    ),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Texts per forward pass."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON document."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Folder for confusion_matrix.png and reliability.png."
    ),
) -> None:
    """Measure a model on labelled data: accuracy, F1, per-label scores, calibration (ECE/NLL).

    NER models get strict entity-level precision, recall and F1 per entity type.
    """
    from tunesmith.engine.ensemble import load_ensemble
    from tunesmith.engine.evaluate import evaluate_model, load_eval_dataset
    from tunesmith.errors import UserInputError
    from tunesmith.io import check_output_folder

    if plot is not None:
        check_output_folder(plot, "--plot")  # before the model loads: a bad path costs no time
    loaded, *members = load_ensemble(model)
    if plot is not None and loaded.task == "ner":
        raise UserInputError(
            "--plot draws a confusion matrix and a reliability diagram, which a NER model "
            "does not have; its report is per entity type"
        )
    dataset = load_eval_dataset(loaded, data, text_col, label_col, label_sep)
    say_if_ensemble(model, loaded, members)  # after the checks: a refused run says one line
    report = evaluate_model(
        loaded,
        dataset,
        batch_size=batch_size,
        plot_dir=plot,
        data_path=data,
        label_col=label_col,
        members=members,
    )
    report = _clean_nan(report)
    if as_json:
        _echo_json(report)
    else:
        _print_evaluation(report)


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _with_top(
    headers: list[str], rows: list[list[str]], records: list[dict[str, Any]], top_k: int | None
) -> tuple[list[str], list[list[str]]]:
    """The table with a ``top k`` column (label and probability, most probable first)."""
    if not top_k:
        return headers, rows
    for row, record in zip(rows, records, strict=True):
        row.append(", ".join(f"{t['label']} {t['score']:.3f}" for t in record["top"]))
    return [*headers, f"top {top_k}"], rows


def say_if_ensemble(
    model: Path, loaded: Any, members: list[Any], *, words: bool = False, how: str | None = None
) -> None:
    """Say once on stderr that ``model`` is a seed ensemble and how it is read (``predict``,
    ``explain`` and ``evaluate`` showed its figures as one model's, nothing telling the two
    apart). Not in the JSON on stdout: ``predict``'s records are per text, and ``explain``'s
    already hold ``"members": N``. ``words``: the word scores are averaged too (``explain``).
    ``how``: what the command did with the members instead (``calibrate``; ``loaded`` unused)."""
    if not members:
        return
    if how is None and loaded.task == "ner":
        # predict_texts, explain_loaded and evaluate_model read a tagger with its first model.
        how = "a tagger's entities are its first model's alone"
    elif how is None:
        averaged = "its probabilities and word scores are" if words else "its probabilities are"
        how = f"{averaged} the mean of its members'"
    typer.echo(f"note: {model} is a seed ensemble of {len(members) + 1} models; {how}", err=True)


def predict_command(
    model: Path = typer.Option(
        ..., "--model", "-m", help="A model directory (from `tunesmith train`)."
    ),
    data: Path | None = typer.Option(
        None, "--data", help="File of texts to label; '-' reads standard input (see --format)."
    ),
    text: list[str] | None = typer.Option(
        None, "--text", help="A text to label; repeat for several."
    ),
    text_col: str = typer.Option("text", "--text-col", help="Column holding the text."),
    stdin_format: str | None = typer.Option(
        None,
        "--format",
        help="With --data -: how standard input is read: lines (one text a line; the default) "
        "| jsonl | csv | tsv.",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="JSON lines for --data; one JSON document for --text."
    ),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Texts per forward pass."),
    quantize: str | None = typer.Option(
        None, "--quantize", help="'int8': int8 linear layers, faster on a CPU."
    ),
    no_calibrate: bool = typer.Option(
        False, "--no-calibrate", help="Raw probabilities, without the fitted temperature."
    ),
    top_k: int | None = typer.Option(
        None, "--top-k", "-k", min=1, help="Also list the k most probable labels."
    ),
) -> None:
    """Label texts with a model: the label, its probability, and every label's probability.

    With --json, --data prints one JSON line per text, in file order; --text prints one JSON
    document (an object for one text, a list for several). --data - reads the texts from
    standard input: one a line, or as --format says.
    """
    from tunesmith.data.readers import STDIN_FORMATS
    from tunesmith.errors import UserInputError

    if data is not None and text:
        raise UserInputError("pass either --data FILE or --text TEXT (not both)")
    if data is None and not text:
        raise UserInputError("pass --data FILE or --text TEXT: the texts to label")
    from_stdin = data is not None and str(data) == "-"
    if stdin_format is not None and not from_stdin:
        raise UserInputError(
            "--format goes with --data - (standard input); a file's format comes from its suffix"
        )
    if stdin_format is not None and stdin_format not in STDIN_FORMATS:
        raise UserInputError(
            f"--format {stdin_format!r} is not valid; expected {' | '.join(STDIN_FORMATS)}"
        )
    from tunesmith.data.limits import cli_texts

    given = cli_texts(text)  # before the model loads: a bad argument costs no time
    for i, value in enumerate(given):
        if not value.strip():  # as --data refuses an empty cell, and explain an empty --text
            raise UserInputError(f"--text number {i + 1} is empty; there is nothing to label")
    texts = given
    if data is not None:  # before the model loads too: a bad file costs no time
        from tunesmith.data.load import read_texts

        texts = read_texts(
            data,
            text_col=text_col,
            stdin_format=(stdin_format or "lines") if from_stdin else None,
        )
    from tunesmith.engine.ensemble import load_ensemble
    from tunesmith.engine.predict import predict_texts

    # A seed ensemble (finance and support train them) is scored as its plugin scores it.
    loaded, *members = load_ensemble(model, quantize=quantize)
    if top_k is not None and loaded.task == "ner":
        raise UserInputError("--top-k applies to classifiers; a NER model lists its entities")
    say_if_ensemble(model, loaded, members)
    started = time.perf_counter()
    results = predict_texts(
        loaded,
        texts,
        calibrated=not no_calibrate,
        top_k=top_k,
        batch_size=batch_size,
        members=members,
    )
    elapsed = time.perf_counter() - started
    records = [{"text": t, **r} for t, r in zip(texts, results, strict=True)]
    if as_json:
        if data is not None:
            for record in records:
                typer.echo(json.dumps(record, ensure_ascii=False))
        else:
            _echo_json(records[0] if len(records) == 1 else records)
        return
    if loaded.task == "ner":
        rows = [
            [
                _short(r["text"]),
                "; ".join(f"{e['type']}: {e['text']}" for e in r["entities"]) or "-",
            ]
            for r in records
        ]
        _print_table(["text", "entities"], rows)
    elif loaded.task == "multilabel":
        rows = [
            [
                _short(r["text"]),
                ", ".join(f"{lab} {s:.3f}" for lab, s in zip(r["labels"], r["scores"], strict=True))
                or "-",
            ]
            for r in records
        ]
        _print_table(*_with_top(["text", "labels"], rows, records, top_k))
    else:
        rows = [[_short(r["text"]), r["label"], f"{r['score']:.3f}"] for r in records]
        _print_table(*_with_top(["text", "label", "score"], rows, records, top_k))
    rate = len(texts) / elapsed if elapsed > 0 else 0.0
    typer.echo(f"{len(texts)} texts in {elapsed:.2f} s ({rate:.0f}/s)", err=True)


def _split_names(values: list[str] | None) -> list[str]:
    names: list[str] = []
    for value in values or []:
        names.extend(part.strip() for part in value.split(",") if part.strip())
    return names


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
) -> None:
    """``train --task pairs``: fine-tune an encoder on matching pairs, print its metrics."""
    from tunesmith.errors import UserInputError
    from tunesmith.io import check_writable_dir
    from tunesmith.retrieval.pairs import read_pairs

    if not pair_col:
        raise UserInputError("--task pairs needs --pair-col COLUMN: the text each text matches")
    if out is None:
        raise UserInputError("--task pairs needs --out DIR: where to save the tuned encoder")
    from tunesmith.engine.config import check_model_output, check_seed

    check_seed(seed)
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
    )
    metrics = result.metrics
    if as_json:
        _echo_json(_clean_nan({"model_dir": str(result.path), "metrics": metrics}))
        return
    typer.echo(
        f"saved {result.path}: {metrics['n_train']} training pairs, {metrics['steps']} steps; "
        f"{metrics['n_eval']} queries against {metrics['n_candidates']} candidates "
        f"({metrics['eval_source']})"
    )
    names = ["recall@1", "recall@5", "recall@10", "mrr"]
    rows = [[which] + [_fmt(metrics[which][n]) for n in names] for which in ("untuned", "tuned")]
    _print_table(["encoder", *names], rows)


#: The train options ``--task pairs`` reads; any other one given is refused, not ignored.
_PAIR_OPTIONS = frozenset(
    {
        "data", "eval_data", "out", "model", "allow_network", "task", "text_col", "pair_col",
        "negative_col", "epochs", "lr", "batch_size", "max_length", "seed", "force", "as_json",
    }
)  # fmt: skip
#: The options only ``--task pairs`` reads.
_PAIRS_ONLY = ("pair_col", "negative_col")


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
                "--batch-size, --max-length, --seed, --force, --json and --allow-network"
            )


#: Train options whose RunConfig field is named or shaped differently: option -> (field, convert).
#: Every other option named like a RunConfig field is copied as it is (paths as strings), so a
#: new setting is a RunConfig field plus its Typer option, and nothing else.
_RENAMED_OPTIONS: dict[str, tuple[str, Any]] = {
    "no_calibrate": ("calibrate", lambda value: not value),
    "no_feature_cache": ("feature_cache", lambda value: not value),
    "augment": ("augment", lambda value: _split_names(value)),
}


def _run_config(options: dict[str, Any]) -> Any:
    """The RunConfig the train command's ``options`` describe. An option left at ``None``
    whose field has another default (``--batch-size``) keeps the field's default."""
    import dataclasses

    from tunesmith.engine.config import RunConfig

    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    settings: dict[str, Any] = {}
    for option, value in options.items():
        name, convert = _RENAMED_OPTIONS.get(option, (option, None))
        if name not in defaults or name == "resolved":
            continue
        if convert is not None:
            value = convert(value)
        elif isinstance(value, Path):
            value = str(value)
        if value is None and defaults[name] not in (None, dataclasses.MISSING):
            continue
        settings[name] = value
    return RunConfig(**settings)


def train_command(
    data: Path = typer.Option(
        ..., "--data", help="Labelled training file (.csv/.jsonl/.parquet/.conll)."
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
        help="CSV/JSONL/Parquet of unlabelled texts (column --text-col) for self-training: "
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
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON document."),
) -> None:
    """Fine-tune a model on labelled text (or CoNLL token files) and save it with its metrics.

    Writes a Hugging Face model directory plus run_config.json, metrics.json, the cleaning
    report, calibration.json and a model card. Checks flags and data before any heavy work.

    --task pairs fine-tunes an encoder on matching pairs (--text-col to --pair-col) instead, and
    prints held-out recall@k and MRR for the tuned and untuned encoder.
    """
    options = dict(locals())  # first, so it holds the options and nothing else
    _check_task_options(options)
    if task != "pairs" and strategy.partition(":")[0] != "lora":
        given = [flag for flag, value in (("--lora-r", lora_r), ("--lora-alpha", lora_alpha))
                 if value is not None]  # fmt: skip
        if given:
            from tunesmith.errors import UserInputError

            raise UserInputError(
                f"{' and '.join(given)} go{'es' if len(given) == 1 else ''} with --strategy "
                f"lora, not --strategy {strategy}"
            )
    if task == "pairs":
        from tunesmith.engine.distributed import world_size
        from tunesmith.errors import UserInputError

        if world_size() > 1:  # its own training loop: each process would train and write alone
            raise UserInputError(
                "--task pairs trains in one process; run it without torchrun or accelerate launch"
            )
        _train_pairs(
            data=data,
            eval_data=eval_data,
            out=out,
            model=model,
            allow_network=allow_network,
            text_col=text_col,
            pair_col=pair_col,
            negative_col=negative_col,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            max_length=max_length,
            seed=seed,
            force=force,
            as_json=as_json,
        )
        return
    run = _run_config(options).validate()
    from tunesmith.engine.distributed import is_main_process
    from tunesmith.engine.train import headline, train

    path = train(run)
    if not is_main_process():  # under torchrun / accelerate launch the main process reports
        return
    metrics = json.loads((path / METRICS_FILE).read_text(encoding="utf-8"))
    if as_json:
        _echo_json(
            _clean_nan(
                {
                    "model_dir": str(path),
                    "task": run.resolved.task,
                    "strategy": run.strategy,
                    "metrics": metrics,
                    "resolved": run.resolved.to_dict(),
                }
            )
        )
        return
    measured_on = f" on {metrics.get('eval_source')}" if metrics.get("report") else ""
    typer.echo(f"saved {path}: {headline(metrics)}{measured_on}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
    app.command("predict")(predict_command)
