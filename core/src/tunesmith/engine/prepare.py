"""Training data, ready to encode: loaded, validated, reported on, cleaned, split, augmented.

Nothing here imports torch; every data error surfaces before any heavy work starts.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.data.augment import augment_dataset, check_augmenter_names
from tunesmith.data.cleaning import apply_safe_fixes, cleaning_report
from tunesmith.data.label_examples import add_label_examples, label_texts
from tunesmith.data.load import (
    load_text_dataset,
    load_token_dataset,
    read_texts,
    validate_labels_known,
)
from tunesmith.data.readers import read_conll, reader_for
from tunesmith.data.split import stratified_split
from tunesmith.engine.config import UNLABELLED_NEEDS_SINGLE_LABEL, RunConfig
from tunesmith.engine.feature_cache import cache_root
from tunesmith.errors import DataError, UserInputError

#: Below this many examples per label (median) the data counts as few-shot.
FEW_SHOT_PER_LABEL = 20
FEW_SHOT_SENTENCES = 300

Log = Callable[[str], None]


def stderr_log(message: str) -> None:
    """The default progress log: one line on stderr (stdout stays free for ``--json``)."""
    print(message, file=sys.stderr, flush=True)


@dataclass
class PreparedData:
    """Validated, cleaned, split and augmented data, ready to encode."""

    task: str
    labels: list[str]
    train: Any
    held: Any | None
    eval_source: str
    cleaning: dict[str, Any]
    few_shot: bool
    eval_fraction: float
    n_augmented: int = 0
    #: How many label names were added as training examples (``--label-examples``).
    n_label_examples: int = 0
    #: ``--unlabelled`` texts for self-training (``None`` without the flag).
    unlabelled: list[str] | None = None
    notes: list[str] = field(default_factory=list)


def _is_token_task(run: RunConfig) -> bool:
    """``--task ner``, or ``auto`` on a file its reader reads as CoNLL tokens (``.conll``,
    ``.txt``, or a suffix a plugin gives the CoNLL reader)."""
    if run.task == "ner":
        return True
    if run.task != "auto":
        return False
    try:
        return reader_for(run.data) is read_conll
    except DataError:  # no reader for the suffix: loading the file says so
        return False


def _few_shot(task: str, dataset: Any) -> bool:
    if task == "ner":
        return len(dataset) < FEW_SHOT_SENTENCES
    counts = list(dataset.label_counts().values())
    return len(dataset) < 100 or statistics.median(counts) < FEW_SHOT_PER_LABEL


def _check_single_label(dataset: Any, run: RunConfig) -> None:
    for labels, row in zip(dataset.labels, dataset.rows, strict=True):
        if len(labels) > 1:
            raise DataError(
                f"this row has {len(labels)} labels but --task is classification (one label per "
                "row); use --task multilabel with --label-sep",
                path=dataset.source,
                row=row,
                column=run.label_col,
            )


def _check_columns_not_swapped(dataset: Any, run: RunConfig) -> None:
    """Refuse single-label data with more distinct labels than distinct texts: some text then
    carries several labels, which no classifier can learn. Real data never looks so (banking77:
    77 labels for 10,003 texts); ``--text-col`` and ``--label-col`` given the wrong way round
    (300 labels from 3 texts) does, and trained without a word."""
    n_labels, n_texts = len(dataset.label_names), len(set(dataset.texts))
    if n_labels <= n_texts:
        return
    raise DataError(
        f"{n_labels:,} distinct labels but only {n_texts:,} distinct texts (column "
        f"'{run.text_col}'): are --text-col and --label-col the wrong way round? A label is the "
        "class of its row's text",
        path=dataset.source,
        column=run.label_col,
    )


def _load_token_data(run: RunConfig, log: Log) -> tuple[Any, Any, dict[str, Any]]:
    if run.augment:
        raise UserInputError("--augment works on text classification data, not on token files")
    train = load_token_dataset(run.data)
    if not train.entity_types():
        # As a one-class classifier is refused: a tagger that can only say "O" learns nothing.
        raise DataError(
            "only 'O' tags in the data; a tagger needs at least one entity type "
            "(B-TYPE/I-TYPE tags)",
            path=run.data,
            column="tag",
        )
    held = None
    if run.eval_data:
        held = load_token_dataset(run.eval_data, scheme=train.scheme)
        validate_labels_known(held, train.label_names, run.eval_data)
    summary = [
        f"{Path(run.data).name}: {len(train):,} sentences, "
        f"{sum(len(t) for t in train.tokens):,} tokens, scheme {train.scheme}, "
        f"entity types {', '.join(train.entity_types()) or 'none'}",
        *(f"  note: {note}" for note in train.notes),
    ]
    for line in summary:
        log(line)
    cleaning = {
        "task": "ner",
        "source": str(run.data),
        "sentences": len(train),
        "tokens": sum(len(t) for t in train.tokens),
        "scheme": train.scheme,
        "tag_counts": train.label_counts(),
        "notes": list(train.notes),
        "summary_lines": summary,
    }
    if run.clean:
        cleaning["fixes_applied"] = None
        log("  --clean: token files are used as they are (cleaning applies to text data)")
    return train, held, cleaning


def _load_text_data(run: RunConfig, log: Log) -> tuple[Any, Any, dict[str, Any], str]:
    train = load_text_dataset(
        run.data, text_col=run.text_col, label_col=run.label_col, label_sep=run.label_sep
    )
    task = (
        run.task if run.task != "auto" else ("multilabel" if train.multilabel else "classification")
    )
    if task == "classification":
        _check_single_label(train, run)
        _check_columns_not_swapped(train, run)
    held = None
    if run.eval_data:
        held = load_text_dataset(
            run.eval_data, text_col=run.text_col, label_col=run.label_col, label_sep=run.label_sep
        )
        if task == "classification":
            _check_single_label(held, run)
    report = cleaning_report(train, held)
    summary = report.summary_lines()
    for line in summary:
        log(line)
    cleaning = report.to_dict()
    cleaning["summary_lines"] = summary
    if run.clean:
        train, changes = apply_safe_fixes(train)
        cleaning["fixes_applied"] = changes
        log(
            f"  --clean: {changes['texts_normalised']} texts normalised, "
            f"{changes['duplicates_dropped']} repeats and {changes['conflicts_dropped']} "
            f"conflicting rows dropped"
        )
    if run.clean and not len(train):
        # Said as it is: "only one label ('none')" sent users looking for a label column.
        raise DataError(
            f"--clean dropped every row ({cleaning['fixes_applied']['conflicts_dropped']:,} "
            "rows whose text appears with different labels); correct those labels, or train "
            "without --clean",
            path=run.data,
            column=run.label_col,
        )
    if len(train.label_names) < 2:
        only = train.label_names[0] if train.label_names else "none"
        raise DataError(
            f"only one label ('{only}') in the data"
            + (" left after --clean" if run.clean else "")
            + "; a classifier needs at least two",
            path=run.data,
            column=run.label_col,
        )
    if held is not None:
        validate_labels_known(held, train.label_names, run.eval_data, label_col=run.label_col)
    return train, held, cleaning, task


def prepare_data(
    run: RunConfig, *, model_location: str | None = None, log: Log = stderr_log
) -> PreparedData:
    """Load and validate the files, report on them, clean, split and augment (train part only)."""
    if run.augment and not _is_token_task(run):
        check_augmenter_names(run.augment)  # before the cleaning report, not after it
    if _is_token_task(run):
        train, held, cleaning = _load_token_data(run, log)
        task = "ner"
    else:
        train, held, cleaning, task = _load_text_data(run, log)
    unlabelled = _unlabelled_texts(run, task, log)
    few_shot = _few_shot(task, train)
    name = Path(run.data).name
    fraction = 0.0
    if held is not None:
        eval_source = f"{Path(run.eval_data or '').name} ({len(held):,} rows)"
    else:
        fraction = (
            run.eval_fraction if run.eval_fraction is not None else (0.0 if few_shot else 0.1)
        )
        if fraction > 0:
            train, held = stratified_split(train, fraction, run.seed)
            eval_source = (
                f"{fraction:.0%} of {name} held out ({len(held):,} rows, stratified, "
                f"seed {run.seed})"
            )
        else:
            eval_source = "no held-out data"
    prepared = PreparedData(
        task=task,
        labels=list(train.label_names),
        train=train,
        held=held,
        eval_source=eval_source,
        cleaning=cleaning,
        few_shot=few_shot,
        eval_fraction=fraction,
        unlabelled=unlabelled,
    )
    if run.augment:
        before = len(train)
        prepared.train = augment_dataset(
            train,
            run.augment,
            seed=run.seed,
            cache_dir=cache_root(run.cache_dir) / "augment",
            model=model_location,
        )
        prepared.n_augmented = len(prepared.train) - before
        prepared.labels = list(prepared.train.label_names)
        log(
            f"  augmentation: {prepared.n_augmented:,} extra training examples ({', '.join(run.augment)})"
        )
    _add_label_examples(run, prepared, log)
    if task == "ner" and "O" not in prepared.labels:
        prepared.labels = sorted([*prepared.labels, "O"])
    return prepared


def _unlabelled_texts(run: RunConfig, task: str, log: Log) -> list[str] | None:
    """The ``--unlabelled`` file's texts (column ``--text-col``; labels, if any, are ignored)."""
    if run.unlabelled is None:
        return None
    if task != "classification":
        raise UserInputError(UNLABELLED_NEEDS_SINGLE_LABEL)

    texts = read_texts(run.unlabelled, text_col=run.text_col)
    log(f"  unlabelled: {len(texts):,} texts from {Path(run.unlabelled).name} for self-training")
    return texts


