"""Which device a command runs on, and in which precision: the one place ``--device`` and
``--precision`` are checked and resolved, so that training, prediction, the retrieval encoder and
pair training agree, and a device the machine does not have is one line, not a torch traceback.

``auto`` is the first of CUDA (``cuda:0``), Apple's MPS and the CPU that is there. torch is
imported inside the functions: ``tunesmith --help`` must not load it.
"""

from __future__ import annotations

import re
from typing import Any

from tunesmith.errors import UserInputError

#: What ``--device`` accepts (``cuda:N`` picks one GPU of several).
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
#: What ``--precision`` accepts: fp16 and bf16 are mixed precision (weights stay float32).
PRECISIONS = ("fp32", "fp16", "bf16")
DEVICE_HELP = (
    "Where the model runs: auto (CUDA, else Apple MPS, else CPU), cpu, cuda, cuda:N or mps."
)
PRECISION_HELP = (
    "Training precision: fp32, or mixed fp16 (CUDA or MPS) or bf16 (CUDA with bf16, MPS, CPU); "
    "the saved weights are float32 either way."
)

_CUDA = re.compile(r"cuda(?::(\d+))?")


def device_option(note: str = "") -> Any:
    """The ``--device`` Typer option (default ``auto``) with the core's help, for a command of
    the core or a plugin; ``note`` is a sentence added to the help (e.g. that int8 runs on the
    CPU). Resolve the value with :func:`resolve_device` or :func:`check_device`."""
    import typer

    return typer.Option("auto", "--device", help=f"{DEVICE_HELP} {note}".strip())


def precision_option() -> Any:
    """The ``--precision`` Typer option (default ``fp32``) with the core's help, for a command
    that trains with the engine; check the value with :func:`check_precision`."""
    import typer

    return typer.Option("fp32", "--precision", help=PRECISION_HELP)


def check_device(
    choice: str | None, *, flag: str = "--device", quantize: str | None = None
) -> None:
    """Refuse a ``choice`` this machine cannot run (:func:`resolve_device`'s one line) at the
    start of a command whose model loads later, before any data is read.

    ``auto`` and ``cpu`` are always there and are passed without importing torch: a command
    that may need no model (an ``ingest`` of files already stored) stays quick, and the CPU
    thread policy is still set before torch is first imported (:mod:`tunesmith.engine.threads`;
    a GPU run imports torch here, before that policy, which matters for CPU matrix products
    only).
    """
    if (choice or "auto").strip().lower() in ("auto", "cpu"):
        return
    resolve_device(choice, flag=flag, quantize=quantize)


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(
    choice: str | None = "auto", *, flag: str = "--device", quantize: str | None = None
) -> str:
    """``choice`` as a torch device string (``cpu``, ``cuda:0``, ``cuda:1``, ``mps``).

    ``auto`` (or ``None``) picks the best device there is; with ``quantize="int8"`` it is the
    CPU, where the int8 kernels run. Raises :class:`UserInputError` naming ``flag`` for a
    choice that is not one, a device this machine does not have, or int8 off the CPU.
    """
    import torch

    wanted = (choice or "auto").strip().lower()
    if quantize is not None and wanted == "auto":
        return "cpu"
    if wanted == "auto":
        if torch.cuda.is_available():
            return "cuda:0"
        return "mps" if _mps_available() else "cpu"
    match = _CUDA.fullmatch(wanted)
    if wanted not in ("cpu", "mps") and match is None:
        raise UserInputError(
            f"{flag} {choice}: not a device; the choices are {', '.join(DEVICE_CHOICES)}"
        )
    if quantize is not None and wanted != "cpu":
        raise UserInputError(
            f"{flag} {choice}: --quantize {quantize} runs on the CPU only; "
            f"leave {flag} out or give {flag} cpu"
        )
    if wanted == "cpu":
        return "cpu"
    if wanted == "mps":
        if not _mps_available():
            raise UserInputError(f"{flag} mps: no Apple MPS device is available")
        return "mps"
    if not torch.cuda.is_available():
        raise UserInputError(f"{flag} {choice}: no CUDA device is available")
    index = int(match.group(1) or 0) if match else 0
    count = torch.cuda.device_count()
    if index >= count:
        have = (
            "1 CUDA device (cuda:0)"
            if count == 1
            else f"{count} CUDA devices (cuda:0 to cuda:{count - 1})"
        )
        raise UserInputError(f"{flag} {choice}: this machine has {have}")
    return f"cuda:{index}"


def check_precision(precision: str | None, device: str, *, flag: str = "--precision") -> str:
    """``precision`` (fp32, fp16, bf16) checked against the resolved ``device``; returned as
    given. Raises :class:`UserInputError` for mixed precision the device cannot run."""
    import torch

    value = (precision or "fp32").strip().lower()
    if value not in PRECISIONS:
        raise UserInputError(f"{flag} {precision}: the choices are {', '.join(PRECISIONS)}")
    kind = device.split(":")[0]
    if value == "fp16" and kind == "cpu":
        raise UserInputError(
            f"{flag} fp16 needs a CUDA or MPS device and this run is on the CPU; "
            f"give {flag} bf16 or fp32"
        )
    if value == "bf16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserInputError(f"{flag} bf16: {device} does not support bf16; give {flag} fp16")
    if value == "bf16" and kind == "mps" and not torch.backends.mps.is_macos_or_newer(14, 0):
        raise UserInputError(f"{flag} bf16 on mps needs macOS 14 or newer; give {flag} fp16")
    return value


def model_device(model: Any) -> str:
    """The device ``model``'s first parameter is on (``cpu`` for a model without any)."""
    try:
        return str(next(model.parameters()).device)
    except (StopIteration, AttributeError):
        return "cpu"


def as_float32(model: Any) -> Any:
    """``model`` with half-precision (fp16/bf16) weights made float32, in place.

    A model saved in half precision (``model.half()`` on a GPU, or a Hub checkpoint stored so)
    loads in that precision; on a CPU, half-precision matmuls are slow and the int8 kernels
    refuse them, and training half weights loses small updates.
    """
    import torch

    if any(p.dtype in (torch.float16, torch.bfloat16) for p in model.parameters()):
        model.float()
    return model
