"""Inference speed: tunesmith predict (fp32 and int8) against the transformers pipeline and ONNX.

Both sides run the same model on the same texts in one process with the same thread settings:
the banking77 test set from the shared data folder when present, the sample data otherwise.
tunesmith sorts texts by token length and pads each batch only to its own longest text, under
``torch.inference_mode``; ``--quantize int8`` adds int8 linear layers, with the activation ranges
recorded on the training texts as ``tunesmith train`` records them. The peer is
``pipeline("text-classification", batch_size=32)`` given the very same in-memory model. The three
runners take turns on chunks of the texts, so a shift in machine load hits them alike, and each
keeps its best of ``--repeats`` passes. A fourth runner is the model exported with
``tunesmith export --format onnx`` (pooling and calibration inside the graph) run by onnxruntime
with the same threads and tunesmith's length-sorted batches (skipped, its keys null, without the
``export`` extra).

Without ``--model`` a model is built in a minute (in a child process, so that its scikit-learn
fit leaves nothing behind in the timed one): the default encoder with mean pooling and a
linear head fitted by logistic regression on frozen embeddings of a few examples per label (a
real, trained model, so the accuracies are meaningful; its accuracy is below a fine-tuned one).

Usage: python benchmarks/infer_speed.py [--quick] [--model DIR] [--data F] [--batch-size 32]
    [--repeats 3]
Prints a table and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
REPO = Path(__file__).resolve().parents[1]

from bench_common import forward_flops_per_token  # noqa: E402

from tunesmith.events import strict_json  # noqa: E402


def shared_data_dir() -> Path | None:
    """The read-only shared data folder: $TUNESMITH_DATA_DIR, ../shared/data, /work/shared/data."""
    for candidate in (
        os.environ.get("TUNESMITH_DATA_DIR"),
        REPO.parent / "shared" / "data",
        "/work/shared/data",
    ):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def default_files() -> tuple[Path, Path, str]:
    """(train, test, name): banking77 when the shared data is there, else the sample data."""
    shared = shared_data_dir()
    if shared and (shared / "banking77" / "test.csv").exists():
        return shared / "banking77" / "train.csv", shared / "banking77" / "test.csv", "banking77"
    sample = REPO / "core" / "src" / "tunesmith" / "sample_data"
    return sample / "support_intents.csv", sample / "support_intents_eval.csv", "sample"


def per_label_subset(
    texts: list[str], labels: list[str], k: int | None, seed: int = 0, fraction: float | None = None
):
    """At most ``k`` examples of each label (or a ``fraction`` of each), drawn with a fixed seed."""
    import random

    rng = random.Random(seed)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    chosen = []
    for idx in by_label.values():
        n = max(1, round(fraction * len(idx))) if fraction else min(k or len(idx), len(idx))
        chosen.extend(rng.sample(idx, n))
    chosen.sort()
    return [texts[i] for i in chosen], [labels[i] for i in chosen]


def mean_pooled_embeddings(model, tokenizer, texts: list[str], batch_size: int = 64):
    """Mean-pooled last hidden states of the model's encoder, length-sorted batches."""
    import numpy as np
    import torch

    from tunesmith.engine.modeling import mean_pool

    encoder = getattr(model, model.base_model_prefix)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=128,
                return_tensors="pt",
            )
            hidden = encoder(**batch).last_hidden_state
            out[idx] = mean_pool(hidden, batch["attention_mask"]).numpy()
    return out


