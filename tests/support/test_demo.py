"""The demo's pieces without a browser: explanations, uploads, escaping."""

from __future__ import annotations

import json

import pytest

from tunesmith.errors import UserInputError
from tunesmith_support import demo


def test_why_this_answer_highlights_words_of_question_and_entry(kb_copy, home):
    state = {
        "turn_id": 1,
        "query": "how much does shipping cost",
        "entry_text": "Shipping is $6.95.",
    }
    query_words, entry_words, note = demo.explain(str(kb_copy), state)
    assert "".join(piece for piece, _ in query_words) == state["query"]
    assert "".join(piece for piece, _ in entry_words) == state["entry_text"]
    assert any(score for _, score in query_words) and "Similarity" in note
    with pytest.raises(UserInputError, match="Ask a question"):
        demo.explain(str(kb_copy), {})


def test_turn_description_escapes_markup(kb_copy, home):
    service = demo.service_for(str(kb_copy))
    turn = service.ask("<script>alert(1)</script> talk to a human")
    decision, source = demo.describe(turn)
    assert "Handed off to a person" in decision and "you asked for a person" in decision
    assert "<script>" not in decision + source


def test_kb_titles_and_ids_are_shown_as_typed_in_the_source_panel():
    from types import SimpleNamespace

    from markdown_it import MarkdownIt

    entry = {"id": "faq<7>", "source": "my_faq_file.csv", "heading": ""}
    candidate = {"id": "faq<7>", "title": "Is 2*3*4 = 24 with __promo__ codes?", "score": 0.9}
    answer = SimpleNamespace(
        decision="answer", confidence=0.9, notes=[], entry=entry, candidates=[candidate]
    )
    _decision, source = demo.describe(SimpleNamespace(answer=answer, handoff_event=None))
    shown = MarkdownIt().render(source)
    # The id showed as "faq&lt;7&gt;" and the title as "Is 2<em>3</em>4 = 24 with <strong>..."
    assert "<code>faq&lt;7&gt;</code>" in shown and "&amp;lt;" not in shown
    assert "Is 2*3*4 = 24 with __promo__ codes?" in shown and "<em>" not in shown
    assert "my_faq_file.csv" in shown


def test_uploaded_kb_is_calibrated_by_an_uploaded_question_file(kb_copy, home, tmp_path):
    faq = tmp_path / "faq.csv"
    rows = [f"f{i},how do I do thing {i},You do thing {i} like this." for i in range(12)]
    faq.write_text("id,question,answer\n" + "\n".join(rows) + "\n", encoding="utf-8")
    labelled = tmp_path / "questions.csv"
    lines = [f"thing {i} how,f{i}" for i in range(12)] + [f"unrelated {i}," for i in range(10)]
    labelled.write_text("question,answer_id\n" + "\n".join(lines) + "\n", encoding="utf-8")
    kb, note = demo.build_uploaded_kb([str(faq), str(labelled)], str(kb_copy))
    assert "calibrated on 22 uploaded questions" in note
    assert json.loads((kb / "kb.json").read_text())["entries"] == 12

    borrowed, note = demo.build_uploaded_kb([str(faq)], str(kb_copy))
    assert "current knowledge base's calibration" in note
    assert (borrowed / "calibration.json").read_bytes() == (
        kb_copy / "calibration.json"
    ).read_bytes()
    assert demo.service_for(str(borrowed)).ask("how do I do thing 3").answer.candidates


def test_a_question_file_saved_by_excel_with_a_byte_order_mark_still_calibrates(
    kb_copy, home, tmp_path
):
    faq = tmp_path / "faq.csv"
    rows = [f"f{i},how do I do thing {i},You do thing {i} like this." for i in range(12)]
    faq.write_text("id,question,answer\n" + "\n".join(rows) + "\n", encoding="utf-8")
    labelled = tmp_path / "questions.csv"  # Excel's "CSV UTF-8" starts with a BOM
    lines = [f"thing {i} how,f{i}" for i in range(12)] + [f"unrelated {i}," for i in range(10)]
    labelled.write_text("question,answer_id\n" + "\n".join(lines) + "\n", encoding="utf-8-sig")
    # It was taken for an FAQ file: "no answer column 'answer' (columns: answer_id, question)".
    _kb, note = demo.build_uploaded_kb([str(faq), str(labelled)], str(kb_copy))
    assert "calibrated on 22 uploaded questions" in note


