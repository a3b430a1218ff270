"""The cleaning report: what is wrong or worth knowing about a data set before training.

Everything is found with dictionaries keyed by a normalised form of each text, so a report on
50,000 rows takes well under a second; nothing compares texts pairwise.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tunesmith.data.records import TextDataset, sort_labels

#: How many example groups the report lists for each finding (the totals are always complete).
MAX_EXAMPLES = 20
#: How many rows of one group it lists (a templated data set can make one huge near group).
MAX_GROUP_ROWS = 50

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
_SPACES = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]|_")
_DIGIT = re.compile(r"\d+")


def normalise_unicode(text: str) -> str:
    """NFKC: full-width letters, ligatures and compatibility forms become their plain forms."""
    return unicodedata.normalize("NFKC", text)


def normalise_whitespace(text: str) -> str:
    """Zero-width characters removed, runs of whitespace made one space, ends stripped."""
    return _SPACES.sub(" ", text.translate(_ZERO_WIDTH)).strip()


def normalise(text: str) -> str:
    """The safe normal form: unicode, then whitespace. ``apply_safe_fixes`` writes this."""
    return normalise_whitespace(normalise_unicode(text))


def near_key(text: str) -> str:
    """The form two near duplicates share: case folded, punctuation gone, digit runs made 0."""
    key = _PUNCT.sub(" ", normalise(text).casefold())
    return _SPACES.sub(" ", _DIGIT.sub("0", key)).strip()


@dataclass
class CleaningReport:
    """Findings about one training set (and optionally its evaluation set).

    Groups are lists of indices into the data set; ``rows`` in ``to_dict`` are the file's line
    numbers. Findings keep every group; ``to_dict`` lists the first ``MAX_EXAMPLES`` of each.
    """

    n_rows: int
    source: str | None
    label_names: list[str]
    multilabel: bool
    unicode_changed: list[int]
    whitespace_changed: list[int]
    exact_duplicates: list[list[int]]
    near_duplicates: list[list[int]]
    conflicts: list[list[int]]
    class_counts: dict[str, int]
    eval_source: str | None = None
    n_eval_rows: int = 0
    overlap_exact: list[tuple[int, list[int]]] = field(default_factory=list)
    overlap_near: list[tuple[int, list[int]]] = field(default_factory=list)
    _train: TextDataset | None = field(default=None, repr=False)
    _eval: TextDataset | None = field(default=None, repr=False)

    @property
    def similar_labels(self) -> list[list[str]]:
        """Label names that differ only in case or spacing (``Positive`` / ``positive ``):
        trained as different classes, although they are almost always one label written two
        ways."""
        groups: dict[str, list[str]] = {}
        for name in self.label_names:
            groups.setdefault(" ".join(name.split()).casefold(), []).append(name)
        return [sorted(group) for group in groups.values() if len(group) > 1]

    @property
    def duplicate_rows(self) -> int:
        """Rows that repeat an earlier row exactly (same normalised text and labels)."""
        return sum(len(group) - 1 for group in self.exact_duplicates)

    @property
    def imbalance_ratio(self) -> float | None:
        """Largest class count over smallest, or None without labels."""
        if not self.class_counts:
            return None
        counts = list(self.class_counts.values())
        return round(max(counts) / min(counts), 2)

    def smallest_classes(self, k: int = 5) -> list[tuple[str, int]]:
        """The ``k`` labels with fewest examples, fewest first."""
        return sorted(self.class_counts.items(), key=lambda kv: (kv[1], kv[0]))[:k]

    def _group(self, group: Sequence[int], data: TextDataset | None = None) -> dict[str, Any]:
        data = data if data is not None else self._train
        assert data is not None
        shown = group[:MAX_GROUP_ROWS]
        return {
            "size": len(group),
            "rows": [data.rows[i] for i in shown],
            "texts": list(dict.fromkeys(data.texts[i] for i in shown)),
            "labels": [data.labels[i] for i in shown],
        }

    def _overlap(self, pairs: Sequence[tuple[int, list[int]]]) -> list[dict[str, Any]]:
        assert self._train is not None and self._eval is not None
        out = []
        for eval_i, train_group in pairs[:MAX_EXAMPLES]:
            eval_labels = self._eval.labels[eval_i]
            out.append(
                {
                    "eval_row": self._eval.rows[eval_i],
                    "eval_text": self._eval.texts[eval_i],
                    "eval_labels": eval_labels,
                    "train_rows": [self._train.rows[i] for i in train_group[:MAX_GROUP_ROWS]],
                    "labels_agree": all(self._train.labels[i] == eval_labels for i in train_group),
                }
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: totals, and the first few example groups of each finding."""
        smallest = self.smallest_classes()
        result: dict[str, Any] = {
            "source": self.source,
            "rows": self.n_rows,
            "labels": len(self.label_names),
            "multilabel": self.multilabel,
            "normalisation": {
                "unicode_changed": len(self.unicode_changed),
                "whitespace_changed": len(self.whitespace_changed),
                "unicode_rows": [self._train.rows[i] for i in self.unicode_changed][:MAX_EXAMPLES]
                if self._train
                else [],
                "whitespace_rows": [self._train.rows[i] for i in self.whitespace_changed][
                    :MAX_EXAMPLES
                ]
                if self._train
                else [],
            },
            "exact_duplicates": {
                "groups": len(self.exact_duplicates),
                "extra_rows": self.duplicate_rows,
                "examples": [self._group(g) for g in self.exact_duplicates[:MAX_EXAMPLES]],
            },
            "near_duplicates": {
                "groups": len(self.near_duplicates),
                "rows": sum(len(g) for g in self.near_duplicates),
                "examples": [self._group(g) for g in self.near_duplicates[:MAX_EXAMPLES]],
            },
            "conflicts": {
                "groups": len(self.conflicts),
                "rows": sum(len(g) for g in self.conflicts),
                "examples": [self._group(g) for g in self.conflicts[:MAX_EXAMPLES]],
            },
            "similar_labels": self.similar_labels,
            "class_balance": {
                "counts": self.class_counts,
                "imbalance_ratio": self.imbalance_ratio,
                "smallest": [{"label": k, "count": v} for k, v in smallest],
            },
        }
        if self._eval is not None:
            result["eval_overlap"] = {
                "eval_source": self.eval_source,
                "eval_rows": self.n_eval_rows,
                "exact": len(self.overlap_exact),
                "near": len(self.overlap_near),
                "exact_examples": self._overlap(self.overlap_exact),
                "near_examples": self._overlap(self.overlap_near),
            }
        return result

    def summary_lines(self) -> list[str]:
        """A short summary for the terminal (about six lines)."""
        name = Path(self.source).name if self.source else "data"
        lines = [
            f"Cleaning report for {name}: {self.n_rows:,} rows, {len(self.label_names)} labels"
            + (" (multi-label)" if self.multilabel else "")
        ]
        lines.append(
            f"  normalisation: {len(self.unicode_changed)} texts change under unicode NFKC, "
            f"{len(self.whitespace_changed)} have extra or odd whitespace"
        )
        near_rows = sum(len(g) for g in self.near_duplicates)
        lines.append(
            f"  duplicates: {self.duplicate_rows} exact repeats ({len(self.exact_duplicates)} "
            f"groups); {len(self.near_duplicates)} near-duplicate groups ({near_rows} rows)"
        )
        if self.conflicts:
            shown = ", ".join(
                str(self._train.rows[g[0]]) for g in self.conflicts[:5] if self._train is not None
            )
            lines.append(
                f"  conflicts: {len(self.conflicts)} texts appear with different labels "
                f"(rows {shown}{', ...' if len(self.conflicts) > 5 else ''})"
            )
        else:
            lines.append("  conflicts: no text appears with different labels")
        if self._eval is not None:
            eval_name = Path(self.eval_source).name if self.eval_source else "eval"
            lines.append(
                f"  eval overlap: {len(self.overlap_exact)} of {self.n_eval_rows:,} {eval_name} "
                f"texts are in train exactly, {len(self.overlap_near)} nearly"
            )
        if self.class_counts:
            counts = self.class_counts.values()
            smallest = ", ".join(f"{k} ({v})" for k, v in self.smallest_classes(3))
            lines.append(
                f"  balance: {min(counts)}-{max(counts)} per label (ratio {self.imbalance_ratio})"
                f"; smallest: {smallest}"
            )
        for group in self.similar_labels[:3]:
            names = " and ".join(repr(name) for name in group)
            lines.append(f"  labels: {names} differ only in case or spacing; one label?")
        fixable = self.duplicate_rows + sum(len(g) for g in self.conflicts)
        if fixable or self.unicode_changed or self.whitespace_changed:
            lines.append("  `--clean` normalises texts and drops exact repeats and conflicts")
        return lines


