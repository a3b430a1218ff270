"""Explanation speed and faithfulness: ``tunesmith explain --data``'s default method vs
one-by-one Captum ``LayerIntegratedGradients`` (50 steps), on the same texts and model.

Both sides explain the same quantity: each text's predicted label's (calibrated) probability,
from the same tokenisation. Speed is texts per second: the default side exactly as
``tunesmith explain --data`` runs it (``explain_loaded`` on chunks of the CLI's size, tokenising,
predicting and scoring faithfulness included); the Captum side is the bare attribution call,
one text at a time, as its tutorials do. Faithfulness is ERASER's, from
``tunesmith.explain.faithfulness`` for both sides: comprehensiveness (the probability drop when
a text's top 20% words are removed; higher is better) and sufficiency (the drop when only they
are kept; lower is better). The paired per-text difference (default minus Captum) is reported
with a 95% bootstrap interval. Other built-in methods are measured beside them for context,
and the delta (completeness gap) of every method that has one.

The model is fine-tuned by the engine (``tunesmith.engine.train``) on finance tweets
(train.csv) in a child process: ``full`` fine-tuning, 2 epochs on 3,000 tweets (``head`` on
1,500 with ``--quick``), unless ``--model DIR`` names a trained model directory. The texts are
held-out tweets from valid.csv. The last part times ``aggregate_explanations`` on 500 of them
for the label "negative", as the finance plugin calls it on an alert window.

    python benchmarks/explain_speed.py [--quick] [--model DIR] [--texts N] [--data-root DIR]

The sides run interleaved, chunk by chunk, so load from other work on a shared machine hits
them alike; the load average is printed with the figures. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_common import DEFAULT_DATA, forward_flops_per_token, log

from tunesmith.events import strict_json

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED = DEFAULT_DATA
FINANCE = SHARED / "twitter_financial_news_sentiment"
FINANCE_NAME = "twitter_financial_news_sentiment"

#: Methods measured beside the default for context: ``name`` or ``name:steps``.
CANDIDATES = ("occlusion", "grad-input", "ig:8")
#: Speed goal: the default's texts/s over Captum's.
GOAL_SPEEDUP = 10.0
#: "No worse" as a non-inferiority test: the 95% interval of the paired difference (default
#: minus Captum) may reach at most this far to the worse side, in units of the explained
#: probability. Demanding the interval lie wholly on the better side would fail a method
#: identical to Captum; 0.02 is a tenth of Captum's own comprehensiveness on these texts.
NON_INFERIORITY_MARGIN = 0.02
#: Texts in the aggregation timing (the finance plugin's alert window), and its label.
AGGREGATE_TEXTS = 500
AGGREGATE_TARGET = "negative"


def read_csv(path: Path, text_col: str = "text", label_col: str = "label") -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [(row[text_col], row[label_col]) for row in csv.DictReader(handle)]


def benchmark_data(
    root: Path | None = None,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], str]:
    """(train rows, evaluation rows, source name): finance tweets, else the sample data."""
    folder = (root / FINANCE_NAME) if root is not None else FINANCE
    if (folder / "train.csv").exists():
        return read_csv(folder / "train.csv"), read_csv(folder / "valid.csv"), "finance tweets"
    from tunesmith.data.sample import builtin_sample_data

    sample = builtin_sample_data()[0]
    rows = read_csv(Path(sample.paths["train"]), sample.text_col, sample.label_col)
    held = sample.paths.get("eval") or sample.paths.get("test") or sample.paths["train"]
    return rows, read_csv(Path(held), sample.text_col, sample.label_col), sample.name


def build_probe_model(rows: list[tuple[str, str]], *, max_length: int = 64) -> tuple[Any, Any]:
    """The default model with a mean-pooling head fitted by logistic regression on its
    frozen embeddings (head-only training, done the fast way). Returns (model, tokenizer)."""
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoTokenizer

    from tunesmith.engine.modeling import build_classifier, mean_pool, set_head_weights
    from tunesmith.models import default_model_path

    labels = sorted({label for _, label in rows})
    location = default_model_path()
    tokenizer = AutoTokenizer.from_pretrained(location)
    model = build_classifier(location, task="classification", labels=labels, pooling="mean")
    model.eval()
    backbone = getattr(model, model.base_model_prefix)
    features = []
    texts = [text for text, _ in rows]
    with torch.inference_mode():
        for start in range(0, len(texts), 64):
            batch = tokenizer(
                texts[start : start + 64],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            hidden = backbone(**batch).last_hidden_state
            features.append(mean_pool(hidden, batch["attention_mask"]).numpy())
    x = np.concatenate(features)
    y = np.array([labels.index(label) for _, label in rows])
    probe = LogisticRegression(C=1.0, max_iter=2000).fit(x, y)
    set_head_weights(model, probe.coef_, probe.intercept_)
    return model, tokenizer


def train_model(out: Path, root: Path | None, *, quick: bool, seed: int) -> str:
    """Fine-tune with the engine on finance tweets; returns a description of the run."""
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.train import train

    train_rows, _, source = benchmark_data(root)
    rng = random.Random(seed)
    subset = rng.sample(train_rows, min(1500 if quick else 3000, len(train_rows)))
    data = out.parent / "train.csv"
    with data.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(subset)
    strategy = "head" if quick else "full"
    started = time.perf_counter()
    train(
        RunConfig(
            data=str(data),
            out=str(out),
            strategy=strategy,
            epochs=None if quick else 2,
            seed=seed,
            max_length=64,
            eval_fraction=0.1,
            force=True,
        )
    )
    log(f"trained ({strategy}) in {time.perf_counter() - started:.0f} s")
    return f"{strategy} fine-tune on {len(subset)} {source}"


def captum_one_by_one(
    model: Any, pad_id: int, encoded: list[Any], targets: list[int], temperature: Any
) -> tuple[float, list[list[float]], list[float]]:
    """Captum LayerIntegratedGradients, 50 steps, one call per text.

    Returns (seconds, token attributions per text, |delta| per text).
    """
    import torch
    from captum.attr import LayerIntegratedGradients

    from tunesmith.explain.encoding import baseline_ids
    from tunesmith.explain.model_io import probabilities

    def forward(input_ids: Any, attention_mask: Any) -> Any:
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        return probabilities(logits, multilabel=False, temperature=temperature)

    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    scores, deltas = [], []
    started = time.perf_counter()
    for enc, target in zip(encoded, targets, strict=True):
        ids = torch.tensor([enc.input_ids])
        base = torch.tensor([baseline_ids(enc, pad_id)])
        attributions, delta = lig.attribute(
            ids,
            baselines=base,
            target=target,
            additional_forward_args=(torch.ones_like(ids),),
            n_steps=50,
            return_convergence_delta=True,
        )
        scores.append(attributions.sum(-1)[0].detach().double().tolist())
        deltas.append(abs(float(delta)))
    return time.perf_counter() - started, scores, deltas


def paired_interval(
    diffs: list[float], *, draws: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of per-text differences and its 95% percentile-bootstrap interval."""
    import numpy as np

    values = np.asarray(diffs, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(draws, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(values.mean()), float(low), float(high)


def side_name(spec: str) -> tuple[str, int]:
    """``"ig:8"`` -> ("ig", 8); a bare name gets the CLI's default steps."""
    name, _, steps = spec.partition(":")
    return name, int(steps) if steps else 50


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 texts, head-only model")
    parser.add_argument("--model", type=Path, help="a trained model directory to explain")
    parser.add_argument("--texts", type=int, help="texts to explain (default 40 quick, 300 full)")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--candidates",
        default=",".join(CANDIDATES),
        help="other methods measured beside the default, comma-separated (name or name:steps)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--build-model", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.build_model is not None:  # the child process of the run below
        print(train_model(args.build_model, args.data_root, quick=args.quick, seed=args.seed))
        return 0

    import numpy as np
    import torch

    from tunesmith.commands.explain import CHUNK
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.threads import configure_threads
    from tunesmith.explain.aggregate import aggregate_explanations
    from tunesmith.explain.attribute import explain_loaded
    from tunesmith.explain.encoding import encode_texts
    from tunesmith.explain.faithfulness import faithfulness
    from tunesmith.explain.methods import DEFAULT_METHOD
    from tunesmith.explain.scoring import classifier_probabilities, classifier_score_fn

    candidates = tuple(c for c in args.candidates.split(",") if c)
    threads = configure_threads()
    n_texts = args.texts or (40 if args.quick else 300)
    _, eval_rows, source = benchmark_data(args.data_root)
    scratch = tempfile.TemporaryDirectory(prefix="tunesmith-explain-")
    if args.model is not None:
        model_dir, model_name = args.model, str(args.model)
    else:
        # Fitted in a child process: after training in the timed process, everything that
        # process ran afterwards was slower (allocator and thread-pool state; measured).
        model_dir = Path(scratch.name) / "model"
        child = [sys.executable, __file__, "--build-model", str(model_dir)]
        child += ["--seed", str(args.seed), "--data-root", str(args.data_root)]
        done = subprocess.run(
            child + (["--quick"] if args.quick else []), check=True, stdout=subprocess.PIPE
        )
        model_name = done.stdout.decode().strip().splitlines()[-1]
    loaded = load_model(model_dir)
    model, tokenizer, temperature = loaded.model, loaded.tokenizer, loaded.temperature
    model.eval()
    pad = tokenizer.pad_token_id or 0
    rng = random.Random(args.seed)
    held_out = rng.sample(eval_rows, min(max(n_texts, AGGREGATE_TEXTS), len(eval_rows)))
    texts = [text for text, _ in held_out[:n_texts]]
    encoded = encode_texts(tokenizer, texts, max_length=loaded.max_length, warn=False)
    mean_len = statistics.mean(len(e.input_ids) for e in encoded)

    # Warm-up (first calls allocate and pick kernels).
    warm = encoded[:2]
    captum_one_by_one(model, pad, warm, [0, 0], temperature)
    for spec in (DEFAULT_METHOD, *candidates):
        name, steps = side_name(spec)
        explain_loaded(loaded, texts[:4], method=name, n_steps=min(steps, 4), warn=None)

    # Every side explains each text's predicted label.
    probs = classifier_probabilities(
        model, [e.input_ids for e in encoded], pad_id=pad, temperature=temperature
    )
    targets = [int(row.argmax()) for row in probs]
    sides = ["captum", "default", *candidates]
    seconds = dict.fromkeys(sides, 0.0)
    results: dict[str, list[Any]] = {side: [] for side in sides}
    captum_scores: list[list[float]] = []
    captum_deltas: list[float] = []
    load_before = os.getloadavg()[0]
    # Chunks of the CLI's size, the sides' order rotated from chunk to chunk.
    chunks = [list(range(i, min(i + CHUNK, len(texts)))) for i in range(0, len(texts), CHUNK)]
    for number, chunk in enumerate(chunks):
        turn = number % len(sides)
        for side in sides[turn:] + sides[:turn]:
            started = time.perf_counter()
            if side == "captum":
                _, scores, deltas = captum_one_by_one(
                    model,
                    pad,
                    [encoded[i] for i in chunk],
                    [targets[i] for i in chunk],
                    temperature,
                )
                captum_scores += scores
                captum_deltas += deltas
            else:
                name, steps = side_name(DEFAULT_METHOD if side == "default" else side)
                part = [texts[i] for i in chunk]
                results[side] += explain_loaded(loaded, part, method=name, n_steps=steps, warn=None)
            seconds[side] += time.perf_counter() - started
        log(f"chunk {number + 1}/{len(chunks)} done")
    load_after = os.getloadavg()[0]

    # Captum's faithfulness with the same functions, targets and calibrated probability.
    score_fn = classifier_score_fn(targets, temperature=temperature)
    full = [float(probs[i, t]) for i, t in enumerate(targets)]
    word_scores = [enc.merge(s) for enc, s in zip(encoded, captum_scores, strict=True)]
    captum_faith = faithfulness(model, encoded, word_scores, full, score_fn, pad_id=pad)

    def column(items: list[Any], field: str) -> list[float]:
        return [float(getattr(e, field)) for e in items]

    comp = {"captum": [float(c) for c, _, _ in captum_faith]}
    suff = {"captum": [float(s) for _, s, _ in captum_faith]}
    delta: dict[str, float | None] = {"captum": float(np.mean(captum_deltas))}
    for side in sides[1:]:
        comp[side] = column(results[side], "comprehensiveness")
        suff[side] = column(results[side], "sufficiency")
        has_delta = [e.delta for e in results[side] if e.delta is not None]
        delta[side] = float(np.mean(np.abs(has_delta))) if has_delta else None
    per_s = {side: len(texts) / seconds[side] for side in sides}
    # A text whose predicted label came out differently in another batch (a near tie) cannot
    # be paired; there should be none, and the count is printed.
    paired = [
        i
        for i in range(len(texts))
        if all(loaded.labels.index(results[s][i].target) == targets[i] for s in sides[1:])
    ]
    for side in sides:
        comp[side] = [comp[side][i] for i in paired]
        suff[side] = [suff[side][i] for i in paired]
    stats: dict[str, dict[str, Any]] = {}
    for side in sides[1:]:
        c = paired_interval([a - b for a, b in zip(comp[side], comp["captum"], strict=True)])
        s = paired_interval([a - b for a, b in zip(suff[side], suff["captum"], strict=True)])
        stats[side] = {"comp": c, "suff": s}

    # Aggregation as the finance plugin runs it: an alert window, one label.
    window = [text for text, _ in held_out[: (100 if args.quick else AGGREGATE_TEXTS)]]
    started = time.perf_counter()
    top = aggregate_explanations(loaded, window, target=AGGREGATE_TARGET, k=10, progress=None)
    aggregate_seconds = time.perf_counter() - started

    token_flops = forward_flops_per_token(model.config, mean_len) * mean_len
    captum_gflops = token_flops * (3 * 50 + 2) * len(texts) / seconds["captum"] / 1e9
    print(
        f"model: {model_name}; data: {source} (valid.csv); {len(texts)} texts, mean "
        f"{mean_len:.1f} tokens; {threads} threads; chunks of {CHUNK}, sides interleaved; load "
        f"average {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} CPUs; default "
        f"method: {DEFAULT_METHOD}; {len(paired)} texts paired"
    )
    print(
        f"{'side':22} {'texts/s':>8} {'speedup':>8} {'comp':>7} {'suff':>7} "
        f"{'comp diff [95% CI]':>26} {'suff diff [95% CI]':>26} {'mean|delta|':>11}"
    )
    labels = {"captum": "captum LIG-50 1-by-1", "default": f"default ({DEFAULT_METHOD})"}
    for side in sides:
        row = (
            f"{labels.get(side, '  ' + side):22} {per_s[side]:8.2f} "
            f"{per_s[side] / per_s['captum']:7.2f}x {np.mean(comp[side]):7.4f} "
            f"{np.mean(suff[side]):7.4f} "
        )
        if side in stats:
            for key in ("comp", "suff"):
                mean, low, high = stats[side][key]
                row += f"{f'{mean:+.4f} [{low:+.4f}, {high:+.4f}]':>26} "
        else:
            row += f"{'':>26} {'':>26} "
        row += f"{delta[side]:11.2e}" if delta[side] is not None else f"{'-':>11}"
        print(row)
    speedup = per_s["default"] / per_s["captum"]
    comp_mean, comp_low, comp_high = stats["default"]["comp"]
    suff_mean, suff_low, suff_high = stats["default"]["suff"]
    # "No worse" (non-inferiority): the 95% interval of the paired difference reaches at most
    # the margin to the worse side (comprehensiveness: higher is better; sufficiency: lower).
    no_worse = comp_low >= -NON_INFERIORITY_MARGIN and suff_high <= NON_INFERIORITY_MARGIN
    met = speedup >= GOAL_SPEEDUP and no_worse
    print(
        f"default {DEFAULT_METHOD}: {speedup:.1f}x Captum's texts/s (goal {GOAL_SPEEDUP:g}x); "
        f"comprehensiveness {comp_mean:+.4f} [{comp_low:+.4f}, {comp_high:+.4f}], sufficiency "
        f"{suff_mean:+.4f} [{suff_low:+.4f}, {suff_high:+.4f}] (default minus Captum; no worse "
        f"= within {NON_INFERIORITY_MARGIN:g} of Captum at the interval's worse end): goal "
        f"{'met' if met else 'not met'}"
    )
    top_words = [w.word for w in top.get(AGGREGATE_TARGET, [])]
    print(
        f"aggregate_explanations: {len(window)} texts for {AGGREGATE_TARGET!r} in "
        f"{aggregate_seconds:.1f} s ({len(window) / aggregate_seconds:.1f} texts/s); top words: "
        f"{', '.join(top_words)}"
    )
    result = {
        "benchmark": "explain_speed",
        "quick": args.quick,
        "model": model_name,
        "data": source,
        "texts": len(texts),
        "paired_texts": len(paired),
        "mean_tokens": round(mean_len, 1),
        "threads": threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "load_average": [round(load_before, 2), round(load_after, 2)],
        "torch": torch.__version__,
        "default_method": DEFAULT_METHOD,
        "captum_texts_per_s": round(per_s["captum"], 3),
        "default_texts_per_s": round(per_s["default"], 3),
        "speedup": round(speedup, 2),
        "captum_comprehensiveness": round(float(np.mean(comp["captum"])), 4),
        "default_comprehensiveness": round(float(np.mean(comp["default"])), 4),
        "captum_sufficiency": round(float(np.mean(suff["captum"])), 4),
        "default_sufficiency": round(float(np.mean(suff["default"])), 4),
        "comprehensiveness_diff": round(comp_mean, 4),
        "comprehensiveness_diff_ci95": [round(comp_low, 4), round(comp_high, 4)],
        "sufficiency_diff": round(suff_mean, 4),
        "sufficiency_diff_ci95": [round(suff_low, 4), round(suff_high, 4)],
        "captum_mean_delta": delta["captum"],
        "default_mean_delta": delta["default"],
        "captum_gflops": round(captum_gflops, 1),
        "faithfulness_no_worse": no_worse,
        "non_inferiority_margin": NON_INFERIORITY_MARGIN,
        "goal_met": met,
        "candidates": {
            side: {
                "texts_per_s": round(per_s[side], 3),
                "speedup": round(per_s[side] / per_s["captum"], 2),
                "comprehensiveness": round(float(np.mean(comp[side])), 4),
                "sufficiency": round(float(np.mean(suff[side])), 4),
                "comprehensiveness_diff": round(stats[side]["comp"][0], 4),
                "comprehensiveness_diff_ci95": [round(v, 4) for v in stats[side]["comp"][1:]],
                "sufficiency_diff": round(stats[side]["suff"][0], 4),
                "sufficiency_diff_ci95": [round(v, 4) for v in stats[side]["suff"][1:]],
                "mean_delta": delta[side],
            }
            for side in candidates
        },
        "aggregate_texts": len(window),
        "aggregate_target": AGGREGATE_TARGET,
        "aggregate_s": round(aggregate_seconds, 2),
        "aggregate_top_words": top_words,
    }
    print(strict_json(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
