"""User text shown inside Markdown (a demo's results, an alert's examples) exactly as typed.

Titles, descriptions and ingested headlines come from whoever wrote the data: markup in them must
be shown, never run, and ``*space*`` must not turn into emphasis.
"""

from __future__ import annotations

import html
import re
from typing import Any

#: Characters backslashed so that Markdown shows them instead of reading them.
MARKDOWN_CHARS = frozenset("\\`*_[]()#+-!|~")


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


def code_span(text: Any) -> str:
    """``text`` as a Markdown code span that shows it as typed: its fence is longer than any run
    of backticks inside, and Markdown itself escapes the markup (an HTML-escaped id showed
    ``a&lt;b``)."""
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
