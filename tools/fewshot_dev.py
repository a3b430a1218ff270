"""Few-shot development grid: choose few-shot defaults without looking at the test split.

Few-shot runs have no held-out data, so their defaults (WiSE-FT weight, nearest-example share
and temperature, how many epochs, ...) must be chosen before a user's data arrives. This script
chooses them on banking77 *training* texts outside each draw (the development set), and prints
the test accuracy beside it for the record only. Two steps, both resumable:

1. ``train``: each draw (the same draws as ``accuracy.py``) is trained once with tunesmith's
   defaults plus ``--set NAME=VALUE`` overrides. A training callback (registered through the
   ``tunesmith_train_callbacks`` hook, as any plugin would) keeps the starting weights, the
   weights at the end of every epoch of the second half, and the final fine-tuned weights.
2. ``score``: every inference-time choice is replayed on those weights without retraining:
   which weights (final, or the average of the last epochs), the WiSE-FT weight, the head's
   share of the nearest-example mixture and its temperature, and a head refitted on the
   blended encoder; with ``--unlabelled``, self-training (``tunesmith train --unlabelled``) on
   the training texts outside the draw and the development set, their labels unread, at every
   threshold and number of rounds of a small grid. Prints mean development and test accuracy
   per choice and one JSON line.

``--quick`` trains one 5-per-intent draw for 2 epochs and replays a small grid (a smoke check of
a few minutes). Example (10 per intent, draws 0 and 1)::

    python tools/fewshot_dev.py --k 10 --draws 0,1 --work-dir /tmp/dev --tag base
    python tools/fewshot_dev.py --k 10 --draws 0,1 --work-dir /tmp/dev --tag e30 \\
        --set epochs=30
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The draws and the CSV helpers are the benchmarks' own: this tool chooses defaults on the same.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from accuracy import draw_per_label  # noqa: E402
from bench_common import DEFAULT_DATA, log, read_csv, write_csv  # noqa: E402

WISE = (0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
#: ``--unlabelled``: self-training thresholds and rounds replayed at the default blend.
PSEUDO_THRESHOLDS = (0.6, 0.7, 0.8, 0.9)
PSEUDO_ROUNDS = (1, 2)
SHARES = (0.3, 0.4, 0.5, 0.6, 0.7, 1.0)
TEMPERATURES = (0.03, 0.05, 0.07)


def parse_value(text: str) -> Any:
    """``--set`` values: numbers become numbers, ``none`` None, the rest stays a string."""
    if text.lower() == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def development_rows(
    rows: list[dict[str, str]], drawn: list[dict[str, str]], size: int
) -> list[dict[str, str]]:
    """``size`` training rows that are not in the draw (fixed seed, the same for every tag)."""
    taken = {(r["text"], r["label"]) for r in drawn}
    outside = [r for r in rows if (r["text"], r["label"]) not in taken]
    return random.Random(7).sample(outside, min(size, len(outside)))


# --- step 1: train and keep the weights ---------------------------------------------------------


def make_recorder(folder: Path, keep_epochs: bool = True) -> Any:
    """A TrainerCallback keeping the start, the second half's epoch ends (when
    ``keep_epochs``: only the weight averages need them) and the final weights."""
    import pickle

    import torch
    from transformers import TrainerCallback

    from tunesmith.engine.wise import snapshot

    class WeightRecorder(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            folder.mkdir(parents=True, exist_ok=True)
            torch.save(snapshot(kwargs["model"]), folder / "start.pt")
            dataset = kwargs["train_dataloader"].dataset
            with (folder / "train_items.pkl").open("wb") as handle:
                pickle.dump({"items": dataset.items, "labels": list(dataset.labels)}, handle)

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            epoch = round(float(state.epoch or 0))
            if keep_epochs and epoch * 2 >= args.num_train_epochs:
                torch.save(snapshot(kwargs["model"]), folder / f"epoch-{epoch:03d}.pt")

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            torch.save(snapshot(kwargs["model"]), folder / "final.pt")

    return WeightRecorder()


def train_draw(
    data: Path, out: Path, folder: Path, settings: dict[str, Any], recorder: Any = make_recorder
) -> float:
    """Train one draw with ``recorder(folder)`` (``make_recorder`` or a wrapper) attached;
    returns the training seconds."""
    import tunesmith
    from tunesmith.engine.config import RunConfig
    from tunesmith.engine.train import train
    from tunesmith.plugins import get_plugin_manager

    class Recorder:
        @tunesmith.hookimpl
        def tunesmith_train_callbacks(self, run: Any) -> list[Any]:
            return [recorder(folder)]

    manager = get_plugin_manager()
    plugin = Recorder()
    manager.register(plugin, name="fewshot-dev-recorder")
    try:
        started = time.perf_counter()
        train(RunConfig(data=str(data), out=str(out), force=True, **settings), log=lambda m: None)
        return time.perf_counter() - started
    finally:
        manager.unregister(plugin)


# --- step 2: replay the inference-time choices --------------------------------------------------


def embed_and_score(model: Any, pad_id: int, sets: dict[str, Any]) -> dict[str, tuple]:
    """Pooled embeddings and head logits of each encoded set, under the model's weights now."""
    import torch

    from tunesmith.engine.embeddings import pooled_embeddings

    out = {}
    for name, items in sets.items():
        pooled = pooled_embeddings(model, items, pad_id=pad_id)
        with torch.inference_mode():
            out[name] = (pooled, model.classifier(pooled))
    return out


