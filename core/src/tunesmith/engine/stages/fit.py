"""Stage 4, fit: the strategy applied (full, freeze:K, head, LoRA), the frozen bottom cached when
it can be, and the model trained by a transformers ``Trainer`` with early stopping on held-out
data, checkpoints for ``--resume`` and the plugins' callbacks."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from tunesmith.engine import feature_cache as fc
from tunesmith.engine import nearest as nx
from tunesmith.engine.averaging import make_epoch_snapshots
from tunesmith.engine.checkpoints import EPOCH_ORDER_FILE, make_step_checkpoints
from tunesmith.engine.distributed import is_main_process
from tunesmith.engine.held_out_score import score_metrics
from tunesmith.engine.losses import class_weights
from tunesmith.engine.padding import PaddingCollator
from tunesmith.engine.placement import device_settings, training_arguments_class
from tunesmith.engine.progress import make_progress_callback
from tunesmith.engine.stages.state import Training
from tunesmith.engine.strategies import apply_strategy, trainable_parameters
from tunesmith.engine.trainer import make_trainer_class
from tunesmith.engine.wise import FEW_SHOT_WEIGHT
from tunesmith.engine.workdir import interrupted_message, out_of_room_outcome
from tunesmith.errors import DiskFullError, TunesmithError
from tunesmith.io import no_room_errno
from tunesmith.plugins import collect_list

#: The name every process's :data:`EPOCH_ORDER_FILE` starts with.
EPOCH_ORDER_STEM = EPOCH_ORDER_FILE.removesuffix(".pth")
#: ``--early-stopping`` when not given: evaluations without a better held-out score.
EARLY_STOPPING_PATIENCE = 3


class TrainingInterrupted(TunesmithError):
    """Ctrl-C during training: checkpoints are kept for ``--resume``."""

    exit_code = 130


def run(state: Training) -> None:
    """Train ``state.model``; fill ``state.trainer``, ``held_set``, ``has_eval`` and the run's
    figures (steps, loss, seconds, the best checkpoint)."""
    run, prepared, resolved = state.run, state.prepared, state.resolved
    task, labels = prepared.task, prepared.labels
    use_cache = state.use_cache
    state.model = apply_strategy(
        state.model, state.strategy, lora_r=run.lora_r, lora_alpha=run.lora_alpha
    )
    resolved.trainable_parameters, resolved.total_parameters = trainable_parameters(state.model)
    trainer_model, train_set, held_set, collator = _datasets(state, use_cache)
    resolved.feature_cache = use_cache
    contrastive = _contrastive_weight(state, use_cache)
    resolved.contrastive = contrastive
    if prepared.few_shot:
        resolved.few_shot_note = _few_shot_note(state, contrastive)

    has_eval = held_set is not None and len(held_set) > 0
    patience = run.early_stopping if run.early_stopping is not None else EARLY_STOPPING_PATIENCE
    resolved.early_stopping = patience if has_eval else None
    weights = None
    if run.class_weights == "auto" and task == "ner":
        state.note("--class-weights auto applies to classification; NER ignored it")
    if run.label_smoothing and task == "multilabel":
        state.note(
            "--label-smoothing applies to single-label and NER losses; multi-label ignored it"
        )
    if run.class_weights == "auto" and task != "ner":
        import torch

        weights = torch.tensor(class_weights(state.train_y, len(labels), task), dtype=torch.float32)
    state.tensorboard_dir = run.work_path / "runs" if run.tensorboard else None
    trainer = make_trainer_class()(
        model=trainer_model,
        args=_training_args(state, len(train_set), has_eval),
        train_dataset=train_set,
        eval_dataset=held_set if has_eval else None,
        data_collator=collator,
        compute_metrics=score_metrics(task, labels) if has_eval else None,
        task=task,
        loss_weights=weights,
        contrastive_weight=contrastive,
        label_smoothing=run.label_smoothing,
        layer_decay=run.layer_decay,
        rdrop_weight=_rdrop_weight(state, use_cache),
    )
    _add_callbacks(state, trainer, patience if has_eval else 0)
    snapshots = None
    if run.average_epochs:  # full fine-tuning only: RunConfig.validate refuses the others
        snapshots = make_epoch_snapshots(
            run.average_epochs, run.work_path / "epoch_weights", _checkpoint_step(state.resume_from)
        )
        trainer.add_callback(snapshots)
    state.log(
        f"training {task} model: {len(train_set):,} examples, {len(labels)} labels, "
        f"strategy {run.strategy}, {resolved.epochs:g} epochs at lr {resolved.lr:g}, "
        f"max length {state.max_length}, {resolved.trainable_parameters:,} of "
        f"{resolved.total_parameters:,} parameters trainable"
    )
    if state.resume_from and not any(Path(state.resume_from).glob(f"{EPOCH_ORDER_STEM}*")):
        state.log(earlier_checkpoint_note(Path(state.resume_from)))
    figures = _train(trainer, state.resume_from, run.work_path, run.out_dir)
    if snapshots is not None:
        state.epoch_snapshots = list(snapshots.snapshots)
    if patience and has_eval and figures["epochs_run"] < resolved.epochs:
        state.log(
            f"stopped early after {figures['epochs_run']:g} of {resolved.epochs:g} epochs: "
            f"{patience} held-out evaluations without a better score (--early-stopping)"
        )
    resolved.train_seconds = figures["train_seconds"]
    resolved.train_loss = figures["train_loss"]
    resolved.global_steps = figures["global_steps"]
    resolved.epochs_run = figures["epochs_run"]
    resolved.best_checkpoint_metric = figures.get("best_checkpoint_metric")
    resolved.best_checkpoint_step = figures.get("best_checkpoint_step")
    state.trainer, state.held_set, state.has_eval = trainer, held_set, has_eval


def earlier_checkpoint_note(checkpoint: Path) -> str:
    """What ``--resume`` says of a checkpoint an earlier tunesmith wrote (no
    :data:`EPOCH_ORDER_FILE`): the rest of its epoch comes in another order, and, when that run
    was evaluated every ``--save-steps`` steps as tunesmith did then, that its evaluations stand
    (the best checkpoint may be one of them) while the rest of the run is evaluated per epoch."""
    note = (
        f"--resume: {checkpoint.name} was written by an earlier tunesmith, which did not record "
        "its epoch's data order: if it was saved in mid-epoch, the rest of that epoch comes in "
        "another order than the interrupted run's"
    )
    try:
        trainer_state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
        evaluated = [
            entry
            for entry in trainer_state.get("log_history", [])
            if "eval_loss" in entry and not float(entry.get("epoch") or 0).is_integer()
        ]
    except (OSError, ValueError, TypeError, AttributeError):
        return note  # the Trainer itself reports a checkpoint it cannot read
    if not evaluated:
        return note
    best = trainer_state.get("best_model_checkpoint")
    best_step = f" (now {Path(best).name})" if isinstance(best, str) else ""
    return (
        f"{note}; and it was evaluated every {trainer_state.get('eval_steps')} steps, as "
        "--save-steps did then: those evaluations stand, so the best checkpoint may be one of "
        f"them{best_step}, and from here the model is evaluated at each epoch's end. For the "
        "model today's tunesmith trains, run the command again with --force instead of --resume"
    )


def _checkpoint_step(checkpoint: str | None) -> int | None:
    """The global step of a ``checkpoint-N`` folder (None without one)."""
    return int(Path(checkpoint).name.rsplit("-", 1)[-1]) if checkpoint else None


def _datasets(state: Training, use_cache: bool) -> tuple[Any, Any, Any, Any]:
    """(the module the trainer trains, training set, held-out set, collator): the frozen
    bottom's cached output and the trainable top when cached, else the whole model on tokens."""
    task, train_ds, held_ds = state.prepared.task, state.train_ds, state.held_ds
    if not use_cache:
        return state.model, train_ds, held_ds, PaddingCollator(state.tokenizer, task)
    depth, pooled = fc.cache_plan(state.model, task, state.strategy.kind, state.strategy.k)
    started = time.perf_counter()
    if pooled and state.pooled_train is not None:
        train_features = state.pooled_train
    else:
        train_features = state.features_for(train_ds.items, depth, pooled)
    held_features = (
        state.features_for(held_ds.items, depth, pooled) if held_ds is not None else None
    )
    state.resolved.feature_cache_seconds = round(time.perf_counter() - started, 2)
    trainer_model = fc.frozen_top(state.model, depth=depth, pooled=pooled, task=task)
    train_set = fc.FeatureDataset(
        train_features, _feature_labels(task, train_ds, state.train_y), train_ds.lengths
    )
    held_set = (
        fc.FeatureDataset(
            held_features, _feature_labels(task, held_ds, state.held_y), held_ds.lengths
        )
        if held_ds is not None
        else None
    )
    part = "pooled vectors" if pooled else f"hidden states after layer {depth}"
    state.resolved.strategy_note = f"frozen part cached ({part})"
    return trainer_model, train_set, held_set, fc.FeatureCollator(pooled=pooled, task=task)


