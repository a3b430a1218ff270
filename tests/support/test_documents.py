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
