from __future__ import annotations

import pytest

from tunesmith.errors import DataError
from tunesmith_support.documents import html_to_markdown, read_document, split_markdown


def test_markdown_sections_keep_their_heading_and_source():
    text = "# Guide\n\nIntro words.\n\n## Returns\n\nSend it back.\n\n## Refunds\n\nMoney back.\n"
    passages = split_markdown(text, "docs/guide.md", "guide")
    assert [p.id for p in passages] == ["guide#guide", "guide#returns", "guide#refunds"]
    assert [p.heading for p in passages] == ["Guide", "Returns", "Refunds"]
    assert passages[1].text == "Send it back."
    assert {p.source for p in passages} == {"docs/guide.md"}


def test_long_section_is_split_by_length_with_numbered_ids():
    body = "\n\n".join(f"Paragraph {i} " + "word " * 50 for i in range(5))
    passages = split_markdown(f"## Long part\n\n{body}", "a.md", "a", max_words=120)
    assert len(passages) >= 3
    assert passages[0].id == "a#long-part" and passages[1].id == "a#long-part-2"
    assert all(len(p.text.split()) <= 120 for p in passages)
    assert all(p.heading == "Long part" for p in passages)


def test_heading_inside_a_code_fence_does_not_start_a_section():
    passages = split_markdown("## Real\n\n```\n# not a heading\n```\n", "x.md", "x")
    assert [p.heading for p in passages] == ["Real"]


def test_html_is_reduced_to_text_without_script_or_style():
    html = (
        "<html><head><title>T</title><style>p{}</style><script>alert('x')</script></head>"
        "<body><h2>Opening hours</h2><p>Open <b>daily</b> 9-5.</p><script>evil()</script>"
        "<h2>Access</h2><p>Step-free.</p></body></html>"
    )
    text = html_to_markdown(html)
    assert "alert" not in text and "evil" not in text and "p{}" not in text
    passages = split_markdown(text, "s.html", "s")
    assert [(p.heading, p.text) for p in passages] == [
        ("Opening hours", "Open daily 9-5."),
        ("Access", "Step-free."),
    ]


def test_empty_document_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "empty.md"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="empty.md.*no text"):
        read_document(path)


def test_markdown_front_matter_is_not_indexed_as_a_passage(tmp_path):
    doc = tmp_path / "handbook.md"
    doc.write_text(
        "---\ntitle: Handbook\nauthor: Support\n---\n\n# Handbook\n\nWelcome.\n", encoding="utf-8"
    )
    passages = read_document(doc)
    assert [(p.id, p.text) for p in passages] == [("handbook#handbook", "Welcome.")]
    assert passages[0].line == 6  # line numbers still count the front matter


def test_code_blocks_tables_and_lists_keep_their_lines():
    text = (
        "## Install\n\n```python\nimport acme\n\nfor b in acme.buckets():\n    print(b)\n```\n\n"
        "## Plans\n\n| Plan | Price |\n| --- | --- |\n| Team | $20 |\n\n"
        "## Invoices\n\n- Emailed monthly.\n- Download them in Settings.\n\n"
        "## Prose\n\nA hard-wrapped\nparagraph of prose.\n"
    )
    texts = {p.heading: p.text for p in split_markdown(text, "h.md", "h")}
    # Joined into one line, code lost its indentation and a table its rows.
    assert (
        texts["Install"] == "```python\nimport acme\n\nfor b in acme.buckets():\n    print(b)\n```"
    )
    assert texts["Plans"] == "| Plan | Price |\n| --- | --- |\n| Team | $20 |"
    assert texts["Invoices"] == "- Emailed monthly.\n- Download them in Settings."
    assert texts["Prose"] == "A hard-wrapped paragraph of prose."


def test_long_table_is_cut_between_rows_not_inside_one():
    rows = "\n".join(f"| item {i} | costs {i} dollars each |" for i in range(40))
    passages = split_markdown(f"## Prices\n\n{rows}\n", "p.md", "p", max_words=60)
    assert len(passages) > 1
    for p in passages:
        assert all(line.startswith("| item") and line.endswith("|") for line in p.text.split("\n"))


