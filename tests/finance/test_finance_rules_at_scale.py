"""Topic and ticker rules at a desk's scale: 500 tickers and 50 topics, what a desk relies on."""

from __future__ import annotations

import json
import time
import unicodedata

import pytest

from tunesmith.errors import UserInputError
from tunesmith_finance.rules import Rules, load_rules

DESK = {
    "AAPL": ["Apple", "Apple Inc."],
    "META": ["Meta", "Meta Platforms"],
    "GS": ["Goldman Sachs"],
    "BRK.B": ["Berkshire Hathaway"],
    "ALL": ["Allstate"],
    "IT": ["Gartner"],
    "A": ["Agilent"],
    "ON": ["ON Semiconductor", "onsemi"],
    "NSRGY": ["Nestlé"],
}


def _desk_rules(tmp_path, tickers: int = 500, topics: int = 50):
    """The desk's names plus made-up companies up to ``tickers``, and ``topics`` topics."""
    lines = [f'[tickers."{t}"]\naliases = {json.dumps(names)}' for t, names in DESK.items()]
    for i in range(tickers - len(DESK)):
        name = f"Company{i:03d}"
        lines.append(f'[tickers.C{i:03d}]\naliases = ["{name}", "{name} Holdings", "{name} Corp"]')
    lines.append('[topics.layoffs]\nkeywords = ["layoffs", "job cuts"]')
    lines.append("[topics.guidance]\nregexes = ['\\b(guidance|outlook)\\b']")
    for i in range(topics - 2):
        lines.append(
            f'[topics.t{i:02d}]\nkeywords = ["word{i}", "two words{i}"]\n'
            f"regexes = ['\\bpattern{i} \\d+\\b']"
        )
    path = tmp_path / "desk.toml"
    path.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    return load_rules(path)


def test_five_hundred_tickers_and_fifty_topics_match_hundreds_of_headlines_a_second(tmp_path):
    rules = _desk_rules(tmp_path)
    texts = [
        f"$AAPL - Company{i % 490:03d} Holdings cuts outlook, Goldman Sachs says; word{i % 48} "
        f"up https://t.co/x{i}"
        for i in range(300)
    ]
    rules.assign(texts[0])  # compiles what the first text needs
    started = time.perf_counter()
    found = [rules.assign(text) for text in texts]
    # Before, one alternation of 1,500 aliases and a search per topic: 25 headlines a second.
    assert time.perf_counter() - started < 3.0
    assert found[7].tickers == ["AAPL", "C007", "GS"]
    assert found[7].topics == ["guidance", "t07"]


def test_a_desk_config_finds_each_name_as_a_whole_word_and_symbols_that_are_words_as_cashtags(
    tmp_path,
):
    rules = _desk_rules(tmp_path, tickers=20, topics=2)
    cases = {
        "Apple and Goldman Sachs both rise": ["AAPL", "GS"],  # two companies: both
        "Pineapple prices rise": [],
        "metaverse hype fades": [],
        "Meta Platforms\nreports; Goldman  Sachs\tcuts": ["META", "GS"],
        "ALL in, IT spending, A big day, ON the move": [],  # symbols that are words
        "$ALL and $IT and $A and $ON rise": ["ALL", "IT", "A", "ON"],
        "$AAPL's margin; $aapl, $BRK.B.": ["AAPL", "BRK.B"],
        "APPLE HITS A HIGH": ["AAPL"],
        "apple pie": [],
    }
    for text, tickers in cases.items():
        assert rules.tickers(text) == tickers, text


def test_a_cashtag_inside_a_web_or_email_address_is_not_a_ticker():
    text = "See https://x.com/$AAPL/status, www.site.com/?q=$TSLA or write to ir$MSFT@example.com"
    assert Rules().tickers(text) == []
    assert Rules().tickers("$NVDA up, more at https://t.co/abc") == ["NVDA"]
    assert Rules().tickers("bought $AAPL@150.5 today") == ["AAPL"]


def test_a_full_width_dollar_sign_and_letters_make_a_cashtag():
    assert Rules().tickers("\uff04AAPL and \uff04\uff34\uff33\uff2c\uff21 rise") == ["AAPL", "TSLA"]


def test_a_share_class_written_with_a_dash_is_the_dotted_ticker():
    assert Rules().tickers("$BRK-B and $BF.B; an $AAPL-led rally") == ["BRK.B", "BF.B", "AAPL"]


def test_an_alias_with_an_accent_matches_the_decomposed_spelling_too(tmp_path):
    rules = _desk_rules(tmp_path, tickers=20, topics=2)
    assert rules.tickers(unicodedata.normalize("NFD", "Nestlé raises prices")) == ["NSRGY"]
    assert rules.tickers("Nestlé raises prices") == ["NSRGY"]


def test_the_one_keyword_index_finds_what_each_topics_own_pattern_finds(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(
        "[topics.a]\nkeywords = ['rate cut', 'Fed', 'sass', 'inc']\n"
        "[topics.b]\nkeywords = ['rate cut', 'ECB', 'A&B', '&co']\n"
        "[topics.c]\nregexes = ['(\\w+) \\1']\n",  # a back-reference is searched on its own
        encoding="utf-8",
    )
    rules = load_rules(path)
    texts = [
        "The RATE\n  CUT came",
        "the Fed",
        "fed up",
        "FED",
        "\u017fa\u017f\u017f",  # the long s matches s in any case
        "\u0130NC",  # the dotted capital I matches i
        "A&B and &Co",
        "rate cutting",
        "the the",
        "nothing here",
    ]
    for text in texts:
        expected = sorted(n for n, rule in rules.topics.items() if rule.matches(text, []))
        assert rules.assign(text).topics == expected, text
    assert rules.assign("the the").topics == ["c"]


@pytest.mark.parametrize(
    ("suffix", "body", "message"),
    [
        (
            ".toml",
            "[tickers.AAPL]\naliases = ['Apple']\n\n[topics.guidance]\n"
            "keywords = ['outlook']\nregexes = ['(guidance']\n",
            r"desk.toml:6: topics.guidance.regexes: '\(guidance' is not valid",
        ),
        (
            ".toml",
            "[tickers.AAPL]\naliases = ['Apple']\n[topics.layoffs]\nkeyword = ['layoffs']\n",
            r"desk.toml:4: topics.layoffs: unknown key\(s\) keyword",
        ),
        (
            ".toml",
            "[tickers.AAPL]\naliases = ['Apple']\n[tickers.\"BRK.B\"]\naliases = 5\n",
            r"desk.toml:4: tickers.BRK.B.aliases: expected a list of strings",
        ),
        (
            ".json",
            '{"tickers": {"AAPL": {"aliases": ["Apple"]}},\n'
            ' "topics": {"g": {"regexes": ["(x"]}}}\n',
            r"desk.json:2: topics.g.regexes: '\(x' is not valid",
        ),
    ],
)
def test_an_error_in_a_rules_file_names_the_file_its_line_and_the_rule(
    tmp_path, suffix, body, message
):
    path = tmp_path / f"desk{suffix}"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(UserInputError, match=message):
        load_rules(path)
