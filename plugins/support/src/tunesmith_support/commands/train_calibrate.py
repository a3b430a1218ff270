"""``tunesmith support train`` and ``calibrate``: learn from labelled past questions, and fit
the confidence and the thresholds of the answer/clarify/hand-off decisions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from tunesmith.devices import check_device, device_option, precision_option
from tunesmith_support.commands.shared import (
    ANSWER_COL_HELP,
    KB_OPTION,
    QUESTION_COL_HELP,
    kb_writer,
)


def calibrate_command(
    kb: Path = KB_OPTION,
    data: list[Path] = typer.Option(
        ..., "--data", help="Held-out questions with answer ids (repeat for several files)."
    ),
    question_col: str = typer.Option("question", "--question-col", help=QUESTION_COL_HELP),
    answer_col: str = typer.Option("answer_id", "--answer-col", help=ANSWER_COL_HELP),
    target_precision: float = typer.Option(
        0.9, "--target-precision", help="Share of answers that must be right (sets thresholds)."
    ),
    lexical: bool = typer.Option(
        True, "--lexical/--no-lexical", help="Try BM25 scores (kept only if they help)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    device: str = device_option(),
) -> None:
    """Fit the confidence and the answer/clarify thresholds on labelled held-out questions."""
    from tunesmith_support.kbindex import kb_entries, renamed_ids
    from tunesmith_support.learning import calibrate_kb, read_labelled

    check_device(device)  # before the questions are read

    # The ids only: calibrate_kb loads the encoder, once (it was loaded here too).
    rows = read_labelled(
        data,
        {e.id for e in kb_entries(kb)},
        question_col=question_col,
        answer_col=answer_col,
        renamed=renamed_ids(kb),
    )
    with kb_writer(kb):
        calibration = calibrate_kb(
            kb, rows, target_precision=target_precision, lexical=lexical, device=device
        )
    _print_calibration(calibration.to_dict(), as_json)


def threshold_text(threshold: float) -> str:
    """``>= 0.812``, or ``never`` for a threshold above 1: calibration stores 1.01 when no
    threshold reaches the target precision, and no probability reaches that."""
    return f">= {threshold:.3f}" if threshold <= 1.0 else "never (no threshold reaches it)"


def _print_calibration(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    report = data["report"]
    typer.echo(
        f"answer when confidence {threshold_text(data['answer_threshold'])} "
        f"(target precision {data['target_precision']}); clarify when the top 3 hold the answer "
        f"with p {threshold_text(data['clarify_threshold'])}"
    )
    typer.echo(
        f"held-out: {report['questions']} questions ({report['out_of_scope']} out of scope), "
        f"top-1 {report['top1_accuracy_in_scope']:.3f}, answer rate {report['answer_rate']:.3f} "
        f"at precision {report['answer_precision']:.3f}, ECE {report['ece']:.4f} "
        f"(raw top score {report['ece_uncalibrated_top_score']:.4f})"
    )
    weights = data["weights"]
    line = f"weights: lexical {weights['lexical']}, intent {weights['intent']}; MRR retrieval only {report['mrr_retrieval_only']}"
    if "mrr_best_with_lexical" in report:
        line += f", best with BM25 {report['mrr_best_with_lexical']}"
    if "mrr_best_with_intent" in report:
        line += f", best with intent {report['mrr_best_with_intent']}"
    typer.echo(line)


def train_command(
    kb: Path = KB_OPTION,
    data: list[Path] = typer.Option(
        ...,
        "--data",
        help="Past questions with the id of the entry that answered them (repeat for several files).",
    ),
    question_col: str = typer.Option("question", "--question-col", help=QUESTION_COL_HELP),
    answer_col: str = typer.Option("answer_id", "--answer-col", help=ANSWER_COL_HELP),
    encoder: bool = typer.Option(
        True, "--encoder/--no-encoder", help="Fine-tune the encoder on question/entry pairs."
    ),
    classifier: bool = typer.Option(
        False, "--classifier/--no-classifier", help="Also train an intent classifier over ids."
    ),
    index_questions: bool = typer.Option(
        False,
        "--index-questions/--no-index-questions",
        help="Also index the training questions as extra questions of their entries.",
    ),
    held_out: float = typer.Option(0.3, "--held-out", help="Share kept for calibration."),
    epochs: float = typer.Option(3.0, "--epochs", help="Pair-training epochs."),
    classifier_epochs: float | None = typer.Option(
        None, "--classifier-epochs", help="Classifier epochs (default: the engine's choice)."
    ),
    classifier_members: int = typer.Option(
        1, "--classifier-members", min=1, help="Train the classifier as an N-seed ensemble."
    ),
    target_precision: float = typer.Option(
        0.9, "--target-precision", help="Share of answers that must be right (sets thresholds)."
    ),
    seed: int = typer.Option(42, "--seed", help="Random seed (held-out split, training)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    device: str = device_option(
        "The encoder's pair training, the classifier, re-encoding and calibration all run there."
    ),
    precision: str = precision_option(),
) -> None:
    """Learn from past questions: tune the encoder and/or a classifier, re-encode, calibrate."""
    from tunesmith_support.learning import train_kb

    with kb_writer(kb):
        result = train_kb(
            kb,
            list(data),
            question_col=question_col,
            answer_col=answer_col,
            encoder=encoder,
            classifier=classifier,
            index_questions=index_questions,
            held_out=held_out,
            epochs=epochs,
            classifier_epochs=classifier_epochs,
            classifier_members=classifier_members,
            target_precision=target_precision,
            seed=seed,
            log=lambda m: typer.echo(m, err=True),
            device=device,
            precision=precision,
        )
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    if "pair_metrics" in result:
        m = result["pair_metrics"]
        typer.echo(
            f"encoder: held-out MRR {m['untuned']['mrr']:.3f} -> {m['tuned']['mrr']:.3f}, "
            f"recall@1 {m['untuned']['recall@1']:.3f} -> {m['tuned']['recall@1']:.3f}"
        )
    if "classifier" in result:
        typer.echo(f"classifier: {result['classifier']}")
    rep = result["calibration"]
    typer.echo(
        f"calibrated on {rep['questions']} held-out questions: top-1 "
        f"{rep['top1_accuracy_in_scope']:.3f}, answer rate {rep['answer_rate']:.3f} at precision "
        f"{rep['answer_precision']:.3f}, ECE {rep['ece']:.4f}"
    )
