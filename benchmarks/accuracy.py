"""Accuracy of tunesmith's default recipe against what a user gets in a minute without it.

Runs, in one process and on the shared data sets:

* banking77 with all training data, 10 and 5 examples per intent (several random draws each,
  mean and spread): ``tunesmith train`` with the default model and defaults, scored on the full
  test split; and the frozen-embedding baseline in the same run: mean-pooled, L2-normalised
  embeddings of the default model with a logistic regression whose C is tuned on a slice of the
  training data;
* FIN (SEC filings, IO tags) and WNUT-17 entity F1 on their test splits, per entity type (WNUT's
  dev split is the --eval file used for early stopping; FIN has none, so 10 % of train is held
  out).

On the 5- and 10-per-intent draws SetFit (``setfit``, 20 pair iterations, its default
logistic-regression head, the same model and threads) trains on the same draw and is scored on
the same test texts, timed from loading to the fitted head as tunesmith is (issue 30); each
setting then reports on how many draws tunesmith scored at least SetFit's accuracy in no more
time. SetFit needs the optional ``requirements-bench.txt`` (``--no-setfit`` skips it; without
it its keys are absent). Its 20 iterations are about 1,000 pair steps per 5-per-intent draw.

Prints a table and ends with ONE JSON line (peer versions, load average at the start and the
end). ``--quick`` runs one draw of 5 per intent and FIN with a test subset, for a smoke check,
with SetFit at 4 pair iterations (its figures there are not the race's). ``--unlabelled`` gives each few-shot run the training
texts outside its draw, labels removed, as ``tunesmith train --unlabelled`` (self-training), and
the baseline the same texts for its own self-training. Example::

    python benchmarks/accuracy.py --data-root ../shared/data [--only b77_10 --unlabelled]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import random
import statistics
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
    log,
    peer_versions,
    read_csv,
    setfit_peer,
    write_csv,
)

from tunesmith.events import strict_json  # noqa: E402

#: SetFit's pair iterations (issue 30); ``--quick`` uses fewer, as a smoke check only.
SETFIT_ITERATIONS = 20
QUICK_SETFIT_ITERATIONS = 4


def draw_per_label(rows: list[dict[str, str]], k: int, seed: int) -> list[dict[str, str]]:
    """``k`` random examples of every label (the few-shot setting)."""
    by_label: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_label[row["label"]].append(row)
    rng = random.Random(seed)
    return [row for label in sorted(by_label) for row in rng.sample(by_label[label], k)]


# --- the frozen-embedding baseline ---------------------------------------------------------------


def embed(texts: list[str], cache: Path) -> Any:
    """Mean-pooled, L2-normalised embeddings of the default model (cached on disk by text hash)."""
    import numpy as np

    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:24]
    path = cache / f"baseline-embeddings-{digest}.npy"
    if path.is_file():
        return np.load(path)
    import torch
    from transformers import AutoModel, AutoTokenizer

    from tunesmith.engine.modeling import mean_pool
    from tunesmith.hf_quiet import silence_transformers
    from tunesmith.models import resolve_model

    silence_transformers()
    location = resolve_model("default").location
    tokenizer = AutoTokenizer.from_pretrained(location)
    model = AutoModel.from_pretrained(location).eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), 64):
            idx = order[start : start + 64]
            batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                              max_length=256, return_tensors="pt")  # fmt: skip
            hidden = model(**batch).last_hidden_state
            vectors = torch.nn.functional.normalize(
                mean_pool(hidden, batch["attention_mask"]), dim=-1
            )
            out[idx] = vectors.numpy()
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def tuned_logistic(x: Any, y: Any, min_held: int = 1) -> tuple[Any, float]:
    """The frozen-embedding baseline's classifier: a logistic regression whose C is the best of a
    small grid on a seeded 20 % slice of the training rows (at least ``min_held`` of them),
    refitted on all of them. Returns the classifier and its C."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    order = np.random.default_rng(0).permutation(len(y))
    cut = max(min_held, len(y) // 5)
    held, fit = order[:cut], order[cut:]
    best_c, best = 1.0, -1.0
    for c in (0.3, 1.0, 3.0, 10.0, 30.0, 100.0):
        clf = LogisticRegression(C=c, max_iter=2000).fit(x[fit], y[fit])
        score = float((clf.predict(x[held]) == y[held]).mean())
        if score > best:
            best_c, best = c, score
    return LogisticRegression(C=best_c, max_iter=2000).fit(x, y), best_c


def baseline_accuracy(
    train: list[dict[str, str]],
    test: list[dict[str, str]],
    cache: Path,
    pool: list[str] | None = None,
) -> dict:
    """Logistic regression on frozen embeddings, C tuned on a 20 % slice of train. With ``pool``
    (unlabelled texts) it also self-trains as ``--unlabelled`` does: its confident predictions
    (tunesmith's default threshold, as many rounds) join its training data, then it is refitted
    with the same C; that result is under ``self_trained``."""
    import numpy as np

    started = time.perf_counter()
    x_train = embed([r["text"] for r in train], cache)
    x_test = embed([r["text"] for r in test], cache)
    labels = sorted({r["label"] for r in train})
    index = {label: i for i, label in enumerate(labels)}
    y_train = np.array([index[r["label"]] for r in train])
    y_test = np.array([index[r["label"]] for r in test])
    clf, best_c = tuned_logistic(x_train, y_train, min_held=len(labels))
    accuracy = float((clf.predict(x_test) == y_test).mean())
    result = {"accuracy": accuracy, "C": best_c, "seconds": time.perf_counter() - started}
    if pool is not None:
        result["self_trained"] = _self_train_baseline(clf, x_train, y_train, x_test, y_test,
                                                      embed(pool, cache), best_c)  # fmt: skip
    return result


def _self_train_baseline(
    clf: Any, x_train: Any, y_train: Any, x_test: Any, y_test: Any, x_pool: Any, C: float
) -> dict:
    """The fitted baseline ``clf`` self-trained on ``x_pool`` (see :func:`baseline_accuracy`)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from tunesmith.engine.self_training import ROUNDS, THRESHOLD

    started = time.perf_counter()
    kept = []
    for _ in range(ROUNDS):
        probs = clf.predict_proba(x_pool)
        keep = probs.max(1) >= THRESHOLD
        kept.append(int(keep.sum()))
        x = np.concatenate([x_train, x_pool[keep]])
        y = np.concatenate([y_train, clf.classes_[probs[keep].argmax(1)]])
        clf = LogisticRegression(C=C, max_iter=2000).fit(x, y)
    accuracy = float((clf.predict(x_test) == y_test).mean())
    return {"accuracy": accuracy, "pseudo_labelled": kept, "seconds": time.perf_counter() - started}


# --- tunesmith ----------------------------------------------------------------------------------


def tunesmith_run(data: Path, test: Path, work: Path, name: str, eval_data: Path | None = None,
                  **settings: Any) -> dict[str, Any]:  # fmt: skip
    """Train with tunesmith's defaults (plus ``settings``) and evaluate on ``test``."""
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.evaluate import evaluate_model, load_eval_dataset
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.train import train

    out = work / name
    run = RunConfig(data=str(data), eval_data=str(eval_data) if eval_data else None,
                    out=str(out), force=True, **settings)  # fmt: skip
    started = time.perf_counter()
    train(run, log=lambda m: None)
    seconds = time.perf_counter() - started
    loaded = load_model(out)
    report = evaluate_model(loaded, load_eval_dataset(loaded, test), batch_size=64)
    result = {
        "seconds": round(seconds, 1),
        "epochs": run.resolved.epochs,
        "epochs_run": run.resolved.epochs_run,
        "lr": run.resolved.lr,
    }
    if run.resolved.self_training:
        result["self_training"] = run.resolved.self_training
    if report.get("task") == "ner":
        result.update({
            "f1": report["f1"], "precision": report["precision"], "recall": report["recall"],
            "per_type": {t: m["f1"] for t, m in report["per_type"].items()},
        })  # fmt: skip
    else:
        result.update({"accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
                       "ece": report["ece"]})  # fmt: skip
    return result


def setfit_summary(paired: list[tuple[float, float, float, float]]) -> dict[str, Any]:
    """SetFit's accuracy over the draws, and on how many draws tunesmith scored at least as
    well in no more time (issue 30's goal), from ``(tunesmith accuracy, tunesmith seconds,
    SetFit accuracy, SetFit seconds)`` per draw."""
    return {
        "setfit": summarise([p[2] for p in paired]),
        "setfit_seconds_mean": round(statistics.fmean(p[3] for p in paired), 1),
        "paired": [[round(a, 4), round(t, 1), round(b, 4), round(u, 1)] for a, t, b, u in paired],
        "draws_at_least_setfit": sum(a >= b for a, _, b, _ in paired),
        "draws_at_least_setfit_no_slower": sum(a >= b and t <= u for a, t, b, u in paired),
    }


def summarise(values: list[float]) -> dict[str, float]:
    return {
        "mean": round(statistics.fmean(values), 4),
        "sd": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "n": len(values),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true", help="One 5-per-intent draw and FIN.")
    parser.add_argument("--draws", type=int, default=5, help="Random draws per few-shot setting.")
    parser.add_argument(
        "--only", default="", help="Comma-separated subset: b77_full,b77_10,b77_5,fin,wnut."
    )
    parser.add_argument("--work-dir", type=Path, default=None, help="Where models go (temp).")
    parser.add_argument(
        "--augment", default="", help="Augmenter(s) for the banking77 runs, comma-separated."
    )
    parser.add_argument(
        "--no-setfit", action="store_true", help="Race no SetFit on the few-shot draws."
    )
    parser.add_argument(
        "--unlabelled",
        action="store_true",
        help="Few-shot banking77: the training texts outside each draw, labels removed, become "
        "--unlabelled for self-training (the baseline self-trains on them too).",
    )
    args = parser.parse_args()

    from tunesmith.engine.feature_cache import cache_root
    from tunesmith.engine.threads import configure_threads

    # Every side (tunesmith, the baseline's embeddings, SetFit) runs on the same threads.
    threads = configure_threads()
    load_start = [round(x, 2) for x in os.getloadavg()]
    with_setfit = not args.no_setfit and importlib.util.find_spec("setfit") is not None
    if not args.no_setfit and not with_setfit:
        log("setfit is not installed (pip install -r requirements-bench.txt): racing no SetFit")
    iterations = QUICK_SETFIT_ITERATIONS if args.quick else SETFIT_ITERATIONS
    root = args.data_root
    banking = root / "banking77"
    if not (banking / "train.csv").is_file():
        log(f"banking77 not found under {root}; pass --data-root")
        return 2
    settings = ["b77_5", "fin"] if args.quick else ["b77_5", "b77_10", "fin", "wnut", "b77_full"]
    if args.only:
        settings = [s.strip() for s in args.only.split(",") if s.strip()]
    draws = 1 if args.quick else args.draws
    augment = [name.strip() for name in args.augment.split(",") if name.strip()]
    cache = cache_root() / "benchmarks"
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="tunesmith-accuracy-"))
    work.mkdir(parents=True, exist_ok=True)  # a --work-dir that does not exist yet
    train_rows = read_csv(banking / "train.csv")
    test_path = banking / "test.csv"
    test_rows = read_csv(test_path)
    if args.quick:
        test_rows = random.Random(0).sample(test_rows, 1000)
        test_path = write_csv(work / "test_subset.csv", test_rows)
    results: dict[str, Any] = {}
    table: list[list[str]] = []
    wall = time.perf_counter()

    for setting in settings:
        if setting.startswith("b77"):
            k = None if setting == "b77_full" else int(setting.split("_")[1])
            ours, base, times, peer = [], [], [], []
            for draw in range(1 if k is None else draws):
                rows = train_rows if k is None else draw_per_label(train_rows, k, 1000 * k + draw)
                data = write_csv(work / f"{setting}_{draw}.csv", rows)
                log(f"{setting} draw {draw}: {len(rows)} training texts")
                extra: dict[str, Any] = {}
                pool = None
                if args.unlabelled and k is not None:
                    drawn = {r["text"] for r in rows}
                    pool = [r["text"] for r in train_rows if r["text"] not in drawn]
                    extra["unlabelled"] = str(
                        write_csv(work / f"{setting}_{draw}_unlabelled.csv",
                                  [{"text": t, "label": ""} for t in pool])
                    )  # fmt: skip
                b = baseline_accuracy(rows, test_rows, cache, pool=pool)
                r = tunesmith_run(
                    data, test_path, work, f"{setting}_{draw}", augment=augment,
                    **extra,
                )  # fmt: skip
                if "self_trained" in b:
                    b["plain_accuracy"] = b["accuracy"]
                    b["accuracy"] = b["self_trained"]["accuracy"]
                log(f"  tunesmith {r['accuracy']:.4f} ({r['seconds']:.0f} s), "
                    f"baseline {b['accuracy']:.4f} (C {b['C']})")  # fmt: skip
                run = {"tunesmith": r, "baseline": b}
                if with_setfit and k is not None:
                    # The same draw, scored on the same test texts.
                    sf = setfit_peer(rows, test_rows, work / f"setfit_{setting}_{draw}", iterations)
                    log(f"  SetFit {sf['accuracy']:.4f} ({sf['seconds']:.0f} s, "
                        f"{sf['steps']} steps)")  # fmt: skip
                    run["setfit"] = sf
                    peer.append((r["accuracy"], r["seconds"], sf["accuracy"], sf["seconds"]))
                ours.append(r["accuracy"])
                base.append(b["accuracy"])
                times.append(r["seconds"])
                results.setdefault(setting, {"runs": []})["runs"].append(run)
            results[setting]["tunesmith"] = summarise(ours)
            results[setting]["baseline"] = summarise(base)
            results[setting]["train_seconds_mean"] = round(statistics.fmean(times), 1)
            s, b_ = results[setting]["tunesmith"], results[setting]["baseline"]
            setfit_cell = "-"
            if peer:
                results[setting].update(setfit_summary(peer))
                f = results[setting]["setfit"]
                setfit_cell = (f"{f['mean']:.4f} ± {f['sd']:.4f} "
                               f"({results[setting]['setfit_seconds_mean']:.0f} s)")  # fmt: skip
            table.append([setting, f"{s['mean']:.4f} ± {s['sd']:.4f} (n={s['n']})",
                          f"{b_['mean']:.4f} ± {b_['sd']:.4f}", setfit_cell,
                          f"{statistics.fmean(times):.0f}"])  # fmt: skip
        elif setting in ("fin", "wnut"):
            folder = root / ("fin_ner" if setting == "fin" else "wnut17")
            test = folder / "test.conll"
            eval_file = folder / "dev.conll" if (folder / "dev.conll").is_file() else None
            log(f"{setting}: training on {folder / 'train.conll'}")
            r = tunesmith_run(folder / "train.conll", test, work, setting, eval_data=eval_file)
            results[setting] = r
            per_type = ", ".join(f"{t} {f:.3f}" for t, f in sorted(r["per_type"].items()))
            table.append(
                [setting, f"entity F1 {r['f1']:.4f} ({per_type})", "-", "-", f"{r['seconds']:.0f}"]
            )
        else:
            log(f"unknown setting {setting!r}")
            return 2

    headers = ["setting", "tunesmith (test)", "frozen-embedding LR", "SetFit (train s)", "train s"]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    summary = {
        "benchmark": "accuracy",
        "quick": args.quick,
        "augment": augment,
        "unlabelled": args.unlabelled,
        "threads": threads,
        "versions": peer_versions(),
        "setfit_iterations": iterations if with_setfit else None,
        "load_average_start": load_start,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "results": {
            key: (
                {k: v for k, v in value.items() if k != "runs"}
                if isinstance(value, dict)
                else value
            )
            for key, value in results.items()
        },
    }
    print(strict_json(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
