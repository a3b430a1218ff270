"""``tunesmith calibrate``: refit a saved model's temperature on new held-out data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from tunesmith.devices import check_device, device_option
from tunesmith.model_dir import CALIBRATION_FILE, ONNX_FILE


def calibrate_locked(
    model: Path,
    data: Path,
    *,
    text_col: str = "text",
    label_col: str = "label",
    label_sep: str | None = None,
    batch_size: int = 32,
    plot: Path | None = None,
    device: str = "auto",
    source: str | None = None,
) -> dict[str, Any]:
    """Refit the temperature(s) of the model at ``model`` (every member's, for a seed ensemble)
    on ``data``, holding each directory's lock, and say on stderr what else to know: what
    ``calibrate --json`` prints. The Python API calls it too (``source``: how the saved
    calibration names the data, when not by its path)."""
    import contextlib

    from tunesmith.engine.ensemble import LEGACY_MEMBERS_FILES, MEMBERS_FILE, read_members
    from tunesmith.engine.evaluate import calibrate_model
    from tunesmith.engine.lexical import LEXICAL_ARRAYS, LEXICAL_FILE
    from tunesmith.io import check_output_file
    from tunesmith.locks import writing_into

    if plot is not None:
        check_output_file(plot, "--plot")  # before calibration.json is rewritten
    check_device(device)  # before the data is read and the model directory locked
    members = read_members(model)
    names = [CALIBRATION_FILE, LEXICAL_FILE, LEXICAL_ARRAYS]
    # The model directory (and each ensemble member's) is this command's output: not while a
    # train --force replaces it, nor while another calibrate writes it.
    with contextlib.ExitStack() as held:
        removed: list[Path] = []
        for n, where in enumerate([model, *members]):
            # An ensemble's manifest gets the mean's temperature.
            mine = names + [MEMBERS_FILE, *LEGACY_MEMBERS_FILES] if n == 0 and members else names
            removed += held.enter_context(writing_into(where, mine))
        if removed:
            typer.echo(f"removed {len(removed)} temporary file(s) a stopped run left", err=True)
        result = calibrate_model(
            model,
            data,
            text_col,
            label_col,
            label_sep=label_sep,
            batch_size=batch_size,
            plot_path=plot,
            device=device,
            source=source,
        )
    from tunesmith.commands.engine import say_if_ensemble

    # After the fit: a refused run (a tagger, a bad file) says one line.
    say_if_ensemble(
        model, None, members, how="every member's temperature was refitted, then the mean's own"
    )
    for where in [model, *members]:
        if (Path(where) / ONNX_FILE).is_file():
            # Its graph holds the temperature it was exported with.
            typer.echo(
                f"warning: {Path(where) / ONNX_FILE} holds the previous calibration; export "
                f"it again: tunesmith export --model {where} --force",
                err=True,
            )
    return result


def calibrate_command(
    model: Path = typer.Option(
        ..., "--model", "-m", help="A model directory (from `tunesmith train`)."
    ),
    data: Path = typer.Option(
        ..., "--data", help="Held-out labelled file the model did not train on."
    ),
    text_col: str = typer.Option("text", "--text-col", help="Column holding the text."),
    label_col: str = typer.Option("label", "--label-col", help="Column holding the label(s)."),
    label_sep: str | None = typer.Option(
        None, "--label-sep", help="Separator of several labels in one cell (multi-label)."
    ),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Texts per forward pass."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Write a before/after reliability diagram PNG to this path."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON document."),
    device: str = device_option(),
) -> None:
    """Fit the temperature (multi-label: one per label) that minimises NLL on held-out data.

    Only calibration.json beside the weights is rewritten, atomically (and, for a model with a
    lexical share, --lexical, the mix's own temperature in lexical.json); predictions keep their
    ranking, so accuracy does not change (except with a lexical share, mixed into the calibrated
    probabilities). A seed ensemble (ensemble.json) has every member refitted on the data, as
    its scoring averages their calibrated probabilities, and then that mean its own temperature
    (saved in ensemble.json), fitted on the same data: calibrated members do not average to a
    calibrated mean. ECE uses 15 equal-width confidence bins.
    """
    result = calibrate_locked(
        model,
        data,
        text_col=text_col,
        label_col=label_col,
        label_sep=label_sep,
        batch_size=batch_size,
        plot=plot,
        device=device,
    )
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    typer.echo(f"{_fitted(result)} (fitted on {result['n_examples']} examples of {data})")
    if "accuracy_before" in result:  # a lexical share: the mixed labels move with the temperature
        accuracy = (
            f"accuracy {result['accuracy_before']:.4f} -> {result['accuracy']:.4f} (mixed with "
            "the lexical model; ECE and NLL are the transformer's)"
        )
    else:
        accuracy = f"accuracy {result['accuracy']:.4f} (unchanged)"
    typer.echo(
        f"ECE {result['ece_before']:.4f} -> {result['ece_after']:.4f}   "
        f"NLL {result['nll_before']:.4f} -> {result['nll_after']:.4f}   {accuracy}"
    )
    if "lexical_temperature" in result:
        typer.echo(
            f"the mix's own temperature {result['lexical_temperature_before']:.4f} -> "
            f"{result['lexical_temperature']:.4f} (lexical.json; it moves no label)"
        )
    for member in result.get("members", []):
        typer.echo(
            f"ensemble member {member['model']}: {_fitted(member)}, ECE "
            f"{member['ece_before']:.4f} -> {member['ece_after']:.4f}"
        )
    mean = result.get("ensemble")
    if mean:
        typer.echo(
            f"the ensemble's mean of the calibrated members: {_fitted(mean)}, ECE "
            f"{mean['ece_before']:.4f} -> {mean['ece_after']:.4f}   NLL "
            f"{mean['nll_before']:.4f} -> {mean['nll_after']:.4f}"
        )
    for found in [result, *result.get("members", [])]:
        typer.echo(f"saved {Path(found['model']) / CALIBRATION_FILE}", err=True)
    if mean:
        typer.echo(f"saved the mean's temperature in {mean['manifest']}", err=True)
    if result.get("reliability_diagram"):
        typer.echo(f"reliability diagram: {result['reliability_diagram']}", err=True)


def _fitted(result: dict[str, Any]) -> str:
    """The fitted temperature(s) of one calibration result, for the terminal."""
    if "temperatures" in result:
        temps = result["temperatures"]
        return f"{len(temps)} label temperatures, {min(temps):.3f} to {max(temps):.3f}"
    if result["temperature"] == 1.0:
        # fit_temperature's answer when there is nothing to fit: without saying so, "1.0000"
        # read as a calibration that did nothing.
        return (
            "temperature 1.0000 (kept: the data has one class, or the model separates it "
            "perfectly, which says nothing about new data)"
        )
    return f"temperature {result['temperature']:.4f}"


def register(app: typer.Typer) -> None:
    """Add ``calibrate`` to ``app``."""
    app.command("calibrate")(calibrate_command)
