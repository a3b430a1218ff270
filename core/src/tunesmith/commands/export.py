"""``tunesmith export``: a model directory as a file other runtimes load (ONNX)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tunesmith.model_dir import ONNX_FILE

FORMATS = ("onnx",)


def export_command(
    model: Path = typer.Option(
        ..., "--model", "-m", help="A model directory (from `tunesmith train`)."
    ),
    fmt: str = typer.Option("onnx", "--format", help="onnx (the only format so far)."),
    out: Path | None = typer.Option(
        None, "--out", help="The file to write (default: model.onnx inside the model directory)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace --out when it exists."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON document."),
) -> None:
    """Export a model to ONNX, with its pooling, nearest-example scores and calibration inside.

    Inputs input_ids and attention_mask (from the model directory's tokenizer); outputs logits
    and probabilities, as `tunesmith predict` computes them. The file is checked against the
    model with onnxruntime before it is written. Needs `pip install 'tunesmith\\[export]'`.
    """
    from tunesmith.errors import UserInputError

    if fmt not in FORMATS:
        raise UserInputError(
            f"--format {fmt!r} is not supported; the choice is {', '.join(FORMATS)}"
        )
    from tunesmith.engine.export_onnx import export_onnx

    target = out if out is not None else Path(model) / ONNX_FILE
    report = export_onnx(model, target, force=force)
    if as_json:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    worst = report["max_difference"]
    typer.echo(
        f"wrote {report['path']} ({report['bytes'] / 1e6:.1f} MB, ONNX opset {report['opset']}): "
        f"inputs {', '.join(report['inputs'])}; outputs {', '.join(report['outputs'])}"
    )
    typer.echo(f"includes: {'; '.join(report['includes'])}")
    typer.echo(f"left to the caller: {'; '.join(report['leaves_out'])}")
    typer.echo(
        f"checked with onnxruntime on {report['probe_texts']} probe texts: largest difference "
        f"from tunesmith {worst['probabilities']:.1e} (probabilities), "
        f"{worst['logits']:.1e} (logits, relative above 1)"
    )


def register(app: typer.Typer) -> None:
    """Add ``export`` to ``app``."""
    app.command("export")(export_command)
