from __future__ import annotations

import json

import pytest

from tunesmith.errors import UserInputError
from tunesmith_finance.rules import Rules, load_rules


def test_cashtags_and_aliases_become_upper_case_tickers(sample_rules):
    found = sample_rules.assign("Depositors pull funds from Helix Bank; $crwn and $BRK.B slide")
    assert found.tickers == ["CRWN", "BRK.B", "HLXB"]


def test_dollar_amounts_are_not_cashtags():
    assert Rules().tickers("a $5 billion buyback and US$ 3 fee") == []


def test_topics_come_from_keywords_tickers_and_regexes(sample_rules):
    assert sample_rules.assign("Liquidity is thin").topics == ["banking"]
    assert sample_rules.assign("$ORCN gains").topics == ["tech"]
    assert sample_rules.assign("The firm drew on its credit line").topics == ["banking"]
    assert sample_rules.assign("Analysts expect rate cuts").topics == ["macro"]


def test_central_bank_is_macro_and_not_banking(sample_rules):
    assert sample_rules.assign("Stocks climb as central bank signals rate cuts").topics == ["macro"]
    assert sample_rules.assign("Bank stocks tumble").topics == ["banking"]


def test_a_named_topic_the_rules_lack_is_kept_and_reported(sample_rules):
    found = sample_rules.assign("Token prices swing", topic="Crypto")
    assert found.topics == ["crypto"]
    assert found.unknown_topics == ["crypto"]
    assert sample_rules.assign("x", topic="banking").unknown_topics == []


def test_without_rules_named_topics_are_never_unknown():
    found = Rules().assign("$ABC up", topic="anything", tickers=["xyz"])
    assert (found.topics, found.tickers, found.unknown_topics) == (["anything"], ["XYZ", "ABC"], [])


def test_a_json_rules_file_works_like_toml(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"topics": {"Energy": {"keywords": ["oil price"]}}}))
    assert load_rules(path).assign("The OIL  price fell").topics == ["energy"]


