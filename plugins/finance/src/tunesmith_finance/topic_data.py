"""A topic model's training data: rows without a topic teach it "none of these".

An analyst's labelled news holds much text about none of the topics they follow. Left out, a
single-label topic model gives every document one of its topics (on the finance tweets, 96 % of
off-topic tweets got a topic at ``--topic-threshold 0.5``, half of them still at 0.9), and no
threshold can fix what the model never saw. Kept with an empty topic, they train the label
:data:`NO_TOPIC`, which :class:`~tunesmith_finance.scoring.TopicModel` never gives as a topic
(as the support plugin's out-of-scope questions train ``__out_of_scope__``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tunesmith.data.load import load_text_dataset
from tunesmith.data.records import TextDataset
from tunesmith.errors import DataError, UserInputError

#: The label rows without a topic train; never stored or shown as a topic.
NO_TOPIC = "__none__"


@dataclass(frozen=True)
class TopicFiles:
    """What the engine trains on: the files (the user's own, or copies with :data:`NO_TOPIC`
    filled in) and the column names in them."""

    data: str
    eval_data: str | None
    text_col: str
    label_col: str
    label_sep: str | None
    multilabel: bool
    rows: int
    without_topic: int


def load_topic_dataset(
    path: str | Path, *, text_col: str, label_col: str, label_sep: str | None
) -> TextDataset:
    """A topic file read with empty topics allowed (they are "none of these"); refused when no
    row has a topic or one names the reserved :data:`NO_TOPIC`."""
    dataset = load_text_dataset(
        path, text_col=text_col, label_col=label_col, label_sep=label_sep, require_labels=False
    )
    if not any(dataset.labels):
        raise DataError(
            "no row has a topic (a misspelt --label-col?); rows without one are the text "
            "about none of the topics",
            path=path,
            column=label_col,
        )
    for row, labels in zip(dataset.rows, dataset.labels, strict=True):
        if any(label.lower() == NO_TOPIC for label in labels):
            raise DataError(
                f"the topic {NO_TOPIC} is reserved for rows without a topic; leave the cell empty",
                path=path,
                row=row,
                column=label_col,
            )
    return dataset


@contextmanager
def topic_training_files(
    data: str | Path,
    eval_data: str | Path | None,
    *,
    text_col: str,
    label_col: str,
    label_sep: str | None,
) -> Iterator[TopicFiles]:
    """The files to train a topic model on, valid inside the ``with`` block.

    Without rows lacking a topic these are the user's own files. Otherwise they are JSON-lines
    copies in a temporary folder (removed afterwards) whose empty topics read :data:`NO_TOPIC`;
    each row stays on its source line, so the engine's messages name the same rows."""
    import tempfile

    train = load_topic_dataset(data, text_col=text_col, label_col=label_col, label_sep=label_sep)
    without = sum(1 for labels in train.labels if not labels)
    if not without:
        yield TopicFiles(
            str(data), _str(eval_data), text_col, label_col, label_sep, train.multilabel,
            len(train.texts), 0,
        )  # fmt: skip
        return
    held = (
        load_topic_dataset(eval_data, text_col=text_col, label_col=label_col, label_sep=label_sep)
        if eval_data is not None
        else None
    )
    if held is not None and train.multilabel != held.multilabel:
        raise UserInputError(
            f"--eval {eval_data}: {_form(held)} topics, while --data {data} has {_form(train)}"
        )
    with tempfile.TemporaryDirectory(prefix="tunesmith-topics-") as folder:
        copy = _write_copy(train, Path(folder) / "train" / f"{Path(data).stem}.jsonl")
        held_copy = (
            _write_copy(held, Path(folder) / "eval" / f"{Path(str(eval_data)).stem}.jsonl")
            if held is not None
            else None
        )
        yield TopicFiles(
            str(copy), _str(held_copy), "text", "label", None, train.multilabel,
            len(train.texts), without,
        )  # fmt: skip


def _write_copy(dataset: TextDataset, path: Path) -> Path:
    """``dataset`` as JSON lines, row ``r`` on line ``r`` (blank lines between), empty topics
    as :data:`NO_TOPIC`: a list for multi-label data, else one label."""
    path.parent.mkdir(parents=True)
    lines: list[str] = []
    for row, text, labels in zip(dataset.rows, dataset.texts, dataset.labels, strict=True):
        topics = labels or [NO_TOPIC]
        record = {"text": text, "label": topics if dataset.multilabel else topics[0]}
        lines.extend([""] * (row - 1 - len(lines)))
        lines.append(json.dumps(record, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _form(dataset: TextDataset) -> str:
    return "several" if dataset.multilabel else "single"


def _str(path: str | Path | None) -> str | None:
    return None if path is None else str(path)
