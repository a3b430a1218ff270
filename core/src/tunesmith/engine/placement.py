"""Where the transformers ``Trainer`` trains: the device and mixed precision ``train`` resolved
(:mod:`tunesmith.devices`) turned into ``TrainingArguments`` settings.

The Trainer picks a device of its own (MPS, else ``cuda:0``) and, in one process on a machine
with several GPUs, spreads each batch over all of them with ``nn.DataParallel``. One process
here trains on the one device asked for (``cuda:1`` included); several GPUs are for a launcher
(``torchrun``), where each process takes its own.
"""

from __future__ import annotations

import functools
from functools import cached_property
from typing import Any

from tunesmith.engine.distributed import world_size


def device_settings(device: str, precision: str) -> dict[str, Any]:
    """``TrainingArguments`` keywords for ``device`` (resolved) and ``precision``."""
    import torch

    on_cuda = device.startswith("cuda")
    return {
        # Pinned host memory only helps copies to a CUDA device (and warns without one).
        "dataloader_pin_memory": on_cuda,
        # Several processes without a GPU: accelerate joins them in a gloo group only when told
        # the run is on the CPU (else each would train alone).
        "use_cpu": device == "cpu" or (world_size() > 1 and not torch.cuda.is_available()),
        "fp16": precision == "fp16",
        "bf16": precision == "bf16",
    }


#: The device of the run being set up (one training per process); read when the arguments
#: resolve their device, inside ``TrainingArguments.__post_init__``.
_wanted = "cpu"


@functools.cache
def _arguments_class() -> Any:
    from transformers import TrainingArguments

    class OneDeviceArguments(TrainingArguments):
        @cached_property
        def _setup_devices(self) -> Any:
            chosen = TrainingArguments._setup_devices.func(self)
            if world_size() > 1 or not _wanted.startswith("cuda"):
                return chosen  # a launcher's process has its own GPU; cpu and mps as chosen
            import torch

            chosen = torch.device(_wanted)
            torch.cuda.set_device(chosen)
            self._n_gpu = 1  # no nn.DataParallel over the machine's other GPUs
            return chosen

    # The Trainer pickles its arguments into each checkpoint (training_args.bin): a name
    # pickle can find again, through this module's __getattr__.
    OneDeviceArguments.__qualname__ = "OneDeviceArguments"
    return OneDeviceArguments


def __getattr__(name: str) -> Any:
    if name == "OneDeviceArguments":
        return _arguments_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def training_arguments_class(device: str) -> Any:
    """A ``TrainingArguments`` class whose device is ``device`` in a single process."""
    global _wanted
    _wanted = device
    return _arguments_class()
