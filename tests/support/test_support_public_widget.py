"""The support bot behind a chat widget on a public web page: strangers rate only their own
turns, replies and follow-ups in Spanish, German and French, and what a visitor who tries to
break it can type. A stub scorer stands in for the encoder where the answer's content does not
matter, so most of these run without a model."""

from __future__ import annotations

import json
import time

import pytest
from support_stubs import ScriptedScorer, scripted_answerer

from tunesmith.errors import UserInputError
from tunesmith_support.answer import (
    DEFAULT_LANGUAGES,
    chosen_option,
    clean_question,
    conversation_topic,
    is_follow_up,
)
from tunesmith_support.conversations import MAX_FEEDBACK_PER_TURN
from tunesmith_support.kb import Entry
from tunesmith_support.languages import LAST, parse_language_config
from tunesmith_support.scoring import Candidate
from tunesmith_support.service import SupportService

ENTRIES = [
    Entry(id="shp-1", question="How much does shipping cost?", answer="Shipping is $5."),
    Entry(id="shp-2", question="How long does shipping take?", answer="Three to five days."),
    Entry(id="ret-1", question="How do I return an item?", answer="Start a return online."),
]


class _Scorer(ScriptedScorer):
    """ "shipping" (or "envío", "Versand", "livraison"): the three entries close, so a
    clarifying question; anything else: nothing close."""

    def __init__(self) -> None:
        super().__init__(ENTRIES)

    def candidates(self, queries, k=5):
        words = ("shipping", "envío", "versand", "livraison")
        out = []
        for q in queries:
            close = any(w in q.lower() for w in words)
            scores = [0.56, 0.555, 0.55] if close else [0.2, 0.1, 0.05]
            out.append([Candidate(e, s, s, s, s) for e, s in zip(ENTRIES, scores, strict=True)])
        return out


@pytest.fixture
def service(tmp_path):
    svc = SupportService(tmp_path / "kb", answerer=scripted_answerer(_Scorer()))
    yield svc
    svc.close()


# 1. Feedback names its conversation ------------------------------------------------------


@pytest.fixture
def widget_client(kb_copy):
    """The HTTP API as a public widget's pages call it (one CORS origin), in-process."""
    from fastapi.testclient import TestClient

    from tunesmith_support.api import create_app

    service = SupportService(kb_copy)
    app = create_app(service, cors_origins=["https://shop.example"])
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
    service.close()


