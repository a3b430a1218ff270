"""What a plain Hugging Face directory costs in accuracy, and what loading a marked one would do.

tunesmith's default head reads mean-pooled tokens, which the standard transformers classes cannot
compute, so that directory is marked and plain transformers refuses it (docs/cli.md, "Outside
tunesmith"). A user who needs the standard classes can train with ``--pooling cls`` instead.
This measures, in one run on banking77 (10 examples per intent, draw 0 as
``benchmarks/accuracy.py`` draws it; the full test split):

* the default (mean pooling, nearest-example scores) through tunesmith;
* the same weights through ``transformers.pipeline`` with the mark removed: the silent wrong
  answer the refusal prevents;
* ``--pooling cls`` through tunesmith and through ``pipeline`` (a plain directory: they agree).

``--quick``: the first 20 intents (alphabetically), 5 per intent, and their test texts (a
few-shot training of all 77 intents took over 30 minutes on two shared, busy cores). Prints a
table and ends with ONE JSON line. Usage: python benchmarks/portable_pooling.py [--quick] [--data-root ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench_common import DEFAULT_DATA, log, read_csv, write_csv  # noqa: E402

from tunesmith.events import strict_json  # noqa: E402


def draw_per_label(rows: list[dict[str, str]], k: int, seed: int) -> list[dict[str, str]]:
    """``k`` random examples of every label, as benchmarks/accuracy.py draws them."""
    by_label: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_label[row["label"]].append(row)
    rng = random.Random(seed)
    return [row for label in sorted(by_label) for row in rng.sample(by_label[label], k)]


def tunesmith_accuracy(model: Path, texts: list[str], labels: list[str]) -> float:
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.predict import predict_texts

    loaded = load_model(model)
    predicted = [r["label"] for r in predict_texts(loaded, texts, batch_size=64)]
    return sum(p == y for p, y in zip(predicted, labels, strict=True)) / len(labels)


def pipeline_accuracy(model: Path, texts: list[str], labels: list[str]) -> float:
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(model), batch_size=32)
    predicted = [r["label"] for r in classify(texts)]
    return sum(p == y for p, y in zip(predicted, labels, strict=True)) / len(labels)


def unmarked_copy(model: Path, target: Path) -> Path:
    """The directory as tunesmith wrote it before marking: plain transformers loads it."""
    shutil.copytree(model, target, dirs_exist_ok=True)
    config = json.loads((target / "config.json").read_text())
    if "tunesmith_base_model_type" in config:
        config["model_type"] = config.pop("tunesmith_base_model_type")
    (target / "config.json").write_text(json.dumps(config))
    return target


def cell(value: float | str | None) -> str:
    """A table cell 10 wide: an accuracy to 4 places, a word as it is, ``-`` for none."""
    if isinstance(value, float):
        return f"{value:>10.4f}"
    return f"{'-' if value is None else value:>10}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true", help="20 intents, 5 per intent.")
    args = parser.parse_args()
    from transformers.utils import logging as hf_logging

    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.train import train

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    k = 5 if args.quick else 10
    rows = read_csv(args.data_root / "banking77" / "train.csv")
    test = read_csv(args.data_root / "banking77" / "test.csv")
    if args.quick:
        kept = sorted({r["label"] for r in rows})[:20]
        rows = [r for r in rows if r["label"] in kept]
        test = [r for r in test if r["label"] in kept]
    texts, labels = [r["text"] for r in test], [r["label"] for r in test]
    work = Path(tempfile.mkdtemp(prefix="tunesmith-portable-"))
    data = write_csv(work / "train.csv", draw_per_label(rows, k, 1000 * k))
    results: dict[str, dict[str, float | str | None]] = {}
    for pooling in ("auto", "cls"):
        out = work / f"model-{pooling}"
        started = time.perf_counter()
        train(RunConfig(data=str(data), out=str(out), pooling=pooling, force=True), log=log)
        seconds = time.perf_counter() - started
        config = json.loads((out / "config.json").read_text())
        row: dict[str, float | str | None] = {
            "pooling": config.get("tunesmith_pooling"),
            "model_type": config["model_type"],
            "train_seconds": round(seconds, 1),
            "tunesmith": round(tunesmith_accuracy(out, texts, labels), 4),
        }
        try:
            row["pipeline"] = round(pipeline_accuracy(out, texts, labels), 4)
            row["pipeline_refused"] = None
        except ValueError as exc:
            row["pipeline"] = None
            row["pipeline_refused"] = str(exc).split(".")[0]
            copy = unmarked_copy(out, work / f"unmarked-{pooling}")
            row["pipeline_unmarked"] = round(pipeline_accuracy(copy, texts, labels), 4)
        results[pooling] = row
        log(f"{pooling}: {row}")
    mean, cls = results["auto"], results["cls"]
    intents = len({r["label"] for r in rows})
    print(f"\nbanking77, {intents} intents, {k} per intent (draw 0), {len(texts):,} test texts")
    print(f"{'directory':<34}{'tunesmith':>10}{'pipeline':>10}")
    unmarked = mean.get("pipeline_unmarked")
    # A pipeline that loads the marked directory is a finding to report, not a crash.
    refused = "refused" if mean["pipeline"] is None else mean["pipeline"]
    print(f"{'default (mean, marked)':<34}{cell(mean['tunesmith'])}{cell(refused)}")
    print(f"{'  the same, mark removed':<34}{'':>10}{cell(unmarked)}")
    print(f"{'--pooling cls (plain)':<34}{cell(cls['tunesmith'])}{cell(cls['pipeline'])}")
    summary = {
        "benchmark": "portable_pooling",
        "quick": args.quick,
        "intents": intents,
        "per_intent": k,
        "test_texts": len(texts),
        "mean_tunesmith_accuracy": mean["tunesmith"],
        "mean_pipeline_refused": mean["pipeline"] is None,
        "mean_pipeline_unmarked_accuracy": unmarked,
        "cls_tunesmith_accuracy": cls["tunesmith"],
        "cls_pipeline_accuracy": cls["pipeline"],
        "cls_cost_points": round(100 * (mean["tunesmith"] - cls["tunesmith"]), 2),
        "train_seconds": {"mean": mean["train_seconds"], "cls": cls["train_seconds"]},
    }
    shutil.rmtree(work, ignore_errors=True)
    print(strict_json(summary))


if __name__ == "__main__":
    main()
