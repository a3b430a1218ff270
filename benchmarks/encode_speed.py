"""Encoding speed: tunesmith's Encoder (fp32 and int8) against SentenceTransformer.encode.

Texts: the distinct bank_faq answers and the banking77 training texts (about 11,400), shuffled
with a fixed seed; ``--quick`` takes 1,200 of them. All three runners use the default model
(all-MiniLM-L6-v2) in one process, with the same torch threads and the same batch size (32,
sentence-transformers' default):

* ``sentence-transformers``: ``SentenceTransformer(default).encode(chunk, batch_size=32)``;
* ``tunesmith fp32``: ``Encoder.load("default").encode(chunk, batch_size=32)``;
* ``tunesmith int8``: the same with ``quantize="int8"`` and activation ranges recorded (as
  ``tunesmith train`` records them) on 512 bank_faq *questions*, which are not timed: a
  throw-away directory links the default model's files and holds the ``int8_ranges.json``.

The texts are cut into chunks; on each chunk the three take turns (the order rotates), so a
change in the shared machine's load hits them alike, and the texts/s of each is all texts over
its summed time. Reported beside the speed: the largest absolute difference of any embedding
coordinate against sentence-transformers (goal: below 1e-5 at fp32) and the int8 cosines.
Goal: fp32 texts/s >= 1.5x sentence-transformers'.

Where the fp32 time goes: a hook on each model counts the token positions it computed (padding
included), and the encoder layers' linear layers cost 2 x their weights' size in FLOP per
position. With this machine's fp32 matrix-product rate, measured in the same run on the shape
of those layers, that gives each fp32 encoder's share of the machine's fp32 arithmetic, and the
rate its linear layers alone would need for 1.5x sentence-transformers' texts/s.

Usage: python benchmarks/encode_speed.py [--quick] [--data-root DIR] [--batch-size 32]
    [--chunk 2000]
Prints a table and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import DEFAULT_DATA, log, read_csv  # noqa: E402

from tunesmith.events import strict_json  # noqa: E402


def int8_model_dir(root: Path, questions: list[str]) -> Path:
    """A directory of links to the default model's files plus recorded int8 ranges."""
    from tunesmith.engine.quantize import RANGES_FILE
    from tunesmith.io import atomic_write_json
    from tunesmith.models import default_model_path
    from tunesmith.retrieval import Encoder
    from tunesmith.retrieval.encoder import record_int8_ranges

    source = default_model_path()
    target = root / "default-int8"
    target.mkdir()
    for item in source.iterdir():
        (target / item.name).symlink_to(item)
    atomic_write_json(target / RANGES_FILE, record_int8_ranges(Encoder.load("default"), questions))
    return target


def linear_flop_per_position(model) -> int:
    """FLOP of the encoder layers' linear layers for one token position (2 x weights)."""
    import torch

    return 2 * sum(
        m.weight.numel() for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)
    )


