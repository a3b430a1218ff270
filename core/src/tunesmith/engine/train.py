"""``train(run)``: data file in, fine-tuned, measured, documented model directory out.

Order matters for the user: every cheap check (flags, output directory, model name, the data
files) runs before torch is imported, so a mistake costs a second, not a training run. The model
directory is written to a temporary sibling and renamed into place at the very end, so a failed
or interrupted run never touches an existing directory. Checkpoints live in a work directory
(``<out>.work``) that ``--resume`` continues from and a finished run removes.
"""

from __future__ import annotations

import math
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.engine.config import RunConfig
from tunesmith.engine.prepare import Log, PreparedData, prepare_data, stderr_log, targets
from tunesmith.engine.probe import fit_linear_probe
from tunesmith.engine.workdir import check_work_dir, open_work_dir
from tunesmith.errors import TunesmithError, UserInputError


class TrainingInterrupted(TunesmithError):
    """Ctrl-C during training: checkpoints are kept for ``--resume``."""

    exit_code = 130


# --- settings chosen from the data --------------------------------------------------------------


def resolve_hyperparameters(
    run: RunConfig, task: str, n_train: int, few_shot: bool, hidden_size: int
) -> dict[str, Any]:
    """Epochs and learning rate when not given, by strategy, data size and model size.

    Small models need a higher learning rate than BERT-base defaults (one epoch of banking77 at
    5e-5 reaches only 0.45), and few-shot data needs many more epochs to take enough steps.
    """
    kind = run.strategy_kind
    small = hidden_size <= 512
    if kind == "head":
        lr, epochs = 2e-3, 20.0
    elif kind == "lora":
        lr = 1e-3
        epochs = 30.0 if few_shot else (8.0 if n_train < 5000 else 5.0)
    else:
        lr = (1e-4 if small else 3e-5) if task != "ner" else (1e-4 if small else 5e-5)
        if few_shot:
            epochs = 20.0
        elif n_train < 2000:
            epochs = 10.0
        elif n_train < 5000:
            epochs = 6.0
        else:
            epochs = 4.0
    return {
        "epochs": float(run.epochs) if run.epochs is not None else epochs,
        "lr": float(run.lr) if run.lr is not None else lr,
        "epochs_source": "--epochs" if run.epochs is not None else "auto",
        "lr_source": "--lr" if run.lr is not None else "auto",
    }


# --- training ---------------------------------------------------------------------------------


@dataclass
class TrainOutcome:
    """What training produced, for writing the model directory."""

    model: Any
    tokenizer: Any
    held_logits: Any | None
    held_firsts: list[list[int]] | None
    resolved: dict[str, Any]
    tensorboard_dir: Path | None = None


def _encode(task: str, tokenizer: Any, dataset: Any, targets: list[Any], max_length: int) -> tuple:
    from tunesmith.engine.trainer_utils import EncodedDataset, encode_texts, encode_words

    if task == "ner":
        items, firsts = encode_words(tokenizer, dataset.tokens, targets, max_length)
        return EncodedDataset(items), firsts
    return EncodedDataset(encode_texts(tokenizer, dataset.texts, max_length), targets), None


