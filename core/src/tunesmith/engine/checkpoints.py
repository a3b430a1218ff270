"""What tunesmith adds to the Trainer's checkpoints for an exact ``--resume``: the record of
each epoch's order (:data:`EPOCH_ORDER_FILE`, written by the Trainer subclass), the sampler
wrapper that keeps and replays it, and extra checkpoints every N steps (``--save-steps``)."""

from __future__ import annotations

from typing import Any

#: A checkpoint's record of what the Trainer does not save: the RNG state its epoch's order was
#: drawn from and the sum of the step losses so far (written by the Trainer subclass,
#: :func:`~tunesmith.engine.trainer.make_trainer_class`).
EPOCH_ORDER_FILE = "tunesmith_epoch_order.pth"


def epoch_order_file(world_size: int, process_index: int) -> str:
    """The file name of :data:`EPOCH_ORDER_FILE` for one process (one per process when several
    train together, as the Trainer names its ``rng_state_N.pth``)."""
    if world_size > 1:
        return EPOCH_ORDER_FILE.replace(".pth", f"_{process_index}.pth")
    return EPOCH_ORDER_FILE


def make_order_recorder(inner: Any) -> Any:
    """``inner``, a sampler that draws an epoch's order from torch's global RNG when iterated,
    wrapped so that the RNG state of each draw is kept (``epoch_state``) and, once, the state
    set in ``replay`` is drawn from instead.

    Why: a run resumed in mid-epoch draws that epoch's order again before the Trainer restores
    the checkpoint's RNG state (it skips the batches already trained, then restores), so
    without a replay the rest of the epoch came in another order than the interrupted run's,
    and the resumed model differed from the one an uninterrupted run gives. Drawing does not
    change: an uninterrupted run consumes the RNG exactly as ``inner`` alone does.
    """
    import torch
    from torch.utils.data import Sampler

    class OrderRecorder(Sampler):
        def __init__(self) -> None:
            self.epoch_state: Any = None
            self.replay: Any = None

        def __len__(self) -> int:
            return len(inner)

        def __iter__(self) -> Any:
            if self.replay is not None:
                # The global state is the Trainer's to restore right after the skipped batches.
                torch.set_rng_state(self.replay)
                self.replay = None
            self.epoch_state = torch.get_rng_state()
            return iter(list(inner))

    return OrderRecorder()


def make_step_checkpoints(every: int) -> Any:
    """A ``TrainerCallback`` that saves a checkpoint every ``every`` steps, for ``--resume``
    only: evaluation (and so early stopping and the best checkpoint) keeps its own schedule.
    An epoch's last step is left to the epoch's own save, which follows its evaluation."""
    from transformers import TrainerCallback

    class StepCheckpoints(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            at_epoch_end = float(state.epoch or 0).is_integer()
            if state.global_step % every == 0 and not at_epoch_end:
                control.should_save = True
            return control

    return StepCheckpoints()