def count_positions(model) -> list[int]:
    """A one-item list that counts the token positions ``model`` computes (batch x width)."""
    counted = [0]

    def hook(_module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None:
            counted[0] += int(ids.shape[0]) * int(ids.shape[1])

    model.embeddings.register_forward_pre_hook(hook, with_kwargs=True)
    return counted


def gemm_gflops(rows: int, hidden: int, inner: int, seconds: float = 2.0) -> float:
    """This machine's fp32 matrix-product rate on the linear layers' shape, in GFLOP/s."""
    import torch

    a, b = torch.randn(rows, hidden), torch.randn(hidden, inner)
    for _ in range(10):
        a @ b
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        done += 1
    return 2 * rows * hidden * inner * done / (time.perf_counter() - started) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=None, help="texts per turn")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from tunesmith.engine.threads import configure_threads

    configure_threads()
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from tunesmith.models import default_model_path
    from tunesmith.retrieval import Encoder

    faq = read_csv(args.data_root / "bank_faq" / "faq.csv")
    answers = list(dict.fromkeys(r["answer"] for r in faq))
    banking = [r["text"] for r in read_csv(args.data_root / "banking77" / "train.csv")]
    texts = answers + banking
    random.Random(args.seed).shuffle(texts)
    if args.quick:
        texts = texts[:1200]
    chunk = args.chunk or (300 if args.quick else 2000)
    questions = list(dict.fromkeys(r["question"] for r in faq))
    log(
        f"{len(texts)} texts ({len(answers)} bank_faq answers + banking77 train), chunks of {chunk}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        st = SentenceTransformer(str(default_model_path()), device="cpu")
        fp32 = Encoder.load("default")
        int8 = Encoder.load(int8_model_dir(Path(tmp), questions), quantize="int8")
        positions = {
            "sentence-transformers": count_positions(st[0].auto_model),
            "tunesmith fp32": count_positions(fp32.model),
        }
        runners = {
            "sentence-transformers": lambda xs: st.encode(
                xs, batch_size=args.batch_size, show_progress_bar=False, convert_to_numpy=True
            ),
            "tunesmith fp32": lambda xs: fp32.encode(xs, batch_size=args.batch_size),
            "tunesmith int8": lambda xs: int8.encode(xs, batch_size=args.batch_size),
        }
        for run in runners.values():  # warm-up: first-call allocations and kernel choices
            run(texts[:64])
        for counted in positions.values():
            counted[0] = 0
        names = list(runners)
        seconds = dict.fromkeys(names, 0.0)
        outputs: dict[str, list] = {name: [] for name in names}
        chunks = [texts[i : i + chunk] for i in range(0, len(texts), chunk)]
        for turn, part in enumerate(chunks):
            order = names[turn % 3 :] + names[: turn % 3]
            for name in order:
                started = time.perf_counter()
                outputs[name].append(runners[name](part))
                seconds[name] += time.perf_counter() - started
            log(
                f"chunk {turn + 1}/{len(chunks)}: "
                + ", ".join(f"{n} {seconds[n]:.1f} s" for n in names)
            )
    flop = linear_flop_per_position(fp32.model)
    config = fp32.model.config
    width = positions["tunesmith fp32"][0] / len(texts)  # mean padded tokens per text
    machine = gemm_gflops(
        int(args.batch_size * width), config.hidden_size, config.intermediate_size
    )
    linear = {n: positions[n][0] * flop / seconds[n] / 1e9 for n in positions}
    vectors = {name: np.concatenate(parts) for name, parts in outputs.items()}
    reference = vectors["sentence-transformers"]
    rate = {name: len(texts) / seconds[name] for name in names}
    diff_fp32 = float(np.abs(vectors["tunesmith fp32"] - reference).max())
    cosines = (vectors["tunesmith int8"] * reference).sum(axis=1)
    diff_int8 = float(np.abs(vectors["tunesmith int8"] - reference).max())

    print(f"{'encoder':<22} {'texts/s':>8} {'vs ST':>6} {'max |diff|':>11}")
    base = rate["sentence-transformers"]
    for name, diff in (
        ("sentence-transformers", 0.0),
        ("tunesmith fp32", diff_fp32),
        ("tunesmith int8", diff_int8),
    ):
        print(f"{name:<22} {rate[name]:>8.1f} {rate[name] / base:>5.2f}x {diff:>11.2e}")
    print(
        f"{len(texts)} texts, batch {args.batch_size}, {torch.get_num_threads()} threads; "
        f"int8 cosine to ST: mean {cosines.mean():.5f}, min {cosines.min():.5f}"
    )
    speedup = rate["tunesmith fp32"] / base
    # 1.5x sentence-transformers' texts/s with our positions, at zero cost for all but the
    # linear layers: the least rate those layers alone would need.
    needed = 1.5 * base * positions["tunesmith fp32"][0] / len(texts) * flop / 1e9
    print(
        f"token positions computed: sentence-transformers {positions['sentence-transformers'][0]:,}"
        f", tunesmith fp32 {positions['tunesmith fp32'][0]:,}; linear layers at "
        f"{linear['sentence-transformers']:.0f} and {linear['tunesmith fp32']:.0f} GFLOP/s, "
        f"this machine's fp32 matrix products {machine:.0f} GFLOP/s; 1.5x would need "
        f"{needed:.0f} GFLOP/s in the linear layers alone"
    )
    summary = {
        "benchmark": "encode_speed",
        "quick": args.quick,
        "texts": len(texts),
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "st_texts_per_s": round(base, 1),
        "fp32_texts_per_s": round(rate["tunesmith fp32"], 1),
        "int8_texts_per_s": round(rate["tunesmith int8"], 1),
        "fp32_speedup": round(speedup, 3),
        "int8_speedup": round(rate["tunesmith int8"] / base, 3),
        "max_abs_diff_fp32": diff_fp32,
        "int8_cosine_mean": round(float(cosines.mean()), 6),
        "int8_cosine_min": round(float(cosines.min()), 6),
        "equal_within_1e-5": diff_fp32 < 1e-5,
        "st_positions": positions["sentence-transformers"][0],
        "fp32_positions": positions["tunesmith fp32"][0],
        "st_linear_gflops": round(linear["sentence-transformers"], 1),
        "fp32_linear_gflops": round(linear["tunesmith fp32"], 1),
        "machine_fp32_gemm_gflops": round(machine, 1),
        "linear_gflops_needed_for_1.5x": round(needed, 1),
        "goal_fp32_1.5x_met": speedup >= 1.5,
    }
    print(strict_json(summary))


if __name__ == "__main__":
    main()
