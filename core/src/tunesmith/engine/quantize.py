"""int8 quantisation of a model's linear layers, for CPU serving.

Weights get one scale per output channel; activations are quantised with all 8 bits, from
ranges recorded at training time when the model directory has them (``int8_ranges.json``,
written by :func:`tunesmith.engine.int8_ranges.record_int8_ranges`), else from each batch's own minimum and maximum.
Recorded ranges make a text's prediction the same whatever batch it arrives in; per-batch
ranges change with the batch's other texts (measured in docs/benchmarks.md). Two kernels do the int8 matrix products:

* ``onednn``: oneDNN's int8 product, which runs on the AMX tiles of recent Xeons. Activations
  are quantised by one fused pass; the intermediate GELU runs inside the product; the query,
  key and value projections, which read the same tensor, quantise it once.
* ``fbgemm``: PyTorch's quantised linear (with 8-bit activations on VNNI CPUs, where PyTorch's
  default of 7 bits guards against an overflow VNNI cannot have).

``auto`` picks ``onednn`` where the CPU has AMX int8 and ``fbgemm`` elsewhere; the environment
variable ``TUNESMITH_INT8_KERNEL`` overrides. On a 2-core AMX Xeon the oneDNN path ran the
model 1.45x faster than the fbgemm one (``docs/benchmarks.md``); elsewhere it is not measured,
so it is not the default there.
"""

from __future__ import annotations

import copy
import functools
import os
import threading
import types
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from tunesmith.devices import model_device
from tunesmith.errors import DataError, UserInputError
from tunesmith.io import read_json_object
from tunesmith.model_dir import INT8_RANGES_FILE

KERNELS = ("auto", "onednn", "fbgemm")

#: The file in a model directory with each linear layer's recorded activation range.
RANGES_FILE = INT8_RANGES_FILE

#: ``(low, high)`` of one linear layer's input.
Bounds = tuple[float, float]


@functools.cache
def _cpu_flags() -> str:
    """``/proc/cpuinfo``, read once per process (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return ""


def _has_vnni() -> bool:
    """True when the CPU has VNNI, whose int8 dot products accumulate without saturating."""
    flags = _cpu_flags()
    return any(f in flags for f in (" avx512_vnni", " avx_vnni", " amx_int8"))


@functools.cache
def onednn_int8_available() -> bool:
    """True when this torch build runs oneDNN's int8 linear here (tried once on a tiny product).

    Only on CPUs with VNNI: without it, 8-bit activations times int8 weights can saturate the
    16-bit sums of the older instructions, the overflow fbgemm's 7-bit default avoids.
    """
    import torch

    if not _has_vnni() or not torch.backends.mkldnn.is_available():
        return False
    if not hasattr(torch.ops.onednn, "qlinear_pointwise"):
        return False
    try:
        packed = torch.ops.onednn.qlinear_prepack(torch.ones(2, 4, dtype=torch.int8), None)
        out = torch.ops.onednn.qlinear_pointwise(
            torch.full((1, 4), 3, dtype=torch.uint8), 1.0, 1, packed, torch.ones(2),
            torch.zeros(2, dtype=torch.int32), None, 1.0, 0, torch.float32, "none", [], "none",
        )  # fmt: skip
    except (RuntimeError, NotImplementedError):
        return False
    return bool(torch.allclose(out, torch.full((1, 2), 8.0)))  # (3 - 1) * 1 * 4 terms


def choose_kernel(kernel: str = "auto") -> str:
    """``onednn`` or ``fbgemm``: the asked-for kernel, ``$TUNESMITH_INT8_KERNEL``, or by CPU."""
    if kernel == "auto":
        kernel = os.environ.get("TUNESMITH_INT8_KERNEL", "auto")
    kernel = kernel.lower()
    if kernel not in KERNELS:
        raise ValueError(f"unknown int8 kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    if kernel == "auto":
        kernel = "onednn" if " amx_int8" in _cpu_flags() else "fbgemm"
    if kernel == "onednn" and not onednn_int8_available():
        kernel = "fbgemm"
    return kernel


class _LastQuantized(threading.local):
    """The last activation a model's int8 linears quantised, per thread (servers share models)."""

    source: Any = None
    bounds: Bounds | None = None
    qx: Any = None
    scale: float = 1.0
    zero_point: int = 0

    def __deepcopy__(self, memo: dict) -> _LastQuantized:
        return _LastQuantized()  # a copied model starts with nothing cached