def _add_label_examples(run: RunConfig, prepared: PreparedData, log: Log) -> None:
    """``--label-examples``: each label's name joins the training split as one example."""
    wanted = run.label_examples == "on" or (run.label_examples == "auto" and prepared.few_shot)
    if not wanted:
        return
    if prepared.task != "classification":
        if run.label_examples == "on":
            prepared.notes.append("--label-examples applies to single-label data; not used")
        return

    texts = label_texts(list(prepared.train.label_names))
    if texts is None:
        if run.label_examples == "on":
            prepared.notes.append(
                "--label-examples on: the label names do not all read as words; none added"
            )
        return
    prepared.train, added = add_label_examples(prepared.train, texts)
    prepared.n_label_examples = added
    if added:
        log(f"  label names: {added:,} extra training examples (each label's name as its text)")


def targets(task: str, dataset: Any, labels: list[str]) -> list[Any]:
    """Label ids: one per row, a 0/1 row per text (multi-label), or one per word (NER)."""
    index = {label: i for i, label in enumerate(labels)}
    if task == "ner":
        return [[index[t] for t in tags] for tags in dataset.tags]
    if task == "multilabel":
        rows = []
        for row_labels in dataset.labels:
            hot = [0.0] * len(labels)
            for label in row_labels:
                hot[index[label]] = 1.0
            rows.append(hot)
        return rows
    return [index[row_labels[0]] for row_labels in dataset.labels]