def test_html_site_navigation_header_and_footer_are_dropped_and_cells_separated():
    html = (
        "<body><header><a href='/'>Acme</a></header>"
        "<nav><ul><li>Home</li><li>Pricing</li></ul></nav>"
        "<div role='navigation'><div>Menu</div><div>Log in</div></div>"
        "<main><article><header><h1>Help</h1></header><p>Intro.</p>"
        "<h2>Hours</h2><table><tr><th>Channel</th><th>Hours</th></tr>"
        "<tr><td>Email</td><td>24/7</td></tr></table></article></main>"
        "<footer><p>&copy; 2026 Acme. Privacy | Terms</p></footer></body>"
    )
    passages = split_markdown(html_to_markdown(html), "help.html", "help")
    assert [p.id for p in passages] == ["help#help", "help#hours"]
    assert passages[1].text == "Channel | Hours\n\nEmail | 24/7"
    text = html_to_markdown(html)
    for chrome in ("Pricing", "Menu", "Log in", "Privacy", "Acme"):
        assert chrome not in text


def test_a_repeated_heading_is_named_with_its_parent_and_keeps_its_id_when_another_grows():
    def doc(requirements: str) -> str:
        return (
            "# Guide\n\n## Install\n\n### Requirements\n\n" + requirements + "\n\n"
            "## Troubleshooting\n\n### Requirements\n\nRun with --debug.\n"
        )

    before = split_markdown(doc("Python 3.10."), "g.md", "g", max_words=20)
    # "Guide", "Install" and "Troubleshooting" have no text of their own: they name the
    # sections under them.
    assert [(p.id, p.heading) for p in before] == [
        ("g#requirements", "Guide > Install > Requirements"),
        ("g#troubleshooting-requirements", "Guide > Troubleshooting > Requirements"),
    ]
    # The first section grows a second part: the repeat keeps its id, and no id that named it
    # (where feedback and exported training rows point) now names other text.
    longer = "Python 3.10. " + " ".join(["More words here."] * 10) + "\n\nAnd a second paragraph."
    after = {p.id: p.text for p in split_markdown(doc(longer), "g.md", "g", max_words=20)}
    assert after["g#troubleshooting-requirements"] == "Run with --debug."
    assert all(
        text == "Run with --debug." for pid, text in after.items() if "troubleshooting" in pid
    )


def test_a_heading_with_no_text_of_its_own_names_the_sections_under_it():
    # "Returns" was in no passage at all: "how long do refunds take for returns" could not
    # match its words.
    text = (
        "# Help\n\nAsk us anything.\n\n## Returns\n\n### Refund times\n\n5 days.\n\n"
        "### Labels\n\nPrinted at home.\n\n## Shipping\n\nFree over $75.\n\n"
        "### Express\n\nNext day.\n"
    )
    passages = split_markdown(text, "h.md", "h")
    assert [(p.id, p.heading) for p in passages] == [
        ("h#help", "Help"),
        ("h#refund-times", "Returns > Refund times"),
        ("h#labels", "Returns > Labels"),
        # "Help" and "Shipping" have text of their own: their passages carry their words.
        ("h#shipping", "Shipping"),
        ("h#express", "Express"),
    ]


def test_numbered_sections_of_a_plain_text_document_are_headings(tmp_path):
    # "1. Returns" and "2.3 Refund times" were body text: the whole policy was one section,
    # cut by length, with no heading.
    doc = tmp_path / "policy.txt"
    doc.write_text(
        "Fernhill policies\n\n1. Returns\n\nReturn unused items within 60 days.\n\n"
        "2. Refunds\n\n2.1 Refund times\nWe refund within 3 business days.\n\n"
        "2.2. Store credit\n\nGifts are refunded as store credit.\n",
        encoding="utf-8",
    )
    passages = read_document(doc)
    assert [(p.id, p.heading, p.text, p.line) for p in passages] == [
        ("policy#text", "", "Fernhill policies", 1),
        ("policy#returns", "Returns", "Return unused items within 60 days.", 3),
        ("policy#refund-times", "Refunds > Refund times", "We refund within 3 business days.", 9),
        (
            "policy#store-credit",
            "Refunds > Store credit",
            "Gifts are refunded as store credit.",
            12,
        ),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "To return an item:\n\n1. Start a return\n\n2. Print the label\n\n3. Drop it off\n",
        "To return an item:\n\n1. Start a return\n2. Print the label\n",
        "Steps\n\n1. Start a return under Orders.\n\nThen wait.\n",
        "Results\n\n2024 was a good year\n\nSales grew.\n",
        "Notes\n\n1. Start a return\n   under Orders\n",
    ],
)
def test_numbered_lists_and_sentences_in_plain_text_are_no_headings(tmp_path, text):
    doc = tmp_path / "steps.txt"
    doc.write_text(text, encoding="utf-8")
    assert {p.heading for p in read_document(doc)} == {""}