def test_chat_messages_escape_markup_but_keep_apostrophes():
    from types import SimpleNamespace

    answer = SimpleNamespace(question="<img src=x onerror=alert(1)> Where's it?", text="I'm sorry")
    user, assistant = demo.chat_messages(SimpleNamespace(answer=answer))
    # Shown as text, not run; the copy button gives "Where's", not "Where&#x27;s".
    assert user["content"] == "&lt;img src=x onerror=alert(1)&gt; Where's it?"
    assert assistant == {"role": "assistant", "content": "I'm sorry"}


def test_feedback_table_shows_the_question_as_typed_not_html_escaped(kb_copy, home):
    service = demo.service_for(str(kb_copy))
    question = "Where's my <b>order</b> & my refund?"
    turn = service.ask(question)
    service.feedback(turn.turn_id, helpful=False)
    # The table is a Dataframe: its cells are plain text, so an escape would show as "&#x27;".
    assert demo.feedback_rows(str(kb_copy))[0][1:3] == [question, "not helpful"]


def test_a_failed_upload_names_the_file_and_leaves_no_folder(kb_copy, home, tmp_path):
    bad = tmp_path / "faq.jsonl"
    bad.write_text('{"id": "a"}\nnot json\n', encoding="utf-8")
    with pytest.raises(UserInputError) as caught:
        demo.build_uploaded_kb([str(bad)], str(kb_copy))
    message = str(caught.value)
    assert message.startswith("faq.jsonl:2: ") and str(demo.demo_dir()) not in message
    assert list((demo.demo_dir() / "uploads").iterdir()) == []

    (tmp_path / "notes.exe").write_bytes(b"\x00\x01")
    with pytest.raises(UserInputError, match="^the upload: no knowledge-base files"):
        demo.build_uploaded_kb([str(tmp_path / "notes.exe")], str(kb_copy))


def test_an_upload_without_the_faq_columns_says_what_an_upload_needs(kb_copy, home, tmp_path):
    # the command line's "name it with --question-col": the upload has no such flag
    faq = tmp_path / "faq.csv"
    faq.write_text("q,a\nhow much is shipping,six dollars\n", encoding="utf-8")
    with pytest.raises(UserInputError) as caught:
        demo.build_uploaded_kb([str(faq)], str(kb_copy))
    message = str(caught.value)
    assert "no question column 'question'" in message and "--question-col" not in message
    assert "an uploaded FAQ needs columns named question and answer" in message


def test_loaded_knowledge_bases_are_bounded_however_many_are_uploaded(kb_copy, home, tmp_path):
    import shutil

    kbs = []
    for i in range(demo.MAX_SERVICES + 2):  # as many uploads, each a KB with its own encoder
        kbs.append(str(tmp_path / f"upload{i}"))
        shutil.copytree(kb_copy, kbs[-1])
        demo.service_for(kbs[-1])
    assert list(demo._services) == kbs[-demo.MAX_SERVICES :]
    first = demo.service_for(kbs[0])  # dropped, so loaded again; its conversations kept
    assert first.ask("how much does shipping cost").answer.candidates
    assert len(demo._services) == demo.MAX_SERVICES and kbs[0] in demo._services


