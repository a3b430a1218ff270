"""The cleaning report finds what it should, fast, and the safe fixes do only safe things."""

from __future__ import annotations

import json
import time

from tunesmith.data.cleaning import apply_safe_fixes, cleaning_report, near_key, normalise
from tunesmith.data.records import TextDataset


def dataset(pairs, source="train.csv", multilabel=False) -> TextDataset:
    texts = [t for t, _ in pairs]
    labels = [ls if isinstance(ls, list) else [ls] for _, ls in pairs]
    names = sorted({lab for ls in labels for lab in ls})
    rows = list(range(2, len(texts) + 2))
    return TextDataset(texts, labels, names, multilabel=multilabel, source=source, rows=rows)


TRAIN = dataset(
    [
        ("I lost my card", "card_lost"),  # row 2
        ("I lost  my card ", "card_lost"),  # row 3: exact after whitespace fix
        ("Refund please", "refund"),  # row 4
        ("refund please", "cancel"),  # row 5: near duplicate of 4, other label
        ("Where is my order?", "delivery"),  # row 6
        ("Where is my order?", "refund"),  # row 7: conflict with 6
        ("Ｈｅｌｌｏ", "greeting"),  # row 8: full-width letters
        ("Order 123 is late", "delivery"),  # row 9
        ("order 456 is late!", "delivery"),  # row 10: near duplicate of 9 (digits)
    ]
)
EVAL = dataset(
    [("I lost my card", "card_lost"), ("ORDER 9 is LATE", "delivery"), ("new text", "refund")],
    source="eval.csv",
)


def test_normal_forms_fold_unicode_whitespace_case_punctuation_and_digits():
    assert normalise("Ｈｅｌｌｏ\u200b  world ") == "Hello world"
    assert near_key("Order #123, is LATE!") == near_key("order 456 is late")


def test_report_counts_unicode_and_whitespace_changes():
    report = cleaning_report(TRAIN)
    assert [TRAIN.rows[i] for i in report.unicode_changed] == [8]
    assert [TRAIN.rows[i] for i in report.whitespace_changed] == [3]


def test_report_finds_exact_duplicates_after_normalising():
    groups = cleaning_report(TRAIN).to_dict()["exact_duplicates"]
    assert groups["groups"] == 1 and groups["extra_rows"] == 1
    assert groups["examples"][0]["rows"] == [2, 3]


def test_report_finds_conflicting_labels_for_the_same_text():
    conflicts = cleaning_report(TRAIN).to_dict()["conflicts"]
    assert conflicts["groups"] == 1
    assert conflicts["examples"][0]["rows"] == [6, 7]
    assert conflicts["examples"][0]["labels"] == [["delivery"], ["refund"]]


def test_report_names_labels_that_differ_only_in_case_or_spacing():
    # "Positive" and "positive" trained as two classes without a word
    data = dataset([("great", "Positive"), ("good", "positive "), ("bad", "negative")])
    report = cleaning_report(data)
    assert report.to_dict()["similar_labels"] == [["Positive", "positive "]]
    assert any("differ only in case or spacing" in line for line in report.summary_lines())
    assert cleaning_report(TRAIN).to_dict()["similar_labels"] == []


def test_report_finds_near_duplicate_groups_but_not_exact_ones_again():
    near = cleaning_report(TRAIN).to_dict()["near_duplicates"]
    assert sorted(g["rows"] for g in near["examples"]) == [[4, 5], [9, 10]]


def test_report_finds_exact_and_near_train_eval_overlap():
    overlap = cleaning_report(TRAIN, EVAL).to_dict()["eval_overlap"]
    assert overlap["exact"] == 1 and overlap["near"] == 1
    assert overlap["exact_examples"][0]["eval_row"] == 2
    assert overlap["exact_examples"][0]["train_rows"] == [2, 3]
    assert overlap["exact_examples"][0]["labels_agree"] is True
    assert overlap["near_examples"][0]["train_rows"] == [9, 10]


def test_report_class_balance_and_json_ready_dict():
    report = cleaning_report(TRAIN, EVAL)
    balance = report.to_dict()["class_balance"]
    assert balance["counts"]["delivery"] == 3
    assert balance["imbalance_ratio"] == 3.0
    assert balance["smallest"][0] == {"label": "cancel", "count": 1}
    json.dumps(report.to_dict())


def test_summary_is_a_few_lines_naming_the_findings():
    lines = cleaning_report(TRAIN, EVAL).summary_lines()
    assert 5 <= len(lines) <= 8
    text = "\n".join(lines)
    assert "1 exact repeats" in text
    assert "conflicts: 1 texts appear with different labels (rows 6)" in text
    assert "1 of 3 eval.csv texts are in train exactly, 1 nearly" in text


def test_safe_fixes_normalise_drop_repeats_and_conflicts_and_say_what_changed():
    fixed, changes = apply_safe_fixes(TRAIN)
    assert "Where is my order?" not in fixed.texts
    assert fixed.texts.count("I lost my card") == 1
    assert "Hello" in fixed.texts
    assert fixed.rows == [2, 4, 5, 8, 9, 10]
    assert changes["duplicate_rows"] == [3]
    assert changes["conflict_rows"] == [6, 7]
    assert changes["texts_normalised"] == 1
    assert changes["rows_after"] == 6
    assert len(TRAIN) == 9  # the input is left as it was


def test_safe_fixes_keep_multilabel_rows_whose_label_sets_differ():
    data = dataset([("a b", ["x"]), ("a b", ["x", "y"]), ("a b", ["y", "x"])], multilabel=True)
    fixed, changes = apply_safe_fixes(data)
    assert fixed.labels == [["x"], ["x", "y"]]
    assert changes["conflicts_dropped"] == 0 and changes["duplicates_dropped"] == 1


def test_report_on_fifty_thousand_rows_is_fast():
    texts = [f"message number {i % 40000} about this" for i in range(50000)]
    labels = [[f"label{i % 40000 % 77}"] for i in range(50000)]
    data = TextDataset(texts, labels, sorted({ls[0] for ls in labels}))
    start = time.perf_counter()
    report = cleaning_report(data, data.subset(range(1000)))
    elapsed = time.perf_counter() - start
    assert report.duplicate_rows == 10000
    assert len(report.overlap_exact) == 1000
    assert elapsed < 10, f"took {elapsed:.1f}s"
