"""The transformers ``Trainer`` subclass tunesmith trains with.

The Trainer stays the training loop (so ``accelerate launch`` and ``torchrun`` work); tunesmith
adds a weighted loss, length-grouped batches from precomputed lengths, and the record an exact
``--resume`` needs in every checkpoint.
"""

from __future__ import annotations

from typing import Any

from tunesmith.engine.checkpoints import epoch_order_file, make_order_recorder
from tunesmith.engine.layer_decay import layer_decay_groups
from tunesmith.engine.losses import doubled_rows, supervised_contrastive_loss, symmetric_kl
from tunesmith.engine.modeling import last_pooled, sequence_loss
from tunesmith.engine.samplers import make_pair_sampler


def make_trainer_class() -> Any:
    """The Trainer subclass (built lazily so that importing this module stays light)."""
    import torch
    from torch.utils.data import SequentialSampler
    from transformers import Trainer
    from transformers.trainer_pt_utils import LengthGroupedSampler

    class TunesmithTrainer(Trainer):
        """Weighted (and optionally label-smoothed) task loss; length-grouped training batches;
        evaluation in dataset order."""

        def __init__(
            self,
            *args: Any,
            task: str,
            loss_weights: Any = None,
            contrastive_weight: float = 0.0,
            contrastive_temperature: float = 0.1,
            label_smoothing: float = 0.0,
            layer_decay: float = 1.0,
            rdrop_weight: float = 0.0,
            **kwargs: Any,
        ):
            super().__init__(*args, **kwargs)
            self.task = task
            self.rdrop_weight = rdrop_weight
            self.label_smoothing = label_smoothing
            self.layer_decay = layer_decay
            self.loss_weights = loss_weights
            self.contrastive_weight = contrastive_weight
            self.contrastive_temperature = contrastive_temperature
            self.order_recorder: Any = None
            #: What a resumed checkpoint recorded (:data:`EPOCH_ORDER_FILE` of
            #: :mod:`tunesmith.engine.checkpoints`), else None.
            self.resumed_record: dict[str, Any] | None = None

        def train(self, resume_from_checkpoint: Any = None, **kwargs: Any) -> Any:
            self.resumed_record = None
            if isinstance(resume_from_checkpoint, str):
                self.resumed_record = self._read_order_record(resume_from_checkpoint)
            return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

        def _read_order_record(self, checkpoint: str) -> dict[str, Any] | None:
            import os

            name = epoch_order_file(self.args.world_size, self.args.process_index)
            path = os.path.join(checkpoint, name)
            if not os.path.isfile(path):
                return None  # written by a tunesmith that did not record it
            record = torch.load(path, weights_only=True, map_location="cpu")
            return record if isinstance(record, dict) else None

        def _save_rng_state(self, output_dir: str) -> None:
            super()._save_rng_state(output_dir)
            # Written before trainer_state.json, which marks the checkpoint complete.
            import os

            record: dict[str, Any] = {"global_step": int(self.state.global_step),
                                      "loss_sum": self.loss_sum()}  # fmt: skip
            if self.order_recorder is not None and self.order_recorder.epoch_state is not None:
                record["epoch_rng"] = self.order_recorder.epoch_state
            name = epoch_order_file(self.args.world_size, self.args.process_index)
            torch.save(record, os.path.join(output_dir, name))

        def _load_rng_state(self, checkpoint: Any) -> None:
            # Called before the first epoch's order is drawn only when the checkpoint ends an
            # epoch: the next order then comes from the restored state, as it did.
            if self.order_recorder is not None:
                self.order_recorder.replay = None
            super()._load_rng_state(checkpoint)

        def loss_sum(self) -> float:
            """The sum of the step losses since the run started (over resumes too)."""
            earlier = float((self.resumed_record or {}).get("loss_sum", 0.0))
            pending = getattr(self, "_tr_loss", None)
            pending = float(pending.item()) if pending is not None else 0.0
            return earlier + float(getattr(self, "_total_loss_scalar", 0.0)) + pending

        def whole_run_loss(self, result: Any) -> float:
            """The mean step loss of the whole run: the Trainer's ``training_loss`` counts only
            the steps of this process, after the checkpoint it resumed from."""
            record = self.resumed_record
            if not record or "loss_sum" not in record or not result.global_step:
                return float(result.training_loss)
            steps_now = result.global_step - int(record.get("global_step", 0))
            total = float(record["loss_sum"]) + float(result.training_loss) * steps_now
            return total / result.global_step

        def create_optimizer(self, model: Any = None) -> Any:
            if self.layer_decay >= 1.0 or self.optimizer is not None:
                return super().create_optimizer(model)
            opt_model = self.model if model is None else model
            groups = layer_decay_groups(
                opt_model.named_parameters(),
                set(self.get_decay_parameter_names(opt_model)),
                lr=self.args.learning_rate,
                weight_decay=self.args.weight_decay,
                decay=self.layer_decay,
            )
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(
                self.args, opt_model
            )
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
            return self.optimizer

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            labels = inputs.pop("labels")
            twice = bool(self.rdrop_weight) and model.training and self.task == "classification"
            if twice:
                # One forward pass over the batch written twice: dropout differs between halves.
                inputs = {key: doubled_rows(value, len(labels)) for key, value in inputs.items()}
            outputs = model(**inputs)
            logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
            loss, labels = self._task_loss(logits, labels, twice=twice)
            if self.contrastive_weight and model.training and self.task == "classification":
                loss = self._with_contrastive(loss, model, labels)
            return (loss, outputs) if return_outputs else loss

        def _task_loss(self, logits: Any, labels: Any, *, twice: bool) -> tuple[Any, Any]:
            """The (weighted, smoothed) loss of the task, and the labels of ``logits``' rows:
            with R-Drop (``twice``) the mean of both halves' losses plus their symmetric KL,
            and the labels doubled to match the rows."""
            weight = self.loss_weights
            if weight is not None:
                weight = weight.to(logits.device)
            if self.task == "ner":
                loss = torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]),
                    labels.reshape(-1),
                    weight=weight,
                    ignore_index=-100,
                    label_smoothing=self.label_smoothing,
                )
                return loss, labels
            problem = (
                "multi_label_classification"
                if self.task == "multilabel"
                else "single_label_classification"
            )
            if not twice:
                return sequence_loss(logits, labels, problem, weight, self.label_smoothing), labels
            first, second = logits.chunk(2)
            loss = (
                sequence_loss(first, labels, problem, weight, self.label_smoothing)
                + sequence_loss(second, labels, problem, weight, self.label_smoothing)
            ) / 2 + self.rdrop_weight * symmetric_kl(first, second)
            return loss, torch.cat([labels, labels])

        def _with_contrastive(self, loss: Any, model: Any, labels: Any) -> Any:
            """``loss`` plus the supervised contrastive loss on the pooled embeddings the
            forward pass kept (unchanged when the head keeps none)."""
            pooled = last_pooled(model)
            if pooled is None:
                return loss
            return loss + self.contrastive_weight * supervised_contrastive_loss(
                pooled, labels, self.contrastive_temperature
            )

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            lengths = getattr(dataset, "lengths", None)
            labels = getattr(dataset, "labels", None)
            if self.contrastive_weight and lengths is not None and labels is not None:
                inner = make_pair_sampler(list(labels), list(lengths), self.args.train_batch_size)
            elif self.args.train_sampling_strategy == "group_by_length" and lengths is not None:
                inner = LengthGroupedSampler(
                    self.args.train_batch_size * self.args.gradient_accumulation_steps,
                    lengths=list(lengths),
                )
            else:
                return super()._get_train_sampler(train_dataset)
            self.order_recorder = make_order_recorder(inner)
            self.order_recorder.replay = (self.resumed_record or {}).get("epoch_rng")
            return self.order_recorder

        def _get_eval_sampler(self, eval_dataset: Any) -> Any:
            # Keep dataset order: predictions map back to rows and words.
            return SequentialSampler(eval_dataset)

    return TunesmithTrainer