def build_probe_model(
    train_file: Path, per_label: int | None, out_dir: Path, *, fraction: float | None = None
) -> Path:
    """Default encoder + mean pooling + a logistic-regression head on frozen embeddings.

    Trained on ``per_label`` examples of each label, or on a stratified ``fraction`` of the file.
    """
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoTokenizer

    from tunesmith.data.load import load_text_dataset
    from tunesmith.engine.modeling import build_classifier, save_classifier, set_head_weights
    from tunesmith.models import resolve_model

    data = load_text_dataset(train_file)
    texts, labels = per_label_subset(data.texts, data.first_labels, per_label, fraction=fraction)
    names = sorted(set(labels))
    location = resolve_model("default").location
    model = build_classifier(location, task="classification", labels=names, pooling="mean")
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(location)
    features = mean_pooled_embeddings(model, tokenizer, texts)
    probe = LogisticRegression(C=10.0, max_iter=2000)
    probe.fit(features, [names.index(label) for label in labels])
    set_head_weights(model, probe.coef_, probe.intercept_)
    # As `tunesmith train` saves: a mean-pooled head is marked so plain transformers refuses it.
    save_classifier(model, out_dir)
    tokenizer.save_pretrained(out_dir)
    # The activation ranges int8 uses, recorded on the training texts as `tunesmith train` does.
    from tunesmith.engine.int8_ranges import save_int8_ranges

    save_int8_ranges(out_dir, texts)
    return out_dir


def executed_flops(config, lengths: list[int], batch_size: int, *, sort: bool) -> float:
    """Forward FLOPs of one call on texts of these token lengths, padding included.

    The pipeline pads each batch of ``batch_size`` texts, in the order given, to its longest;
    tunesmith sorts the call's texts by length first.
    """
    ordered = sorted(lengths) if sort else list(lengths)
    total = 0.0
    for start in range(0, len(ordered), batch_size):
        batch = ordered[start : start + batch_size]
        width = max(batch)
        total += len(batch) * width * forward_flops_per_token(config, width)
    return total


