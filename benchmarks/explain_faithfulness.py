"""Faithfulness of explanations: do integrated gradients find the words a prediction rests on?

For each held-out finance tweet the model's predicted label is explained, the top 20% of its
words (at least one) are taken by three rankings, and removed:

- integrated gradients (tunesmith ``ig``, 50 steps),
- occlusion (tunesmith ``occlusion``: the drop when each word alone is removed),
- random words (the baseline any explanation must beat; averaged over several draws).

Comprehensiveness is the mean drop of the predicted label's probability when those words are
removed (higher is better); sufficiency the drop when only they are kept (lower is better).
Goal: integrated gradients' comprehensiveness at least 2x the random baseline's.

The model is ``--model DIR`` if given; otherwise one is fine-tuned with the engine
(``tunesmith.engine.train``) on the finance tweets of ../shared/data: ``head`` training with
``--quick``, a ``full`` fine-tune on a 2,000-tweet subset otherwise.

    python benchmarks/explain_faithfulness.py [--quick] [--model DIR] [--texts N]

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from explain_speed import FINANCE, benchmark_data, build_probe_model  # noqa: E402

from tunesmith.events import strict_json  # noqa: E402


def train_model(work: Path, *, quick: bool, seed: int) -> tuple[Path | None, str]:
    """Fine-tune on a subset of the finance tweets with the engine; ``None`` if it cannot."""
    import csv

    train_rows, _, source = benchmark_data()
    rng = random.Random(seed)
    subset = rng.sample(train_rows, min(1500 if quick else 2000, len(train_rows)))
    data = work / "train.csv"
    with data.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(subset)
    strategy = "head" if quick else "full"
    try:
        from tunesmith.engine.config import RunConfig
        from tunesmith.engine.train import train

        run = RunConfig(
            data=str(data),
            out=str(work / "model"),
            strategy=strategy,
            epochs=None if quick else 3,
            seed=seed,
            max_length=64,
            eval_fraction=0.1,
        )
        started = time.perf_counter()
        out = train(run)
        print(f"trained ({strategy}) in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        return Path(out), f"{strategy} fine-tune on {len(subset)} {source}"
    except Exception as exc:  # the engine is optional here; fall back to a probe
        print(
            f"engine training failed ({type(exc).__name__}: {exc}); using a head-only probe",
            file=sys.stderr,
        )
        return None, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="head-only model, 40 texts")
    parser.add_argument("--model", type=Path, help="a trained model directory to explain")
    parser.add_argument("--texts", type=int, help="held-out texts (default 40 quick, 300 full)")
    parser.add_argument("--random-draws", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import numpy as np

    from tunesmith.engine.threads import configure_threads
    from tunesmith.explain.attribute import explain_texts
    from tunesmith.explain.encoding import encode_texts
    from tunesmith.explain.faithfulness import removal_scores, top_k_count, top_words
    from tunesmith.explain.scoring import classifier_score_fn

    configure_threads()
    if not FINANCE.exists() and args.model is None:
        print("note: finance tweets not found; using the bundled sample data", file=sys.stderr)
    n_texts = args.texts or (40 if args.quick else 300)
    _, eval_rows, source = benchmark_data()
    rng = random.Random(args.seed)
    texts = [t for t, _ in rng.sample(eval_rows, min(n_texts, len(eval_rows)))]

    temperature = None
    with tempfile.TemporaryDirectory(prefix="tunesmith-faith-") as tmp:
        model_dir, description = (
            (args.model, str(args.model))
            if args.model
            else train_model(Path(tmp), quick=args.quick, seed=args.seed)
        )
        if model_dir is not None:
            from tunesmith.engine.loading import load_model

            loaded = load_model(model_dir)
            model, tokenizer, labels = loaded.model, loaded.tokenizer, loaded.labels
            temperature = loaded.temperature
            limit = loaded.max_length
        else:
            train_rows, _, _ = benchmark_data()
            model, tokenizer = build_probe_model(rng.sample(train_rows, 1500))
            labels = [model.config.id2label[i] for i in range(len(model.config.id2label))]
            description, limit = "head-only probe on frozen default embeddings", 128

        options = {"labels": labels, "temperature": temperature, "max_length": limit, "warn": None}
        started = time.perf_counter()
        ig = explain_texts(model, tokenizer, texts, method="ig", n_steps=50, **options)
        ig_seconds = time.perf_counter() - started
        started = time.perf_counter()
        occ = explain_texts(model, tokenizer, texts, method="occlusion", **options)
        occ_seconds = time.perf_counter() - started

        # Random words: the same k per text, several draws, scored with the same removal.
        encoded = encode_texts(tokenizer, texts, max_length=limit, warn=False)
        targets = [labels.index(e.target) for e in ig]
        score_fn = classifier_score_fn(targets, temperature=temperature)
        full = np.array([e.target_probability for e in ig])
        pad = tokenizer.pad_token_id or 0
        random_comp, random_suff = [], []
        for _ in range(args.random_draws):
            picks = [
                sorted(rng.sample(range(enc.n_words), top_k_count(enc.n_words))) for enc in encoded
            ]
            removed = removal_scores(model, encoded, picks, score_fn, pad_id=pad)
            kept = removal_scores(model, encoded, picks, score_fn, pad_id=pad, keep=True)
            random_comp.append(full - np.array(removed))
            random_suff.append(full - np.array(kept))
        # The same removal for IG's ranking, computed again independently as a cross-check.
        ig_picks = [top_words([t.score for t in e.tokens], top_k_count(len(e.tokens))) for e in ig]
        check = full - np.array(removal_scores(model, encoded, ig_picks, score_fn, pad_id=pad))

    def mean(values: list[float | None]) -> float:
        return float(statistics.mean(v for v in values if v is not None))

    ig_comp = mean([e.comprehensiveness for e in ig])
    assert abs(ig_comp - float(check.mean())) < 1e-5, "comprehensiveness cross-check failed"
    rows = [
        (
            "integrated gradients",
            ig_comp,
            mean([e.sufficiency for e in ig]),
            ig_seconds / len(texts),
        ),
        (
            "occlusion",
            mean([e.comprehensiveness for e in occ]),
            mean([e.sufficiency for e in occ]),
            occ_seconds / len(texts),
        ),
        ("random words", float(np.mean(random_comp)), float(np.mean(random_suff)), 0.0),
    ]
    print(f"model: {description}; data: {source}; {len(texts)} held-out texts; top 20% words")
    print(f"{'ranking':22} {'comprehensiveness':>18} {'sufficiency':>12} {'s/text':>8}")
    for name, comp, suff, seconds in rows:
        print(f"{name:22} {comp:18.4f} {suff:12.4f} {seconds:8.3f}")
    ratio = ig_comp / rows[2][1] if rows[2][1] > 0 else float("inf")
    deltas = [abs(e.delta) for e in ig]
    print(
        f"IG / random = {ratio:.2f} (goal >= 2); IG mean |delta| {np.mean(deltas):.2e}, "
        f"max {np.max(deltas):.2e}"
    )
    print(
        strict_json(
            {
                "benchmark": "explain_faithfulness",
                "quick": args.quick,
                "model": description,
                "data": source,
                "texts": len(texts),
                "ig_comprehensiveness": round(ig_comp, 4),
                "occlusion_comprehensiveness": round(rows[1][1], 4),
                "random_comprehensiveness": round(rows[2][1], 4),
                "ig_sufficiency": round(rows[0][2], 4),
                "occlusion_sufficiency": round(rows[1][2], 4),
                "random_sufficiency": round(rows[2][2], 4),
                "ig_over_random": round(ratio, 3),
                "ig_mean_delta": float(np.mean(deltas)),
                "ig_s_per_text": round(ig_seconds / len(texts), 4),
                "occlusion_s_per_text": round(occ_seconds / len(texts), 4),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
