"""A support bot for customers who write Spanish, German or French (or several): requests for a
person, small talk and the bot's own texts in their language, lexical matching that ignores
case, accents and Unicode forms, heading ids in every script, and ``KB/language.json``."""

from __future__ import annotations

import json
import re
import unicodedata

import pytest

from tunesmith.errors import UserInputError
from tunesmith_support.answer import (
    MAX_QUESTION_CHARS,
    Answerer,
    asks_for_person,
    clean_question,
    named_options,
    small_talk,
)
from tunesmith_support.documents import slugify, split_markdown
from tunesmith_support.kb import Entry
from tunesmith_support.languages import (
    LANGUAGE_FILE,
    LanguageConfig,
    english_model_note,
    fold,
    read_language_config,
    set_languages,
)
from tunesmith_support.scoring import Lexical


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


@pytest.mark.parametrize(
    "message",
    [
        "quiero hablar con una persona",
        "¿Puedo hablar con un agente, por favor?",
        "Un humano, por favor",
        "Ich möchte mit einem Menschen sprechen",
        "Bitte verbinden Sie mich mit einem Mitarbeiter",
        "ECHTER MENSCH BITTE",
        "je veux parler à un conseiller",
        "Passez-moi un conseiller svp",
        nfd("Ich möchte mit einem Menschen sprechen"),
    ],
)
def test_a_request_for_a_person_in_spanish_german_or_french_is_recognised(message):
    assert asks_for_person(message)


@pytest.mark.parametrize(
    "question",
    [
        "¿Cuándo abre el servicio de atención al cliente?",
        "Wann ist der Kundendienst erreichbar?",
        "Brauche ich einen Menschen, der das Paket unterschreibt?",
        "Comment contacter le service client ?",
    ],
)
def test_a_question_about_the_team_is_no_request_for_a_person(question):
    assert not asks_for_person(question)


def test_a_spanish_request_for_a_person_is_handed_off_in_spanish(kb_copy):
    # Before, it was searched as a question: the Spanish KB answered it with its returns entry.
    answer = Answerer(kb_copy).ask("quiero hablar con una persona")
    assert (answer.decision, answer.reason) == ("handoff", "asked_for_person")
    assert answer.text.startswith("Le paso con una persona de nuestro equipo")


@pytest.mark.parametrize(
    ("message", "kind", "start"),
    [
        ("hola", "greeting", "¡Hola!"),
        ("vielen Dank!", "thanks", "Gern geschehen!"),
        ("merci beaucoup", "thanks", "Je vous en prie"),
        (nfd("tschüß"), "bye", "Danke für Ihre Nachricht"),
        ("adiós", "bye", "Gracias por contactarnos"),
    ],
)
def test_small_talk_in_other_languages_is_answered_in_that_language(kb_copy, message, kind, start):
    # Before, "hola" or "Danke!" was searched, and handed off to a person as out of scope.
    assert small_talk(message) == kind
    answer = Answerer(kb_copy).ask(message)
    assert (answer.decision, answer.reason) == ("clarify", "small_talk")
    assert answer.text.startswith(start)


def test_an_unsure_hand_off_and_a_clarifying_question_follow_the_question_s_language(kb_copy):
    answerer = Answerer(kb_copy)
    german = answerer.decide("Wie ist das Wetter morgen?", "q", [], [])
    assert german.reason == "out_of_scope"
    assert german.text.startswith("Ich bin nicht sicher")
    # Nothing to tell the language by: the KB's first language (English by default).
    assert answerer.decide("42", "q", [], []).text.startswith("I'm not sure")
    set_languages(kb_copy, ["fr"])
    french = Answerer(kb_copy).decide("42", "q", [], [])
    assert french.text.startswith("Je ne suis pas sûr")


def test_a_kb_sets_its_own_wording_phrases_and_languages(kb_copy):
    (kb_copy / LANGUAGE_FILE).write_text(
        json.dumps(
            {
                "languages": ["de", "it"],
                "texts": {
                    "de": {"greeting": "Grüezi! Wie können wir helfen?"},
                    "it": {"handoff_person": "La passo a un collega."},
                },
                "person_phrases": {"it": ["parlare con un operatore"]},
                "small_talk": {"it": {"greeting": ["ciao", "buongiorno"]}},
            }
        ),
        encoding="utf-8",
    )
    answerer = Answerer(kb_copy)
    assert answerer.ask("Hallo").text == "Grüezi! Wie können wir helfen?"
    person = answerer.ask("Vorrei PARLARE con un operatore")
    assert (person.reason, person.text) == ("asked_for_person", "La passo a un collega.")
    # A text a language lacks comes in the KB's first language, in the KB's own wording.
    assert answerer.ask("buongiorno").text == "Grüezi! Wie können wir helfen?"


class _CountingUnicodedata:
    """``unicodedata`` whose per-character lookup is counted."""

    def __init__(self) -> None:
        self.combining_calls = 0

    def __getattr__(self, name: str):
        return getattr(unicodedata, name)

    def combining(self, ch: str) -> int:
        self.combining_calls += 1
        return unicodedata.combining(ch)


