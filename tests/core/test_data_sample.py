"""The core's sample data sets exist, load cleanly and are offered through the hook."""

from __future__ import annotations

from tunesmith.data.cleaning import cleaning_report
from tunesmith.data.load import load_text_dataset, load_token_dataset, validate_labels_known
from tunesmith.data.sample import builtin_sample_data
from tunesmith.data.split import stratified_split
from tunesmith.plugins import get_plugin_manager

INTENTS = {
    "card_lost",
    "refund_request",
    "delivery_late",
    "password_reset",
    "cancel_subscription",
    "greeting",
}


def by_name():
    return {s.name: s for s in builtin_sample_data()}


def test_sample_paths_are_absolute_existing_files():
    for sample in builtin_sample_data():
        for path in sample.paths.values():
            assert path.is_absolute() and path.is_file(), path


def test_support_intents_load_balanced_with_a_separate_eval_set_of_known_labels():
    sample = by_name()["support_intents"]
    train = load_text_dataset(sample.paths["train"], text_col=sample.text_col)
    evaluation = load_text_dataset(sample.paths["eval"])
    assert set(train.label_names) == INTENTS
    assert all(20 <= n <= 30 for n in train.label_counts().values())
    assert all(n >= 8 for n in evaluation.label_counts().values())
    validate_labels_known(evaluation, train.label_names, sample.paths["eval"])
    stratified_split(train, 0.2, seed=0)


def test_support_intents_have_no_duplicates_conflicts_or_eval_overlap():
    sample = by_name()["support_intents"]
    report = cleaning_report(
        load_text_dataset(sample.paths["train"]), load_text_dataset(sample.paths["eval"])
    )
    assert report.exact_duplicates == [] and report.conflicts == []
    assert report.overlap_exact == [] and report.overlap_near == []


def test_sample_entities_are_bio_tagged_person_organisation_location_sentences():
    sample = by_name()["sample_entities"]
    assert sample.task == "ner"
    data = load_token_dataset(sample.paths["train"])
    assert data.scheme == "BIO" and data.notes == []
    assert data.entity_types() == ["LOC", "ORG", "PER"]
    assert len(data) >= 40


def test_sample_data_is_offered_through_the_hook():
    names = {s.name for group in get_plugin_manager().hook.tunesmith_sample_data() for s in group}
    assert {"support_intents", "sample_entities"} <= names