def _groups(keys: Sequence[str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[key].append(i)
    return groups


def cleaning_report(train: TextDataset, eval: TextDataset | None = None) -> CleaningReport:
    """Find normalisation changes, exact and near duplicates, label conflicts, train/eval
    overlap and class balance. Linear in the number of rows."""
    unicode_changed: list[int] = []
    whitespace_changed: list[int] = []
    normal: list[str] = []
    for i, text in enumerate(train.texts):
        uni = normalise_unicode(text)
        full = normalise_whitespace(uni)
        if uni != text:
            unicode_changed.append(i)
        if full != uni:
            whitespace_changed.append(i)
        normal.append(full)

    exact_dups: list[list[int]] = []
    conflicts: list[list[int]] = []
    for group in _groups(normal).values():
        if len(group) < 2:
            continue
        by_labels = _groups(["\x1f".join(sorted(train.labels[i])) for i in group])
        if len(by_labels) > 1:
            conflicts.append(group)
        for same in by_labels.values():
            if len(same) > 1:
                exact_dups.append([group[j] for j in same])

    near_keys = [near_key(text) for text in normal]
    near_dups = []
    for group in _groups(near_keys).values():
        # A near group is interesting only when its members are not all one exact text.
        if len(group) > 1 and len({normal[i] for i in group}) > 1:
            near_dups.append(group)

    report = CleaningReport(
        n_rows=len(train),
        source=train.source,
        label_names=list(train.label_names),
        multilabel=train.multilabel,
        unicode_changed=unicode_changed,
        whitespace_changed=whitespace_changed,
        exact_duplicates=exact_dups,
        near_duplicates=near_dups,
        conflicts=conflicts,
        class_counts=train.label_counts(),
        _train=train,
    )
    if eval is not None:
        exact_index = _groups(normal)
        near_index = _groups(near_keys)
        for j, text in enumerate(eval.texts):
            norm = normalise(text)
            if norm in exact_index:
                report.overlap_exact.append((j, exact_index[norm]))
                continue
            key = near_key(norm)
            if key in near_index:
                report.overlap_near.append((j, near_index[key]))
        report.eval_source = eval.source
        report.n_eval_rows = len(eval)
        report._eval = eval
    return report


def apply_safe_fixes(dataset: TextDataset) -> tuple[TextDataset, dict[str, Any]]:
    """Normalise texts, drop exact repeats (the first is kept) and, for single-label data, drop
    every copy of a text that appears with different labels. Returns the fixed data set and
    what changed (counts and the dropped rows' line numbers)."""
    texts: list[str] = []
    keep: list[int] = []
    normalised = 0
    normal = [normalise(text) for text in dataset.texts]
    conflicting: set[str] = set()
    if not dataset.multilabel:
        first_label: dict[str, list[str]] = {}
        for text, labels in zip(normal, dataset.labels, strict=True):
            seen = first_label.setdefault(text, labels)
            if seen != labels:
                conflicting.add(text)
    seen_pairs: set[tuple[str, tuple[str, ...]]] = set()
    dropped_dups: list[int] = []
    dropped_conflicts: list[int] = []
    for i, (text, norm) in enumerate(zip(dataset.texts, normal, strict=True)):
        if norm in conflicting:
            dropped_conflicts.append(dataset.rows[i])
            continue
        pair = (norm, tuple(sorted(dataset.labels[i])))
        if pair in seen_pairs:
            dropped_dups.append(dataset.rows[i])
            continue
        seen_pairs.add(pair)
        keep.append(i)
        texts.append(norm)
        normalised += norm != text
    fixed = dataset.subset(keep)
    fixed = replace(
        fixed, texts=texts, label_names=sort_labels({lab for ls in fixed.labels for lab in ls})
    )
    changes = {
        "rows_before": len(dataset),
        "rows_after": len(fixed),
        "texts_normalised": normalised,
        "duplicates_dropped": len(dropped_dups),
        "conflicts_dropped": len(dropped_conflicts),
        "duplicate_rows": dropped_dups,
        "conflict_rows": dropped_conflicts,
    }
    return fixed, changes