def test_a_widget_server_takes_feedback_only_on_a_turn_of_the_conversation_sent(widget_client):
    mine = widget_client.post("/v1/ask", json={"question": "how much is delivery?"}).json()
    theirs = widget_client.post("/v1/ask", json={"question": "can I rent a kayak"}).json()
    # The next turn id is easy to guess: without the conversation, a stranger rated it.
    guessed = {"turn_id": theirs["turn_id"], "helpful": False, "correct_id": "ord-01"}
    missing = widget_client.post("/v1/feedback", json=guessed)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["loc"] == ["body", "conversation_id"]
    foreign = widget_client.post(
        "/v1/feedback", json={**guessed, "conversation_id": mine["conversation_id"]}
    )
    assert foreign.status_code == 400
    # The same line as for a turn that does not exist: no telling which turns are others'.
    assert foreign.json()["detail"] == f"no turn {theirs['turn_id']} in this conversation"
    own = {"turn_id": mine["turn_id"], "conversation_id": mine["conversation_id"]}
    assert widget_client.post("/v1/feedback", json={**own, "helpful": True}).status_code == 200
    schema = widget_client.get("/openapi.json").json()
    body = schema["paths"]["/v1/feedback"]["post"]["requestBody"]["content"]
    name = body["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "conversation_id" in schema["components"]["schemas"][name]["required"]


def test_a_server_without_origins_still_takes_feedback_without_a_conversation(client):
    first = client.post("/v1/ask", json={"question": "how much is delivery?"}).json()
    other = client.post("/v1/ask", json={"question": "can I rent a kayak"}).json()
    # An integrator's back end from before the field: unchanged.
    plain = client.post("/v1/feedback", json={"turn_id": first["turn_id"], "helpful": True})
    assert plain.status_code == 200
    # Sent, it is checked.
    checked = {"turn_id": first["turn_id"], "helpful": False}
    wrong = client.post(
        "/v1/feedback", json={**checked, "conversation_id": other["conversation_id"]}
    )
    assert wrong.status_code == 400
    right = client.post(
        "/v1/feedback", json={**checked, "conversation_id": first["conversation_id"]}
    )
    assert right.status_code == 200
    schema = client.get("/openapi.json").json()
    assert schema["components"]["schemas"]["FeedbackRequest"]["required"] == ["turn_id"]


def test_serve_can_require_the_conversation_without_origins(kb_copy, cli, monkeypatch):
    import uvicorn

    import tunesmith_support.api as api

    calls = []
    monkeypatch.setattr(api, "create_app", lambda service, **options: calls.append(options))
    monkeypatch.setattr(uvicorn, "run", lambda app, **_kwargs: None)
    monkeypatch.delenv("TUNESMITH_SUPPORT_TOKEN", raising=False)
    result = cli("support", "serve", "--kb", str(kb_copy), "--feedback-needs-conversation")
    assert result.exit_code == 0, result.output
    assert calls[-1]["feedback_needs_conversation"] is True


def test_feedback_command_checks_the_conversation_when_given(kb_copy, cli):
    first = json.loads(cli("support", "ask", "--kb", str(kb_copy), "--json", "kayak").stdout)
    other = json.loads(cli("support", "ask", "--kb", str(kb_copy), "--json", "boots").stdout)
    args = ("support", "feedback", "--kb", str(kb_copy), "--turn", str(first["turn_id"]))
    wrong = cli(*args, "--helpful", "--conversation", other["conversation_id"])
    assert wrong.exit_code != 0
    assert "no turn" in wrong.output and "this conversation" in wrong.output
    right = cli(*args, "--helpful", "--conversation", first["conversation_id"])
    assert right.exit_code == 0, right.output


def test_feedback_sent_again_unchanged_is_stored_once_and_a_turn_keeps_a_bounded_number(
    service,
):
    turn = service.ask("how much is shipping?")
    first = service.feedback(turn.turn_id, helpful=True, conversation_id=turn.conversation_id)
    replayed = [service.feedback(turn.turn_id, helpful=True) for _ in range(5)]
    assert replayed == [first] * 5
    rows = service.conversations.store.query("SELECT COUNT(*) AS n FROM support_feedback")
    assert rows[0]["n"] == 1
    # A changed rating is new feedback; flipping it again and again stops at the limit.
    for i in range(MAX_FEEDBACK_PER_TURN - 1):
        service.feedback(turn.turn_id, helpful=i % 2 == 0, note=f"{i}")
    with pytest.raises(UserInputError, match=f"{MAX_FEEDBACK_PER_TURN} pieces of feedback"):
        service.feedback(turn.turn_id, helpful=False, note="one more")
    stats = service.conversations.stats("day")
    assert stats[0]["feedback"] == 1  # one turn, however often it was rated


# 2. Picking an option by an ordinal in every built-in language -----------------------------


@pytest.mark.parametrize(
    ("reply", "picked"),
    [
        ("the second one", 1),
        ("la segunda", 1),
        ("Sí, la primera por favor", 0),
        ("el último", 2),
        ("opción 2", 1),
        ("die zweite", 1),
        ("Ja, die erste bitte", 0),
        ("Nummer 3", 2),
        ("die letzte", 2),
        ("le deuxième", 1),
        ("oui, la première svp", 0),
        ("la dernière", 2),
        ("l'option 2", 1),
    ],
)
def test_a_reply_picks_an_option_by_an_ordinal_in_each_built_in_language(reply, picked):
    assert chosen_option(reply, ["A?", "B?", "C?"]) == picked


def test_replies_that_only_contain_an_ordinal_are_not_picks():
    for reply in ["no 2", "la segunda vez que compro", "die zweite Lieferung fehlt", "one second"]:
        assert chosen_option(reply, ["A?", "B?", "C?"]) is None


def test_a_spanish_reply_to_a_clarifying_question_is_answered_from_the_option_it_names(service):
    first = service.ask("¿cuánto cuesta el envío?")
    assert first.answer.decision == "clarify"
    reply = service.ask("la segunda, por favor", first.conversation_id)
    assert reply.answer.reason == "chosen"
    assert reply.answer.entry["id"] == first.answer.options[1]


def test_a_kb_adds_ordinals_and_words_around_them_for_its_own_language(tmp_path):
    data = {
        "languages": ["it"],
        "ordinals": {"it": {"secondo": 2, "seconda": 2, "ultimo": "last"}},
        "choice_words": {"it": ["la", "il", "l'", "opzione", "per favore"]},
    }
    config = parse_language_config(data, tmp_path / "language.json")
    assert config.choice("la seconda per favore") == 2
    assert config.choice("l'opzione 3") == 3
    assert config.choice("l'ultimo") == LAST
    assert config.choice("la seconda spedizione") is None
    assert chosen_option("Il secondo", ["A?", "B?"], languages=config) == 1
    # Written back as read, "last" included.
    assert config.to_dict()["ordinals"] == data["ordinals"]


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"ordinals": {"it": {"secondo": "2"}}}, "ordinals.it.secondo"),
        ({"ordinals": {"it": {"secondo": 0}}}, "ordinals.it.secondo"),
        ({"ordinals": {"it": {"il secondo": 2}}}, "ordinals.it.il secondo"),
        ({"ordinals": {"it": ["secondo"]}}, "ordinals.it"),
        ({"choice_words": {"it": "la"}}, "choice_words.it"),
        ({"follow_up_starts": {"it": [""]}}, "follow_up_starts.it"),
        ({"follow_up_words": {"Italiano": ["questo"]}}, "follow_up_words"),
    ],
)
def test_bad_ordinals_and_cue_words_in_language_json_are_one_line(tmp_path, data, where):
    path = tmp_path / "language.json"
    with pytest.raises(UserInputError) as refused:
        parse_language_config(data, path)
    assert str(refused.value).startswith(f"{path}: {where}:")
    assert "\n" not in str(refused.value)


