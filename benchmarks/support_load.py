"""Load test of `tunesmith support serve` on 127.0.0.1 with a 10,000-passage knowledge base.

Builds a KB of synthetic Markdown passages (100 documents of 100 sections; the default model),
calibrates it on synthetic questions, starts the server in a child process, then runs a bounded
load: ``--workers`` threads (httpx clients) send POST /v1/ask for ``--seconds`` seconds, half of
them continuing a conversation. Reports sustained requests/s, p50/p95/max latency and errors,
and checks that every request left a turn in the conversation database.

    python benchmarks/support_load.py [--quick] [--workers 8] [--seconds 60] [--kb DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import ROOT, log  # noqa: E402

from tunesmith.events import strict_json  # noqa: E402

PRODUCTS = [
    "tent",
    "sleeping bag",
    "backpack",
    "kayak",
    "paddleboard",
    "rain jacket",
    "hiking boot",
    "trail shoe",
    "camp stove",
    "headlamp",
    "water filter",
    "trekking pole",
    "climbing rope",
    "harness",
    "helmet",
    "bike",
    "ski",
    "snowshoe",
    "cooler",
    "hammock",
]
TOPICS = [
    ("care", "Clean the {p} with lukewarm water and a soft brush, then let it dry in the shade."),
    (
        "repair",
        "Small tears in the {p} can be patched with the repair kit; larger ones go to the shop.",
    ),
    ("sizing", "Choose a {p} one size up if you wear thick socks or layers underneath."),
    ("storage", "Store the {p} loosely in a cool, dry place away from direct sunlight."),
    (
        "warranty",
        "The {p} is covered against manufacturing defects for the lifetime of the product.",
    ),
]


def write_sources(folder: Path, n_docs: int, sections: int) -> None:
    """``n_docs`` Markdown documents of ``sections`` sections each: distinct synthetic passages."""
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(n_docs):
        lines = [f"# Product guide {d}"]
        for s in range(sections):
            product = PRODUCTS[(d + s) % len(PRODUCTS)]
            topic, text = TOPICS[(d * sections + s) % len(TOPICS)]
            model = f"model {d}-{s}"
            lines.append(f"\n## {product.title()} {model} {topic}\n")
            lines.append(
                text.format(p=f"{product} {model}")
                + f" Reference {rng.randrange(10**6)}; season {2020 + s % 6}."
            )
        (folder / f"guide-{d:03d}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_questions(path: Path, n_docs: int, sections: int, n: int) -> list[str]:
    rng = random.Random(1)
    rows, questions = [], []
    for _ in range(n):
        d, s = rng.randrange(n_docs), rng.randrange(sections)
        product = PRODUCTS[(d + s) % len(PRODUCTS)]
        topic, _ = TOPICS[(d * sections + s) % len(TOPICS)]
        q = f"{topic} of the {product} model {d}-{s}?"
        slug = f"{product} model {d}-{s} {topic}".replace(" ", "-")
        rows.append((q, f"guide-{d:03d}#{slug}"))
        questions.append(q)
    for q in ["what is the weather tomorrow", "tell me a joke", "who won the match"] * 5:
        rows.append((q, ""))
    with path.open("w", encoding="utf-8") as handle:
        handle.write("question,answer_id\n")
        for q, a in rows:
            handle.write(f'"{q}",{a}\n')
    return questions


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 passages, 20 seconds")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--kb", type=Path, default=None, help="reuse a KB built by this script")
    args = parser.parse_args()
    n_docs, sections = (10, 100) if args.quick else (100, 100)
    seconds = args.seconds or (20.0 if args.quick else 60.0)
    tunesmith = str(Path(sys.executable).parent / "tunesmith")

    work = Path(tempfile.mkdtemp(prefix="support-load-"))
    kb = args.kb or work / "kb"
    questions_csv = work / "questions.csv"
    questions = write_questions(questions_csv, n_docs, sections, 200)
    if not (kb / "calibration.json").exists():
        write_sources(work / "sources", n_docs, sections)
        t0 = time.time()
        subprocess.run(
            [tunesmith, "support", "index", "--kb", str(work / "sources"), "--out", str(kb)],
            check=True,
            stdout=sys.stderr,  # its report is a log here: stdout holds the table and JSON line
        )
        log(f"indexed {n_docs * sections} passages in {time.time() - t0:.0f} s")
        subprocess.run(
            [tunesmith, "support", "calibrate", "--kb", str(kb), "--data", str(questions_csv)],
            check=True,
            stdout=sys.stderr,
        )
    n_entries = json.loads((kb / "kb.json").read_text())["entries"]
    db = work / "load.sqlite"
    port = free_port()
    server = subprocess.Popen(
        [
            tunesmith,
            "support",
            "serve",
            "--kb",
            str(kb),
            "--port",
            str(port),
            "--db",
            str(db),
            "--sink",
            f"jsonl:{work / 'handoffs.jsonl'}",
        ],
        cwd=ROOT,
        stdout=sys.stderr,
    )
    import httpx

    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while True:
            try:
                if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.5)
        log(f"server up with {n_entries} entries; {args.workers} workers for {seconds:.0f} s")
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        stop = time.time() + seconds

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            conversation = None
            with httpx.Client(base_url=url, timeout=30) as client:
                while time.time() < stop:
                    body = {"question": rng.choice(questions)}
                    if conversation and rng.random() < 0.5:
                        body["conversation_id"] = conversation
                    t0 = time.perf_counter()
                    try:
                        r = client.post("/v1/ask", json=body)
                        ok = r.status_code == 200
                        if ok:
                            conversation = r.json()["conversation_id"]
                        err = None if ok else f"HTTP {r.status_code}: {r.text[:100]}"
                    except httpx.HTTPError as exc:
                        err = f"{type(exc).__name__}: {exc}"
                    elapsed = time.perf_counter() - t0
                    with lock:
                        latencies.append(elapsed)
                        if err:
                            errors.append(err)

        started = time.time()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.time() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
    stored = sqlite3.connect(db).execute("SELECT COUNT(*) FROM support_turns").fetchone()[0]
    lat = np.asarray(latencies) * 1000
    ok = len(latencies) - len(errors)
    result = {
        "benchmark": "support_load",
        "quick": args.quick,
        "passages": n_entries,
        "workers": args.workers,
        "seconds": round(wall, 1),
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / wall, 2),
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p95_ms": round(float(np.percentile(lat, 95)), 1),
        "max_ms": round(float(lat.max()), 1),
        "errors": len(errors),
        "turns_stored": int(stored),
        "all_turns_stored": int(stored) == ok,
    }
    print(f"support serve on 127.0.0.1, {n_entries} passages, {args.workers} client threads")
    print("requests | req/s | p50 ms | p95 ms | max ms | errors | turns stored")
    print(
        f"{result['requests']} | {result['requests_per_s']} | {result['p50_ms']} | "
        f"{result['p95_ms']} | {result['max_ms']} | {result['errors']} | {stored}"
    )
    for e in sorted(set(errors))[:5]:
        print(f"error: {e}")
    print(strict_json(result))


if __name__ == "__main__":
    main()
