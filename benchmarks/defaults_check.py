"""Are the engine's defaults right beyond banking77? Each default turned off alone, on a second
data set, scored on its validation split (issue 24, item 7).

The few-shot and full-data defaults were tuned on banking77. This script trains the default
recipe and, for every default, the same run with that default turned off (one flag each), on
draws of a second labelled set, and scores each model with ``evaluate_model`` on the set's
validation split:

* ``finance`` (default): ``twitter_financial_news_sentiment``, trained on draws from 80 % of
  ``train.csv``, scored on the other 20 % (seed 0). ``valid.csv`` is never read: it is the
  held-out split ``finance_sentiment.py`` reports, so no default may be chosen on it
  (earlier runs scored on it; docs/benchmarks.md says which);
* ``clinc150``: the in-scope intents of ``clinc150``, trained on draws from ``train.jsonl``,
  scored on the in-scope utterances of ``val.jsonl``;
* ``banking77`` (where the defaults were tuned, for the other side of a change): draws from
  80 % of ``train.csv``, scored on the other 20 % (seed 0); its test split is never read.

Regimes: ``few-shot`` (``--per-label`` examples of every label, default 10: the engine's
few-shot defaults apply) and ``full`` (``--full-size`` texts drawn at random, default 1,000:
the full-data defaults, with 10 % of the draw held out by the engine as it does by default).
Each draw has its seed; every variant trains on the same draws, so differences are paired.

A default is kept where turning it off does not win: the table gives each variant's mean
accuracy and macro-F1 and its paired difference from the defaults (mean and per draw).

Results go to ``--work-dir``/results.jsonl as they finish, and a rerun with the same work dir
skips what is there (the run is long on 2 cores). ``--quick``: one draw, three variants, 600
validation texts.

    python benchmarks/defaults_check.py [--data finance|clinc150] [--regime few-shot|full]
        [--seeds 3] [--work-dir W] [--quick]

Prints a table and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import draw_per_label  # noqa: E402
from bench_common import DEFAULT_DATA, log, read_csv, write_csv  # noqa: E402

from tunesmith.events import strict_json  # noqa: E402

#: Each default and the setting that turns it off alone (``RunConfig`` keywords).
FEW_SHOT_VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "contrastive off": {"contrastive": 0.0},
    "WiSE-FT off": {"wise_ft": 1.0},
    "nearest examples off": {"nearest": "off"},
    "label names off": {"label_examples": "off"},
    "head init random": {"head_init": "random"},
    "mean pooling off ([CLS])": {"pooling": "cls"},
}
FULL_VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "WiSE-FT off": {"wise_ft": 1.0},
    "nearest examples off": {"nearest": "off"},
    "head init random": {"head_init": "random"},
    "mean pooling off ([CLS])": {"pooling": "cls"},
}
QUICK_VARIANTS = ("defaults", "WiSE-FT off", "head init random")


def read_rows(root: Path, data: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(train, validation) rows with ``text`` and ``label``."""
    if data in ("finance", "banking77"):
        # 20 % of train (seed 0) is held out. banking77's test split and the finance tweets'
        # valid.csv (finance_sentiment.py's reported split) are never read.
        folder = "twitter_financial_news_sentiment" if data == "finance" else "banking77"
        rows = read_csv(root / folder / "train.csv")
        order = random.Random(0).sample(range(len(rows)), len(rows))
        cut = len(rows) // 5
        return [rows[i] for i in order[cut:]], [rows[i] for i in order[:cut]]

    def jsonl(name: str) -> list[dict[str, str]]:
        with (root / "clinc150" / f"{name}.jsonl").open(encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
        return [{"text": r["text"], "label": r["intent"]} for r in rows if r["intent"] != "oos"]

    return jsonl("train"), jsonl("val")


def draw(rows: list[dict[str, str]], regime: str, seed: int, per_label: int, size: int):
    """The training draw of one seed."""
    if regime == "few-shot":
        return draw_per_label(rows, per_label, seed)
    return random.Random(seed).sample(rows, min(size, len(rows)))


def train_and_score(train_file: Path, valid_file: Path, out: Path, seed: int, settings):
    """Train with the defaults plus ``settings`` and score on ``valid_file``."""
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.evaluate import evaluate_model, load_eval_dataset
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.train import train

    run = RunConfig(data=str(train_file), out=str(out), seed=seed, force=True, **settings)
    started = time.perf_counter()
    train(run, log=lambda _m: None)
    seconds = time.perf_counter() - started
    loaded = load_model(out)
    report = evaluate_model(loaded, load_eval_dataset(loaded, valid_file), batch_size=64)
    return {
        "accuracy": round(report["accuracy"], 6),
        "macro_f1": round(report["macro_f1"], 6),
        "ece": round(report["ece"], 6),
        "train_seconds": round(seconds, 1),
        "epochs_run": run.resolved.epochs_run,
    }


def summary(results: list[dict[str, Any]], variants: list[str]) -> list[dict[str, Any]]:
    """Per variant: mean accuracy / macro-F1 and the paired difference from the defaults."""
    by = {(r["variant"], r["seed"]): r for r in results}
    seeds = sorted({r["seed"] for r in results if r["variant"] == "defaults"})
    rows = []
    for name in variants:
        mine = [s for s in seeds if (name, s) in by]
        if not mine:
            continue
        diffs = [by[(name, s)]["accuracy"] - by[("defaults", s)]["accuracy"] for s in mine]
        f1_diffs = [by[(name, s)]["macro_f1"] - by[("defaults", s)]["macro_f1"] for s in mine]
        rows.append(
            {
                "variant": name,
                "draws": len(mine),
                "accuracy": round(statistics.mean(by[(name, s)]["accuracy"] for s in mine), 4),
                "macro_f1": round(statistics.mean(by[(name, s)]["macro_f1"] for s in mine), 4),
                "ece": round(statistics.mean(by[(name, s)]["ece"] for s in mine), 4),
                "accuracy_vs_defaults": round(statistics.mean(diffs), 4),
                "accuracy_vs_defaults_per_draw": [round(d, 4) for d in diffs],
                "macro_f1_vs_defaults": round(statistics.mean(f1_diffs), 4),
                "wins_over_defaults": sum(d > 0 for d in diffs),
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--data", choices=("finance", "clinc150", "banking77"), default="finance")
    parser.add_argument("--regime", choices=("few-shot", "full"), default="few-shot")
    parser.add_argument("--seeds", type=int, default=3, help="draws (seeds 0..N-1)")
    parser.add_argument("--per-label", type=int, default=10)
    parser.add_argument("--full-size", type=int, default=1000)
    parser.add_argument("--variants", default=None, help="comma-separated names (default: all)")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()

    table = FEW_SHOT_VARIANTS if args.regime == "few-shot" else FULL_VARIANTS
    if args.variants:
        names = [n.strip() for n in args.variants.split(",")]
    else:
        names = list(QUICK_VARIANTS if args.quick else table)
    unknown = [n for n in names if n not in table]
    if unknown:
        parser.error(f"unknown variants {unknown}; the choice is {list(table)}")
    if "defaults" not in names:
        names.insert(0, "defaults")
    seeds = 1 if args.quick else args.seeds
    train_rows, valid_rows = read_rows(args.data_root, args.data)
    if args.quick:
        valid_rows = random.Random(0).sample(valid_rows, min(600, len(valid_rows)))
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="defaults_check_"))
    work.mkdir(parents=True, exist_ok=True)
    valid_file = write_csv(work / "valid.csv", valid_rows)
    store = work / "results.jsonl"
    # ``held_out`` keeps finance results scored on valid.csv (before it was never read) apart.
    setup = {"data": args.data, "regime": args.regime, "per_label": args.per_label,
             "full_size": args.full_size, "quick": args.quick,
             "held_out": "val" if args.data == "clinc150" else "train 20% seed 0"}  # fmt: skip
    results = []
    if store.exists():
        for line in store.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("setup") == setup:
                results.append(row)
    started = time.perf_counter()
    for seed in range(seeds):
        rows = draw(train_rows, args.regime, seed, args.per_label, args.full_size)
        train_file = write_csv(work / f"draw{seed}.csv", rows)
        for name in names:
            if any(r["variant"] == name and r["seed"] == seed for r in results):
                continue
            log(f"draw {seed}: {name} ({len(rows)} texts) ...")
            figures = train_and_score(train_file, valid_file, work / "model", seed, table[name])
            row = {"setup": setup, "variant": name, "seed": seed, **figures}
            results.append(row)
            with store.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
            log(f"  {figures}")

    rows = summary([r for r in results if r["seed"] < seeds], names)
    print(f"{args.data} {args.regime}: {seeds} draws, {len(valid_rows)} validation texts")
    print(
        f"{'variant':<26} {'accuracy':>9} {'macro-F1':>9} {'ECE':>7} {'acc vs defaults':>16}  per draw"
    )
    for r in rows:
        print(
            f"{r['variant']:<26} {r['accuracy']:>9.4f} {r['macro_f1']:>9.4f} {r['ece']:>7.3f} "
            f"{r['accuracy_vs_defaults']:>+16.4f}  {r['accuracy_vs_defaults_per_draw']}"
        )
    losers = [
        r["variant"] for r in rows if r["variant"] != "defaults" and r["accuracy_vs_defaults"] > 0
    ]
    print(f"defaults that lose here (turning them off wins on average): {losers or 'none'}")
    print(
        strict_json(
            {
                "benchmark": "defaults_check",
                "quick": args.quick,
                **{k: v for k, v in setup.items() if k != "quick"},
                "draws": seeds,
                "n_valid": len(valid_rows),
                "variants": rows,
                "defaults_that_lose": losers,
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
