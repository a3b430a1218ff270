"""Pieces around the transformers ``Trainer``: encoding, dynamic padding, the loss, progress.

The Trainer stays the training loop (so ``accelerate launch`` and ``torchrun`` work); tunesmith
adds a weighted loss, length-grouped batches from precomputed lengths, and quiet progress on
stderr instead of the Trainer's printing to stdout.
"""

from __future__ import annotations

import math
import re
import sys
from typing import Any

from tunesmith.engine.metrics import strict_entity_f1
from tunesmith.engine.modeling import last_pooled, sequence_loss


def token_lengths(tokenizer: Any, texts: list[str]) -> list[int]:
    """Token counts with special tokens, without truncation."""
    encoded = tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
    return [len(ids) for ids in encoded]


def choose_max_length(lengths: list[int], model_limit: int, requested: int | None) -> int:
    """``requested``, or the 99th percentile of the data's lengths; never above the model's limit.

    The 99th percentile keeps batches short for the common case; the 1 % longest texts lose
    their tail, which rarely decides a label.
    """
    if requested is not None:
        return min(requested, model_limit)
    if not lengths:
        return min(128, model_limit)
    ordered = sorted(lengths)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return max(8, min(p99, model_limit))


#: The longest input a loaded model is given when nothing smaller is recorded: models with
#: longer position tables are rare here and cost quadratically in attention.
MAX_INPUT_TOKENS = 512


def model_max_length(tokenizer: Any, config: Any) -> int:
    """The longest input the model takes (position embeddings, tokenizer limit)."""
    limits = [getattr(config, "max_position_embeddings", None), tokenizer.model_max_length]
    usable = [int(x) for x in limits if isinstance(x, int) and 0 < x < 100_000]
    return min(usable) if usable else 512


def input_limit(tokenizer: Any, config: Any, requested: int | None = None) -> int:
    """The most tokens a saved model reads at prediction: the model's limit, at most
    ``MAX_INPUT_TOKENS`` and at most ``--max-length`` when it was given (``requested``).

    Training truncates its texts at the data's 99th percentile instead (``choose_max_length``);
    the held-out data is read at this limit, so that the metrics and the temperature describe
    what ``predict`` computes.
    """
    limits = [model_max_length(tokenizer, config), MAX_INPUT_TOKENS]
    if isinstance(requested, int) and not isinstance(requested, bool) and requested > 0:
        limits.append(requested)
    return min(limits)