def test_two_first_questions_at_once_index_the_sample_kb_once(home, monkeypatch):
    import threading
    import time

    from tunesmith_support import kbindex, learning

    built = []

    def build_index(_src, out, model):
        built.append(model)
        time.sleep(0.3)  # indexing takes a while: the second session arrives meanwhile
        out.mkdir(parents=True)

    monkeypatch.setattr(kbindex, "build_index", build_index)
    monkeypatch.setattr(kbindex, "load_encoder", lambda _kb: None)
    monkeypatch.setattr(kbindex, "open_index", lambda _kb, _encoder: None)
    monkeypatch.setattr(kbindex, "stored_entries", lambda _index: [])
    monkeypatch.setattr(learning, "read_labelled", lambda _paths, _ids: [])
    monkeypatch.setattr(
        learning, "calibrate_kb", lambda kb, _rows: (kb / kbindex.CALIBRATION).write_text("{}")
    )
    results, errors = [], []

    def first_question():
        try:
            results.append(demo.sample_kb())
        except Exception as exc:  # the second rename onto the first folder failed
            errors.append(exc)

    threads = [threading.Thread(target=first_question) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(built) == 1
    assert results == [demo.demo_dir() / "sample-kb"] * 2


def test_why_this_answer_explains_the_similarity_the_kbs_encoder_matched_with(kb_copy, home):
    """A KB built on a classifier's encoder pools its [CLS] token; the explanation mean-pooled
    whatever the encoder, so the similarity and words it showed were not the match's."""
    import dataclasses

    service = demo.service_for(str(kb_copy))
    encoder = service.answerer.encoder
    state = {
        "turn_id": 1,
        "query": "how much does shipping cost",
        "entry_text": "Shipping is $6.95.",
    }
    mean_vectors = encoder.encode([state["query"], state["entry_text"]])
    encoder.layout = dataclasses.replace(encoder.layout, pooling=("cls",))
    vectors = encoder.encode([state["query"], state["entry_text"]])
    matched, mean_pooled = float(vectors[0] @ vectors[1]), float(mean_vectors[0] @ mean_vectors[1])
    assert f"{matched:.2f}" != f"{mean_pooled:.2f}"  # the two poolings tell apart here
    _, _, note = demo.explain(str(kb_copy), state)
    assert f"Similarity {matched:.2f}." in note


def test_why_this_answer_explains_the_faq_question_that_matched_not_the_answer(kb_copy, home):
    """An FAQ entry is found by its question or its answer, whichever is closer; "Why this
    answer" explained the answer alone: similarity 0.67 for a question asked word for word."""
    question = "How much does shipping cost?"  # shp-01's own question
    state = demo.ask_turn(question, [], str(kb_copy), None)[4]
    assert state["entry"]["id"] == "shp-01"
    _, entry_words, note = demo.why_answer(str(kb_copy), state)
    assert "".join(piece for piece, _ in entry_words) == question
    assert "Similarity 1.00." in note and "the entry's question" in note


def test_demo_feedback_is_bound_to_the_turn_s_conversation(kb_copy, home):
    first = demo.ask_turn("How much does shipping cost?", [], str(kb_copy), None)
    other = demo.ask_turn("can I rent a kayak", [], str(kb_copy), None)
    mine = first[4]
    assert mine["conversation_id"] == first[3] != other[3]
    # A turn of another conversation is refused, as by the API with a conversation id.
    stranger = {**mine, "turn_id": other[4]["turn_id"]}
    note, table = demo.rate_turn(str(kb_copy), stranger, True)
    assert "no turn" in note and "in this conversation" in note
    assert demo.service_for(str(kb_copy)).conversations.feedback() == []
    note, table = demo.rate_turn(str(kb_copy), mine, True)
    assert note.startswith("Feedback stored") and len(table) == 1


def test_an_upload_keeps_the_kb_s_languages_or_takes_those_typed(kb_copy, home, tmp_path):
    from tunesmith_support.languages import read_language_config, set_languages

    faq = tmp_path / "faq.csv"
    rows = [f"f{i},¿cómo hago la cosa {i}?,Haga la cosa {i} así." for i in range(12)]
    faq.write_text("id,question,answer\n" + "\n".join(rows) + "\n", encoding="utf-8")
    set_languages(kb_copy, ["es"])
    # An upload was English whatever the KB it was made in: greetings, hand-offs, BM25.
    kept, _note = demo.build_uploaded_kb([str(faq)], str(kb_copy))
    assert read_language_config(kept).languages == ["es"]
    assert demo.service_for(str(kept)).ask("hola").answer.text.startswith("¡Hola!")
    typed, note = demo.build_uploaded_kb([str(faq)], str(kb_copy), languages="de, fr")
    assert read_language_config(typed).languages == ["de", "fr"]
    out = demo.build_from_upload([str(faq)], str(kb_copy), languages="Deutsch")
    assert "Languages: 'Deutsch' is no language code" in out[1]