def _feature_labels(task: str, dataset: Any, targets: list[Any]) -> list[Any]:
    """Labels as the feature datasets need them: token tags come aligned to sub-tokens."""
    if task == "ner":
        return [item["labels"] for item in dataset.items]
    return targets


def _contrastive_weight(state: Training, use_cache: bool) -> float:
    """The supervised contrastive term's weight.

    Few-shot: it reshapes the sentence space on the pooled embeddings (banking77, 5 per intent:
    0.799 -> 0.821 test accuracy on one draw; docs/benchmarks.md).
    """
    run, prepared = state.run, state.prepared
    possible = (
        prepared.task == "classification" and state.resolved.pooling == "mean" and not use_cache
    )
    if run.contrastive is None:
        # Only by default where the whole encoder learns: head and freeze:K stay exactly
        # what their cached and uncached runs compute alike.
        by_default = state.strategy.kind in ("full", "lora") and prepared.few_shot
        return 1.0 if (by_default and possible) else 0.0
    if run.contrastive > 0 and not possible:
        state.note(
            "--contrastive needs single-label data, mean pooling and a trainable encoder; off"
        )
        return 0.0
    return run.contrastive


def _rdrop_weight(state: Training, use_cache: bool) -> float:
    """R-Drop's weight: ``--rdrop`` where two dropout passes can differ and a single-label loss
    compares them, else 0 with a note."""
    run = state.run
    if run.rdrop and (state.prepared.task != "classification" or use_cache):
        state.note("--rdrop needs single-label data and an encoder that runs in training; off")
        return 0.0
    return run.rdrop