def _scale_and_zero_point(low: float, high: float, steps: int = 255) -> tuple[float, int]:
    """Unsigned quantisation parameters for ``[low, high]`` (widened to include 0) in
    ``steps`` steps: 255 for all 8 bits, 127 for 7."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / steps or 1.0
    return scale, int(round(-low / scale))


def _quantize_activation(
    x: Any, last: _LastQuantized, bounds: Bounds | None = None
) -> tuple[Any, float, int]:
    """``x`` as a 2-D uint8 tensor with its scale and zero point; reused when ``x`` comes again.

    ``bounds`` is the recorded range (values outside it saturate); ``None`` uses ``x``'s own.
    """
    import torch

    # Identity, not equality: the cache holds ``x`` itself, so no other tensor can share its id.
    # The encoders' attention blocks pass one unchanged tensor to query, key and value.
    if last.source is x and last.bounds == bounds:
        return last.qx, last.scale, last.zero_point
    x2d = x.reshape(-1, x.shape[-1]).float()
    low, high = bounds if bounds is not None else (float(v) for v in torch.aminmax(x2d))
    scale, zero_point = _scale_and_zero_point(low, high)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantised tensors are deprecated; used for one pass
        quantized = torch.quantize_per_tensor(x2d, scale, zero_point, torch.quint8)
    # The quantised tensor's bytes, viewed as plain uint8 (``int_repr`` would copy them).
    qx = torch.empty(0, dtype=torch.uint8).set_(
        quantized.untyped_storage(), quantized.storage_offset(), quantized.shape, quantized.stride()
    )
    last.source, last.bounds = x, bounds
    last.qx, last.scale, last.zero_point = qx, scale, zero_point
    return qx, scale, zero_point


@functools.cache
def _onednn_linear_class() -> type:
    """The ``nn.Module`` class of a oneDNN int8 linear (built on first use: torch loads late)."""
    import torch

    class OneDnnQuantizedLinear(torch.nn.Module):
        """Stand-in for ``nn.Linear``: int8 weights packed for oneDNN, activations per call."""

        def __init__(
            self,
            linear: Any,
            last: _LastQuantized,
            post_op: str = "none",
            bounds: Bounds | None = None,
        ) -> None:
            super().__init__()
            weight = linear.weight.detach().float()
            self.in_features, self.out_features = weight.shape[1], weight.shape[0]
            self.weight_scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127.0
            qweight = torch.round(weight / self.weight_scale[:, None]).clamp(-127, 127)
            self.packed = torch.ops.onednn.qlinear_prepack(qweight.to(torch.int8), None)
            self.weight_zero = torch.zeros(self.out_features, dtype=torch.int32)
            self.bias = None if linear.bias is None else linear.bias.detach().float().clone()
            self.post_op = post_op
            self.last = last
            self.bounds = bounds

        def forward(self, x: Any) -> Any:
            qx, scale, zero_point = _quantize_activation(x, self.last, self.bounds)
            out = torch.ops.onednn.qlinear_pointwise(
                qx, scale, zero_point, self.packed, self.weight_scale, self.weight_zero,
                self.bias, 1.0, 0, torch.float32, self.post_op, [], "none",
            )  # fmt: skip
            return out.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

        def __deepcopy__(self, memo: dict) -> Any:
            # oneDNN's packed weight is opaque (no storage to copy) and never written: shared.
            clone = type(self).__new__(type(self))
            memo[id(self)] = clone
            packed = self.__dict__["packed"]
            for key, value in self.__dict__.items():
                clone.__dict__[key] = value if value is packed else copy.deepcopy(value, memo)
            return clone

        def extra_repr(self) -> str:
            ranges = "recorded" if self.bounds is not None else "per batch"
            return (
                f"in={self.in_features}, out={self.out_features}, post_op={self.post_op}, "
                f"activation range {ranges}"
            )

    return OneDnnQuantizedLinear


def _exact_gelu(module: Any) -> bool:
    import torch

    if isinstance(module, torch.nn.GELU):
        return module.approximate == "none"
    act = getattr(module, "act", None)
    return type(module).__name__ == "GELUActivation" and act is torch.nn.functional.gelu


def _computes_gelu_of_dense(module: Any) -> bool:
    """True for a BERT-style ``*Intermediate`` block: ``exact_gelu(dense(x))`` and nothing else."""
    import torch

    children = dict(module.named_children())
    return (
        type(module).__name__.endswith("Intermediate")
        and set(children) == {"dense", "intermediate_act_fn"}
        and isinstance(children["dense"], torch.nn.Linear)
        and _exact_gelu(children["intermediate_act_fn"])
    )


def _bounds_of(ranges: Mapping[str, Sequence[float]], name: str) -> Bounds | None:
    found = ranges.get(name)
    return None if found is None else (float(found[0]), float(found[1]))


def _quantize_onednn(model: Any, ranges: Mapping[str, Sequence[float]]) -> Any:
    import torch

    model = copy.deepcopy(model)
    last = _LastQuantized()
    linear_class = _onednn_linear_class()
    for prefix, module in list(model.named_modules()):
        fuse_gelu = _computes_gelu_of_dense(module)
        for name, child in list(module.named_children()):
            if isinstance(child, torch.nn.Linear):
                post_op = "gelu" if fuse_gelu and name == "dense" else "none"
                bounds = _bounds_of(ranges, f"{prefix}.{name}" if prefix else name)
                setattr(module, name, linear_class(child, last, post_op, bounds))
        if fuse_gelu:  # the GELU now runs inside the int8 product
            module.intermediate_act_fn = torch.nn.Identity()
    model.eval()
    return model


def _full_range_forward(self: Any, x: Any) -> Any:
    """Dynamic int8 linear with 8-bit activations (PyTorch's module hard-codes 7 bits)."""
    import torch

    packed = self._packed_params._packed_params
    return torch.ops.quantized.linear_dynamic(x, packed, reduce_range=False).to(x.dtype)


def _recorded_range_forward(self: Any, x: Any) -> Any:
    """fbgemm int8 linear with the activation range recorded for this layer."""
    import torch

    packed = self._packed_params._packed_params
    out = torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32(
        x.float(), self.activation_scale, self.activation_zero_point, packed
    )
    return out.to(x.dtype)


def _quantize_fbgemm(model: Any, ranges: Mapping[str, Sequence[float]]) -> Any:
    import torch

    with warnings.catch_warnings():
        # torch.ao.quantization is marked deprecated but remains the stock way to do this on CPU.
        warnings.simplefilter("ignore")
        from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        spec = {
            name: per_channel_dynamic_qconfig
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear)
        }
        quantized = quantize_dynamic(model, spec, dtype=torch.qint8)
    for name, module in quantized.named_modules():
        if not isinstance(module, DynamicLinear):
            continue
        bounds = _bounds_of(ranges, name)
        # All 8 bits only where VNNI cannot overflow; 7 elsewhere, as PyTorch's default.
        if bounds is not None:
            steps = 255 if _has_vnni() else 127
            scale, zero_point = _scale_and_zero_point(*bounds, steps=steps)
            module.activation_scale, module.activation_zero_point = scale, zero_point
            module.forward = types.MethodType(_recorded_range_forward, module)
        elif _has_vnni():
            module.forward = types.MethodType(_full_range_forward, module)
    quantized.eval()
    return quantized


