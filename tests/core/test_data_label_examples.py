"""Label names as training examples (``--label-examples``)."""

from __future__ import annotations

from tunesmith.data.label_examples import add_label_examples, label_text, label_texts
from tunesmith.data.records import TextDataset


def test_label_names_become_plain_lower_case_words():
    assert label_text("lost_or_stolen_card") == "lost or stolen card"
    assert label_text("Refund_not_showing_up") == "refund not showing up"
    assert label_text("cardArrival") == "card arrival"
    assert label_text("billing-issue/late") == "billing issue late"
    assert label_text("Bullish") == "bullish"


def test_codes_and_numbers_are_not_read_as_words():
    for code in ("0", "12", "LABEL_3", "label 3", "class_12", "c7", "a", "x1"):
        assert label_text(code) is None, code


def test_one_code_among_the_names_turns_the_whole_set_off():
    assert label_texts(["refund", "card_lost"]) == {"refund": "refund", "card_lost": "card lost"}
    assert label_texts(["refund", "LABEL_1"]) is None


def test_each_label_gains_one_example_unless_its_name_is_already_a_text():
    data = TextDataset(
        texts=["i lost my card", "Refund", "where is my money"],
        labels=[["card_lost"], ["refund"], ["refund"]],
        label_names=["card_lost", "refund"],
    )
    extended, added = add_label_examples(data)
    assert added == 1
    assert extended.texts[-1] == "card lost" and extended.labels[-1] == ["card_lost"]
    assert extended.rows[-1] == 0 and len(extended) == 4


def test_data_with_coded_labels_is_returned_unchanged():
    data = TextDataset(texts=["a b", "c d"], labels=[["0"], ["1"]], label_names=["0", "1"])
    extended, added = add_label_examples(data)
    assert added == 0 and extended is data