def _few_shot_note(state: Training, contrastive: float) -> str:
    """The model card's sentence on the few-shot defaults this run used."""
    run, prepared, resolved = state.run, state.prepared, state.resolved
    parts = [f"{resolved.epochs:g} epochs at learning rate {resolved.lr:g}"]
    if prepared.held is None:
        parts.append("no held-out split (every example trains)")
    if prepared.n_label_examples:
        parts.append(f"the {prepared.n_label_examples} label names added as examples")
    if resolved.head_init == "probe":
        parts.append("head initialised from a linear probe")
    uses_nearest = nx.resolve_mode(
        run.nearest,
        task=prepared.task,
        pooling=resolved.pooling,
        strategy=state.strategy.kind,
        few_shot=True,
    )
    if uses_nearest and prepared.held is None:
        parts.append(
            "nearest-training-example scores mixed into the probabilities "
            f"(head share {nx.FEW_SHOT_WEIGHT:g})"
        )
    if state.wise_start is not None and run.wise_ft is None and prepared.held is None:
        parts.append(f"weights blended with the start (WiSE-FT, {FEW_SHOT_WEIGHT:g})")
    if contrastive:
        parts.append(f"a supervised contrastive loss (weight {contrastive:g}) on same-label pairs")
    return ", ".join(parts) + "."


