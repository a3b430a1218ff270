"""Small helpers shared by the benchmark scripts (run as ``python benchmarks/NAME.py``)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: ``../shared/data`` beside the checkout, unless ``--data-root`` says otherwise.
DEFAULT_DATA = ROOT.parent / "shared" / "data"


def log(message: str) -> None:
    """Progress on stderr, so stdout keeps the table and the JSON line."""
    print(message, file=sys.stderr, flush=True)


def read_csv(path: Path) -> list[dict[str, str]]:
    """Every row of a CSV file as a dict."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    """Write the ``text`` and ``label`` of each row as a CSV file."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["text", "label"])
        writer.writeheader()
        writer.writerows({"text": r["text"], "label": r["label"]} for r in rows)
    return path


def forward_flops_per_token(config: Any, seq_len: float) -> float:
    """Forward FLOPs per token: 2 per weight of the encoder's matrices, plus attention."""
    d, layers = config.hidden_size, config.num_hidden_layers
    ffn = getattr(config, "intermediate_size", 4 * d)
    return layers * (2 * (4 * d * d + 2 * d * ffn) + 4 * d * seq_len)


def peer_versions() -> dict[str, str | None]:
    """Versions of the peers the training benchmarks race (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for name in ("transformers", "sentence-transformers", "setfit"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def setfit_peer(
    train: list[dict[str, str]], test: list[dict[str, str]], work: Path, iterations: int = 20
) -> dict[str, Any]:
    """SetFit on the default model with its default head (logistic regression) and
    ``iterations`` pair iterations; everything else is SetFit's default (batch 16, one epoch,
    body lr 2e-5). ``seconds`` covers loading, pair training and the head fit, as a user waits
    for them; test accuracy is scored after the clock stops. Needs the optional benchmark
    requirements (requirements-bench.txt)."""
    import contextlib
    import time

    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from tunesmith.hf_quiet import silence_transformers
    from tunesmith.models import resolve_model

    silence_transformers()
    started = time.perf_counter()
    # SetFit's trainer prints its log dicts to stdout, where only the table and JSON line go.
    with contextlib.redirect_stdout(sys.stderr):
        model = SetFitModel.from_pretrained(resolve_model("default").location)
        args = TrainingArguments(output_dir=str(work / "setfit"), num_iterations=iterations,
                                 report_to="none", show_progress_bar=False, save_strategy="no",
                                 seed=42)  # fmt: skip
        dataset = Dataset.from_list([{"text": r["text"], "label": r["label"]} for r in train])
        trainer = Trainer(model=model, args=args, train_dataset=dataset)
        trainer.train()
    seconds = time.perf_counter() - started
    predicted = model.predict([r["text"] for r in test], batch_size=64, show_progress_bar=False)
    correct = sum(str(p) == r["label"] for p, r in zip(predicted, test, strict=True))
    return {
        "seconds": seconds,
        "accuracy": correct / len(test),
        "iterations": iterations,
        "steps": int(trainer.st_trainer.state.global_step),
    }