def _fit(
    run: RunConfig,
    prepared: PreparedData,
    location: str,
    base_name: str,
    resume_from: str | None,
    log: Log,
) -> TrainOutcome:
    import torch
    from transformers import (
        AutoTokenizer,
        EarlyStoppingCallback,
        PrinterCallback,
        ProgressCallback,
        TrainingArguments,
    )

    from tunesmith.engine import feature_cache as fc
    from tunesmith.engine.modeling import (
        build_classifier,
        pooling_of,
        quiet_transformers,
        set_head_weights,
    )
    from tunesmith.engine.strategies import apply_strategy, parse_strategy, trainable_parameters
    from tunesmith.engine.threads import configure_threads
    from tunesmith.engine.trainer_utils import (
        choose_max_length,
        class_weights,
        make_progress_callback,
        make_trainer_class,
        model_max_length,
        score_metrics,
        token_lengths,
    )
    from tunesmith.plugins import collect_list

    threads = configure_threads()
    quiet_transformers()
    task, labels = prepared.task, prepared.labels
    strategy = parse_strategy(run.strategy)
    resolved: dict[str, Any] = {"notes": list(prepared.notes), "threads": threads}

    tokenizer = AutoTokenizer.from_pretrained(location)
    if task == "ner" and not getattr(tokenizer, "is_fast", False):
        raise UserInputError(f"--task ner needs a fast tokenizer; {base_name} has none")
    torch.manual_seed(run.seed)
    model = build_classifier(
        location, task=task, labels=labels, pooling=run.pooling, base_name=base_name
    )
    if task != "ner":
        resolved["pooling"] = pooling_of(model)
        if run.pooling == "mean" and resolved["pooling"] != "mean":
            raise UserInputError(
                f"--pooling mean: {type(model).__name__} has no linear head to feed"
            )

    # Max length from the data: most texts are far shorter than the model's limit.
    limit = model_max_length(tokenizer, model.config)
    sample = prepared.train.texts if task != "ner" else [" ".join(t) for t in prepared.train.tokens]
    lengths = token_lengths(tokenizer, sample)
    max_length = choose_max_length(lengths, limit, run.max_length)
    resolved["max_length"] = max_length
    resolved["max_length_source"] = (
        "--max-length"
        if run.max_length
        else f"99th percentile of the training texts, limit {limit}"
    )

    train_y = targets(task, prepared.train, labels)
    held_y = targets(task, prepared.held, labels) if prepared.held is not None else None
    train_ds, _ = _encode(task, tokenizer, prepared.train, train_y, max_length)
    held_ds, held_firsts = (None, None)
    if prepared.held is not None:
        held_ds, held_firsts = _encode(task, tokenizer, prepared.held, held_y, max_length)

    hparams = resolve_hyperparameters(
        run, task, len(train_ds), prepared.few_shot, int(model.config.hidden_size)
    )
    resolved.update(hparams)

    # The frozen bottom (head, freeze:K) is computed once and cached.
    use_cache = False
    if strategy.cacheable and run.feature_cache:
        use_cache = fc.cache_supported(model, task)
        if not use_cache:
            resolved["notes"].append("frozen-feature cache not available for this architecture")
    model_fp = fc.model_fingerprint(location)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def features_for(items: list[dict[str, Any]], depth: int, pooled: bool) -> Any:
        features, hit = fc.load_or_compute(
            model,
            items,
            model_fp=model_fp,
            depth=depth,
            pooled=pooled,
            pad_id=pad_id,
            cache_dir=run.cache_dir,
        )
        resolved.setdefault("feature_cache_hits", []).append(hit)
        return features

    # Head initialised from a linear probe on frozen pooled features (LP-FT).
    head_init = run.head_init
    probe_ok = task != "ner" and fc.cache_supported(model, task)
    if head_init == "auto":
        head_init = "probe" if probe_ok else "random"
    elif head_init == "probe" and not probe_ok:
        resolved["notes"].append("--head-init probe needs a BERT-style encoder; used random")
        head_init = "random"
    pooled_train = None
    if head_init == "probe":
        started = time.perf_counter()
        pooled_train = features_for(train_ds.items, fc.num_layers(model), True)
        weight, bias, l2 = fit_linear_probe(
            pooled_train.values, train_y, task, num_labels=len(labels), seed=run.seed
        )
        set_head_weights(model, weight, bias)
        resolved["probe"] = {"l2": l2, "seconds": round(time.perf_counter() - started, 2)}
        log(f"head initialised from a linear probe (l2 {l2:g})")
    resolved["head_init"] = head_init
    # Soup members restart from this point, and WiSE-FT blends back towards it: only full
    # fine-tuning has one (WiSE-FT needs the probed head to make it a good one).
    members = run.soup
    if members > 1 and strategy.kind != "full":
        resolved["notes"].append(f"--soup needs --strategy full; trained one model, not {members}")
        members = 1
    wants_wise = strategy.kind == "full" and head_init == "probe" and run.wise_ft != 1
    start = None
    if wants_wise or members > 1:
        from tunesmith.engine.wise import snapshot

        start = snapshot(model)
    wise_start = start if wants_wise else None

    model = apply_strategy(model, strategy, lora_r=run.lora_r, lora_alpha=run.lora_alpha)
    trainable, total = trainable_parameters(model)
    resolved["trainable_parameters"], resolved["total_parameters"] = trainable, total

    if use_cache:
        depth, pooled = fc.cache_plan(model, task, strategy.kind, strategy.k)
        started = time.perf_counter()
        if pooled and pooled_train is not None:
            train_features = pooled_train
        else:
            train_features = features_for(train_ds.items, depth, pooled)
        held_features = features_for(held_ds.items, depth, pooled) if held_ds is not None else None
        resolved["feature_cache_seconds"] = round(time.perf_counter() - started, 2)
        trainer_model = fc.frozen_top(model, depth=depth, pooled=pooled, task=task)
        train_set = fc.FeatureDataset(
            train_features, train_y_labels(task, train_ds, train_y), train_ds.lengths
        )
        held_set = (
            fc.FeatureDataset(held_features, train_y_labels(task, held_ds, held_y), held_ds.lengths)
            if held_ds is not None
            else None
        )
        collator = fc.FeatureCollator(pooled=pooled, task=task)
        resolved["strategy_note"] = (
            f"frozen part cached ({'pooled vectors' if pooled else f'hidden states after layer {depth}'})"
        )
    else:
        from tunesmith.engine.trainer_utils import PaddingCollator

        trainer_model = model
        train_set, held_set = train_ds, held_ds
        collator = PaddingCollator(pad_id, task)
    resolved["feature_cache"] = use_cache

    # Few-shot: a supervised contrastive term on the pooled embeddings reshapes the sentence
    # space (banking77, 5 per intent: 0.799 -> 0.821 test accuracy on one draw).
    contrastive_ok = (
        task == "classification" and resolved.get("pooling") == "mean" and not use_cache
    )
    contrastive = run.contrastive
    if contrastive is None:
        # Only by default where the whole encoder learns: head and freeze:K stay exactly
        # what their cached and uncached runs compute alike.
        by_default = strategy.kind in ("full", "lora") and prepared.few_shot
        contrastive = 1.0 if (by_default and contrastive_ok) else 0.0
    elif contrastive > 0 and not contrastive_ok:
        resolved["notes"].append(
            "--contrastive needs single-label data, mean pooling and a trainable encoder; off"
        )
        contrastive = 0.0
    resolved["contrastive"] = contrastive

    if prepared.few_shot:
        resolved["few_shot"] = True
        parts = [f"{hparams['epochs']:g} epochs at learning rate {hparams['lr']:g}"]
        if prepared.held is None:
            parts.append("no held-out split (every example trains)")
        if prepared.n_label_examples:
            parts.append(f"the {prepared.n_label_examples} label names added as examples")
        if head_init == "probe":
            parts.append("head initialised from a linear probe")
        if members > 1:
            parts.append(f"the weights of {members} runs with different seeds averaged (a soup)")
        from tunesmith.engine import nearest as nx

        uses_nearest = nx.resolve_mode(
            run.nearest,
            task=task,
            pooling=resolved.get("pooling"),
            strategy=strategy.kind,
            few_shot=True,
        )
        if uses_nearest and prepared.held is None:
            parts.append(
                "nearest-training-example scores mixed into the probabilities "
                f"(head share {nx.FEW_SHOT_WEIGHT:g})"
            )
        if wise_start is not None and run.wise_ft is None and prepared.held is None:
            from tunesmith.engine.wise import FEW_SHOT_WEIGHT

            parts.append(f"weights blended with the start (WiSE-FT, {FEW_SHOT_WEIGHT:g})")
        if contrastive:
            parts.append(
                f"a supervised contrastive loss (weight {contrastive:g}) on same-label pairs"
            )
        resolved["few_shot_note"] = ", ".join(parts) + "."

    has_eval = held_set is not None and len(held_set) > 0
    patience = run.early_stopping if run.early_stopping is not None else 3
    resolved["early_stopping"] = patience if has_eval else None
    steps_mode = run.save_steps is not None
    save_steps = run.save_steps
    if not steps_mode and not has_eval:
        # Without evaluation a checkpoint serves only --resume: save about every 200 steps
        # (and at least once an epoch), not after every short few-shot epoch.
        per_epoch = math.ceil(len(train_set) / run.batch_size)
        save_steps = per_epoch * max(1, 200 // max(per_epoch, 1))
        steps_mode = True
    work = run.work_path

    def training_args(output_dir: Path, seed: int) -> Any:
        return TrainingArguments(
            output_dir=str(output_dir),
            per_device_train_batch_size=run.batch_size,
            per_device_eval_batch_size=max(64, run.batch_size),
            num_train_epochs=hparams["epochs"],
            learning_rate=hparams["lr"],
            weight_decay=run.weight_decay,
            warmup_steps=run.warmup_ratio,
            lr_scheduler_type="linear",
            eval_strategy=("steps" if steps_mode else "epoch") if has_eval else "no",
            eval_steps=save_steps if (steps_mode and has_eval) else None,
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
            seed=seed,
            data_seed=seed,
            # Both paths group by token length, so cached and uncached runs see the same batches.
            train_sampling_strategy="group_by_length",
            remove_unused_columns=False,
            label_names=["labels"],
            dataloader_num_workers=0,
            dataloader_pin_memory=torch.cuda.is_available(),
        )

    weights = None
    if run.class_weights == "auto" and task == "ner":
        resolved["notes"].append("--class-weights auto applies to classification; NER ignored it")
    if run.class_weights == "auto" and task != "ner":
        weights = torch.tensor(class_weights(train_y, len(labels), task), dtype=torch.float32)
    tb_dir = work / "runs" if run.tensorboard else None

    def make_trainer(member: int) -> Any:
        from tunesmith.engine.soup import member_checkpoints, member_seed

        seed = member_seed(run.seed, member)
        member_args = training_args(member_checkpoints(work, member), seed)
        trainer = make_trainer_class()(
            model=trainer_model,
            args=member_args,
            train_dataset=train_set,
            eval_dataset=held_set if has_eval else None,
            data_collator=collator,
            compute_metrics=score_metrics(task, labels) if has_eval else None,
            task=task,
            loss_weights=weights,
            contrastive_weight=contrastive,
        )
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(make_progress_callback(sys.stderr.isatty()))
        if has_eval and patience > 0:
            trainer.add_callback(EarlyStoppingCallback(early_stopping_patience=patience))
        if tb_dir is not None:
            from torch.utils.tensorboard import SummaryWriter
            from transformers.integrations import TensorBoardCallback

            writer = SummaryWriter(
                log_dir=str(tb_dir if member == 0 else tb_dir / f"member-{member}")
            )
            trainer.add_callback(TensorBoardCallback(tb_writer=writer))
        for callback in collect_list("tunesmith_train_callbacks", run=run):
            trainer.add_callback(callback)
        return trainer

    log(
        f"training {task} model: {len(train_set):,} examples, {len(labels)} labels, "
        f"strategy {run.strategy}, {hparams['epochs']:g} epochs at lr {hparams['lr']:g}, "
        f"max length {max_length}, {trainable:,} of {total:,} parameters trainable"
        + (
            f", a soup of {members} runs (seeds {run.seed}-{run.seed + members - 1})"
            if members > 1
            else ""
        )
    )
    trainer, stats, finished = _train_members(
        run, model, start, members, make_trainer, resume_from, work, log
    )
    resolved["train_seconds"] = round(sum(s["seconds"] for s in stats), 2)
    resolved["train_loss"] = round(statistics.fmean(s["train_loss"] for s in stats), 6)
    resolved["global_steps"] = sum(s["global_steps"] for s in stats)
    resolved["epochs_run"] = stats[-1]["epochs_run"]
    if stats[-1].get("best_checkpoint_step") is not None:
        resolved["best_checkpoint_metric"] = stats[-1]["best_checkpoint_metric"]
        resolved["best_checkpoint_step"] = stats[-1]["best_checkpoint_step"]
    if members > 1:
        from tunesmith.engine.soup import average, load_weights

        load_weights(model, average(finished))
        resolved["soup"] = {"members": members, "runs": stats}
        log(f"weights of the {members} runs averaged (model soup)")

    if wise_start is not None:
        resolved["wise_ft"] = _weight_space_ensemble(
            run, trainer, model, wise_start, held_set if has_eval else None, log
        )
    elif strategy.kind == "full":
        resolved["wise_ft"] = {"weight": 1.0, "source": "off"}

    # Self-training reads the same pooled training texts as the nearest examples: embed once.
    train_pooled = None
    if prepared.unlabelled:
        from tunesmith.engine.nearest import pooled_embeddings

        train_pooled = pooled_embeddings(model, train_ds.items, pad_id=pad_id)
    resolved["nearest"], held_examples = _nearest_examples(
        run, prepared, model, train_ds, train_y, pad_id, held_ds if has_eval else None, held_y,
        strategy.kind, log, train_pooled,
    )  # fmt: skip
    if run.nearest == "on" and resolved["nearest"]["source"] == "not used":
        resolved["notes"].append(
            "--nearest on needs single-label data, mean pooling and --strategy full; not used"
        )

    if prepared.unlabelled:
        resolved["self_training"] = _self_train(
            run, prepared, model, tokenizer, train_pooled, train_y, train_ds,
            held_ds if has_eval else None, held_y, pad_id, max_length, log,
        )  # fmt: skip

    held_logits = None
    if has_eval:
        prediction = trainer.predict(held_set)
        held_logits = prediction.predictions
        if isinstance(held_logits, tuple):
            held_logits = held_logits[0]
        if held_examples is not None and not run.eval_data:
            _remember_held_out(model, resolved["nearest"], held_examples, log)
    return TrainOutcome(
        model=model,
        tokenizer=tokenizer,
        held_logits=held_logits,
        held_firsts=held_firsts,
        resolved=resolved,
        tensorboard_dir=tb_dir,
    )


def _train_members(
    run: RunConfig,
    model: Any,
    start: dict[str, Any] | None,
    members: int,
    make_trainer: Any,
    resume_from: str | None,
    work: Path,
    log: Log,
) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    """Train ``members`` runs from ``start`` (one: the plain run); returns the last trainer,
    each run's figures and, for a soup, each member's final weights."""
    from tunesmith.engine.soup import (
        load_member,
        member_checkpoints,
        member_file,
        member_seed,
        save_member,
    )
    from tunesmith.engine.wise import snapshot
    from tunesmith.io import atomic_write_json, read_json_object

    trainer = None
    stats: list[dict[str, Any]] = []
    finished: list[dict[str, Any]] = []
    for member in range(members):
        kept = member_file(work, member)
        record_file = kept.with_suffix(".json")
        if members > 1 and run.resume and kept.is_file() and record_file.is_file():
            finished.append(load_member(kept))
            stats.append(read_json_object(record_file) or {})
            log(f"--resume: run {member + 1} of {members} had finished; kept its weights")
            continue
        resume = resume_from if member == 0 else None
        if member > 0:
            from tunesmith.engine.soup import load_weights

            load_weights(model, start)
            if run.resume:
                from tunesmith.engine.workdir import last_complete_checkpoint

                resume = last_complete_checkpoint(member_checkpoints(work, member), log)
                if resume:
                    log(f"--resume: continuing run {member + 1} of {members} from {resume}")
            log(f"soup: run {member + 1} of {members} (seed {member_seed(run.seed, member)})")
        trainer = make_trainer(member)
        started = time.perf_counter()
        try:
            result = trainer.train(resume_from_checkpoint=resume)
        except KeyboardInterrupt:
            from tunesmith.engine.workdir import interrupted_message

            raise TrainingInterrupted(interrupted_message(work)) from None
        record: dict[str, Any] = {
            "seed": member_seed(run.seed, member),
            "seconds": round(time.perf_counter() - started, 2),
            "train_loss": round(float(result.training_loss), 6),
            "global_steps": int(result.global_step),
            "epochs_run": round(float(trainer.state.epoch or 0), 3),
        }
        if trainer.state.best_model_checkpoint:
            record["best_checkpoint_metric"] = trainer.state.best_metric
            record["best_checkpoint_step"] = int(
                Path(trainer.state.best_model_checkpoint).name.split("-")[-1]
            )
        stats.append(record)
        if members > 1:
            weights = snapshot(model)
            save_member(weights, kept)
            atomic_write_json(record_file, record)  # written last: it marks the member done
            finished.append(weights)
    if trainer is None:  # every member had finished before --resume: rebuild one for predict
        trainer = make_trainer(members - 1)
    return trainer, stats, finished


def _nearest_examples(
    run: RunConfig,
    prepared: PreparedData,
    model: Any,
    train_ds: Any,
    train_y: list[Any],
    pad_id: int,
    held_ds: Any,
    held_y: list[Any] | None,
    strategy: str,
    log: Log,
    train_pooled: Any = None,
) -> tuple[dict[str, Any], Any]:
    """Attach nearest-example scores to the final model when wanted; what was done, and the
    held-out texts as stored examples (``None`` without them) for :func:`_remember_held_out`.
    ``train_pooled``: the training texts' pooled embeddings, when already computed."""
    from tunesmith.engine import nearest as nx
    from tunesmith.engine.modeling import pooling_of

    has_held = held_ds is not None and len(held_ds) > 0
    wanted = nx.resolve_mode(
        run.nearest,
        task=prepared.task,
        pooling=pooling_of(model) if prepared.task != "ner" else None,
        strategy=strategy,
        few_shot=prepared.few_shot,
        held_out=has_held,
        n_train=len(train_ds),
    )
    if not wanted:
        return {"weight": 1.0, "source": "off" if run.nearest == "off" else "not used"}, None
    memory = nx.build(
        model, train_ds.items, list(train_y), pad_id=pad_id, weight=1.0, pooled=train_pooled
    )
    record: dict[str, Any]
    held_examples = None
    if has_held:
        import torch

        from tunesmith.engine.wise import choose_weight

        # The encoder is the same for every share: embed the held-out texts once and score
        # each share on the mixture alone (the held-out score is accuracy for this task).
        pooled = nx.pooled_embeddings(model, held_ds.items, pad_id=pad_id)
        truth = torch.as_tensor(list(held_y or []), dtype=torch.long, device=pooled.device)
        with torch.inference_mode():
            head = model.classifier(pooled)
        best, scores = choose_weight(
            lambda weight: memory.accuracy(head, pooled, truth, weight), nx.WEIGHT_GRID
        )
        record = {
            "source": "held-out score",
            "scores": {f"{w:g}": round(v, 6) for w, v in scores.items()},
        }
        held_examples = nx.build(
            model, held_ds.items, truth.tolist(), pad_id=pad_id, weight=1.0, pooled=pooled
        )
    else:
        best = nx.FEW_SHOT_WEIGHT
        record = {"source": "few-shot default (no held-out data)"}
    memory.weight = best
    nx.attach(model, memory if best < 1 else None)
    if best < 1:
        log(
            f"nearest-example scores mixed in (head share {best:g}, "
            f"{memory.keys.shape[0]:,} training texts)"
        )
    return {"weight": best, "temperature": memory.temperature, **record}, held_examples


def _self_train(
    run: RunConfig,
    prepared: PreparedData,
    model: Any,
    tokenizer: Any,
    train_pooled: Any,
    train_y: list[Any],
    train_ds: Any,
    held_ds: Any,
    held_y: list[Any] | None,
    pad_id: int,
    max_length: int,
    log: Log,
) -> dict[str, Any]:
    """``--unlabelled``: pseudo-label the unlabelled texts and refit the head (and memory)."""
    import torch

    from tunesmith.engine import nearest as nx
    from tunesmith.engine.self_training import self_train
    from tunesmith.engine.trainer_utils import encode_texts

    started = time.perf_counter()
    texts = prepared.unlabelled or []
    unlabelled = nx.pooled_embeddings(
        model, encode_texts(tokenizer, texts, max_length), pad_id=pad_id
    )
    memory = nx.attached(model)
    score = None
    if held_ds is not None and len(held_ds) > 0:
        held_pooled = nx.pooled_embeddings(model, held_ds.items, pad_id=pad_id)
        truth = torch.as_tensor(list(held_y or []), dtype=torch.long)

        def score() -> float:
            with torch.inference_mode():
                logits = model.classifier(held_pooled)
            if memory is not None:
                return memory.accuracy(logits, held_pooled, truth, memory.weight)
            return float((logits.argmax(-1).cpu() == truth).float().mean())

    record = self_train(
        model, memory, train_pooled, list(train_y), unlabelled,
        threshold=run.pseudo_threshold, rounds=run.pseudo_rounds, seed=run.seed, score=score,
        max_memory=max(0, nx.AUTO_MAX_EXAMPLES - len(train_ds)), log=log,
    )  # fmt: skip
    if memory is not None:
        nx.attach(model, memory)  # refreshes the example count in config.json
    seconds = round(time.perf_counter() - started, 1)
    return {"file": Path(run.unlabelled or "").name, **record, "seconds": seconds}


def _remember_held_out(model: Any, record: dict[str, Any], held: Any, log: Log) -> None:
    """Add the held-out split carved from the training file to the stored examples, after
    everything chosen or measured on it (``metrics.json`` describes the model before)."""
    from tunesmith.engine import nearest as nx

    memory = nx.attached(model)
    if memory is None:  # the held-out split chose the head alone
        return
    memory.extend(held)
    nx.attach(model, memory)  # refreshes the example count in config.json
    count = int(held.keys.shape[0])
    record["held_out_added"] = count
    log(f"the {count:,} held-out texts joined the nearest examples")


def _weight_space_ensemble(
    run: RunConfig, trainer: Any, model: Any, start: dict[str, Any], held_set: Any, log: Log
) -> dict[str, Any]:
    """Blend the fine-tuned weights with the start (WiSE-FT), weight chosen on held-out data;
    returns what was done, for ``run_config.json``."""
    from tunesmith.engine.wise import FEW_SHOT_WEIGHT, blend, choose_weight, snapshot

    finetuned = snapshot(model)
    record: dict[str, Any]
    if run.wise_ft is not None:
        weight, record = run.wise_ft, {"source": "--wise-ft"}
    elif held_set is not None and len(held_set) > 0:

        def score(candidate: float) -> float:
            blend(model, start, finetuned, candidate)
            return trainer.predict(held_set).metrics["test_score"]

        weight, scores = choose_weight(score)
        record = {
            "source": "held-out score",
            "scores": {f"{w:g}": round(v, 6) for w, v in scores.items()},
        }
    else:
        weight, record = FEW_SHOT_WEIGHT, {"source": "few-shot default (no held-out data)"}
    blend(model, start, finetuned, weight)
    if weight < 1:
        log(f"weights blended with the starting point (WiSE-FT, weight {weight:g})")
    return {"weight": weight, **record}


def train_y_labels(task: str, dataset: Any, targets: list[Any]) -> list[Any]:
    """Labels as the feature datasets need them: token tags come aligned to sub-tokens."""
    if task == "ner":
        return [item["labels"] for item in dataset.items]
    return targets


# --- measuring and writing -----------------------------------------------------------------------


def _evaluate(
    run: RunConfig, prepared: PreparedData, outcome: TrainOutcome, log: Log
) -> tuple[dict[str, Any], dict[str, Any] | None, Any]:
    """(metrics.json, calibration.json or None, data for the plots)."""
    import numpy as np

    from tunesmith.engine.metrics import classification_report, ner_report

    metrics: dict[str, Any] = {"eval_source": prepared.eval_source}
    if outcome.held_logits is None:
        metrics["report"] = None
        metrics["note"] = "No held-out data (few-shot run without --eval): nothing was measured."
        return metrics, None, None
    logits = np.asarray(outcome.held_logits, dtype=np.float64)
    task, labels = prepared.task, prepared.labels
    if task == "ner":
        true_tags = prepared.held.tags
        pred_tags = []
        for i, firsts in enumerate(outcome.held_firsts or []):
            row = logits[i]
            pred_tags.append([labels[int(row[p].argmax())] if p >= 0 else "O" for p in firsts])
        metrics["report"] = ner_report(true_tags, pred_tags, scheme=prepared.train.scheme)
        truncated = sum(1 for firsts in outcome.held_firsts or [] for p in firsts if p < 0)
        if truncated:
            metrics["truncated_words"] = truncated
        return metrics, None, None
    from tunesmith.engine.calibration import calibration_probs, fit_calibration

    multilabel = task == "multilabel"
    y = np.asarray(targets(task, prepared.held, labels))
    calibration = None
    temperature = None
    if run.calibrate:
        calibration = fit_calibration(logits, y, multilabel=multilabel, source=prepared.eval_source)
        temperature = calibration.get("temperature", calibration.get("temperatures"))
        metrics["calibration"] = {k: v for k, v in calibration.items() if k not in ("fitted_at",)}
        metrics["calibration"]["note"] = (
            "fitted and measured on the same held-out data; `tunesmith evaluate` on another "
            "file gives an unbiased ECE"
        )
    probs_before = calibration_probs(logits, None, multilabel)
    probs = calibration_probs(logits, temperature, multilabel)
    metrics["report"] = classification_report(y, probs, labels, multilabel=multilabel)
    return metrics, calibration, (probs_before, probs, y)


def _write_model_dir(
    run: RunConfig,
    prepared: PreparedData,
    outcome: TrainOutcome,
    metrics: dict[str, Any],
    calibration: dict[str, Any] | None,
    plots: Any,
    log: Log,
) -> Path:
    from tunesmith.engine.model_card import render_model_card
    from tunesmith.engine.modeling import save_classifier
    from tunesmith.io import atomic_directory, atomic_write_json, atomic_write_text

    out = run.out_dir
    run_dict = run.to_dict()
    with atomic_directory(out, force=run.force) as tmp:
        # Merges a LoRA adapter and marks what plain transformers would compute differently.
        save_classifier(outcome.model, tmp)
        outcome.tokenizer.save_pretrained(str(tmp))
        atomic_write_json(tmp / "run_config.json", run_dict)
        atomic_write_json(tmp / "metrics.json", metrics)
        atomic_write_json(tmp / "cleaning_report.json", prepared.cleaning)
        if calibration is not None:
            from tunesmith.engine.calibration import save_calibration

            save_calibration(tmp, calibration)
        _record_int8_ranges(tmp, prepared, log)
        report = metrics.get("report") or {}
        if plots is not None:
            try:
                if report.get("confusion_matrix"):
                    from tunesmith.engine.metrics import save_confusion_matrix_png

                    save_confusion_matrix_png(report, tmp / "confusion_matrix.png")
                if calibration is not None:
                    from tunesmith.engine.calibration import save_reliability_diagram

                    before, after, y = plots
                    save_reliability_diagram(
                        before,
                        y,
                        tmp / "reliability.png",
                        title="Reliability (held-out data)",
                        probs_after=after,
                    )
            except Exception as exc:  # a plot must never cost the user a trained model
                log(f"warning: could not draw the plots ({type(exc).__name__}: {exc})")
        if outcome.tensorboard_dir is not None and outcome.tensorboard_dir.is_dir():
            shutil.copytree(outcome.tensorboard_dir, tmp / "runs")
        atomic_write_text(
            tmp / "README.md", render_model_card(run_dict, metrics, prepared.cleaning)
        )
    return out


def _record_int8_ranges(directory: Path, prepared: PreparedData, log: Log) -> None:
    """Write ``int8_ranges.json`` from the saved model run on training texts (for --quantize)."""
    from tunesmith.engine.quantize import save_int8_ranges

    train_rows = prepared.train
    texts = train_rows.tokens if prepared.task == "ner" else train_rows.texts
    try:
        # From the directory as saved, not the model in memory: load_model merges a LoRA adapter,
        # so the layer names are the ones `load_model(..., quantize="int8")` will look up.
        save_int8_ranges(directory, texts)
    except Exception as exc:  # int8 then quantises per batch; never cost the user a model
        log(f"warning: could not record the int8 ranges ({type(exc).__name__}: {exc})")


def train(run: RunConfig, *, log: Log = stderr_log) -> Path:
    """Train a model as ``run`` says and write its directory; returns the directory's path.

    Raises :class:`~tunesmith.errors.UserInputError` (bad flags, data, model name, an existing
    output, or another run writing the same output) before any heavy work, and
    :class:`TrainingInterrupted` on Ctrl-C.
    """
    import contextlib

    from tunesmith.engine.workdir import clean_after_killed_runs
    from tunesmith.locks import run_lock

    run.validate()
    with contextlib.ExitStack() as held:
        # One run per output (and work folder): a second one is refused, not interleaved.
        held.enter_context(run_lock(run.out_dir))
        if run.work_dir:
            held.enter_context(run_lock(run.work_path, flag="--work-dir"))
        clean_after_killed_runs(run, log)
        return _train_locked(run, log)


def _train_locked(run: RunConfig, log: Log) -> Path:
    """:func:`train` with the output's lock held."""
    from tunesmith.io import check_writable_dir
    from tunesmith.models import allow_network, resolve_model

    run.validate()
    check_writable_dir(run.out_dir, force=run.force)
    check_work_dir(run)
    allow_network(run.allow_network)
    base = resolve_model(run.model)
    prepared = prepare_data(run, model_location=base.location, log=log)
    # A hub model is recorded by its id, not the download folder on this machine.
    base_name = base.location if base.is_local and run.model != "default" else run.model
    resume_from = open_work_dir(run, log)
    outcome = _fit(run, prepared, base.location, base_name, resume_from, log)
    resolved = outcome.resolved
    resolved.update(
        {
            "task": prepared.task,
            "labels": prepared.labels,
            "base_model_name": base.display_name,
            "base_model_location": base.location,
            "n_train": len(prepared.train),
            "n_eval": len(prepared.held) if prepared.held is not None else 0,
            "eval_source": prepared.eval_source,
            "eval_fraction": prepared.eval_fraction,
            "n_augmented": prepared.n_augmented,
            "n_label_examples": prepared.n_label_examples,
            "few_shot": prepared.few_shot,
            "calibration": "temperature" if (run.calibrate and prepared.task != "ner") else None,
            "versions": _versions(),
        }
    )
    if prepared.task == "ner":
        resolved["scheme"] = prepared.train.scheme
    run.resolved = resolved
    metrics, calibration, plots = _evaluate(run, prepared, outcome, log)
    out = _write_model_dir(run, prepared, outcome, metrics, calibration, plots, log)
    shutil.rmtree(run.work_path, ignore_errors=True)
    return out


def _versions() -> dict[str, str]:
    from importlib import metadata

    found = {}
    for name in ("tunesmith", "torch", "transformers", "peft"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def headline(metrics: dict[str, Any]) -> str:
    """One line for the terminal: the metric a user looks at first."""
    report = metrics.get("report") or {}
    if not report:
        return "no held-out data, no metrics"
    if report.get("task") == "ner":
        return f"entity F1 {report.get('f1', math.nan):.4f}"
    parts = [f"accuracy {report.get('accuracy', math.nan):.4f}"]
    if "macro_f1" in report:
        parts.append(f"macro F1 {report['macro_f1']:.4f}")
    if "ece" in report:
        parts.append(f"ECE {report['ece']:.4f}")
    return ", ".join(parts)
