"""Stage 2, encode: the tokenizer and the classifier built from the base model, a max length
chosen from the data, the training and held-out texts tokenised, and the epochs and learning
rate resolved from the data and the model's size."""

from __future__ import annotations

from typing import Any

from tunesmith.engine import feature_cache as fc
from tunesmith.engine.config import RunConfig
from tunesmith.engine.encoding import EncodedDataset, encode_texts, encode_words
from tunesmith.engine.max_length import (
    choose_max_length,
    input_limit,
    model_max_length,
    token_lengths,
)
from tunesmith.engine.modeling import build_classifier, load_base_tokenizer, pooling_of
from tunesmith.engine.prepare import targets
from tunesmith.engine.stages.state import Training
from tunesmith.engine.strategies import check_freeze_layers, parse_strategy
from tunesmith.engine.threads import configure_threads
from tunesmith.errors import UserInputError
from tunesmith.hf_quiet import silence_transformers


def run(state: Training) -> None:
    """Fill the tokenizer, model, strategy, max length, encoded datasets, hyperparameters and
    whether the frozen bottom's output can be cached."""
    import torch

    run, prepared, resolved = state.run, state.prepared, state.resolved
    resolved.threads = configure_threads()
    silence_transformers()
    task, labels = prepared.task, prepared.labels
    state.strategy = parse_strategy(run.strategy)

    tokenizer = load_base_tokenizer(state.base_location)
    if task == "ner" and not getattr(tokenizer, "is_fast", False):
        raise UserInputError(f"--task ner needs a fast tokenizer; {state.base_name} has none")
    torch.manual_seed(run.seed)
    model = build_classifier(
        state.base_location,
        task=task,
        labels=labels,
        pooling=run.pooling,
        base_name=state.base_name,
    )
    check_freeze_layers(model, state.strategy)  # before the linear-probe start, not after it
    if task != "ner":
        resolved.pooling = pooling_of(model)
        if run.pooling == "mean" and resolved.pooling != "mean":
            raise UserInputError(
                f"--pooling mean: {type(model).__name__} has no linear head to feed"
            )

    # Max length from the data: most texts are far shorter than the model's limit.
    limit = model_max_length(tokenizer, model.config)
    sample = prepared.train.texts if task != "ner" else [" ".join(t) for t in prepared.train.tokens]
    max_length = choose_max_length(token_lengths(tokenizer, sample), limit, run.max_length)
    resolved.max_length = max_length
    resolved.max_length_source = (
        "--max-length"
        if run.max_length
        else f"99th percentile of the training texts, limit {limit}"
    )

    # The held-out texts are read as `predict` reads them, not cut at the training length:
    # the metrics, the temperature and every choice made on them describe the saved model.
    resolved.predict_max_length = input_limit(tokenizer, model.config, run.max_length)

    state.train_y = targets(task, prepared.train, labels)
    if prepared.held is not None:
        state.held_y = targets(task, prepared.held, labels)
    state.train_ds, _ = _encode(task, tokenizer, prepared.train, state.train_y, max_length)
    if prepared.held is not None:
        state.held_ds, state.held_firsts = _encode(
            task, tokenizer, prepared.held, state.held_y, resolved.predict_max_length
        )
    hparams = resolve_hyperparameters(
        run, task, len(state.train_ds), prepared.few_shot, int(model.config.hidden_size)
    )
    resolved.epochs, resolved.lr = hparams["epochs"], hparams["lr"]
    resolved.epochs_source, resolved.lr_source = hparams["epochs_source"], hparams["lr_source"]

    state.tokenizer, state.model, state.max_length = tokenizer, model, max_length
    state.model_fingerprint = fc.model_fingerprint(state.base_location)
    state.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    # The frozen bottom (head, freeze:K) is computed once and cached.
    if state.strategy.cacheable and run.feature_cache:
        state.use_cache = fc.cache_supported(model, task)
        if not state.use_cache:
            state.note("frozen-feature cache not available for this architecture")


def _encode(task: str, tokenizer: Any, dataset: Any, targets: list[Any], max_length: int) -> tuple:
    """(the encoded dataset, each word's first sub-token for NER or ``None``)."""
    if task == "ner":
        items, firsts = encode_words(tokenizer, dataset.tokens, targets, max_length)
        return EncodedDataset(items), firsts
    return EncodedDataset(encode_texts(tokenizer, dataset.texts, max_length), targets), None


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
