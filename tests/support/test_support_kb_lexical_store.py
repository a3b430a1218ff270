"""`support index` builds the KB's BM25 index once and saves it with its generation; a load
(serve's start and reloads, `support ask`, `calibrate`) reads it instead of building it (9 s at
100,000 passages), with the same scores, and builds it as before when it cannot use it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tunesmith_support.sample import sample_paths

QUERIES = [
    "how much is shipping?",
    "I forgot my PASSWORD, how do I reset it",
    "the and of",  # stop words only
    "zzyzx qwertz",  # no word of the KB
    "Rückerstattung café",
]


def _rebuilt_scores(answerer):
    from tunesmith_support.scoring import Lexical

    return Lexical(answerer.entries, answerer.languages.languages).scores(QUERIES)


def _meta(kb):
    return json.loads((kb / "kb.json").read_text(encoding="utf-8"))


def test_a_load_reads_the_bm25_index_saved_by_index_and_scores_exactly_as_a_rebuilt_one(
    kb_copy, builds
):
    from tunesmith_support.reload import load_answerer

    folder = kb_copy / _meta(kb_copy)["lexical"]
    assert folder.name.startswith("bm25-g") and (folder / "lexical.json").is_file()
    answerer = load_answerer(kb_copy)
    assert answerer.scorer.lexical is not None and builds == []
    saved = answerer.scorer.lexical.scores(QUERIES)
    rebuilt = _rebuilt_scores(answerer)
    assert saved.dtype == rebuilt.dtype and np.array_equal(saved, rebuilt)
    assert answerer.ask("how much is shipping?").decision in ("answer", "clarify", "handoff")


def test_a_kb_indexed_before_bm25_was_saved_still_loads_and_builds_it_as_before(kb_copy, builds):
    from tunesmith_support.reload import load_answerer

    meta = _meta(kb_copy)
    shutil.rmtree(kb_copy / meta.pop("lexical"))
    (kb_copy / "kb.json").write_text(json.dumps(meta), encoding="utf-8")
    answerer = load_answerer(kb_copy)
    assert builds == [len(answerer.entries)]
    assert np.array_equal(answerer.scorer.lexical.scores(QUERIES), _rebuilt_scores(answerer))


def test_a_saved_bm25_index_that_cannot_be_read_is_built_again_not_an_error(kb_copy, builds):
    from tunesmith_support.reload import load_answerer

    folder = kb_copy / _meta(kb_copy)["lexical"]
    (folder / "data.csc.index.npy").write_bytes(b"cut short")
    answerer = load_answerer(kb_copy)
    assert builds == [len(answerer.entries)]
    assert np.array_equal(answerer.scorer.lexical.scores(QUERIES), _rebuilt_scores(answerer))


def test_a_language_file_edited_since_the_index_gets_its_own_stop_words_not_the_saved_ones(
    kb_copy, builds
):
    from tunesmith_support.languages import set_languages
    from tunesmith_support.reload import load_answerer

    set_languages(kb_copy, ["en", "de"])
    answerer = load_answerer(kb_copy)
    assert builds == [len(answerer.entries)]
    assert answerer.scorer.lexical.scores(["die"])[0].max() == 0  # a German stop word now


def test_a_reindex_that_changes_one_entry_saves_a_new_bm25_index_in_the_order_a_load_reads(
    tiny_model, tmp_path, builds
):
    # A re-index appends the entries it changed to the index: saved in the order the files were
    # read, the rows would score other entries than the load's.
    from tunesmith_support.kbindex import build_index, kb_entries
    from tunesmith_support.learning import calibrate_kb, read_labelled
    from tunesmith_support.reload import load_answerer

    sources = tmp_path / "sources"
    shutil.copytree(sample_paths()["kb"], sources)
    kb = tmp_path / "kb"
    build_index(sources, kb, model=str(tiny_model))
    labelled = read_labelled([sample_paths()["history"]], {e.id for e in kb_entries(kb)})
    calibrate_kb(kb, labelled, target_precision=0.5)
    first = _meta(kb)["lexical"]
    assert builds == [builds[0]]  # built by index; calibrate read it

    faq = sources / "faq.csv"
    text = faq.read_text(encoding="utf-8")
    faq.write_text(text.replace("tracking link.", "tracking link and a parcel number.", 1))
    report = build_index(sources, kb)
    assert report.updated == 1
    second = _meta(kb)["lexical"]
    assert second != first and not (kb / first).exists() and (kb / second).is_dir()

    builds.clear()
    answerer = load_answerer(kb)
    assert builds == []
    assert np.array_equal(answerer.scorer.lexical.scores(QUERIES), _rebuilt_scores(answerer))


def test_a_reindex_that_changes_nothing_keeps_the_saved_bm25_index(kb_copy, builds):
    from tunesmith_support.kbindex import build_index

    before = _meta(kb_copy)["lexical"]
    build_index(sample_paths()["kb"], kb_copy)
    assert _meta(kb_copy)["lexical"] == before and builds == []


def test_a_first_index_killed_after_saving_its_bm25_index_can_be_run_again(
    tiny_model, tmp_path, monkeypatch
):
    from tunesmith_support import kbindex

    out = tmp_path / "kb"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(kbindex, "commit", killed)
        with pytest.raises(KeyboardInterrupt):
            kbindex.build_index(sample_paths()["kb"], out, model=str(tiny_model))
    assert any(p.name.startswith("bm25-g") for p in out.iterdir())
    kbindex.build_index(sample_paths()["kb"], out, model=str(tiny_model))
    assert [p.name for p in out.iterdir() if p.name.startswith("bm25-g")] == [_meta(out)["lexical"]]


def test_a_kb_reencoded_by_train_keeps_reading_the_saved_bm25_index(kb_copy, tiny_model, builds):
    # `train` re-encodes the same entries into a new index folder: the BM25 index still fits.
    from tunesmith_support.kbindex import kb_entries, new_encoder_dir, reencode
    from tunesmith_support.learning import scorer_for
    from tunesmith_support.scoring import Lexical

    before = _meta(kb_copy)["lexical"]
    encoder_dir = new_encoder_dir(kb_copy)
    shutil.copytree(tiny_model, encoder_dir)
    reencode(kb_copy, kb_entries(kb_copy), encoder_dir)
    assert _meta(kb_copy)["lexical"] == before and (kb_copy / before).is_dir()
    scorer = scorer_for(kb_copy)  # what `train` then calibrates with
    assert builds == []
    rebuilt = Lexical(scorer.entries, ["en"]).scores(QUERIES)
    assert np.array_equal(scorer.lexical.scores(QUERIES), rebuilt)
