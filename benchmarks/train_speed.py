"""Training speed: tunesmith's default recipe against the plain transformers Trainer recipe.

Both sides run in this process, on the same banking77 data, model and machine:

1. **Time to accuracy.** The plain recipe (``AutoModelForSequenceClassification``, every text
   padded to 64 tokens, full fine-tune, Trainer defaults: lr 5e-5, batch 16) against
   ``tunesmith train`` with its defaults (mean-pooling head initialised from a linear probe,
   dynamic padding, length-grouped batches, max length from the data, lr from the model size),
   for the same number of epochs. Test accuracy is measured after every epoch (and, for
   tunesmith, before the first one) with the clock stopped. ``speedup`` is the plain recipe's
   time to its final accuracy over tunesmith's time to come within 0.5 points of it.
2. **Head-only epoch.** The Trainer with the encoder frozen (it still runs the encoder forward
   on every example, every epoch) against a ``tunesmith train --strategy head`` epoch on
   features from the frozen-feature cache.

Achieved GFLOP/s counts the transformer's multiply-adds on the tokens each side actually
processes (padding included), 6 x parameters per token for a training step plus attention.
Prints a table and ends with ONE JSON line. ``--quick`` uses 12 texts per intent, 2 epochs and
500 test texts (a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench_common import (  # noqa: E402
    DEFAULT_DATA,
    forward_flops_per_token,
    log,
    read_csv,
    write_csv,
)

PLAIN_MAX_LENGTH = 64


def per_label(rows: list[dict[str, str]], k: int, seed: int = 0) -> list[dict[str, str]]:
    by_label: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_label[row["label"]].append(row)
    rng = random.Random(seed)
    return [
        r for lab in sorted(by_label) for r in rng.sample(by_label[lab], min(k, len(by_label[lab])))
    ]


def flops_per_token(config: Any, seq_len: float) -> float:
    """Training FLOPs per token: a forward pass and a backward pass twice its cost."""
    return 3.0 * forward_flops_per_token(config, seq_len)


class TestClock:
    """Measures test accuracy between epochs with the training clock stopped."""

    def __init__(self, texts: list[str], labels: list[str], tokenizer: Any) -> None:
        self.texts, self.labels, self.tokenizer = texts, labels, tokenizer
        self.start = time.perf_counter()
        self.paused = 0.0
        self.points: list[tuple[float, float]] = []  # (training seconds, accuracy)

    def accuracy(self, model: Any, label_names: list[str]) -> float:
        import torch

        # With a cached frozen part the Trainer holds only the trainable top.
        model = getattr(model, "full_model", model)
        was_training = model.training
        model.eval()
        correct = 0
        order = sorted(range(len(self.texts)), key=lambda i: len(self.texts[i]))
        with torch.inference_mode():
            for s in range(0, len(order), 64):
                idx = order[s : s + 64]
                batch = self.tokenizer([self.texts[i] for i in idx], padding=True, truncation=True,
                                       max_length=128, return_tensors="pt")  # fmt: skip
                out = model(**batch)
                logits = out["logits"] if isinstance(out, dict) else out[0]
                predicted = logits.argmax(-1).tolist()
                correct += sum(
                    label_names[p] == self.labels[i] for p, i in zip(predicted, idx, strict=True)
                )
        model.train(was_training)
        return correct / len(self.texts)

    def mark(self, model: Any, label_names: list[str]) -> float:
        paused_at = time.perf_counter()
        acc = self.accuracy(model, label_names)
        self.points.append((paused_at - self.start - self.paused, acc))
        self.paused += time.perf_counter() - paused_at
        log(f"    {self.points[-1][0]:7.1f} s  test accuracy {acc:.4f}")
        return acc


def clock_callback(clock: TestClock, label_names: list[str], at_begin: bool) -> Any:
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
            if at_begin:
                clock.mark(model, label_names)

        def on_epoch_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
            clock.mark(model, label_names)

    return Clock()


def plain_recipe(train_rows, test_rows, epochs, work, *, head_only=False) -> dict[str, Any]:  # noqa: ANN001
    """The Trainer as its documentation shows it: pad to max length, full fine-tune (or the
    encoder frozen for ``head_only``), defaults everywhere else."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        PrinterCallback,
        Trainer,
        TrainingArguments,
    )

    from tunesmith.engine.modeling import quiet_transformers
    from tunesmith.models import resolve_model

    quiet_transformers()
    location = resolve_model("default").location
    labels = sorted({r["label"] for r in train_rows})
    index = {label: i for i, label in enumerate(labels)}
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(location)
    encoded = tokenizer([r["text"] for r in train_rows], padding="max_length", truncation=True,
                        max_length=PLAIN_MAX_LENGTH)  # fmt: skip
    dataset = [
        {"input_ids": encoded["input_ids"][i], "attention_mask": encoded["attention_mask"][i],
         "token_type_ids": encoded["token_type_ids"][i], "labels": index[r["label"]]}
        for i, r in enumerate(train_rows)
    ]  # fmt: skip
    model = AutoModelForSequenceClassification.from_pretrained(
        location, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id=index,
    )  # fmt: skip
    if head_only:
        for param in model.bert.parameters():
            param.requires_grad_(False)
    clock = TestClock([r["text"] for r in test_rows], [r["label"] for r in test_rows], tokenizer)
    clock.start = started
    args = TrainingArguments(
        output_dir=str(work / ("plain_head" if head_only else "plain")),
        per_device_train_batch_size=16,
        num_train_epochs=epochs,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        logging_strategy="no",
        seed=42,
        dataloader_pin_memory=False,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset)
    trainer.remove_callback(PrinterCallback)  # it prints to stdout; the JSON line goes there
    trainer.add_callback(clock_callback(clock, labels, at_begin=False))
    trainer.train()
    total = time.perf_counter() - started - clock.paused
    tokens = len(dataset) * PLAIN_MAX_LENGTH * epochs
    fpt = flops_per_token(model.config, PLAIN_MAX_LENGTH)
    if head_only:
        fpt /= 3  # the frozen encoder runs forward only
    del torch
    return {
        "seconds": total,
        "accuracy": clock.points[-1][1],
        "points": clock.points,
        "tokens": tokens,
        "gflops_per_s": fpt * tokens / total / 1e9,
    }


