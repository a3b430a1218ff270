"""Quiet training progress on stderr (a bar on a terminal, a line per evaluation) instead of the
Trainer's printing to stdout."""

from __future__ import annotations

import sys
from typing import Any

from tunesmith.engine.held_out_score import SCORE_NAMES


def make_progress_callback(show_bar: bool, task: str | None = None) -> Any:
    """A callback that draws a tqdm bar on stderr (terminal only) and logs evaluations there:
    ``epoch 2.00: train loss 0.4100, held-out loss 0.5200, held-out accuracy 0.8800``. The
    train loss is the Trainer's mean over its last logging interval (50 steps), shown when it
    logged one since the previous evaluation."""
    from transformers import TrainerCallback

    score_name = SCORE_NAMES.get(task or "", "score")

    class StderrProgress(TrainerCallback):
        def __init__(self) -> None:
            self.bar: Any = None
            self.train_loss: float | None = None

        def on_log(
            self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any
        ) -> None:
            loss = (logs or {}).get("loss")
            if isinstance(loss, float):
                self.train_loss = loss

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if show_bar and state.is_world_process_zero:
                from tqdm.auto import tqdm

                self.bar = tqdm(
                    total=state.max_steps,
                    initial=state.global_step,
                    file=sys.stderr,
                    desc="training",
                    unit="step",
                    dynamic_ncols=True,
                )

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_evaluate(
            self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any
        ) -> None:
            if not state.is_world_process_zero or not metrics:
                return
            # "loss" alone read as the training loss; this one is measured on held-out data.
            names = {"eval_loss": "held-out loss", "eval_score": f"held-out {score_name}"}
            shown = [
                f"{names[k]} {v:.4f}"
                for k, v in metrics.items()
                if k in names and isinstance(v, float)
            ]
            if self.train_loss is not None:  # one logged since the last evaluation: not stale
                shown.insert(0, f"train loss {self.train_loss:.4f}")
                self.train_loss = None
            line = f"epoch {state.epoch:.2f}: {', '.join(shown)}"
            if self.bar is not None:
                self.bar.write(line, file=sys.stderr)
            else:
                print(line, file=sys.stderr, flush=True)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return StderrProgress()
