"""The in-memory shapes of a loaded data set: labelled texts and tagged token sequences."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

_WHOLE_NUMBER = re.compile(r"-?[0-9]+")


def sort_labels(names: Iterable[str]) -> list[str]:
    """Label names in the order a model's outputs take: by number when every name is a whole
    number (``0 .. 11``, as Hugging Face ``ClassLabel`` data has), else by text.

    By text, "10" would come before "2": ``id2label`` would still be right, but a user of the
    ONNX export or of plain transformers who takes the argmax index as the class would read the
    wrong class past 9. Ties by number (``7`` and ``07``) keep a fixed order by text.
    """
    unique = set(names)
    if unique and all(_WHOLE_NUMBER.fullmatch(name) for name in unique):
        return sorted(unique, key=lambda name: (int(name), name))
    return sorted(unique)


@dataclass
class TextDataset:
    """Texts with zero or more labels each.

    ``labels[i]`` is a list for every row: one label for single-label data, any number for
    multi-label data, none for unlabelled data. ``rows[i]`` is the 1-based line number of row ``i``
    in ``source`` (0 for a generated example), used to point users at the right line.
    """

    texts: list[str]
    labels: list[list[str]]
    label_names: list[str]
    multilabel: bool = False
    source: str | None = None
    rows: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.rows:
            self.rows = list(range(1, len(self.texts) + 1))
        if not (len(self.texts) == len(self.labels) == len(self.rows)):
            raise ValueError("texts, labels and rows must have the same length")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def has_labels(self) -> bool:
        """True when every row carries at least one label."""
        return bool(self.texts) and all(self.labels)

    @property
    def first_labels(self) -> list[str]:
        """One label per row (the first), the view single-label code wants."""
        return [labels[0] if labels else "" for labels in self.labels]

    def subset(self, indices: Iterable[int]) -> TextDataset:
        """The rows at ``indices``, in that order; label names are kept as they are."""
        idx = list(indices)
        return replace(
            self,
            texts=[self.texts[i] for i in idx],
            labels=[list(self.labels[i]) for i in idx],
            rows=[self.rows[i] for i in idx],
            label_names=list(self.label_names),
        )

    def label_counts(self) -> dict[str, int]:
        """How many rows carry each label, most frequent first (ties in label order)."""
        counts = Counter(label for labels in self.labels for label in labels)
        rank = {name: i for i, name in enumerate(sort_labels(counts))}
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], rank[kv[0]])))

    def extended(
        self, texts: Sequence[str], labels: Sequence[list[str]], rows: Sequence[int] | None = None
    ) -> TextDataset:
        """A copy with extra examples appended (generated ones get row 0)."""
        new_rows = list(rows) if rows is not None else [0] * len(texts)
        names = sort_labels(set(self.label_names) | {lab for ls in labels for lab in ls})
        return replace(
            self,
            texts=[*self.texts, *texts],
            labels=[*(list(ls) for ls in self.labels), *(list(ls) for ls in labels)],
            rows=[*self.rows, *new_rows],
            label_names=names,
        )


@dataclass
class TokenDataset:
    """Sentences of tokens with one tag each (named-entity recognition).

    ``scheme`` is ``"BIO"`` or ``"IO"``. ``rows[i]`` is the line where sentence ``i`` starts.
    ``notes`` holds things worth telling the user that are not errors (for example BIO entities
    that start with ``I-``).
    """

    tokens: list[list[str]]
    tags: list[list[str]]
    label_names: list[str]
    scheme: str = "BIO"
    source: str | None = None
    rows: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.rows:
            self.rows = list(range(1, len(self.tokens) + 1))
        if not (len(self.tokens) == len(self.tags) == len(self.rows)):
            raise ValueError("tokens, tags and rows must have the same length")

    def __len__(self) -> int:
        return len(self.tokens)

    def subset(self, indices: Iterable[int]) -> TokenDataset:
        """The sentences at ``indices``, in that order."""
        idx = list(indices)
        return replace(
            self,
            tokens=[list(self.tokens[i]) for i in idx],
            tags=[list(self.tags[i]) for i in idx],
            rows=[self.rows[i] for i in idx],
            label_names=list(self.label_names),
            notes=list(self.notes),
        )

    def label_counts(self) -> dict[str, int]:
        """How many tokens carry each tag, most frequent first."""
        counts = Counter(tag for tags in self.tags for tag in tags)
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def entity_types(self) -> list[str]:
        """The entity types (``PER``, ``ORG``...) without their B-/I- prefixes, sorted."""
        return sorted({name.split("-", 1)[1] for name in self.label_names if "-" in name})