def onnx_runner_for(model_dir: Path, loaded, threads: int, batch_size: int, tmp):
    """(a runner labelling texts with the ONNX export of ``model_dir``, export seconds), or
    (None, None) without onnxruntime. The export goes to a temporary folder."""
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None:
        print("onnxruntime is not installed: no ONNX column", file=sys.stderr)
        return None, None
    import numpy as np
    import onnxruntime

    from tunesmith.engine.export_onnx import export_onnx

    folder = Path(tmp.name) if tmp is not None else Path(tempfile.mkdtemp(prefix="tunesmith-"))
    started = time.perf_counter()
    report = export_onnx(model_dir, folder / "model.onnx", force=True)
    took = round(time.perf_counter() - started, 1)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # As torch's threads wait passively on a busy machine (engine/threads.py), onnxruntime's
    # must not spin: spinning halved its rate here with other processes on the cores.
    passive = os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
    options.add_session_config_entry("session.intra_op.allow_spinning", "0" if passive else "1")
    session = onnxruntime.InferenceSession(
        report["path"], options, providers=["CPUExecutionProvider"]
    )
    labels, tokenizer = loaded.labels, loaded.tokenizer

    def run(chunk: list[str]) -> list[str]:
        # tunesmith's batching: sorted by length, each batch padded to its own longest text.
        ids = tokenizer(chunk, truncation=True, max_length=loaded.max_length)["input_ids"]
        order = sorted(range(len(chunk)), key=lambda i: -len(ids[i]))
        out = [""] * len(chunk)
        for start in range(0, len(order), batch_size):
            part = order[start : start + batch_size]
            width = max(len(ids[i]) for i in part)
            input_ids = np.zeros((len(part), width), dtype=np.int64)
            mask = np.zeros((len(part), width), dtype=np.int64)
            for row, i in enumerate(part):
                input_ids[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1
            if tokenizer.pad_token_id:
                input_ids[mask == 0] = tokenizer.pad_token_id
            (probs,) = session.run(
                ["probabilities"], {"input_ids": input_ids, "attention_mask": mask}
            )
            for row, i in enumerate(part):
                out[i] = labels[int(probs[row].argmax())]
        return out

    return run, took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer texts; under 5 minutes")
    parser.add_argument("--model", type=Path, help="a trained model directory")
    parser.add_argument("--data", type=Path, help="labelled test file (default: banking77 test)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, help="use at most this many test texts")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed passes; each runner keeps its best (3)"
    )
    parser.add_argument(
        "--probe-dir", type=Path, help="keep the built probe model here (reused when present)"
    )
    parser.add_argument("--build-probe", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--per-label", type=int, default=30, help=argparse.SUPPRESS)
    parser.add_argument("--train", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_probe is not None:  # the child process of the run below
        build_probe_model(args.train, args.per_label, args.build_probe)
        return

    import numpy as np

    from tunesmith.data.load import load_text_dataset
    from tunesmith.engine.loading import load_model, quiet_transformers
    from tunesmith.engine.predict import predict_texts
    from tunesmith.engine.threads import configure_threads

    threads = configure_threads()
    train_file, test_file, data_name = default_files()
    if args.data:
        test_file, data_name = args.data, args.data.stem
    tmp = None
    model_note = "given"
    if args.model is None and args.probe_dir and (args.probe_dir / "config.json").exists():
        args.model, model_note = args.probe_dir, f"probe reused from {args.probe_dir}"
    if args.model is None:
        tmp = tempfile.TemporaryDirectory(prefix="tunesmith-bench-")
        per_label = 10 if args.quick else 30
        print(
            f"building a probe model: default encoder, mean pooling, logistic regression on "
            f"{per_label} examples per label of {train_file}",
            file=sys.stderr,
        )
        started = time.perf_counter()
        model_dir = args.probe_dir or Path(tmp.name) / "model"
        # Built in a child process: after scikit-learn's fit in this process, every runner
        # (the pipeline too) ran 30-40 % slower (109 against 153 texts/s for the pipeline).
        subprocess.run(
            [sys.executable, __file__, "--build-probe", str(model_dir), "--per-label",
             str(per_label), "--train", str(train_file)],
            check=True,
        )  # fmt: skip
        print(f"  built in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        model_note = f"probe ({per_label}/label, frozen encoder + LR head)"
    else:
        model_dir = args.model

    test = load_text_dataset(test_file)
    texts, gold = test.texts, test.first_labels
    limit = args.limit or (800 if args.quick else None)
    if limit and limit < len(texts):
        rng = np.random.default_rng(0)
        keep = sorted(rng.choice(len(texts), limit, replace=False).tolist())
        texts, gold = [texts[i] for i in keep], [gold[i] for i in keep]

    fp32 = load_model(model_dir)
    int8 = load_model(model_dir, quantize="int8")
    from transformers import pipeline

    with quiet_transformers():
        # The peer gets the very same in-memory model and tokenizer.
        peer = pipeline(
            "text-classification", model=fp32.model, tokenizer=fp32.tokenizer, device=-1
        )

    runners = [
        (
            "transformers pipeline (fp32)",
            lambda chunk: [
                r["label"] for r in peer(chunk, batch_size=args.batch_size, truncation=True)
            ],
        ),
        (
            "tunesmith predict (fp32)",
            lambda chunk: [
                r["label"] for r in predict_texts(fp32, chunk, batch_size=args.batch_size)
            ],
        ),
        (
            "tunesmith predict --quantize int8",
            lambda chunk: [
                r["label"] for r in predict_texts(int8, chunk, batch_size=args.batch_size)
            ],
        ),
    ]
    onnx_runner, onnx_seconds = onnx_runner_for(model_dir, fp32, threads, args.batch_size, tmp)
    if onnx_runner is not None:
        runners.append(("onnxruntime (tunesmith export)", onnx_runner))
    warm = texts[: args.batch_size]
    for _, run in runners:
        run(warm)
    # The runners take turns on chunks of the texts, in a rotating order, so that a change in
    # the machine's load during the run (other processes) falls on all of them alike.
    # The whole rotation is repeated and each runner keeps its best pass, as timeit does: on a
    # virtual machine the same code ran 330-550 texts/s from one minute to the next.
    n_chunks = 4 if args.quick else 8
    size = -(-len(texts) // n_chunks)
    seconds = [float("inf")] * len(runners)
    predicted: list[list[str]] = []
    for _ in range(max(1, args.repeats)):
        passes = [0.0] * len(runners)
        predicted = [[] for _ in runners]
        for c in range(n_chunks):
            chunk = texts[c * size : (c + 1) * size]
            for k in range(len(runners)):
                r = (c + k) % len(runners)
                start = time.perf_counter()
                predicted[r].extend(runners[r][1](chunk))
                passes[r] += time.perf_counter() - start
        seconds = [min(best, took) for best, took in zip(seconds, passes, strict=True)]
    # Achieved GFLOP/s (GOP/s for int8): the forward work each runner executes, padding
    # included, chunk by chunk as it was called, over its best pass.
    lengths = [len(ids) for ids in fp32.tokenizer(texts, truncation=True)["input_ids"]]
    chunks = [lengths[c * size : (c + 1) * size] for c in range(n_chunks)]
    work = [
        sum(executed_flops(fp32.model.config, ch, args.batch_size, sort=k > 0) for ch in chunks)
        for k in range(len(runners))
    ]
    rows = []
    for (name, _), secs, labels, flops in zip(runners, seconds, predicted, work, strict=True):
        accuracy = float(np.mean([p == g for p, g in zip(labels, gold, strict=True)]))
        rows.append((name, secs, len(texts) / secs, accuracy, flops / secs / 1e9))
        print(f"  {name}: {secs:.1f} s", file=sys.stderr)

    # Does a text get the same int8 label alone as in a batch? (Untimed, after the timing.)
    from tunesmith.engine.quantize import read_int8_ranges

    ranges_mode = "recorded" if read_int8_ranges(model_dir) else "per batch"
    alone = texts[:200]
    singles = [r["label"] for r in predict_texts(int8, alone, batch_size=1)]
    same_alone = float(np.mean([a == b for a, b in zip(singles, predicted[2], strict=False)]))

    onnx_row = rows[3] if len(rows) > 3 else None
    base = rows[0][2]
    print(
        f"\ninference on {len(texts)} {data_name} texts, batch {args.batch_size}, "
        f"{threads} torch threads, best of {args.repeats} passes; model: {model_note}"
    )
    header = (
        f"{'runner':36} {'seconds':>8} {'texts/s':>8} {'speedup':>8} {'accuracy':>9} {'GFLOP/s':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, seconds, rate, accuracy, gflops in rows:
        print(
            f"{name:36} {seconds:8.2f} {rate:8.1f} {rate / base:7.2f}x {accuracy:9.4f} {gflops:8.1f}"
        )
    print(
        f"int8 activation ranges: {ranges_mode}; the same label alone as in a batch of "
        f"{args.batch_size} for {100 * same_alone:.1f} % of {len(alone)} texts"
    )
    result = {
        "benchmark": "infer_speed",
        "data": data_name,
        "texts": len(texts),
        "batch_size": args.batch_size,
        "threads": threads,
        "repeats": args.repeats,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "model": model_note,
        "pipeline_texts_per_s": round(rows[0][2], 1),
        "fp32_texts_per_s": round(rows[1][2], 1),
        "int8_texts_per_s": round(rows[2][2], 1),
        "speedup": round(rows[2][2] / base, 2),
        "speedup_fp32": round(rows[1][2] / base, 2),
        "pipeline_accuracy": round(rows[0][3], 4),
        "fp32_accuracy": round(rows[1][3], 4),
        "int8_accuracy": round(rows[2][3], 4),
        "int8_drop_points": round(100 * (rows[1][3] - rows[2][3]), 2),
        "int8_ranges": ranges_mode,
        "int8_same_alone_as_batched": round(same_alone, 4),
        "pipeline_gflops_per_s": round(rows[0][4], 1),
        "fp32_gflops_per_s": round(rows[1][4], 1),
        "int8_gops_per_s": round(rows[2][4], 1),
        "mean_tokens": round(float(np.mean(lengths)), 1),
        "onnx_texts_per_s": round(onnx_row[2], 1) if onnx_row else None,
        "onnx_accuracy": round(onnx_row[3], 4) if onnx_row else None,
        "onnx_speedup": round(onnx_row[2] / base, 2) if onnx_row else None,
        "onnx_gflops_per_s": round(onnx_row[4], 1) if onnx_row else None,
        "onnx_export_seconds": onnx_seconds,
        "quick": args.quick,
    }
    print(strict_json(result))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