def _training_args(state: Training, n_train: int, has_eval: bool) -> Any:
    run = state.run
    # With held-out data, evaluation (and with it early stopping and the best checkpoint) runs
    # at each epoch's end and a checkpoint follows it; --save-steps only adds checkpoints in
    # between (make_step_checkpoints), so asking for them leaves the model as it was.
    steps_mode = not has_eval
    save_steps = run.save_steps
    if save_steps is None and not has_eval:
        # Without evaluation a checkpoint serves only --resume: save about every 200 steps
        # (and at least once an epoch), not after every short few-shot epoch.
        per_epoch = math.ceil(n_train / run.batch_size)
        save_steps = per_epoch * max(1, 200 // max(per_epoch, 1))
    return training_arguments_class(state.resolved.device or "cpu")(
        output_dir=str(run.work_path / "checkpoints"),
        per_device_train_batch_size=run.batch_size,
        per_device_eval_batch_size=max(64, run.batch_size),
        num_train_epochs=state.resolved.epochs,
        learning_rate=state.resolved.lr,
        weight_decay=run.weight_decay,
        warmup_steps=run.warmup_ratio,
        lr_scheduler_type="linear",
        eval_strategy="epoch" if has_eval else "no",
        save_strategy="steps" if steps_mode else "epoch",
        save_steps=save_steps or 500,
        save_total_limit=2,
        load_best_model_at_end=has_eval,
        metric_for_best_model="score" if has_eval else None,
        greater_is_better=True,
        logging_strategy="steps",
        logging_steps=50,
        report_to="none",
        disable_tqdm=True,
        seed=run.seed,
        data_seed=run.seed,
        # Both paths group by token length, so cached and uncached runs see the same batches.
        train_sampling_strategy="group_by_length",
        remove_unused_columns=False,
        label_names=["labels"],
        dataloader_num_workers=0,
        **device_settings(state.resolved.device or "cpu", state.resolved.precision or "fp32"),
    )


def _add_callbacks(state: Training, trainer: Any, patience: int) -> None:
    """Progress on stderr instead of transformers' printing, early stopping, TensorBoard, and
    the callbacks plugins give through ``tunesmith_train_callbacks``."""
    from transformers import EarlyStoppingCallback, PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(make_progress_callback(sys.stderr.isatty(), state.prepared.task))
    if state.run.save_steps is not None and trainer.args.save_strategy == "epoch":
        trainer.add_callback(make_step_checkpoints(state.run.save_steps))
    if patience > 0:
        trainer.add_callback(EarlyStoppingCallback(early_stopping_patience=patience))
    if state.tensorboard_dir is not None and is_main_process():  # one writer of the logs
        from torch.utils.tensorboard import SummaryWriter
        from transformers.integrations import TensorBoardCallback

        writer = SummaryWriter(log_dir=str(state.tensorboard_dir))
        trainer.add_callback(TensorBoardCallback(tb_writer=writer))
    for callback in collect_list("tunesmith_train_callbacks", run=state.run):
        trainer.add_callback(callback)


def _train(trainer: Any, resume_from: str | None, work: Path, out: Path) -> dict[str, Any]:
    """Train (continuing ``resume_from`` when given); returns the run's figures."""
    started = time.perf_counter()
    try:
        result = trainer.train(resume_from_checkpoint=resume_from)
    except KeyboardInterrupt:
        raise TrainingInterrupted(interrupted_message(work)) from None
    except Exception as exc:
        # A checkpoint (or TensorBoard log, epoch snapshot) the disk had no room for: safetensors
        # and torch say so in words of their own, or not at all (a short write).
        code = no_room_errno(exc, work) if is_main_process() else None
        if code is None:
            raise
        outcome = out_of_room_outcome(work, out, code)
        raise DiskFullError(work, code, outcome=outcome) from exc
    figures: dict[str, Any] = {
        "train_seconds": round(time.perf_counter() - started, 2),
        "train_loss": round(trainer.whole_run_loss(result), 6),
        "global_steps": int(result.global_step),
        "epochs_run": round(float(trainer.state.epoch or 0), 3),
    }
    if trainer.state.best_model_checkpoint:
        figures["best_checkpoint_metric"] = trainer.state.best_metric
        figures["best_checkpoint_step"] = _checkpoint_step(trainer.state.best_model_checkpoint)
    return figures
