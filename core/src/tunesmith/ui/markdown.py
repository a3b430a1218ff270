"""User text shown inside Markdown (a demo's results, an alert's examples) exactly as typed.

Titles, descriptions and ingested headlines come from whoever wrote the data: markup in them must
be shown, never run, and ``*space*`` must not turn into emphasis. Two layers: ``plain_markdown``
escapes the text, and ``markdown_box`` builds the component that shows it without LaTeX (a code
span cannot be escaped, and a plugin's own Markdown may forget to).
"""

from __future__ import annotations

import html
import re
from typing import Any

#: Characters backslashed so that Markdown shows them instead of reading them. ``$`` too: Gradio
#: reads "$$" in the Markdown source as the start of LaTeX, up to the next "$$" (across the
#: paragraphs and list items between), and ``\$`` breaks the pair yet shows a plain "$".
MARKDOWN_CHARS = frozenset("\\`*_[]()#+-!|~$")

#: Gradio's ``latex_delimiters`` for a component that shows users' text: none. Its default
#: (``$$``) turned one customer's "charged $$ twice" and a later "refund my $$ now" into one
#: LaTeX block that hid everything between them.
NO_LATEX: list[dict[str, Any]] = []


#: What Gradio's Markdown turns into a link by itself (GFM autolinks: ``http://``, ``www.``, an
#: e-mail address), even in escaped text: a typed URL became a link showing its backslashes.
_AUTOLINK_CHARS = re.compile(r":(?=//)|@|(?<=[wW]{3})\.")


def plain_markdown(text: Any) -> str:
    """``text`` for a Markdown component, shown as typed: HTML escaped, Markdown characters
    backslashed, and the characters that make an autolink written as entities (which show the
    same)."""
    escaped = html.escape(str(text), quote=False)
    backslashed = "".join("\\" + c if c in MARKDOWN_CHARS else c for c in escaped)
    return _AUTOLINK_CHARS.sub(lambda m: f"&#{ord(m.group())};", backslashed)


def markdown_box(value: Any = "", **options: Any) -> Any:
    """A ``gr.Markdown`` for text that holds users' words (call inside a Blocks context): no LaTeX
    and HTML sanitised, whatever the text. Escape the words with ``plain_markdown`` or
    ``code_span`` still: this stops LaTeX only, not links, emphasis or headings."""
    import gradio as gr

    return gr.Markdown(value, latex_delimiters=list(NO_LATEX), sanitize_html=True, **options)


def code_span(text: Any) -> str:
    """``text`` as a Markdown code span that shows it as typed: its fence is longer than any run
    of backticks inside, and Markdown itself escapes the markup (an HTML-escaped id showed
    ``a&lt;b``). Gradio reads "$$" before it reads code spans: show one in a ``markdown_box``."""
    text = str(text).replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    # A space each side keeps a backtick at either end off the fence; Markdown strips them.
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    return f"{fence}{padded}{fence}"


def refused(message: Any, heading: str = "Not done") -> str:
    """A user's mistake in a demo (an empty question, a bad upload) as a warning toast and a
    note for the page, ``**heading:** message``. Handlers return it instead of raising
    ``gr.Error``, which prints a traceback in the terminal and puts a red "Error" over every
    output of the event until that output is next written."""
    import gradio as gr

    gr.Warning(str(message))
    return f"**{heading}:** {plain_markdown(message)}"