def test_a_kb_load_folds_its_entries_without_a_lookup_per_character(monkeypatch):
    # A 100,000-passage KB spent a minute of each start and reload in `fold` and the unspaced
    # script check, one Python call per character of every entry.
    import tunesmith_support.languages as languages
    from tunesmith_support.scoring import Lexical

    fold("é")  # what is built once per process, not per text, is built before counting
    counting = _CountingUnicodedata()
    monkeypatch.setattr(languages, "unicodedata", counting)
    entries = [
        Entry(id=f"p{i}", answer=f"Open the settings and reset passcode number {i}.")
        for i in range(200)
    ]
    entries += [Entry(id="de", answer=nfd("Die Rücksendung ist kostenlos, größere Pakete auch."))]
    lexical = Lexical(entries, ["en", "de"])
    assert counting.combining_calls == 0
    scores = lexical.scores(["RUCKSENDUNG GROSSERE"])
    assert int(scores[0].argmax()) == len(entries) - 1


@pytest.mark.parametrize(
    "text",
    [
        "Reset your PASSWORD, then sign in (step 2).",
        nfd("Größe der Rücksendung: envío exprés"),
        "ﬁn de l’adresse œuvre ı Ｆｕｌｌ ｗｉｄｔｈ",
        "送料はいくらですか and the shipping cost",
        "ค่าจัดส่งเท่าไร",
        "a b c de",
    ],
)
def test_lexical_tokens_are_the_same_on_the_fast_paths(text):
    from tunesmith_support.languages import lexical_tokens

    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = folded.translate(str.maketrans({"œ": "oe", "ı": "i", "’": "'"}))
    folded = unicodedata.normalize(
        "NFC",
        "".join(c for c in unicodedata.normalize("NFD", folded) if not unicodedata.combining(c)),
    )
    assert fold(text) == folded
    expected = []  # the reference: every run, unspaced scripts as character pairs
    for run in re.findall(r"\w+", folded):
        if any(0x0E00 <= ord(c) <= 0x0EFF or 0x3040 <= ord(c) <= 0x9FFF for c in run):
            expected += [run[i : i + 2] for i in range(max(1, len(run) - 1))]
        elif len(run) > 1:
            expected.append(run)
    assert lexical_tokens(text) == expected


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ({"languages": "de"}, "languages"),
        ({"languages": ["Deutsch"]}, "languages"),
        ({"texts": {"de": {"hello": "Hallo"}}}, "texts.de.hello"),
        ({"person_phrases": {"de": "Mensch"}}, "person_phrases.de"),
        ({"small_talk": {"de": {"hi": ["moin"]}}}, "small_talk.de.hi"),
        ({"phrases": {}}, "phrases"),
    ],
)
def test_a_bad_language_file_is_one_line_naming_the_key(tmp_path, content, where):
    (tmp_path / LANGUAGE_FILE).write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(UserInputError) as caught:
        read_language_config(tmp_path)
    message = str(caught.value)
    assert "\n" not in message and LANGUAGE_FILE in message and f": {where}:" in message


def test_index_records_the_languages_given_and_keeps_them(kb_copy, cli, tmp_path):
    from tunesmith_support.sample import sample_paths

    args = ("support", "index", "--kb", str(sample_paths()["kb"]), "--out", str(kb_copy))
    result = cli(*args, "--language", "de", "--language", "fr-CH")
    assert result.exit_code == 0, result.output
    assert read_language_config(kb_copy).languages == ["de", "fr-CH"]
    assert cli(*args).exit_code == 0
    assert read_language_config(kb_copy).languages == ["de", "fr-CH"]
    bad = cli(*args, "--language", "Deutsch")
    assert bad.exit_code != 0 and "'Deutsch' is no language code" in bad.output


def test_a_kb_in_another_language_on_the_english_default_model_is_told(kb_copy):
    assert english_model_note(kb_copy) is None  # the tiny test model, English alone
    set_languages(kb_copy, ["de"])
    assert english_model_note(kb_copy) is None  # not the default model
    meta = json.loads((kb_copy / "kb.json").read_text(encoding="utf-8"))
    (kb_copy / "kb.json").write_text(json.dumps({**meta, "model": "default"}), encoding="utf-8")
    note = english_model_note(kb_copy)
    assert note and "de" in note and "multilingual" in note


def _entries() -> list[Entry]:
    rows = [
        ("de-strasse", "Kann ich die Straße ändern?", "Ja, unter Meine Bestellungen."),
        ("de-offen", "Öffnungszeiten", "Montags bis freitags von 8 bis 18 Uhr."),
        ("fr-coeur", "Carte cadeau « Cœur »", "Elle s'utilise à l'étape « Paiement »."),
        ("es-envio", "¿Cuánto cuesta el envío?", "El envío cuesta 4,95 €."),
        (
            "jp-ship",
            "配送について",
            "ご注文から3〜5営業日でお届けします。送料は全国一律500円です。",
        ),
    ]
    return [Entry(id=i, question=q, answer=a) for i, q, a in rows]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("STRASSE", "de-strasse"),
        (nfd("Öffnungszeiten"), "de-offen"),
        ("coeur", "fr-coeur"),
        ("cuanto cuesta el envio", "es-envio"),
        ("送料はいくらですか", "jp-ship"),
    ],
)
def test_lexical_scores_ignore_case_accents_unicode_forms_and_read_unspaced_scripts(
    query, expected
):
    entries = _entries()
    row = Lexical(entries).scores([query])[0]
    assert row.max() > 0 and entries[int(row.argmax())].id == expected