# 3. Follow-ups in every built-in language ----------------------------------------------------


@pytest.mark.parametrize(
    "question",
    [
        "¿Y qué tal el envío exprés a Canarias?",
        "¿Puedo devolverlo después de un mes?",
        "Und was ist mit dem Expressversand nach Österreich?",
        "Wie lange dauert das denn ungefähr?",
        "Et pour la livraison express en Belgique ?",
        "Combien de temps cela prend-il en général ?",
    ],
)
def test_follow_up_cues_are_read_in_each_built_in_language(question):
    assert is_follow_up(question)


@pytest.mark.parametrize(
    "question",
    [
        "¿Dónde está mi pedido número 1234?",
        "Das Paket ist beschädigt angekommen",
        "Quels sont les horaires du magasin de Lyon ?",
    ],
)
def test_questions_that_stand_alone_are_no_follow_ups_in_other_languages(question):
    assert not is_follow_up(question)


def test_a_follow_up_chain_in_spanish_keeps_the_topic_back_to_the_question_it_leans_on():
    history = [
        "¿Cuánto cuesta devolver unas botas de montaña?",
        "¿Cuánto cuesta el envío a Canarias?",
        "¿Y qué tal el envío exprés a Canarias?",
    ]
    # The third leans on the second, which stands on its own: the first is another topic.
    assert conversation_topic(history) == " ".join(history[1:])


def test_a_follow_ups_leading_cue_is_left_out_when_it_is_read_alone():
    drop = DEFAULT_LANGUAGES.without_follow_up_start
    assert drop("and how long does it take?") == "how long does it take?"
    assert drop("¿Y qué tal el envío exprés?") == "el envío exprés?"
    assert drop("Und was ist mit Expressversand?") == "Expressversand?"
    assert drop("Qu'en est-il des retours ?") == "des retours ?"


def test_a_kb_adds_follow_up_cues_for_its_own_language(tmp_path):
    data = {
        "languages": ["it"],
        "follow_up_starts": {"it": ["e invece", "e"]},
        "follow_up_words": {"it": ["questo", "quello"]},
    }
    config = parse_language_config(data, tmp_path / "language.json")
    question = "E invece la spedizione espressa per la Sardegna?"
    assert not is_follow_up(question) and is_follow_up(question, config)
    assert config.without_follow_up_start(question) == "la spedizione espressa per la Sardegna?"
    assert is_follow_up("Quanto tempo ci vuole per questo ordine?", config)


# 4. A visitor who tries to break it -----------------------------------------------------------


def test_control_and_bidi_characters_are_removed_before_the_question_is_read_and_stored(service):
    turn = service.ask("I want a human\a")  # the bell hid the request for a person
    assert turn.answer.reason == "asked_for_person"
    turn = service.ask("talk to a human \u202egnp.exe\u202c please")
    assert turn.answer.question == "talk to a human gnp.exe please"
    assert turn.answer.notes == ["2 invisible control or formatting character(s) were removed"]
    stored = service.conversations.turns(turn.conversation_id)
    assert stored[0]["question"] == "talk to a human gnp.exe please"
    event = json.loads(
        (service.kb_dir / "handoffs.jsonl").read_text(encoding="utf-8").splitlines()[-1]
    )
    assert "\u202e" not in event["message"] and "\u202e" not in event["payload"]["question"]


def test_cleaning_keeps_what_is_part_of_the_text():
    # Joiners make one emoji (and Persian words), tabs and line breaks are blanks.
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467 family pass?"
    assert clean_question(family) == (family, [])
    assert clean_question("how much\r\nis it?\tthanks") == ("how much\nis it?\tthanks", [])
    text, notes = clean_question("hu\u200bman\x1b[31m please")
    assert text == "human [31m please" and len(notes) == 1


def test_a_long_repeated_phrase_is_no_small_talk_and_is_read_at_once():
    # Matched whole, "bye bye bye ... x" took twice as long with each second word: 28 words
    # 0.6 s, 40 a minute, while the thread held the request.
    for message in ["bye " * 34 + "x", "thank you " * 30 + "x", "la " * 40 + "segunda x"]:
        start = time.perf_counter()
        assert DEFAULT_LANGUAGES.small_talk(message) is None
        assert DEFAULT_LANGUAGES.choice(message) is None
        assert time.perf_counter() - start < 1.0
    assert DEFAULT_LANGUAGES.small_talk("thanks, that helps a lot, bye!") == ("bye", "en")


def test_a_conversation_id_of_another_kb_or_none_is_one_line(service):
    with pytest.raises(UserInputError, match="no conversation"):
        service.ask("how much is shipping?", "0" * 32)
    with pytest.raises(UserInputError, match="no turn 5 in this conversation"):
        service.feedback(5, helpful=True, conversation_id="0" * 32)
    with pytest.raises(UserInputError, match="not valid Unicode"):
        service.feedback(5, helpful=True, conversation_id="\ud800")
