"""The languages a knowledge base talks in: what the bot recognises (a request for a person,
small talk), the texts it writes itself, and how words are matched lexically.

Built in: English, Spanish, German and French (:data:`BUILT_IN`). Every message is checked
against all of them, so "quiero hablar con una persona" is a request for a person, "la segunda"
picks a clarifying question's second option and "¿y el envío exprés?" follows on from the
question before, whatever the KB says; the bot's own texts (a hand-off, a clarifying question, a reply to "danke") are in
the language the message was recognised in, else the one its words look like
(:func:`guess_language`), else the KB's first language. A KB names its languages, and may add
phrases and wording of its own, in ``KB/language.json`` (:func:`read_language_config`).

Matching is done on :func:`fold`-ed text (Unicode NFKC, case folded, accents removed), so
"Straße", "STRASSE" and "strasse", or "envío" typed in NFD and "envio", are the same words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.io import atomic_write_json, change_stamp, read_json_object
from tunesmith_support.kbgenerations import LANGUAGE, META, language_path

#: The optional per-KB file of languages, phrases and wording.
LANGUAGE_FILE = LANGUAGE

#: The texts the bot writes itself, by key (what :class:`Wording` holds).
TEXT_KEYS = (
    "greeting",  # reply to "hi"
    "thanks",  # reply to "thanks!"
    "ack",  # reply to "ok"
    "bye",  # reply to "bye"
    "handoff_person",  # the customer asked for a person
    "handoff_unsure",  # out of scope or too unsure
    "clarify_intro",  # above a clarifying question's numbered options
    "clarify_outro",  # below them
    "narrowed",  # in front of a clarifying question asked again
)
SMALL_TALK_KINDS = ("greeting", "thanks", "ack", "bye")

_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "ı": "i", "’": "'", "ʼ": "'", "‘": "'"})


def fold(text: str) -> str:
    """``text`` for matching, not for showing: NFKC (ligatures such as "ﬁ", full-width forms),
    case folded ("ß" -> "ss"), accents removed ("é" -> "e", also when typed as NFD), "œ"/"æ"
    written out and the dotless "ı" read as "i" (no language is known here to fold it as
    Turkish does), typographic apostrophes made straight."""
    if text.isascii():
        # Every step below leaves ASCII as it is but for the case: a KB's load folds each of
        # its entries (100,000 passages took a minute character by character).
        return text.lower()
    text = unicodedata.normalize("NFKC", text).casefold().translate(_LIGATURES)
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", _combining_marks().sub("", decomposed))


@lru_cache(maxsize=1)
def _combining_marks() -> re.Pattern[str]:
    """Every code point with a combining class (what :func:`fold` removes), as one character
    class: one regex pass instead of a ``unicodedata`` call per character."""
    ranges: list[list[int]] = []
    for code in range(0x110000):
        if unicodedata.combining(chr(code)):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    return re.compile("[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in ranges) + "]")


#: Scripts written without spaces between words (Han, kana, Thai...), where a ``\\w+`` run is
#: a whole sentence.
_UNSPACED = re.compile(
    "[\u3040-\u30ff"  # hiragana, katakana
    "\u3400-\u9fff\uf900-\ufaff"  # CJK ideographs
    "\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\U00020000-\U0002ffff]"
)


#: Word runs of two characters or more.
_WORD_RUNS = re.compile(r"\w\w+")


def lexical_tokens(text: str) -> list[str]:
    """The words BM25 counts: the :func:`fold`-ed text's word runs of two characters or more;
    a run in a script written without spaces (Japanese, Chinese, Thai) as its overlapping
    character pairs, since "送料はいくらですか" is one run and would match nothing."""
    folded = fold(text)
    if not _UNSPACED.search(folded):
        return _WORD_RUNS.findall(folded)
    tokens: list[str] = []
    for run in re.findall(r"\w+", folded):
        if _UNSPACED.search(run):
            tokens += [run[i : i + 2] for i in range(max(1, len(run) - 1))]
        elif len(run) > 1:
            tokens.append(run)
    return tokens


def stopwords(languages: list[str]) -> list[str]:
    """The folded stop words of ``languages`` (bm25s's lists; a language it has none for adds
    none)."""
    from bm25s.tokenization import _infer_stopwords

    words: set[str] = set()
    for code in languages:
        try:
            words |= {fold(w) for w in _infer_stopwords(code)}
        except ValueError:
            continue
    return sorted(words)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: The number an ordinal word gives for "the last one" (:meth:`LanguageConfig.choice`).
LAST = -1

#: Where a reply's number or ordinal goes in a :attr:`Phrases.choice` pattern.
PICK = "{pick}"


def _ordinals(numbers: dict[int, str]) -> dict[str, int]:
    """``{2: "segundo segunda"}`` as ``{"segundo": 2, "segunda": 2}``."""
    return {word: number for number, words in numbers.items() for word in words.split()}


@dataclass(frozen=True)
class Phrases:
    """What one language recognises and writes. Patterns are matched on :func:`fold`-ed
    text."""

    person: str
    small_talk: dict[str, str]
    texts: dict[str, str]
    #: Common short words that tell the language of a question (:func:`guess_language`).
    function_words: frozenset[str] = frozenset()
    #: Words that pick a clarifying question's option, folded: "second" is 2, "last"
    #: :data:`LAST`.
    ordinals: dict[str, int] = field(default_factory=dict)
    #: A whole reply that picks an option: a pattern with :data:`PICK` where its number or
    #: ordinal stands ("the second one", "la segunda", "die zweite", "le deuxième").
    choice: str = ""
    #: A follow-up's first words ("and", "what about"): a pattern anchored at the start.
    follow_up_start: str = ""
    #: Words that point back at the conversation ("it", "that"), found anywhere.
    follow_up_words: str = ""


_EN = Phrases(
    person=(
        r"\b(talk|speak|chat|complain|connect me|put me through|transfer me)\b[^.?!]{0,20}?\b"
        r"(human|person|people|agent|someone|somebody|representative|operator|staff|advisor"
        # "talk to customer support", "speak to your team": the team is people too.
        r"|manager|supervisor|customer (service|support|care)|support team|your team)\b"
        # The whole message is the word, as customers type to a bot or a phone menu: "agent",
        # "Human!", "a real person please" (a short message would otherwise be searched as a
        # follow-up of the question before).
        r"|^\W*(an?\s+)?(real\s+|live\s+)?(human|agent|person|operator|representative"
        r"|human being)\W*(please|now)?\W*$"
        r"|\b(human|live|real)\s+(agent|person|being|support)\b"
        r"|\b(customer service|support) (agent|representative|rep)\b"
        r"|\bhuman,? please\b|\bagent,? please\b|\boperator\b|\brepresentative\b"
        # "I want a human", "can I get an agent?": the person ends the sentence ("I need a
        # person to sign for it" is a question about delivery, not a request).
        r"|\b(want|need|get|have|see|reach)\s+(me\s+)?(a|an|some)\s+(real\s+)?"
        r"(human|person|agent|human being)\b\s*(please|now)?\s*[.?!]*\s*$"
    ),
    small_talk={
        "greeting": r"(hi|hello|hey|hiya|howdy|greetings|good (morning|afternoon|evening|day))"
        r"( there| all)?",
        "thanks": r"(thanks|thank you|thx|ty|cheers|many thanks|much appreciated"
        r"|(that|this) (helps|helped))( (so|very) much| a lot| again| anyway)?",
        "ack": r"ok|okay|k|kk|great|cool|perfect|awesome|nice|got it|alright|all right"
        r"|sounds good|i see",
        "bye": r"bye|bye bye|goodbye|good bye|see you|see ya|have a (good|nice|great) (day|one)"
        r"|no,? thank(s| you)|that'?s all|that is all|that'?s it",
    },
    texts={
        "greeting": "Hello! What can I help you with?",
        "thanks": "You're welcome! Is there anything else I can help you with?",
        "ack": "Is there anything else I can help you with?",
        "bye": "Thank you for getting in touch. Goodbye!",
        "handoff_person": "I'm passing you to a member of our team; they will reply here shortly.",
        # What happens next, as for a request for a person: the customer should not wait for
        # the bot, nor ask again.
        "handoff_unsure": "I'm not sure I can answer that correctly, so I'm passing your "
        "question to a member of our team; they will reply here shortly.",
        "clarify_intro": "Which of these do you mean?",
        "clarify_outro": "Reply with its number, or ask in other words.",
        "narrowed": "More than one option matches that.",
    },
    function_words=_words(
        "the is are do does did how what my i can you your when where why to of and it for "
        "with have has an be this that not"
    ),
    ordinals={
        **_ordinals({1: "first 1st one", 2: "second 2nd two", 3: "third 3rd three"}),
        **_ordinals({4: "fourth 4th four", LAST: "last"}),
    },
    choice=r"^[\W_]*(?:(?:yes|yeah|yep|ok|okay)[\W_]+)?(?:i\s+mean[t]?\s+)?"
    r"(?:the\s+|option\s+|number\s+|#\s*)?(?P<pick>{pick})"
    r"(?:\s+(?:one|option|question|please))?[\W_]*(?:please|thanks|thank you)?[\W_]*$",
    follow_up_start=r"^\s*(?:and|but|also|what about|how about|so|then)\b",
    follow_up_words=r"\b(?:it|its|that|this|those|these|they|them|their)\b",
)

_PERSON_ES = (
    r"(persona|humano|ser humano|agente|asesor|asesora|operador|operadora|alguien"
    r"|representante|encargado|encargada|gerente|supervisor|supervisora|empleado|empleada)"
)
_ES = Phrases(
    person=(
        rf"\b(hablar|habla|hable|comunicarme|comunicame|comuniqueme|pasame|pasarme|paseme"
        rf"|transfiereme|transfierame|ponme|pongame|quejarme)\b[^.?!]{{0,25}}?\b{_PERSON_ES}\b"
        rf"|^\W*((un|una)\s+)?{_PERSON_ES}(\s+real)?\W*(por favor|ya)?\W*$"
        r"|\b(persona|agente|humano) (real|de verdad)\b|\b(agente|humano),? por favor\b"
        rf"|\b(quiero|necesito|prefiero|puedo tener)\s+(un|una)\s+{_PERSON_ES}(\s+real)?\b"
        r"\s*(por favor|ya)?\s*[.?!]*\s*$"
    ),
    small_talk={
        "greeting": r"(hola|buenas|buenos dias|buenas tardes|buenas noches|que tal)"
        r"( a todos)?",
        "thanks": r"(gracias|muchas gracias|mil gracias|muy amable|se lo agradezco"
        r"|te lo agradezco)( de nuevo| igualmente| por todo)?",
        "ack": r"ok|okay|vale|de acuerdo|entendido|perfecto|genial|bien|muy bien|claro|entiendo",
        "bye": r"adios|hasta luego|hasta pronto|chao|chau|nos vemos|eso es todo|nada mas"
        r"|no,? gracias",
    },
    texts={
        "greeting": "¡Hola! ¿En qué puedo ayudarle?",
        "thanks": "¡De nada! ¿Puedo ayudarle en algo más?",
        "ack": "¿Puedo ayudarle en algo más?",
        "bye": "Gracias por contactarnos. ¡Hasta pronto!",
        "handoff_person": "Le paso con una persona de nuestro equipo; le responderá aquí en breve.",
        "handoff_unsure": "No estoy seguro de poder responder correctamente, así que paso su "
        "pregunta a una persona de nuestro equipo; le responderá aquí en breve.",
        "clarify_intro": "¿A cuál de estas se refiere?",
        "clarify_outro": "Responda con su número o pregunte con otras palabras.",
        "narrowed": "Hay más de una opción que coincide.",
    },
    function_words=_words(
        "el la los las es son como que cuando donde mi mis por para con un una puedo hay del "
        "al y no se me lo su esta estan tengo"
    ),
    ordinals=_ordinals(
        {
            1: "primero primera primer uno",
            2: "segundo segunda dos",
            3: "tercero tercera tercer tres",
            4: "cuarto cuarta cuatro",
            LAST: "ultimo ultima",
        }
    ),
    # "la segunda", "sí, el primero", "opción 2", "la 2ª por favor". Not "nº 2", which folds
    # to "no 2": "no, 2" or "not 2" in English.
    choice=r"^[\W_]*(?:(?:si|vale|ok|okay|claro)[\W_]+)?(?:(?:me refiero a|quiero decir)\s+)?"
    r"(?:(?:el|la|lo)\s+)?(?:(?:opcion|numero|pregunta|respuesta)\s+)?(?:(?:n\.o|n\.|nro\.?|num\.?)\s*)?"
    r"(?P<pick>{pick})(?:o|a)?(?:\s+(?:opcion|pregunta|respuesta))?[\W_]*"
    r"(?:por favor|gracias)?[\W_]*$",
    # "¿y el envío exprés?", "¿qué tal con tarjeta?"
    follow_up_start=r"^[\W_]*(?:y que tal|y que hay de|y si|que tal|que hay de|y|pero|tambien"
    r"|ademas|entonces)\b",
    # "¿cuánto tarda eso?", "¿puedo devolverlo?" (a pronoun joined to the verb). Not "esta",
    # which folded is also "está".
    follow_up_words=r"\b(?:eso|esto|ello|ese|esa|esos|esas|estos|estas|lo)\b"
    r"|\b\w{2,}(?:ar|er|ir|ando|iendo)(?:lo|la|los|las)\b",
)

_PERSON_DE = (
    r"(mensch|menschen|person|mitarbeiter|mitarbeiterin|mitarbeitenden|berater"
    r"|beraterin|kundenberater|kundenberaterin|sachbearbeiter|sachbearbeiterin|jemandem|agenten"
    r"|vorgesetzten|chef|kundendienst|kundenservice|support|team)"
)
_DE = Phrases(
    person=(
        # German puts the verb last: "Ich möchte mit einem Menschen sprechen".
        rf"\bmit\s+(\w+\s+){{0,2}}{_PERSON_DE}\b[^.?!]{{0,20}}?\b(sprechen|reden|telefonieren"
        r"|chatten|verbunden|verbinden|schreiben)\b"
        rf"|\b(sprechen|reden|verbinden|verbindet|chatten)\b[^.?!]{{0,15}}?\bmit\s+(\w+\s+){{0,2}}"
        rf"{_PERSON_DE}\b"
        rf"|\b(weiterleiten|weiterverbinden)\b[^.?!]{{0,15}}?\ban\s+(\w+\s+){{0,2}}{_PERSON_DE}\b"
        r"|^\W*((ein|einen|eine)\s+)?(echte[nrs]?\s+)?(mensch|menschen|mitarbeiter|mitarbeiterin"
        r"|berater|beraterin|person|agent)\W*(bitte|jetzt|sofort)?\W*$"
        r"|\b(echte[nrs]?|realen?) (mensch|menschen|person|mitarbeiter|mitarbeiterin)\b"
        r"|\b(will|mochte|brauche|hatte gern|hatte gerne)\s+(einen|eine)\s+(echten\s+|echte\s+)?"
        r"(menschen|mitarbeiter|mitarbeiterin|berater|beraterin|person)\b\s*(bitte|jetzt)?"
        r"\s*[.?!]*\s*$"
    ),
    small_talk={
        "greeting": r"(hallo|hi|hey|guten (morgen|tag|abend)|servus|moin|moin moin|gruezi"
        r"|gruss gott|gruss dich)( zusammen)?",
        "thanks": r"(danke|danke schon|danke sehr|vielen dank|herzlichen dank|besten dank"
        r"|merci vielmal)( nochmal| nochmals| fur alles)?",
        "ack": r"ok|okay|alles klar|gut|super|prima|perfekt|verstanden|in ordnung|passt|klar",
        "bye": r"tschuss|auf wiedersehen|auf wiederhoren|bis bald|bis dann|ciao|adieu"
        r"|das wars|das war's|das war alles|das ist alles|nein,? danke",
    },
    texts={
        "greeting": "Hallo! Wie kann ich Ihnen helfen?",
        "thanks": "Gern geschehen! Kann ich Ihnen sonst noch helfen?",
        "ack": "Kann ich Ihnen sonst noch helfen?",
        "bye": "Danke für Ihre Nachricht. Auf Wiedersehen!",
        "handoff_person": "Ich leite Sie an unser Team weiter; Sie erhalten hier in Kürze "
        "eine Antwort.",
        "handoff_unsure": "Ich bin nicht sicher, ob ich das richtig beantworten kann, und leite "
        "Ihre Frage deshalb an unser Team weiter; Sie erhalten hier in Kürze eine Antwort.",
        "clarify_intro": "Welches davon meinen Sie?",
        "clarify_outro": "Antworten Sie mit der Nummer oder fragen Sie mit anderen Worten.",
        "narrowed": "Dazu passt mehr als eine Option.",
    },
    function_words=_words(
        "der die das ist sind wie was wann wo warum ich mein meine ein eine einen und nicht "
        "kann mit fur sie den dem zu auf bei ihr ihre wir es"
    ),
    ordinals=_ordinals(
        {
            1: "erste erster erstes ersten erstem eins",
            2: "zweite zweiter zweites zweiten zweitem zwei",
            3: "dritte dritter drittes dritten drittem drei",
            4: "vierte vierter viertes vierten viertem vier",
            LAST: "letzte letzter letztes letzten letztem",
        }
    ),
    # "die zweite", "ja, die erste bitte", "Nummer 2", "die 2." (a German ordinal).
    choice=r"^[\W_]*(?:(?:ja|ok|okay|genau)[\W_]+)?(?:(?:ich meine|ich meinte|ich nehme)\s+)?"
    r"(?:(?:der|die|das|den|dem)\s+)?(?:(?:option|nummer|nr|frage|antwort)\.?\s*)?"
    r"(?P<pick>{pick})\.?(?:\s+(?:option|frage|antwort))?[\W_]*(?:bitte|danke)?[\W_]*$",
    # "und der Expressversand?", "was ist mit Rücksendungen?"
    follow_up_start=r"^[\W_]*(?:und was ist mit|und wie ist es mit|was ist mit|wie ist es mit"
    r"|und|aber|auch|also|dann)\b",
    # "Wie lange dauert das (denn)?": "das" ends the sentence, but for a particle (elsewhere
    # it is mostly "the"). Not "sie", which is also the polite "you".
    follow_up_words=r"\b(?:es|dies|diese|dieser|dieses|diesen|diesem|ihn|ihm|dafur|damit|dazu"
    r"|davon|darauf|daran|daruber|dabei)\b|\bdas(?:\s+(?:denn|eigentlich|ungefahr|dann|so"
    r"|auch|noch|etwa|genau|wirklich))*\s*[.?!]*\s*$",
)

_PERSON_FR = (
    r"(humain|etre humain|personne|conseiller|conseillere|agent|operateur|operatrice"
    r"|quelqu'un|responsable|superviseur|interlocuteur|service client|equipe)"
)
_FR = Phrases(
    person=(
        rf"\b(parler|discuter|echanger|passez-moi|passer|transferez-moi|mettez-moi en relation"
        rf"|me mettre en relation|joindre|plaindre)\b[^.?!]{{0,25}}?\b{_PERSON_FR}\b"
        r"|^\W*((un|une)\s+)?(vrai\s+|vraie\s+)?(humain|conseiller|conseillere|agent|operateur"
        r"|operatrice|personne reelle|vraie personne)\W*(svp|s'il vous plait|s'il te plait"
        r"|maintenant)?\W*$"
        r"|\b(vraie personne|personne reelle|vrai humain|etre humain)\b"
        r"|\b(veux|voudrais|aimerais|souhaite|peux avoir|puis-je avoir)\s+(un|une)\s+"
        r"(vrai\s+|vraie\s+)?(humain|conseiller|conseillere|agent|personne)\b\s*"
        r"(svp|s'il vous plait)?\s*[.?!]*\s*$"
    ),
    small_talk={
        "greeting": r"(bonjour|bonsoir|salut|coucou|allo)( a tous)?",
        "thanks": r"(merci|merci beaucoup|merci bien|mille mercis|je vous remercie"
        r"|c'est gentil)( encore| pour tout| beaucoup)?",
        "ack": r"ok|okay|d'accord|parfait|super|genial|tres bien|entendu|compris|ca marche"
        r"|je vois",
        "bye": r"au revoir|bonne journee|bonne soiree|a bientot|bye|c'est tout|ce sera tout"
        r"|non,? merci",
    },
    texts={
        "greeting": "Bonjour\u00a0! Comment puis-je vous aider\u00a0?",
        "thanks": "Je vous en prie\u00a0! Puis-je vous aider pour autre chose\u00a0?",
        "ack": "Puis-je vous aider pour autre chose\u00a0?",
        "bye": "Merci de nous avoir contactés. Au revoir\u00a0!",
        "handoff_person": "Je transmets votre demande à un membre de notre équipe\u00a0; il vous "
        "répondra ici sous peu.",
        "handoff_unsure": "Je ne suis pas sûr de pouvoir répondre correctement, je transmets "
        "donc votre question à un membre de notre équipe\u00a0; il vous répondra ici sous peu.",
        "clarify_intro": "Voulez-vous parler de l'un de ces sujets\u00a0?",
        "clarify_outro": "Répondez avec son numéro ou posez votre question autrement.",
        "narrowed": "Plusieurs options correspondent.",
    },
    function_words=_words(
        "le la les est sont comment quand ou pourquoi mon ma mes je un une et pour avec des du "
        "vous puis que ne pas au aux ce cette il"
    ),
    ordinals=_ordinals(
        {
            1: "premier premiere un une",
            2: "deuxieme second seconde deux",
            3: "troisieme trois",
            4: "quatrieme quatre",
            LAST: "dernier derniere",
        }
    ),
    # "le deuxième", "oui, la première svp", "l'option 2", "la 2e".
    choice=r"^[\W_]*(?:(?:oui|ok|okay|d'accord)[\W_]+)?(?:(?:je veux dire|je voulais dire"
    r"|je parle de)\s+)?(?:(?:le|la|l')\s*)?(?:(?:option|numero|question|reponse|n°|n\.|no\.)\s*)?"
    r"(?P<pick>{pick})(?:ere|er|re|eme|nde|nd|e)?(?:\s+(?:option|question|reponse))?[\W_]*"
    r"(?:svp|s'il vous plait|merci)?[\W_]*$",
    # "et pour la livraison express ?", "qu'en est-il des retours ?"
    follow_up_start=r"^[\W_]*(?:qu'en est-il de|qu'en est-il|et pour|et si|et concernant"
    r"|quid de|et|mais|aussi|alors|donc)\b",
    # "Combien de temps cela prend-il ?". Not "le", "la", "les": articles too.
    follow_up_words=r"\b(?:ca|cela|ceci|celui|celle|ceux|celles|cet|cette|ces|il|elle|ils"
    r"|elles|leur|leurs)\b",
)

#: The languages with phrases and wording of their own, in the order ties go.
BUILT_IN: dict[str, Phrases] = {"en": _EN, "es": _ES, "de": _DE, "fr": _FR}

#: Letters that tell a language apart when its words do not (checked before folding).
_LETTERS = {"es": "¿¡ñ", "de": "ßäöü", "fr": "çœèêëîïôùûà"}


#: A run of letters and digits: what phrases and messages are split into between blanks and
#: punctuation.
_RUN = re.compile(r"[^\W_]+")


def _made_of(phrase: re.Pattern[str], text: str) -> bool:
    r"""Whether ``text`` is one or more matches of ``phrase`` (an alternation of phrases that
    start and end with a letter or digit), with only blanks and punctuation around them.

    Tried span by span over the text's runs of letters and digits (at most quadratic in
    them), not with one repeated pattern: ``(?:phrase)(?:[\W_]+(?:phrase))*`` backtracked
    through every way of splitting the message when two phrases matched the same words (a
    KB's "ok" beside the built-in one), and 16 words took seconds, 20 minutes."""
    runs = [(m.start(), m.end()) for m in _RUN.finditer(text)]
    reached = [True] + [False] * len(runs)  # reached[i]: the runs before i are phrases
    for first, (start, _) in enumerate(runs):
        if not reached[first]:
            continue
        for last in range(first, len(runs)):
            if not reached[last + 1] and phrase.fullmatch(text, start, runs[last][1]):
                reached[last + 1] = True
    return bool(runs) and reached[-1]


def phrase_words(phrase: str) -> list[str]:
    """The letter and digit runs a phrase of ``language.json`` is matched by, folded: its
    blanks and punctuation only separate them ("l'" is "l", "t-shirt" "t shirt")."""
    return _RUN.findall(fold(phrase))


def _phrase_pattern(phrases: list[str]) -> str:
    r"""Plain phrases (folded; any blanks or punctuation between their words) as regex
    alternatives, the longest first (so that "and what about" is tried before "and").

    Each alternative starts and ends with a letter or digit, so the separators around it
    (``[\W_]+``) can never take part of it: with a phrase of punctuation (":)", "'") the
    whole-message patterns could split a run of it in exponentially many ways, and 40
    characters held a server thread for minutes. Such a phrase is refused when the file is
    read (:func:`parse_language_config`)."""
    # Each phrase once: two alternatives matching the same words doubled the ways to read a
    # message with each of them.
    unique = {" ".join(w): w for w in map(phrase_words, phrases) if w}
    words = sorted(unique.values(), key=lambda w: -len(" ".join(w)))
    return "|".join(r"[\W_]+".join(map(re.escape, w)) for w in words)


#: The most words a message of small talk ("thank you so much, that helps, bye") or a pick
#: from a clarifying question ("yes I meant the second one please") has. Longer messages are
#: not tried: a whole-message pattern backtracked exponentially on a phrase repeated ("bye bye
#: bye ... x": 40 words held a server thread for a minute, 50 for an hour), and a pick's KB
#: words ("la", "la la") still may. Words are runs of letters and digits, not blank-separated
#: chunks: "la,la,la,..." is as many words.
MAX_PHRASE_WORDS = 16


def _too_long(folded: str) -> bool:
    """Whether a message has more words than a phrase message is tried for
    (:data:`MAX_PHRASE_WORDS`)."""
    found = zip(_RUN.finditer(folded), range(MAX_PHRASE_WORDS + 1), strict=False)
    return sum(1 for _ in found) > MAX_PHRASE_WORDS


def _words_of(folded: str, count: int) -> int:
    """Where the first ``count`` word runs of ``folded`` end."""
    end = 0
    for end_match, _ in zip(re.finditer(r"\w+", folded), range(count), strict=False):
        end = end_match.end()
    return end


def _generic_choice(words: str) -> str:
    """A pick pattern for a language without a built-in one: its number or ordinal, with the
    KB's ``choice_words`` (articles, "option", "please") before and after it."""
    filler = rf"(?:{words})" if words else "(?!)"
    # A separator after each filler word: with none ("[\W_]*"), "lalala..." split into "la"s in
    # exponentially many ways when one filler was another's repeat ("la", "la la").
    return rf"^[\W_]*(?:{filler}[\W_]+)*(?P<pick>{PICK})(?:[\W_]+{filler})*[\W_]*$"


@dataclass
class LanguageConfig:
    """A KB's languages (the first is its default) and its own phrases and wording."""

    languages: list[str] = field(default_factory=lambda: ["en"])
    texts: dict[str, dict[str, str]] = field(default_factory=dict)
    person_phrases: dict[str, list[str]] = field(default_factory=dict)
    talk_phrases: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    function_words: dict[str, list[str]] = field(default_factory=dict)
    #: Ordinal words of the KB's own (``{"it": {"secondo": 2, "ultimo": LAST}}``).
    ordinals: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Words around a pick ("l'", "opzione", "per favore"), for a reply such as "l'opzione 2".
    choice_words: dict[str, list[str]] = field(default_factory=dict)
    #: Phrases that start a follow-up ("e", "e invece"), and words that point back ("questo").
    follow_up_starts: dict[str, list[str]] = field(default_factory=dict)
    follow_up_words: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._compile()

    def _compile(self) -> None:
        # Languages in the order a message is checked: the KB's own first, so that "ok" or
        # "merci" (German in Switzerland, and French) is read in the KB's language.
        defined = set(BUILT_IN) | set(self.texts) | set(self.person_phrases)
        defined |= set(self.talk_phrases) | set(self.function_words) | set(self.ordinals)
        defined |= set(self.choice_words) | set(self.follow_up_starts) | set(self.follow_up_words)
        self.order = list(dict.fromkeys([*self.languages, *BUILT_IN, *sorted(defined)]))
        self._choice: list[tuple[re.Pattern[str], dict[str, int]]] = []
        self._follow_start: list[re.Pattern[str]] = []
        self._follow_words: list[re.Pattern[str]] = []
        for code in self.order:
            self._compile_cues(code, BUILT_IN.get(code))
        self._person: dict[str, re.Pattern[str]] = {}
        self._talk: dict[str, re.Pattern[str]] = {}
        self._kinds: dict[str, dict[str, re.Pattern[str]]] = {}
        for code in self.order:
            built = BUILT_IN.get(code)
            parts = [built.person] if built else []
            extra = _phrase_pattern(self.person_phrases.get(code, []))
            if extra:
                parts.append(rf"(?:^|\b)(?:{extra})(?:\b|$)")
            if parts:
                self._person[code] = re.compile("|".join(f"(?:{p})" for p in parts))
            kinds: dict[str, str] = dict(built.small_talk) if built else {}
            for kind, phrases in self.talk_phrases.get(code, {}).items():
                extra = _phrase_pattern(phrases)
                if extra:
                    kinds[kind] = f"{kinds[kind]}|{extra}" if kind in kinds else extra
            if kinds:
                self._talk[code] = re.compile("|".join(f"(?:{p})" for p in kinds.values()))
                self._kinds[code] = {
                    kind: re.compile(rf"(?:^|[\W_])(?:{p})(?=$|[\W_])") for kind, p in kinds.items()
                }

    def _compile_cues(self, code: str, built: Phrases | None) -> None:
        """``code``'s patterns for a pick from a clarifying question and for a follow-up: the
        built-in pack's, and the KB's own words."""
        numbers = dict(built.ordinals) if built else {}
        numbers |= {fold(word): n for word, n in self.ordinals.get(code, {}).items()}
        words = sorted(numbers, key=len, reverse=True)  # "erster" before "erste"
        picks = "|".join([r"\d{1,2}", *map(re.escape, words)])
        templates = [built.choice] if built and built.choice else []
        own = _phrase_pattern(self.choice_words.get(code, []))
        if own or (numbers and not templates):
            templates.append(_generic_choice(own))
        for template in templates:
            self._choice.append((re.compile(template.replace(PICK, picks)), numbers))
        starts = [built.follow_up_start] if built and built.follow_up_start else []
        own = _phrase_pattern(self.follow_up_starts.get(code, []))
        if own:
            starts.append(rf"^[\W_]*(?:{own})(?=$|[\W_])")
        self._follow_start += [re.compile(p) for p in starts]
        pointing = [built.follow_up_words] if built and built.follow_up_words else []
        own = _phrase_pattern(self.follow_up_words.get(code, []))
        if own:
            pointing.append(rf"(?:^|(?<=[\W_]))(?:{own})(?=$|[\W_])")
        self._follow_words += [re.compile(p) for p in pointing]

    def choice(self, reply: str) -> int | None:
        """The option a reply to a clarifying question picks by its number or an ordinal, in
        any language: 1-based, :data:`LAST` for "the last one"; ``None`` for any other reply
        ("the second one", "la segunda", "die zweite", "le deuxième", "#2")."""
        text = " ".join(fold(reply).split())
        if _too_long(text):
            return None
        for pattern, numbers in self._choice:
            found = pattern.match(text)
            if found:
                pick = found["pick"]
                return int(pick) if pick.isdigit() else numbers[pick]
        return None

    def follow_up_start(self, question: str) -> int:
        """How many words at the start of ``question`` only say that it follows on ("and",
        "what about", "¿y qué tal", "und was ist mit"); 0 when none do."""
        text = fold(question)
        longest = max((len(m[0]) for p in self._follow_start if (m := p.match(text))), default=0)
        return len(re.findall(r"\w+", text[:longest]))

    def points_back(self, question: str) -> bool:
        """Whether ``question`` holds a word that points back at the conversation ("it",
        "eso", "devolverlo", "dafür", "cela")."""
        text = fold(question)
        return any(p.search(text) for p in self._follow_words)

    def without_follow_up_start(self, question: str) -> str:
        """``question`` without the words that only say it follows on
        (:meth:`follow_up_start`), and the blanks and commas after them."""
        count = self.follow_up_start(question)
        if not count:
            return question
        return question[_words_of(question, count) :].strip(" ,")

    def asks_for_person(self, message: str) -> str | None:
        """The language in which ``message`` asks for a person, or ``None``."""
        text = fold(message)
        return next((c for c, p in self._person.items() if p.search(text)), None)

    def small_talk(self, message: str) -> tuple[str, str] | None:
        """``(kind, language)`` for a message made only of small-talk phrases of one language
        ("hi", "vielen Dank!", "merci, au revoir"); ``None`` otherwise."""
        text = " ".join(fold(message).split())
        if _too_long(text):
            return None
        for code, phrase in self._talk.items():
            if _made_of(phrase, text):
                # A goodbye ends the conversation whatever came before it; thanks outrank "ok".
                for kind in ("bye", "thanks", "ack", "greeting"):
                    phrase = self._kinds[code].get(kind)
                    if phrase is not None and phrase.search(text):
                        return kind, code
                return "ack", code
        return None

    def guess_language(self, message: str) -> str:
        """The language ``message`` looks written in, by its common short words and letters
        (:data:`_LETTERS`); the KB's first language when nothing tells."""
        words = set(re.findall(r"\w+", fold(message)))
        best, best_score = self.languages[0], 0.0
        scores: dict[str, float] = {}
        for code in self.order:
            known = set(BUILT_IN[code].function_words) if code in BUILT_IN else set()
            known |= {fold(w) for w in self.function_words.get(code, [])}
            score = len(words & known) + 0.5 * any(ch in message for ch in _LETTERS.get(code, ""))
            scores[code] = score
        for code, score in scores.items():
            if score > best_score:
                best, best_score = code, score
        # A tie with the default keeps the default: a short question tells little.
        return self.languages[0] if scores.get(self.languages[0], 0) >= best_score else best

    def text(self, key: str, language: str | None = None) -> str:
        """The bot's text ``key`` in ``language``: the KB's wording, else the built-in one,
        else the same in the KB's default language, else English."""
        for code in (language, self.languages[0], "en"):
            if code is None:
                continue
            own = self.texts.get(code, {}).get(key)
            if own:
                return own
            if code in BUILT_IN:
                return BUILT_IN[code].texts[key]
        return _EN.texts[key]

    def to_dict(self) -> dict[str, Any]:
        """The object ``language.json`` holds."""
        out: dict[str, Any] = {"languages": self.languages}
        for key, value in (
            ("texts", self.texts),
            ("person_phrases", self.person_phrases),
            ("small_talk", self.talk_phrases),
            ("function_words", self.function_words),
            (
                "ordinals",
                {
                    code: {w: "last" if n == LAST else n for w, n in words.items()}
                    for code, words in self.ordinals.items()
                },
            ),
            ("choice_words", self.choice_words),
            ("follow_up_starts", self.follow_up_starts),
            ("follow_up_words", self.follow_up_words),
        ):
            if value:
                out[key] = value
        return out


def _problem(path: Path, where: str, what: str) -> UserInputError:
    return UserInputError(f"{path}: {where}: {what}")


def _strings(path: Path, where: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _problem(path, where, "expected a list of non-empty texts")
    return list(value)


def _phrases(path: Path, where: str, value: Any) -> list[str]:
    """Phrases matched as words: each needs a letter or digit. A phrase of punctuation alone
    ("?" as a person phrase) matched at the end of every question ending with a "?" and handed
    them all to a person."""
    phrases = _strings(path, where, value)
    for number, phrase in enumerate(phrases):
        if not phrase_words(phrase):
            raise _problem(
                path,
                f"{where}[{number}]",
                f"{phrase[:40]!r} has no letter or digit (phrases are matched as words; "
                "punctuation and emoji only separate them)",
            )
    return phrases


_CODE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")


def _code(path: Path, where: str, code: Any) -> str:
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise _problem(path, where, f"{code!r} is no language code (such as 'de' or 'fr-CH')")
    return code


def parse_language_config(data: dict[str, Any], path: Path) -> LanguageConfig:
    """A :class:`LanguageConfig` from ``language.json``'s object; anything unknown or of the
    wrong kind is one error naming the file and the key."""
    known = {"languages", "texts", "person_phrases", "small_talk", "function_words"}
    known |= {"ordinals", "choice_words", "follow_up_starts", "follow_up_words"}
    extra = sorted(set(data) - known)
    if extra:
        raise _problem(path, extra[0], f"unknown key (known: {', '.join(sorted(known))})")
    listed = data.get("languages", ["en"])
    if not isinstance(listed, list) or not listed:
        raise _problem(path, "languages", 'expected a list of language codes, such as ["de"]')
    languages = [_code(path, "languages", c) for c in listed]

    def by_language(name: str) -> dict[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise _problem(path, name, "expected an object keyed by language code")
        return {_code(path, name, code): v for code, v in value.items()}

    texts: dict[str, dict[str, str]] = {}
    for code, wording in by_language("texts").items():
        if not isinstance(wording, dict):
            raise _problem(path, f"texts.{code}", "expected an object of texts")
        for key, value in wording.items():
            if key not in TEXT_KEYS:
                raise _problem(
                    path, f"texts.{code}.{key}", f"unknown text (known: {', '.join(TEXT_KEYS)})"
                )
            if not isinstance(value, str) or not value.strip():
                raise _problem(path, f"texts.{code}.{key}", "expected a non-empty text")
        texts[code] = dict(wording)
    person = {
        c: _phrases(path, f"person_phrases.{c}", v)
        for c, v in by_language("person_phrases").items()
    }
    talk: dict[str, dict[str, list[str]]] = {}
    for code, kinds in by_language("small_talk").items():
        if not isinstance(kinds, dict):
            raise _problem(path, f"small_talk.{code}", "expected an object keyed by kind")
        for kind in kinds:
            if kind not in SMALL_TALK_KINDS:
                raise _problem(
                    path,
                    f"small_talk.{code}.{kind}",
                    f"unknown kind (known: {', '.join(SMALL_TALK_KINDS)})",
                )
        talk[code] = {k: _phrases(path, f"small_talk.{code}.{k}", v) for k, v in kinds.items()}
    words = {
        c: _strings(path, f"function_words.{c}", v)
        for c, v in by_language("function_words").items()
    }
    ordinals: dict[str, dict[str, int]] = {}
    for code, numbers in by_language("ordinals").items():
        if not isinstance(numbers, dict):
            raise _problem(path, f"ordinals.{code}", 'expected an object such as {"secondo": 2}')
        ordinals[code] = {}
        for word, number in numbers.items():
            where = f"ordinals.{code}.{word}"
            if len(word.split()) != 1 or not re.fullmatch(r"\w+", fold(word)):
                raise _problem(path, where, "expected one word")
            if number == "last":
                number = LAST
            elif isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 99:
                raise _problem(path, where, 'expected a number from 1 to 99, or "last"')
            ordinals[code][word] = number
    lists = {
        name: {c: _phrases(path, f"{name}.{c}", v) for c, v in by_language(name).items()}
        for name in ("choice_words", "follow_up_starts", "follow_up_words")
    }
    return LanguageConfig(languages, texts, person, talk, words, ordinals, **lists)


@lru_cache(maxsize=32)
def _cached(path: str, stamp: tuple[int, ...]) -> LanguageConfig:
    p = Path(path)
    data = read_json_object(p)
    if not isinstance(data, dict):
        raise UserInputError(f"{p}: expected a JSON object")
    return parse_language_config(data, p)


def language_file(kb_dir: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """The languages file the KB's ``kb.json`` (or ``meta``) commits to: ``language.json``,
    but for the instant `index --language` switches it (:mod:`~tunesmith_support.
    kbgenerations`), or after a kill in that instant."""
    kb_dir = Path(kb_dir)
    if meta is None:
        meta_file = kb_dir / META
        meta = read_json_object(meta_file) if meta_file.is_file() else {}
    return language_path(kb_dir, meta if isinstance(meta, dict) else {})


def read_language_config(kb_dir: str | Path, meta: dict[str, Any] | None = None) -> LanguageConfig:
    """The KB's ``language.json`` (:func:`language_file`), or English alone when it has none."""
    path = language_file(kb_dir, meta)
    if not path.exists():
        return LanguageConfig()
    # The inode too: a rewrite renamed into place within the time's granularity, same size
    return _cached(str(path), change_stamp([path]))


def with_languages(
    kb_dir: str | Path, languages: list[str], meta: dict[str, Any] | None = None
) -> LanguageConfig:
    """The KB's language config with ``languages`` as its languages (its phrases and wording
    kept)."""
    data = read_language_config(kb_dir, meta).to_dict()
    data["languages"] = check_language_codes(languages)
    return parse_language_config(data, Path(kb_dir) / LANGUAGE_FILE)


def set_languages(kb_dir: str | Path, languages: list[str]) -> LanguageConfig:
    """Record the KB's languages in ``language.json`` (written atomically; its phrases and
    wording are kept). `support index --language` switches them with the index instead
    (``build_index(languages=)``)."""
    config = with_languages(kb_dir, languages)
    atomic_write_json(Path(kb_dir) / LANGUAGE_FILE, config.to_dict())
    return config


def check_language_codes(codes: list[str], option: str = "--language") -> list[str]:
    """``codes`` when each is a language code (``de``, ``fr-CH``); one error line otherwise."""
    for code in codes:
        if not _CODE.fullmatch(code):
            raise UserInputError(
                f"{option}: {code!r} is no language code (such as 'de' or 'fr-CH')"
            )
    return list(codes)


def english_model_note(kb_dir: str | Path) -> str | None:
    """A line for `support index` when a KB in another language is encoded with the default
    English model (all-MiniLM-L6-v2 learned English sentences only; other languages share few of
    its word pieces and match much worse); ``None`` otherwise."""
    from tunesmith_support.kbindex import read_meta

    meta = read_meta(kb_dir)
    other = [c for c in read_language_config(kb_dir).languages if c.split("-")[0] != "en"]
    if str(meta.get("model") or "default") != "default" or not other:
        return None
    return (
        f"the KB's languages include {', '.join(other)}, but its encoder is the default model, "
        "which was trained on English only; build the KB with `tunesmith support index "
        "--model DIR` and a multilingual sentence-transformers folder for better matches "
        "(docs/support.md, Languages)"
    )