def quantize_int8(
    model: Any, kernel: str = "auto", ranges: Mapping[str, Sequence[float]] | None = None
) -> Any:
    """Return a copy of ``model`` with every ``nn.Linear`` quantised to int8 (CPU).

    ``ranges`` maps a linear layer's name (as in ``model.named_modules()``) to its recorded
    activation ``[low, high]``; layers without one quantise each batch by its own range.
    One scale per channel with 8-bit activations lost the least accuracy of the schemes measured
    (docs/benchmarks.md). ``kernel`` is ``auto``,
    ``onednn`` or ``fbgemm`` (see the module docstring).
    """
    if model_device(model) != "cpu":
        # torch's int8 linears have CPU kernels only; on a GPU they fail deep inside a forward.
        raise UserInputError(
            f"int8 quantisation runs on the CPU only, and this model is on {model_device(model)}; "
            "load it on the CPU (device='cpu') to quantise it"
        )
    ranges = ranges or {}
    if choose_kernel(kernel) == "onednn":
        return _quantize_onednn(model, ranges)
    return _quantize_fbgemm(model, ranges)


def read_int8_ranges(directory: str | os.PathLike) -> dict[str, Bounds]:
    """The recorded ranges in ``directory``'s ``int8_ranges.json`` (empty when it has none).

    Raises :class:`~tunesmith.errors.DataError` naming the file when it is malformed.
    """
    from pathlib import Path

    path = Path(directory) / RANGES_FILE
    recorded = read_json_object(path)
    if recorded is None:
        return {}
    ranges = recorded.get("ranges")
    if not isinstance(ranges, dict):
        raise DataError('expected "ranges": an object of layer names', path=path)
    for name, bounds in ranges.items():
        if not _is_range(bounds):
            raise DataError(f"range of {name!r} must be [low, high], got {bounds!r}", path=path)
    return {name: (float(low), float(high)) for name, (low, high) in ranges.items()}


def _is_range(value: Any) -> bool:
    """True for ``[low, high]``: two numbers (not booleans), ``low <= high``."""
    if not (isinstance(value, list) and len(value) == 2):
        return False
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    return numbers and value[0] <= value[1]
