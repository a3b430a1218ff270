"""Several processes training one model (``torchrun``, ``accelerate launch``): which process this
is, and waiting for the others.

A launcher starts the same ``tunesmith train`` in every process and sets ``RANK`` and
``WORLD_SIZE``; the transformers ``Trainer`` joins the processes into one group (gloo on CPUs,
NCCL on GPUs) and averages their gradients. Everything around the Trainer runs in every process
alike (same data, seed and weights, so the same results), but only the main process (rank 0)
holds the output's lock, opens the work folder, writes the model directory and prints; the
others wait for it at a barrier, so the command ends everywhere with the directory in place.
"""

from __future__ import annotations

import os


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, "").strip() or default)
    except ValueError:
        return default


def world_size() -> int:
    """How many processes train together (1 without a launcher)."""
    return max(1, _env_int("WORLD_SIZE", 1))


def rank() -> int:
    """This process's place among them (0 without a launcher)."""
    return _env_int("RANK", 0)


def is_main_process() -> bool:
    """True in the one process that writes files and prints (always, without a launcher)."""
    return rank() == 0


def barrier() -> None:
    """Wait until every process gets here (nothing to wait for in a single process).

    The process group exists once the Trainer has been set up; before that there is no one to
    wait with, and this returns at once.
    """
    if world_size() <= 1:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