def test_a_bad_regex_is_one_error_naming_the_file_and_topic(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text("[topics.banking]\nregexes = ['(unclosed']\n")
    with pytest.raises(UserInputError, match=r"rules.toml:2: topics.banking.regexes: '\(unclosed'"):
        load_rules(path)


def test_a_regex_that_backtracks_without_end_is_one_error_naming_it_not_a_hang(
    tmp_path, monkeypatch
):
    import time

    from tunesmith_finance import rules

    monkeypatch.setattr(rules, "REGEX_SECONDS", 0.2, raising=False)
    path = tmp_path / "rules.toml"
    path.write_text("[topics.banking]\nregexes = ['\\bbanks?\\b', '(a|aa)+$']\n")
    loaded = load_rules(path)
    assert loaded.assign("Bank stocks tumble").topics == ["banking"]
    started = time.monotonic()
    # Under Python's re this headline took 8 s, and each character more about twice as long.
    with pytest.raises(
        UserInputError, match=r"rules.toml: topics.banking.regexes: '\(a\|aa\)\+\$'"
    ):
        loaded.assign("a" * 36 + "!")
    assert time.monotonic() - started < 3


def test_an_unknown_key_in_a_topic_is_refused(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text("[topics.banking]\nkeyword = ['bank']\n")
    with pytest.raises(UserInputError, match="unknown key"):
        load_rules(path)


@pytest.mark.parametrize("body", ["topics = 5\n", 'tickers = ["HLXB"]\n'])
def test_a_section_that_is_not_a_table_is_one_error_not_a_traceback(tmp_path, body):
    path = tmp_path / "rules.toml"
    path.write_text(body)
    with pytest.raises(UserInputError, match=r"rules.toml: (topics|tickers): expected a table"):
        load_rules(path)


def test_an_unknown_key_in_a_ticker_is_refused(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text("[tickers.HLXB]\nalias = ['Helix Bank']\n")
    with pytest.raises(UserInputError, match=r"tickers.HLXB: unknown key\(s\) alias"):
        load_rules(path)


def test_a_rules_file_that_is_not_utf8_is_one_error(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_bytes(b"\xff\xfe[topics.banking]\n")
    with pytest.raises(UserInputError, match="rules.toml: not UTF-8 text"):
        load_rules(path)


def test_a_rules_file_with_another_suffix_is_read_and_named_as_toml(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("topics:\n  banking: {}\n")
    with pytest.raises(UserInputError, match="rules.yaml: not valid TOML"):
        load_rules(path)


def test_a_topic_written_twice_in_another_case_keeps_the_rules_of_both(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(
        "[topics.Banking]\nkeywords = ['lender']\nregexes = ['\\bbanks?\\b']\n"
        "[topics.banking]\nkeywords = ['deposit']\ncashtags = ['HLXB']\n"
    )
    rules = load_rules(path)
    for text in ("a lender fails", "deposit flight", "banks fall", "$HLXB drops"):
        assert rules.assign(text).topics == ["banking"], text


def test_an_alias_listed_under_two_tickers_names_both(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(
        "[tickers.GOOG]\naliases = ['Alphabet']\n[tickers.GOOGL]\naliases = ['alphabet']\n"
        "[tickers.HLXB]\naliases = ['Helix Bank']\n"
    )
    rules = load_rules(path)
    assert rules.tickers("Alphabet shares slide at Helix Bank") == ["GOOG", "GOOGL", "HLXB"]


def test_a_json_rules_file_with_a_repeated_key_is_refused_like_toml(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(
        '{"topics": {"banking": {"keywords": ["lender"]}, "banking": {"keywords": ["deposit"]}}}'
    )
    with pytest.raises(
        UserInputError, match=r"rules.json: not valid JSON: .*'banking' is repeated"
    ):
        load_rules(path)


def test_a_ticker_regex_names_its_ticker_where_no_alias_does(tmp_path):
    path = tmp_path / "desk.toml"
    path.write_text(
        "[tickers.GOOGL]\naliases = ['Alphabet']\n"
        "regexes = ['\\bGOOGL?\\b', '(?-i:Google)\\w*']\n"
        "[tickers.HLXB]\naliases = ['Helix Bank']\n"
    )
    rules = load_rules(path)
    assert rules.tickers("Google's new phone; Helix Bank falls") == ["HLXB", "GOOGL"]
    assert rules.tickers("GOOG slides") == ["GOOGL"]
    assert rules.tickers("Alphabet and Googles") == ["GOOGL"]  # named once
    assert rules.tickers("google it") == []  # the case-sensitive part holds
    assert rules.assign("$TSLA up, Googlers walk out").tickers == ["TSLA", "GOOGL"]


def test_a_bad_ticker_regex_is_one_error_naming_the_file_its_line_and_the_ticker(tmp_path):
    path = tmp_path / "desk.toml"
    path.write_text("[tickers.AAPL]\naliases = ['Apple']\n\n[tickers.GOOGL]\nregexes = ['(Goog']\n")
    with pytest.raises(UserInputError, match=r"desk.toml:5: tickers.GOOGL.regexes: '\(Goog'"):
        load_rules(path)
    path.write_text("[tickers.GOOGL]\nregex = ['Goog']\n")
    with pytest.raises(UserInputError, match=r"desk.toml:2: tickers.GOOGL: unknown key\(s\) regex"):
        load_rules(path)


def test_a_ticker_regex_that_backtracks_without_end_is_one_error_naming_the_ticker(
    tmp_path, monkeypatch
):
    from tunesmith_finance import rules

    monkeypatch.setattr(rules, "REGEX_SECONDS", 0.2, raising=False)
    path = tmp_path / "rules.toml"
    path.write_text("[tickers.GOOGL]\nregexes = ['\\bGOOGL?\\b', '(a|aa)+$']\n")
    loaded = load_rules(path)
    assert loaded.tickers("GOOG slides") == ["GOOGL"]
    with pytest.raises(UserInputError, match=r"rules.toml: tickers.GOOGL.regexes: '\(a\|aa\)\+\$'"):
        loaded.tickers("a" * 36 + "!")


def test_a_ticker_written_twice_in_another_case_is_one_ticker_with_the_rules_of_both(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(
        "[tickers.AAPL]\naliases = ['Apple']\n[tickers.aapl]\naliases = ['iPhone maker']\n"
        "regexes = ['\\bCupertino\\b']\n"
    )
    rules = load_rules(path)
    for text in ("Apple falls", "the iPhone maker falls", "Cupertino giant falls", "$aapl falls"):
        assert rules.tickers(text) == ["AAPL"], text