def test_numbered_lines_in_markdown_stay_list_items():
    passages = split_markdown("## Steps\n\n1. Returns\n\nText.\n", "s.md", "s")
    assert [p.heading for p in passages] == ["Steps"]


def test_markdown_setext_headings_start_sections(tmp_path):
    # "Returns" underlined with === or --- was body text: the title and its underline ran into
    # the section before ("... every day. Returns ------- Return unused items ...").
    doc = tmp_path / "guide.md"
    doc.write_text(
        "Store guide\n===========\n\nOpening hours\n-------------\n\nWe open 9am to 6pm,\n"
        "every day.\n\nReturns and\nrefunds\n---\nReturn unused items within 60 days.\n",
        encoding="utf-8",
    )
    passages = read_document(doc)
    assert [(p.id, p.heading, p.text, p.line) for p in passages] == [
        ("guide#opening-hours", "Store guide > Opening hours", "We open 9am to 6pm, every day.", 4),
        (
            "guide#returns-and-refunds",
            "Store guide > Returns and refunds",
            "Return unused items within 60 days.",
            10,
        ),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "## Steps\n\nText.\n\n---\n\nMore text.\n",  # a thematic break after a blank line
        "## Steps\n\n- a list item\n---\n\nMore text.\n",  # a list, then a break
        "## Steps\n\n> a quote\n===\n",
        "## Steps\n\n```\ncode\n===\n```\n",  # inside a code fence
        "## Steps\n\n    indented code\n---\n",
    ],
)
def test_underline_like_lines_that_make_no_setext_heading_in_markdown(text):
    from tunesmith_support.documents import setext_headings

    assert [p.heading for p in split_markdown(setext_headings(text), "s.md", "s")] == ["Steps"]


def test_underlined_titles_of_a_plain_text_document_are_headings(tmp_path):
    doc = tmp_path / "policy.txt"
    doc.write_text(
        "Fernhill policies\n=================\n\nReturns\n-------\n"
        "Return unused items within 60 days.\n\n2. Refunds\n----------\n"
        "We refund within 3 business days.\n\nCall us at 555-0142.\n--\nThanks.\n",
        encoding="utf-8",
    )
    passages = read_document(doc)
    assert [(p.id, p.heading, p.text, p.line) for p in passages] == [
        ("policy#returns", "Fernhill policies > Returns", "Return unused items within 60 days.", 4),
        # A number in front is left out, as for numbered section lines; a sentence over a
        # short rule is no title.
        (
            "policy#refunds",
            "Fernhill policies > Refunds",
            "We refund within 3 business days.\n\nCall us at 555-0142. -- Thanks.",
            8,
        ),
    ]


def test_plain_text_titles_between_two_rules_are_headings_without_their_rules(tmp_path):
    # reStructuredText's style: the rule above the title was left as a passage of its own
    # ("=================") or at the end of the section before ("... 60 days. -------").
    from tunesmith_support.documents import plain_text_headings

    doc = tmp_path / "policy.txt"
    doc.write_text(
        "=================\nFernhill policies\n=================\n\n-----------\n  Returns\n"
        "-----------\n\nReturn unused items within 60 days.\n\n-------\nRefunds\n-------\n\n"
        "We refund within 3 business days.\n",
        encoding="utf-8",
    )
    passages = read_document(doc)
    assert [(p.id, p.heading, p.text, p.line) for p in passages] == [
        ("policy#returns", "Fernhill policies > Returns", "Return unused items within 60 days.",
         6),
        ("policy#refunds", "Fernhill policies > Refunds", "We refund within 3 business days.",
         12),
    ]  # fmt: skip
    # Its styles rank in the order they first appear, as in reStructuredText: the title over
    # and under "=" is above the sections under "=" alone.
    ranked = plain_text_headings("=====\nGuide\n=====\n\nReturns\n=======\n\nText.\n")
    assert ranked.splitlines() == ["", "# Guide", "", "", "## Returns", "", "", "Text."]
