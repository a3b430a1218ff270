"""Calibration: ECE and NLL before and after temperature scaling, and accuracy (unchanged).

With ``--model DIR --data F`` it measures a trained model on the labelled file F, using the
temperature saved in the model's ``calibration.json``; ``--fit H`` instead fits a temperature on
the held-out file H in memory (the model directory is not written). ECE uses 15 equal-width
confidence bins over the top-label confidence.

Without ``--model`` it builds a model to measure: the default encoder with mean pooling and a
logistic-regression head on frozen embeddings of a stratified slice of the finance tweets' train
split, fits the temperature on other train rows and measures on the validation split (sample data when
the shared data folder is absent). A fine-tuned model is usually far more over-confident than
this probe, so run it on real trained models for the figures that matter.

Usage: python benchmarks/calibration.py [--quick] [--model DIR --data F [--fit H]] [--plot PNG]
Prints a table and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from infer_speed import REPO, build_probe_model, shared_data_dir  # noqa: E402

from tunesmith.events import strict_json  # noqa: E402


def default_files() -> tuple[Path, Path, str]:
    """(train, test, name): the finance tweets when present, else the sample intents."""
    shared = shared_data_dir()
    tweets = shared / "twitter_financial_news_sentiment" if shared else None
    if tweets and (tweets / "valid.csv").exists():
        return tweets / "train.csv", tweets / "valid.csv", "finance tweets"
    sample = REPO / "core" / "src" / "tunesmith" / "sample_data"
    return sample / "support_intents.csv", sample / "support_intents_eval.csv", "sample intents"


def held_out_slice(train_file: Path, fraction: float, n: int, out: Path) -> Path:
    """Write up to ``n`` training rows that the probe did not train on, for fitting T."""
    import csv
    import random

    from infer_speed import per_label_subset

    from tunesmith.data.load import load_text_dataset

    data = load_text_dataset(train_file)
    used = set(per_label_subset(data.texts, data.first_labels, None, fraction=fraction)[0])
    rest = [(t, lab) for t, lab in zip(data.texts, data.first_labels, strict=True) if t not in used]
    random.Random(1).shuffle(rest)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rest[:n])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller slices; under 5 minutes")
    parser.add_argument("--model", type=Path, help="a trained model directory")
    parser.add_argument("--data", type=Path, help="labelled file to measure on")
    parser.add_argument("--fit", type=Path, help="held-out file to fit the temperature on")
    parser.add_argument("--text-col", default="text")
    parser.add_argument("--label-col", default="label")
    parser.add_argument("--label-sep", default=None)
    parser.add_argument("--plot", type=Path, help="write a before/after reliability diagram")
    args = parser.parse_args()

    import numpy as np

    from tunesmith.engine.calibration import (
        calibration_probs,
        calibration_summary,
        fit_calibration,
    )
    from tunesmith.engine.evaluate import label_targets, load_eval_dataset
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.plots import save_reliability_diagram
    from tunesmith.engine.predict import predict_logits

    tmp = tempfile.TemporaryDirectory(prefix="tunesmith-calib-")
    fit_file = args.fit
    if args.model is None:
        train_file, test_file, name = default_files()
        fraction = 0.05 if args.quick else 0.2
        print(
            f"building a probe model on a stratified {fraction:.0%} of {train_file}",
            file=sys.stderr,
        )
        started = time.perf_counter()
        model_dir = build_probe_model(train_file, None, Path(tmp.name) / "model", fraction=fraction)
        print(f"  built in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        fit_file = held_out_slice(
            train_file, fraction, 500 if args.quick else 1500, Path(tmp.name) / "fit.csv"
        )
        data_file, model_note = test_file, f"probe ({fraction:.0%} of train) on {name}"
    else:
        if args.data is None:
            parser.error("--model needs --data")
        model_dir, data_file, model_note = args.model, args.data, str(args.model)

    loaded = load_model(model_dir)
    if loaded.task == "ner":
        parser.error("calibration applies to sequence classifiers, not token classifiers")
    multilabel = loaded.task == "multilabel"

    def logits_and_targets(path: Path):
        dataset = load_eval_dataset(loaded, path, args.text_col, args.label_col, args.label_sep)
        y = label_targets(loaded, dataset, path, args.label_col)
        return predict_logits(loaded, dataset.texts), y

    if fit_file is not None:
        fit_logits, fit_y = logits_and_targets(fit_file)
        fitted = fit_calibration(fit_logits, fit_y, multilabel=multilabel, source=str(fit_file))
        temperature = fitted.get("temperature", fitted.get("temperatures"))
        source = f"fitted on {fit_file.name} ({len(fit_y)} rows)"
    else:
        temperature = loaded.temperature
        source = "saved calibration.json" if temperature is not None else "none (uncalibrated)"
    logits, y = logits_and_targets(data_file)
    summary = calibration_summary(logits, y, temperature, multilabel)
    if multilabel:
        accuracy = float(np.mean(np.all((logits > 0) == (y > 0), axis=1)))
        after_pred = calibration_probs(logits, temperature, True) > 0.5
        accuracy_after = float(np.mean(np.all(after_pred == (y > 0), axis=1)))
    else:
        accuracy = float(np.mean(logits.argmax(axis=1) == y))
        accuracy_after = float(
            np.mean(calibration_probs(logits, temperature, False).argmax(1) == y)
        )
    if args.plot:
        save_reliability_diagram(
            calibration_probs(logits, None, multilabel),
            y,
            args.plot,
            title=f"{model_note}: reliability on {data_file.name}",
            probs_after=calibration_probs(logits, temperature, multilabel),
        )

    shown_t = (
        "-"
        if temperature is None
        else f"{temperature:.4f}"
        if isinstance(temperature, float)
        else f"{min(temperature):.3f}..{max(temperature):.3f}"
    )
    print(
        f"\ncalibration of {model_note} on {data_file} ({len(y)} rows); temperature: "
        f"{shown_t} [{source}]; ECE with 15 equal-width bins"
    )
    header = f"{'':8} {'ECE':>8} {'NLL':>8} {'accuracy':>9}"
    print(header)
    print("-" * len(header))
    print(f"{'before':8} {summary['ece_before']:8.4f} {summary['nll_before']:8.4f} {accuracy:9.4f}")
    print(
        f"{'after':8} {summary['ece_after']:8.4f} {summary['nll_after']:8.4f} {accuracy_after:9.4f}"
    )
    result = {
        "benchmark": "calibration",
        "model": model_note,
        "data": str(data_file),
        "rows": int(len(y)),
        "temperature": temperature,
        "temperature_source": source,
        "ece_before": summary["ece_before"],
        "ece_after": summary["ece_after"],
        "nll_before": summary["nll_before"],
        "nll_after": summary["nll_after"],
        "accuracy_before": round(accuracy, 4),
        "accuracy_after": round(accuracy_after, 4),
        "ece_bins": 15,
        "quick": args.quick,
    }
    print(strict_json(result))
    tmp.cleanup()


if __name__ == "__main__":
    main()
