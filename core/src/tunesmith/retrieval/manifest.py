"""``meta.json``, the manifest of a saved generation: which encoder made the vectors (name, dim,
int8 or float32), the index kind and size, and the format; checked when an index is loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tunesmith import __version__
from tunesmith.errors import DataError, UserInputError
from tunesmith.retrieval.backend import EXACT_LIMIT

FORMAT_VERSION = 1
METRIC = "inner_product"
#: The IVF settings a manifest of kind ``ivf`` records.
_IVF_KEYS = ("nlist", "nprobe", "trained_count")


class EncoderLike(Protocol):
    """What the index needs of an encoder (``tunesmith.retrieval.Encoder`` fits)."""

    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray: ...


def precision_of(encoder: EncoderLike | None) -> str | None:
    """``"int8"`` or ``"float32"`` for an encoder that says whether it is quantised
    (``Encoder.quantized``); ``None`` for one that does not."""
    quantized = getattr(encoder, "quantized", None)
    if not isinstance(quantized, bool):
        return None
    return "int8" if quantized else "float32"


@dataclass(frozen=True)
class Manifest:
    """The fields of a ``meta.json`` that a load needs, checked."""

    dim: int
    encoder: str
    kind: str
    count: int
    format: int
    encoder_precision: str | None
    exact_limit: int


def make_manifest(
    *,
    encoder_name: str,
    dim: int,
    kind: str,
    count: int,
    exact_limit: int,
    encoder_precision: str | None,
    ivf: dict[str, int],
) -> dict[str, Any]:
    """The ``meta.json`` of a generation about to be saved."""
    meta: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "tunesmith_version": __version__,
        "encoder": encoder_name,
        "dim": dim,
        "metric": METRIC,
        "kind": kind,
        "count": count,
        "exact_limit": exact_limit,
    }
    if encoder_precision is not None:
        meta["encoder_precision"] = encoder_precision
    if kind == "ivf":
        meta.update(ivf)
    return meta


def parse_manifest(meta: dict[str, Any], file: Path) -> Manifest:
    """The checked fields of ``meta`` (read from ``file``); a :class:`DataError` naming the
    file when one is missing or of the wrong type."""
    try:
        precision = meta.get("encoder_precision")
        return Manifest(
            dim=int(meta["dim"]),
            encoder=str(meta["encoder"]),
            kind=str(meta["kind"]),
            count=int(meta["count"]),
            format=int(meta.get("format", 1)),
            encoder_precision=None if precision is None else str(precision),
            exact_limit=int(meta.get("exact_limit", EXACT_LIMIT)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"meta.json lacks a valid field ({exc})", path=file) from None


def check_compatible(manifest: Manifest, encoder: EncoderLike | None, path: Path) -> None:
    """Refuse (one :class:`UserInputError` naming the index at ``path``) a format newer than
    this tunesmith reads, and an encoder other than the one that made the vectors: another
    name or dim, or int8 for float32 vectors or the reverse."""
    if manifest.format > FORMAT_VERSION:
        raise UserInputError(
            f"index {path} has format {manifest.format}; this tunesmith reads up to {FORMAT_VERSION}: upgrade tunesmith"
        )
    name, dim, precision = manifest.encoder, manifest.dim, manifest.encoder_precision
    if encoder is not None and (str(encoder.name) != name or int(encoder.dim) != dim):
        raise UserInputError(
            f"index {path} was built with encoder '{name}' (dim {dim}), not '{encoder.name}' "
            f"(dim {encoder.dim}): load it with that encoder or rebuild the index"
        )
    given = precision_of(encoder)
    if precision is not None and given is not None and given != precision:
        # Same weights, other arithmetic: the query vectors would not be the stored ones'.
        quantize = "quantize='int8'" if precision == "int8" else "no quantize"
        raise UserInputError(
            f"index {path} holds {precision} vectors of encoder '{name}', and the encoder "
            f"given runs in {given}: load the encoder with {quantize}, or rebuild the index"
        )


def ivf_settings(meta: dict[str, Any], kind: str, gen_dir: Path) -> dict[str, int]:
    """The IVF settings ``meta`` records (none for a flat index); a :class:`DataError` for an
    unknown kind or an IVF manifest that lacks one."""
    try:
        ivf = {k: int(meta[k]) for k in _IVF_KEYS if k in meta}
    except (TypeError, ValueError):
        shown = {k: meta[k] for k in _IVF_KEYS if k in meta}
        raise DataError(
            f"meta.json: IVF settings are not whole numbers: {shown}", path=gen_dir
        ) from None
    if kind not in ("flat", "ivf") or (kind == "ivf" and len(ivf) != 3):
        raise DataError(f"meta.json: unknown kind '{kind}' or IVF settings missing", path=gen_dir)
    return ivf
