"""User text shown inside Markdown (a demo's results, an alert's examples) exactly as typed.

Titles, descriptions and ingested headlines come from whoever wrote the data: markup in them must
be shown, never run, and ``*space*`` must not turn into emphasis.
"""

from __future__ import annotations

import html
from typing import Any

#: Characters backslashed so that Markdown shows them instead of reading them.
MARKDOWN_CHARS = frozenset("\\`*_[]()#+-!|~")


def plain_markdown(text: Any) -> str:
    """``text`` for a Markdown component, shown as typed: HTML escaped, Markdown characters
    backslashed."""
    escaped = html.escape(str(text), quote=False)
    return "".join("\\" + c if c in MARKDOWN_CHARS else c for c in escaped)