def tunesmith_recipe(data, test_rows, epochs, work, **settings) -> dict[str, Any]:  # noqa: ANN001
    """``tunesmith train`` with its defaults, test accuracy clocked between epochs."""
    from transformers import AutoTokenizer

    from tunesmith import hookimpl
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.train import train
    from tunesmith.models import resolve_model
    from tunesmith.plugins import get_plugin_manager

    location = resolve_model("default").location
    tokenizer = AutoTokenizer.from_pretrained(location)
    labels = sorted({r["label"] for r in read_csv(data)})
    clock = TestClock([r["text"] for r in test_rows], [r["label"] for r in test_rows], tokenizer)

    class ClockPlugin:
        @hookimpl
        def tunesmith_train_callbacks(self, run):  # noqa: ANN001
            return [clock_callback(clock, labels, at_begin=True)]

    pm = get_plugin_manager()
    name = f"speed-clock-{id(clock)}"
    pm.register(ClockPlugin(), name=name)
    run = RunConfig(data=str(data), out=str(work / "tunesmith"), force=True, epochs=epochs,
                    eval_fraction=0.0, calibrate=False, **settings)  # fmt: skip
    try:
        clock.start = time.perf_counter()
        train(run, log=lambda m: None)
    finally:
        pm.unregister(name=name)
    total = clock.points[-1][0]
    encoded = tokenizer([r["text"] for r in read_csv(data)], truncation=True,
                        max_length=run.resolved.max_length)["input_ids"]  # fmt: skip
    real_tokens = sum(len(x) for x in encoded)
    return {
        "seconds": total,
        "accuracy": clock.points[-1][1],
        "points": clock.points,
        "resolved": run.resolved.to_dict(),
        "tokens": real_tokens * epochs,
        "mean_length": real_tokens / len(encoded),
        # The training loop alone, without the test evaluations made inside it.
        "loop_seconds": run.resolved.train_seconds - clock.paused,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true", help="12 per intent, 2 epochs.")
    parser.add_argument("--per-label", type=int, default=None, help="Texts per intent (all).")
    parser.add_argument("--epochs", type=int, default=None, help="Epochs for both sides (3).")
    parser.add_argument("--test-size", type=int, default=None, help="Test texts (all 3,080).")
    parser.add_argument("--skip-full", action="store_true", help="Only the head-epoch part.")
    args = parser.parse_args()

    from tunesmith.engine.threads import configure_threads

    threads = configure_threads()
    banking = args.data_root / "banking77"
    if not (banking / "train.csv").is_file():
        log(f"banking77 not found under {args.data_root}; pass --data-root")
        return 2
    per = args.per_label or (12 if args.quick else None)
    epochs = args.epochs or (2 if args.quick else 3)
    test_size = args.test_size or (500 if args.quick else None)
    train_rows = read_csv(banking / "train.csv")
    if per:
        train_rows = per_label(train_rows, per)
    test_rows = read_csv(banking / "test.csv")
    if test_size:
        test_rows = random.Random(0).sample(test_rows, test_size)
    work = Path(tempfile.mkdtemp(prefix="tunesmith-speed-"))
    os.environ.setdefault("TUNESMITH_CACHE_DIR", str(work / "cache"))
    data = write_csv(work / "train.csv", train_rows)
    log(f"{len(train_rows)} training texts, {len(test_rows)} test texts, {epochs} epochs, "
        f"{threads} threads")  # fmt: skip
    from transformers import AutoConfig

    from tunesmith.models import resolve_model

    config = AutoConfig.from_pretrained(resolve_model("default").location)
    rows: list[list[str]] = []
    result: dict[str, Any] = {"benchmark": "train_speed", "quick": args.quick,
                              "train_texts": len(train_rows), "test_texts": len(test_rows),
                              "epochs": epochs, "threads": threads,
                              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")}  # fmt: skip

    if not args.skip_full:
        log("plain Trainer recipe (pad to 64, full fine-tune, lr 5e-5):")
        plain = plain_recipe(train_rows, test_rows, epochs, work)
        log("tunesmith default recipe:")
        ours = tunesmith_recipe(data, test_rows, epochs, work)
        target = plain["accuracy"] - 0.005
        reached = next((t for t, acc in ours["points"] if acc >= target), None)
        ours_fpt = flops_per_token(config, ours["mean_length"])
        # Training FLOPs are spent in the training loop only; the probe is forward-only.
        ours_gflops = ours_fpt * ours["tokens"] / max(ours["loop_seconds"], 1e-9) / 1e9
        speedup = plain["seconds"] / reached if reached else None
        result.update({
            "speedup": round(speedup, 2) if speedup else None,
            "plain_accuracy": round(plain["accuracy"], 4),
            "tunesmith_accuracy": round(ours["accuracy"], 4),
            "plain_seconds": round(plain["seconds"], 1),
            "tunesmith_seconds_to_target": round(reached, 1) if reached else None,
            "tunesmith_seconds_total": round(ours["seconds"], 1),
            "same_epochs_speedup": round(plain["seconds"] / ours["seconds"], 2),
            "plain_gflops_per_s": round(plain["gflops_per_s"], 1),
            "tunesmith_gflops_per_s": round(ours_gflops, 1),
            "plain_curve": [[round(t, 1), round(a, 4)] for t, a in plain["points"]],
            "tunesmith_curve": [[round(t, 1), round(a, 4)] for t, a in ours["points"]],
        })  # fmt: skip
        rows.append(["plain Trainer, full", f"{plain['seconds']:.0f}", f"{plain['accuracy']:.4f}",
                     f"{plain['gflops_per_s']:.0f}"])  # fmt: skip
        rows.append(["tunesmith default, full", f"{ours['seconds']:.0f} (to target "
                     f"{reached:.0f})" if reached else f"{ours['seconds']:.0f} (target missed)",
                     f"{ours['accuracy']:.4f}", f"{ours_gflops:.0f}"])  # fmt: skip

    log("plain Trainer, head only (encoder frozen), 1 epoch:")
    plain_head = plain_recipe(train_rows, test_rows, 1, work, head_only=True)
    log("tunesmith --strategy head, first epoch (builds the cache), then a cached epoch:")
    # A cache folder of its own, so that the first run really builds the cache.
    head = {"strategy": "head", "head_init": "random", "cache_dir": str(work / "head-cache")}
    first = tunesmith_recipe(data, test_rows, 1, work, **head)
    cached = tunesmith_recipe(data, test_rows, 1, work, **head)
    cached_epoch = cached["loop_seconds"]
    head_speedup = plain_head["seconds"] / cached_epoch
    result.update({
        "head_epoch_speedup": round(head_speedup, 1),
        "plain_head_epoch_seconds": round(plain_head["seconds"], 2),
        "tunesmith_cached_head_epoch_seconds": round(cached_epoch, 2),
        "tunesmith_cache_build_seconds": first["resolved"].get("feature_cache_seconds"),
        "plain_head_accuracy": round(plain_head["accuracy"], 4),
        "tunesmith_head_accuracy": round(cached["accuracy"], 4),
        "plain_head_gflops_per_s": round(plain_head["gflops_per_s"], 1),
    })  # fmt: skip
    if "speedup" not in result:
        result["speedup"] = result["head_epoch_speedup"]
    rows.append(["plain Trainer, head epoch", f"{plain_head['seconds']:.1f}",
                 f"{plain_head['accuracy']:.4f}", f"{plain_head['gflops_per_s']:.0f}"])  # fmt: skip
    rows.append(["tunesmith head, cached epoch", f"{cached_epoch:.2f} (cache built once in "
                 f"{first['resolved'].get('feature_cache_seconds')} s)",
                 f"{cached['accuracy']:.4f}", "-"])  # fmt: skip

    headers = ["recipe", "seconds", "test accuracy", "GFLOP/s"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
