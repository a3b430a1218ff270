"""``tunesmith evaluate``: a model measured on labelled data, and its report printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from tunesmith.commands.engine.ensemble_note import say_if_ensemble
from tunesmith.commands.engine.output import clean_nan, echo_json, fmt, print_table
from tunesmith.devices import DEVICE_HELP


def _print_evaluation(report: dict[str, Any]) -> None:
    if report.get("task") == "ner":
        typer.echo(
            f"entity F1 {fmt(report['f1'])}  precision {fmt(report['precision'])}  "
            f"recall {fmt(report['recall'])}  (strict, {report['scheme']} tags, "
            f"{report['n_sentences']} sentences)"
        )
        rows = [
            [t, fmt(m["precision"]), fmt(m["recall"]), fmt(m["f1"]), str(m["support"])]
            for t, m in report["per_type"].items()
        ]
        for name in ("micro", "macro"):
            m = report[name]
            rows.append(
                [
                    f"{name} avg",
                    fmt(m["precision"]),
                    fmt(m["recall"]),
                    fmt(m["f1"]),
                    str(m["support"]),
                ]
            )
        print_table(["type", "precision", "recall", "f1", "support"], rows)
        return
    head = [
        f"accuracy {fmt(report['accuracy'])}",
        f"macro F1 {fmt(report['macro_f1'])}",
        f"weighted F1 {fmt(report['weighted_f1'])}",
    ]
    if report.get("task") == "multilabel":
        head.insert(1, f"micro F1 {fmt(report['micro_f1'])}")
    typer.echo("  ".join(head) + f"  ({report['n_examples']} examples)")
    cal = report.get("calibration", {})
    if cal.get("applied"):
        typer.echo(
            f"calibration: ECE {fmt(cal['ece_before'])} -> {fmt(cal['ece_after'])}, "
            f"NLL {fmt(cal['nll_before'])} -> {fmt(cal['nll_after'])} (15 equal-width bins)"
        )
        if report.get("lexical"):  # those figures are the transformer's temperature at work
            typer.echo(
                f"with the lexical model's {report['lexical']['weight']:g} share: ECE "
                f"{fmt(report['ece'])}, NLL {fmt(report['nll'])} (the line above: the "
                "transformer alone)"
            )
    else:
        typer.echo(
            f"ECE {fmt(report['ece'])}  NLL {fmt(report['nll'])} (not calibrated; "
            "`tunesmith calibrate` fits a temperature)"
        )
    rows = [
        [label, fmt(m["precision"]), fmt(m["recall"]), fmt(m["f1"]), str(m["support"])]
        for label, m in report["per_label"].items()
    ]
    print_table(["label", "precision", "recall", "f1", "support"], rows)
    for name, path in (report.get("plots") or {}).items():
        typer.echo(f"{name.replace('_', ' ')}: {path}", err=True)


def evaluation_report(
    loaded: Any,
    members: list[Any],
    data: Path,
    *,
    text_col: str = "text",
    label_col: str = "label",
    label_sep: str | None = None,
    batch_size: int = 32,
    plot: Path | None = None,
    note_for: Path | None = None,
) -> dict[str, Any]:
    """What ``evaluate --json`` prints for a loaded model (and its ensemble ``members``) on the
    labelled file ``data`` (NaN as null); the Python API calls it too. ``note_for``: the model
    folder to name in the seed-ensemble note on stderr (``None``: no note)."""
    from tunesmith.engine.evaluate import evaluate_model, load_eval_dataset
    from tunesmith.errors import UserInputError

    if plot is not None and loaded.task == "ner":
        raise UserInputError(
            "--plot draws a confusion matrix and a reliability diagram, which a NER model "
            "does not have; its report is per entity type"
        )
    dataset = load_eval_dataset(loaded, data, text_col, label_col, label_sep)
    if note_for is not None:  # after the checks: a refused run says one line
        say_if_ensemble(note_for, loaded, members)
    report = evaluate_model(
        loaded,
        dataset,
        batch_size=batch_size,
        plot_dir=plot,
        data_path=data,
        label_col=label_col,
        members=members,
    )
    return clean_nan(report)


def evaluate_command(
    model: Path = typer.Option(
        ..., "--model", "-m", help="A model directory (from `tunesmith train`)."
    ),
    data: Path = typer.Option(
        ...,
        "--data",
        help="Labelled evaluation file: CSV, TSV, JSONL, JSON, Parquet, Excel .xlsx "
        "('book.xlsx#Sheet') or CoNLL tokens (.conll/.txt).",
    ),
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
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
) -> None:
    """Measure a model on labelled data: accuracy, F1, per-label scores, calibration (ECE/NLL).

    NER models get strict entity-level precision, recall and F1 per entity type.
    """
    from tunesmith.engine.ensemble import load_ensemble
    from tunesmith.io import check_output_folder

    if plot is not None:
        check_output_folder(plot, "--plot")  # before the model loads: a bad path costs no time
    loaded, *members = load_ensemble(model, device=device)
    report = evaluation_report(
        loaded,
        members,
        data,
        text_col=text_col,
        label_col=label_col,
        label_sep=label_sep,
        batch_size=batch_size,
        plot=plot,
        note_for=model,
    )
    if as_json:
        echo_json(report)
    else:
        _print_evaluation(report)