def score_draw(
    folder: Path,
    model_dir: Path,
    dev: list[dict],
    test: list[dict],
    wise_grid: tuple[float, ...] = WISE,
    averages: bool = True,
    pool: list[dict] | None = None,
) -> dict[str, tuple[float, float]]:
    """Development and test accuracy of every choice for one draw: ``{choice: (dev, test)}``.

    With ``pool`` (unlabelled rows: their labels are not read), self-training is replayed as
    ``--unlabelled`` does it, at the final weights blended by the few-shot WiSE-FT weight."""
    import pickle

    import torch

    from tunesmith.engine.encoding import encode_texts
    from tunesmith.engine.loading import load_model
    from tunesmith.engine.nearest import TEMPERATURE, NearestExamples, attach
    from tunesmith.engine.probe import fit_linear_probe
    from tunesmith.engine.wise import FEW_SHOT_WEIGHT, blend

    loaded = load_model(model_dir)
    model, tokenizer = loaded.model, loaded.tokenizer
    attach(model, None)
    index = {label: i for i, label in enumerate(loaded.labels)}
    pad_id = tokenizer.pad_token_id or 0
    with (folder / "train_items.pkl").open("rb") as handle:
        stored = pickle.load(handle)
    sets = {
        "train": stored["items"],
        "dev": encode_texts(tokenizer, [r["text"] for r in dev], loaded.max_length),
        "test": encode_texts(tokenizer, [r["text"] for r in test], loaded.max_length),
    }
    truth = {
        "dev": torch.tensor([index[r["label"]] for r in dev]),
        "test": torch.tensor([index[r["label"]] for r in test]),
    }
    train_y = torch.tensor(stored["labels"], dtype=torch.long)
    start = torch.load(folder / "start.pt")
    endpoints = {"final": torch.load(folder / "final.pt")}
    epochs = sorted(folder.glob("epoch-*.pt"))
    if averages and len(epochs) >= 4:
        for name, chosen in (("last-half", epochs), ("last-quarter", epochs[len(epochs) // 2 :])):
            states = [torch.load(p) for p in chosen]
            endpoints[name] = {k: sum(s[k] for s in states) / len(states) for k in states[0]}
    results: dict[str, tuple[float, float]] = {}
    for (end_name, end), wise in itertools.product(endpoints.items(), wise_grid):
        blend(model, start, end, wise)
        encoded = embed_and_score(model, pad_id, sets)
        train_pooled = encoded["train"][0]
        memory = NearestExamples(train_pooled, train_y, len(loaded.labels), 1.0, TEMPERATURE)
        weight, bias, _ = fit_linear_probe(
            train_pooled, train_y.tolist(), "classification", num_labels=len(loaded.labels),
            seed=42,
        )  # fmt: skip
        weight, bias = torch.as_tensor(weight), torch.as_tensor(bias)
        # Logits per head and split, computed once for every share and temperature below.
        heads: dict[str, dict[str, tuple[Any, Any]]] = {"head": {}, "refit": {}}
        for split in ("dev", "test"):
            pooled, logits = encoded[split]
            heads["head"][split] = (pooled, logits)
            heads["refit"][split] = (pooled, pooled @ weight.T + bias)
        for head_name, splits in heads.items():
            for share, temperature in itertools.product(SHARES, TEMPERATURES):
                if share == 1.0 and temperature != TEMPERATURES[0]:
                    continue  # the head alone: the temperature plays no part
                memory.temperature = temperature
                dev_score, test_score = (
                    memory.accuracy(logits, pooled, truth[split], share)
                    for split, (pooled, logits) in splits.items()
                )
                key = f"{end_name} wise={wise:g} {head_name} share={share:g} t={temperature:g}"
                results[key] = (dev_score, test_score)
        if pool is not None and end_name == "final" and wise == FEW_SHOT_WEIGHT:
            unlabelled = encode_texts(tokenizer, [r["text"] for r in pool], loaded.max_length)
            results.update(
                self_training_scores(
                    model, pad_id, unlabelled, encoded, truth, train_y, len(loaded.labels),
                    f"{end_name} wise={wise:g}",
                )
            )  # fmt: skip
    return results


def self_training_scores(
    model: Any,
    pad_id: int,
    unlabelled: list[dict],
    encoded: dict[str, tuple],
    truth: dict[str, Any],
    train_y: Any,
    num_labels: int,
    prefix: str,
) -> dict[str, tuple[float, float]]:
    """Development and test accuracy after the engine's ``self_train`` at every threshold and
    number of rounds of the grid, from the model's weights as they are (head put back after)."""
    import torch

    from tunesmith.engine.embeddings import pooled_embeddings
    from tunesmith.engine.modeling import set_head_weights
    from tunesmith.engine.nearest import FEW_SHOT_WEIGHT, TEMPERATURE, NearestExamples
    from tunesmith.engine.self_training import self_train

    pool_pooled = pooled_embeddings(model, unlabelled, pad_id=pad_id)
    train_pooled = encoded["train"][0]
    head = model.classifier
    saved = head.weight.detach().clone(), head.bias.detach().clone()
    results = {}
    for threshold, rounds in itertools.product(PSEUDO_THRESHOLDS, PSEUDO_ROUNDS):
        set_head_weights(model, *saved)
        memory = NearestExamples(train_pooled, train_y, num_labels, FEW_SHOT_WEIGHT, TEMPERATURE)
        self_train(model, memory, train_pooled, train_y.tolist(), pool_pooled,
                   threshold=threshold, rounds=rounds)  # fmt: skip
        scores = []
        for split in ("dev", "test"):
            pooled = encoded[split][0]
            with torch.inference_mode():
                logits = model.classifier(pooled)
            scores.append(memory.accuracy(logits, pooled, truth[split], FEW_SHOT_WEIGHT))
        key = (
            f"{prefix} head self-train p={threshold:g} rounds={rounds} "
            f"share={FEW_SHOT_WEIGHT:g} t={TEMPERATURE:g}"
        )
        results[key] = (scores[0], scores[1])
    set_head_weights(model, *saved)
    return results


def default_choice() -> str:
    """The key of what a few-shot run does today, from the engine's own constants."""
    from tunesmith.engine import nearest, wise

    return (
        f"final wise={wise.FEW_SHOT_WEIGHT:g} head share={nearest.FEW_SHOT_WEIGHT:g} "
        f"t={nearest.TEMPERATURE:g}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--k", type=int, default=10, help="Examples per intent.")
    parser.add_argument("--draws", default="0,1", help="Comma-separated draw numbers.")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="Weights and models go here (default: a temporary folder).")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="Smoke run: one 5-per-intent draw, 2 epochs, a small grid.")  # fmt: skip
    parser.add_argument("--tag", default="base", help="Name of this recipe (a subfolder).")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="A RunConfig override, e.g. epochs=30 (repeatable).")  # fmt: skip
    parser.add_argument("--dev-size", type=int, default=2000)
    parser.add_argument("--wise", default=",".join(f"{w:g}" for w in WISE),
                        help="WiSE-FT weights to replay (comma-separated).")  # fmt: skip
    parser.add_argument("--no-averages", action="store_true",
                        help="Skip the averages of the last epochs' weights.")  # fmt: skip
    parser.add_argument("--top", type=int, default=15, help="Choices printed, best dev first.")
    parser.add_argument("--unlabelled", action="store_true",
                        help="Replay self-training on the training texts outside the draw and "
                        "the development set (labels not read).")  # fmt: skip
    args = parser.parse_args()

    if args.quick:
        args.k, args.draws, args.dev_size, args.wise, args.no_averages = 5, "0", 300, "0.4", True
        args.set = ["epochs=2", *args.set]
    if args.work_dir is None:
        import tempfile

        args.work_dir = Path(tempfile.mkdtemp(prefix="tunesmith-fewshot-dev-"))
    banking = args.data_root / "banking77"
    if not (banking / "train.csv").is_file():
        log(f"banking77 not found under {args.data_root}; pass --data-root")
        return 2
    settings = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            log(f"--set {item!r}: expected NAME=VALUE")
            return 2
        settings[name.replace("-", "_")] = parse_value(value)
    recorder = functools.partial(make_recorder, keep_epochs=not args.no_averages)
    rows = read_csv(banking / "train.csv")
    test = read_csv(banking / "test.csv")
    tag_dir = args.work_dir / args.tag
    tag_dir.mkdir(parents=True, exist_ok=True)
    wise_grid = [float(w) for w in args.wise.split(",")]
    per_draw: list[dict[str, tuple[float, float]]] = []
    seconds: list[float] = []
    for draw in (int(d) for d in args.draws.split(",")):
        drawn = draw_per_label(rows, args.k, 1000 * args.k + draw)
        folder = tag_dir / f"k{args.k}-draw{draw}"
        model_dir = folder / "model"
        if not (folder / "final.pt").is_file() or not model_dir.is_dir():
            data = write_csv(tag_dir / f"k{args.k}-draw{draw}.csv", drawn)
            log(f"{args.tag}: training {args.k} per intent, draw {draw} ({settings or 'defaults'})")
            seconds.append(train_draw(data, model_dir, folder, settings, recorder))
            log(f"  {seconds[-1]:.0f} s")
        # Scores are reused only for the same grid: another --wise or --dev-size rescores.
        grid = {"wise": wise_grid, "averages": not args.no_averages, "dev_size": args.dev_size,
                "unlabelled": args.unlabelled}  # fmt: skip
        scores_file = folder / "scores.json"
        kept = json.loads(scores_file.read_text()) if scores_file.is_file() else {}
        if kept.get("grid") == grid:
            per_draw.append({k: tuple(v) for k, v in kept["scores"].items()})
            continue
        log(f"{args.tag}: scoring draw {draw}")
        dev = development_rows(rows, drawn, args.dev_size)
        pool = None
        if args.unlabelled:
            taken = {r["text"] for r in drawn} | {r["text"] for r in dev}
            pool = [r for r in rows if r["text"] not in taken]
            if args.quick:
                pool = random.Random(7).sample(pool, min(1000, len(pool)))
        scores = score_draw(
            folder, model_dir, dev, test, tuple(wise_grid), grid["averages"], pool=pool
        )
        scores_file.write_text(json.dumps({"grid": grid, "scores": scores}))
        per_draw.append(scores)

    keys = list(per_draw[0])
    mean = {
        k: (
            statistics.fmean(d[k][0] for d in per_draw),
            statistics.fmean(d[k][1] for d in per_draw),
        )
        for k in keys
    }
    default = default_choice()
    ranked = sorted(keys, key=lambda k: -mean[k][0])
    shown = [default] if default in mean else []  # absent when --wise leaves it out
    listed = [*shown, *[k for k in ranked[: args.top] if k != default]]
    width = max(len(k) for k in listed)
    print(f"{'choice':<{width}} {'dev':>7} {'test':>7}")
    for key in listed:
        print(f"{key:<{width}} {mean[key][0]:7.4f} {mean[key][1]:7.4f}")
    print(json.dumps({
        "benchmark": "fewshot_dev", "k": args.k, "draws": args.draws, "tag": args.tag,
        "settings": settings,
        "train_seconds": [round(s, 1) for s in seconds],
        "default": (
            {"dev": round(mean[default][0], 4), "test": round(mean[default][1], 4)}
            if shown else None
        ),
        "best_dev": {"choice": ranked[0], "dev": round(mean[ranked[0]][0], 4),
                     "test": round(mean[ranked[0]][1], 4)},
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
