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