def encode_texts(tokenizer: Any, texts: list[str], max_length: int) -> list[dict[str, list[int]]]:
    """Token ids per text, truncated to ``max_length``, unpadded (padding happens per batch)."""
    encoded = tokenizer(texts, truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
    return [{k: list(encoded[k][i]) for k in keys} for i in range(len(texts))]


def encode_words(
    tokenizer: Any, sentences: list[list[str]], tags: list[list[int]] | None, max_length: int
) -> tuple[list[dict[str, list[int]]], list[list[int]]]:
    """Tokenise pre-split words; each word's tag goes on its first sub-token, -100 elsewhere.

    Returns the encodings and, per sentence, the index of each word's first sub-token (-1 when
    truncation cut the word off) so that predictions map back to words.
    """
    encoded = tokenizer(sentences, is_split_into_words=True, truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
    items: list[dict[str, list[int]]] = []
    firsts: list[list[int]] = []
    for i, words in enumerate(sentences):
        item = {k: list(encoded[k][i]) for k in keys}
        word_ids = encoded.word_ids(i)
        first = [-1] * len(words)
        aligned = []
        previous = None
        for pos, word in enumerate(word_ids):
            if word is None or word == previous:
                aligned.append(-100)
            else:
                first[word] = pos
                aligned.append(tags[i][word] if tags is not None else 0)
            previous = word
        item["labels"] = aligned
        items.append(item)
        firsts.append(first)
    return items, firsts


class EncodedDataset:
    """Token-id items with labels; ``lengths`` feed the length-grouped sampler."""

    def __init__(self, items: list[dict[str, Any]], labels: list[Any] | None = None) -> None:
        self.items = items
        self.labels = labels
        self.lengths = [len(item["input_ids"]) for item in items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.items[index])
        if self.labels is not None:
            item["labels"] = self.labels[index]
        return item


TOKEN_FIELDS = ("input_ids", "attention_mask", "token_type_ids")


def pad_rows(
    tokenizer: Any, rows: list[dict[str, Any]], *, attention_mask: bool | None = None
) -> dict[str, Any]:
    """Token rows (``input_ids`` and the like) padded to their longest, as int64 tensors.

    ``tokenizer.pad`` on the right, the side every tunesmith model was trained with;
    ``attention_mask=True`` adds the mask even where the tokenizer does not list it. A tokenizer
    without a pad token (GPT-2 style) cannot pad; :func:`pad_tokens` then pads with id 0, which
    the attention mask hides, as training did.
    """
    if tokenizer.pad_token_id is None:
        return pad_tokens(rows, 0)
    padded = tokenizer.pad(
        rows,
        padding=True,
        padding_side="right",
        return_attention_mask=attention_mask,
        return_tensors="pt",
    )
    return dict(padded)


def pad_tokens(batch: list[dict[str, Any]], pad_id: int) -> dict[str, Any]:
    """The token fields of ``batch`` padded to its longest item, as int64 tensors.

    Hand-written for the callers that hold token ids and a pad id but no tokenizer (the
    frozen-feature cache, whose key is the model and the ids), and for tokenizers without a pad
    token (padded with id 0, masked out).
    """
    import torch

    width = max(len(b["input_ids"]) for b in batch)
    return {
        name: torch.tensor([b[name] + [pad_id if name == "input_ids" else 0] * (width - len(b[name]))
                            for b in batch])
        for name in TOKEN_FIELDS
        if name in batch[0]
    }  # fmt: skip


class PaddingCollator:
    """Pads each batch to its own longest item (dynamic padding) with the tokenizer; NER tags
    are padded with -100, which the loss ignores."""

    def __init__(self, tokenizer: Any, task: str) -> None:
        self.tokenizer = tokenizer
        self.task = task

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        tokens = [{k: b[k] for k in TOKEN_FIELDS if k in b} for b in batch]
        out = pad_rows(self.tokenizer, tokens)
        width = out["input_ids"].shape[1]
        if "labels" in batch[0]:
            labels = [b["labels"] for b in batch]
            if self.task == "ner":
                out["labels"] = torch.tensor([t + [-100] * (width - len(t)) for t in labels])
            elif self.task == "multilabel":
                out["labels"] = torch.tensor(labels, dtype=torch.float32)
            else:
                out["labels"] = torch.tensor(labels, dtype=torch.long)
        return out


def class_weights(label_ids: list[Any], num_labels: int, task: str) -> list[float]:
    """Inverse-frequency weights (``n / (k * count)``), or BCE positive weights for multi-label.

    Weights are capped at 10 so that a class with one example cannot dominate the loss.
    """
    if task == "multilabel":
        n = len(label_ids)
        positives = [sum(row[j] for row in label_ids) for j in range(num_labels)]
        return [min(10.0, (n - p) / p) if p else 1.0 for p in positives]
    counts = [0] * num_labels
    for y in label_ids:
        counts[y] += 1
    n = len(label_ids)
    present = sum(1 for c in counts if c)
    return [min(10.0, n / (present * c)) if c else 1.0 for c in counts]


def supervised_contrastive_loss(embeddings: Any, labels: Any, temperature: float = 0.1) -> Any:
    """Supervised contrastive loss (Khosla et al., 2020) over one batch of sentence embeddings.

    Pulls together the normalised embeddings of examples that share a label and pushes the
    others apart. With few examples per label this reshapes the sentence space itself, which
    cross-entropy alone, already near zero on the training set, barely does.
    """
    import torch
    import torch.nn.functional as F

    z = F.normalize(embeddings.float(), dim=-1)
    sim = z @ z.T / temperature
    eye = torch.eye(len(labels), dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(eye, float("-inf"))
    positives = (labels[:, None] == labels[None, :]) & ~eye
    anchors = positives.any(dim=1)
    if not anchors.any():
        return z.sum() * 0.0
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    log_prob = log_prob.masked_fill(eye, 0.0)
    per_anchor = (log_prob * positives).sum(dim=1)[anchors] / positives.sum(dim=1)[anchors]
    return -per_anchor.mean()


def same_label_pairs(labels: list[int], rng: Any) -> dict[int, list[list[int]]]:
    """Per label, its example indices shuffled and cut into pairs (a last single when odd)."""
    by_label: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    pairs: dict[int, list[list[int]]] = {}
    for label, members in by_label.items():
        rng.shuffle(members)
        pairs[label] = [members[k : k + 2] for k in range(0, len(members), 2)]
    return pairs


def paired_order(labels: list[int], lengths: list[int], batch_size: int, rng: Any) -> list[int]:
    """An epoch's order in which examples come in same-label pairs (so every batch has
    positives for the contrastive loss), pairs grouped by length to keep padding low."""
    pairs = [pair for group in same_label_pairs(labels, rng).values() for pair in group]
    rng.shuffle(pairs)
    # Length grouping as the Trainer does it: sort inside mega-batches of 50 batches.
    chunk = max(1, batch_size // 2) * 50
    ordered: list[int] = []
    for start in range(0, len(pairs), chunk):
        block = sorted(pairs[start : start + chunk], key=lambda p: -max(lengths[i] for i in p))
        ordered.extend(i for pair in block for i in pair)
    return ordered


def make_pair_sampler(labels: list[int], lengths: list[int], batch_size: int) -> Any:
    """A sampler yielding :func:`paired_order`; it draws from torch's global RNG when an epoch
    starts, which :func:`make_order_recorder` records for ``--resume``."""
    import random

    import torch
    from torch.utils.data import Sampler

    class PairedLabelSampler(Sampler):
        def __len__(self) -> int:
            return len(labels)

        def __iter__(self) -> Any:
            rng = random.Random(int(torch.randint(0, 2**31 - 1, ()).item()))
            return iter(paired_order(labels, lengths, batch_size, rng))

    return PairedLabelSampler()


#: A checkpoint's record of what the Trainer does not save: the RNG state its epoch's order was
#: drawn from and the sum of the step losses so far (:func:`make_trainer_class`).
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


_LAYER = re.compile(r"(?:^|\.)layers?\.(\d+)\.")


def layer_decay_groups(
    named_parameters: Any,
    decaying: set[str],
    *,
    lr: float,
    weight_decay: float,
    decay: float,
) -> list[dict[str, Any]]:
    """Optimizer groups with layer-wise learning-rate decay (``--layer-decay``).

    The head (and anything above the last layer) trains at ``lr``, layer ``i`` of ``n`` at
    ``lr * decay ** (n - i)``, the embeddings at ``lr * decay ** (n + 1)``: the layers nearest
    the input, which hold the most general features, move least. Trainable parameters only;
    ``decaying`` names the ones that take weight decay (``Trainer.get_decay_parameter_names``:
    not biases and norms). A model without numbered ``layer.N`` parameters gets one group at
    ``lr``.
    """
    params = [(name, p) for name, p in named_parameters if p.requires_grad]
    depths: dict[str, int] = {}
    for name, _ in params:
        found = _LAYER.search(name)
        if found:
            depths[name] = int(found.group(1)) + 1
    layers = max(depths.values(), default=0)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, p in params:
        if name in depths:
            depth = depths[name]
        elif layers and "embed" in name:
            depth = 0
        else:
            depth = layers + 1
        decays = name in decaying
        key = (depth, decays)
        if key not in groups:
            groups[key] = {
                "params": [],
                "lr": lr * decay ** (layers + 1 - depth),
                "weight_decay": weight_decay if decays else 0.0,
            }
        groups[key]["params"].append(p)
    return [groups[key] for key in sorted(groups)]


def doubled_rows(value: Any, rows: int) -> Any:
    """``value`` written twice along its first axis when it is a per-example tensor of ``rows``
    rows (R-Drop's two passes in one batch); anything else as it is."""
    import torch

    if torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == rows:
        return torch.cat([value, value])
    return value


def symmetric_kl(first: Any, second: Any) -> Any:
    """R-Drop's regulariser (Liang et al., 2021) for two passes' logits of the same examples:
    the mean of KL(p1 || p2) and KL(p2 || p1), averaged over examples, halved so that, with the
    two passes' mean cross-entropy, the loss is the paper's divided by two at the paper's weight.
    """
    import torch.nn.functional as F

    log_p, log_q = F.log_softmax(first, dim=-1), F.log_softmax(second, dim=-1)
    forward = F.kl_div(log_q, log_p, log_target=True, reduction="batchmean")  # KL(p || q)
    backward = F.kl_div(log_p, log_q, log_target=True, reduction="batchmean")  # KL(q || p)
    return (forward + backward) / 4


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
            #: What a resumed checkpoint recorded (:data:`EPOCH_ORDER_FILE`), else None.
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
            record = torch.load(path, weights_only=True)
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
            else:
                problem = (
                    "multi_label_classification"
                    if self.task == "multilabel"
                    else "single_label_classification"
                )
                if twice:
                    first, second = logits.chunk(2)
                    loss = (
                        sequence_loss(first, labels, problem, weight, self.label_smoothing)
                        + sequence_loss(second, labels, problem, weight, self.label_smoothing)
                    ) / 2 + self.rdrop_weight * symmetric_kl(first, second)
                    labels = torch.cat([labels, labels])
                else:
                    loss = sequence_loss(logits, labels, problem, weight, self.label_smoothing)
            if self.contrastive_weight and model.training and self.task == "classification":
                pooled = last_pooled(model)
                if pooled is not None:
                    loss = loss + self.contrastive_weight * supervised_contrastive_loss(
                        pooled, labels, self.contrastive_temperature
                    )
            return (loss, outputs) if return_outputs else loss

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


#: What the held-out ``score`` (:func:`score_metrics`) measures, by task, for the progress line.
SCORE_NAMES = {"classification": "accuracy", "multilabel": "micro F1", "ner": "entity F1"}


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


def score_metrics(task: str, label_names: list[str]) -> Any:
    """``compute_metrics`` for the Trainer: one ``score`` for best-checkpoint selection.

    Accuracy for single-label, micro-F1 at 0.5 for multi-label, strict entity F1 for NER.
    """

    def compute(prediction: Any) -> dict[str, float]:
        logits = prediction.predictions
        if isinstance(logits, tuple):
            logits = logits[0]
        labels = prediction.label_ids
        if task == "classification":
            return {"score": float((logits.argmax(-1) == labels).mean())}
        if task == "multilabel":
            predicted = logits > 0
            truth = labels > 0.5
            tp = float((predicted & truth).sum())
            denominator = float(predicted.sum() + truth.sum())
            return {"score": 2 * tp / denominator if denominator else 1.0}
        predicted = logits.argmax(-1)
        true_tags, pred_tags = [], []
        for row_pred, row_true in zip(predicted, labels, strict=True):
            keep = row_true != -100
            true_tags.append([label_names[i] for i in row_true[keep]])
            pred_tags.append([label_names[i] for i in row_pred[keep]])
        return {"score": strict_entity_f1(true_tags, pred_tags)}

    return compute