def test_lexical_stop_words_are_those_of_the_kb_languages():
    entries = _entries()
    # "die" is a German stop word, not an English one.
    assert Lexical(entries, ["en"]).scores(["die"])[0].max() > 0
    assert Lexical(entries, ["de"]).scores(["die"])[0].max() == 0


def test_heading_ids_keep_letters_of_every_script():
    assert slugify("Größe") != slugify("Grüße")
    assert slugify(nfd("Größe")) == slugify("Größe") == "größe"
    assert slugify("Lost or damaged_parcels!") == "lost-or-damaged-parcels"
    text = "# 配送について\n\n三日で届きます。\n\n# 返品について\n\n三十日以内です。\n"
    ids = [p.id for p in split_markdown(text, "jp.md", "jp")]
    # Before: jp#section and jp#section-2, ids by position.
    assert ids == ["jp#配送について", "jp#返品について"]


def test_a_question_typed_in_nfd_is_read_as_nfc():
    text, _notes = clean_question(nfd("¿Cuánto cuesta el envío?"))
    assert text == "¿Cuánto cuesta el envío?"


@pytest.mark.parametrize(
    ("tail", "before_limit"),
    [
        ("👨\u200d👩\u200d👧 end", 2),  # a family emoji: five code points, two before the cut
        ("q\u0303 end", 1),  # q with a tilde has no composed form: the tilde falls after the cut
    ],
)
def test_a_long_question_is_not_cut_inside_a_character(tail, before_limit):
    head = "a" * (MAX_QUESTION_CHARS - before_limit)
    text, notes = clean_question(head + tail)
    assert notes and text == head


def test_a_clarify_reply_names_its_option_in_another_case_or_form():
    titles = ["Welche Größe soll ich bestellen?", "Wie funktioniert die Rücksendung?"]
    assert named_options("WELCHE GRÖSSE SOLL ICH BESTELLEN", titles) == [0]
    assert named_options(nfd("wie funktioniert die rücksendung"), titles) == [1]


def test_fold_is_for_matching_only():
    assert fold("Straße") == fold("STRASSE") == "strasse"
    assert (
        fold(nfd("envío")) == "envio" and fold("ﬁn") == "fin" and fold("l’adresse") == "l'adresse"
    )
    assert LanguageConfig().guess_language("Wie hoch sind die Versandkosten?") == "de"
    assert LanguageConfig().guess_language("¿Cuánto cuesta?") == "es"
    assert LanguageConfig(["de"]).guess_language("ok") == "de"


@pytest.mark.parametrize(
    ("content", "where"),
    [
        # "?" as a person phrase handed off every question ending with a question mark.
        ({"person_phrases": {"en": ["talk to staff", "?"]}}, "person_phrases.en[1]"),
        ({"small_talk": {"en": {"ack": [":)"]}}}, "small_talk.en.ack[0]"),
        ({"choice_words": {"it": ["'"]}}, "choice_words.it[0]"),
        ({"follow_up_words": {"it": ["..."]}}, "follow_up_words.it[0]"),
    ],
)
def test_a_phrase_without_a_letter_or_digit_is_one_line_naming_the_file_and_key(
    tmp_path, content, where
):
    (tmp_path / LANGUAGE_FILE).write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(UserInputError) as caught:
        read_language_config(tmp_path)
    message = str(caught.value)
    assert "\n" not in message and LANGUAGE_FILE in message and f": {where}:" in message
    assert "no letter or digit" in message


def test_kb_phrases_that_read_a_message_in_many_ways_cannot_hang_small_talk_or_a_pick():
    import time
    from pathlib import Path

    from tunesmith_support.languages import parse_language_config

    # The same words in several kinds (and the built-in "ok"), and a pick word that another
    # repeats: before, each gave the whole-message patterns one more way to split a message,
    # and these two took minutes (4^12 and 1.6^40 ways to try before failing at the "x").
    config = parse_language_config(
        {
            "small_talk": {"en": {"ack": ["ok", "OK!"], "thanks": ["ok"], "bye": ["ok."]}},
            "ordinals": {"it": {"secondo": 2}},
            "choice_words": {"it": ["la", "lala", "l'"]},
        },
        Path(LANGUAGE_FILE),
    )
    started = time.perf_counter()
    assert config.small_talk("ok " * 12 + "x") is None
    assert config.choice("la" * 40 + "x") is None
    assert time.perf_counter() - started < 1.0
    # Still read as before.
    assert config.small_talk("ok ok, OK!") == ("bye", "en")  # "ok." is a goodbye here
    assert config.choice("l'secondo") == config.choice("la 2") == 2
    assert config.choice("l'l'l'" * 100) is None
