"""The text box every demo types a text to act on into: Enter acts, Shift+Enter breaks a line.

Gradio decides what Enter does from a box's ``lines``: at two lines or more Enter only breaks
the line and Shift+Enter submits, so a keyboard user typed a text and then had to Tab to the
button. At one line that grows (``max_lines`` above 1) Enter submits and Shift+Enter breaks the
line, as in a chat box. Gradio is imported inside the function.
"""

from __future__ import annotations

from typing import Any

#: How tall the box grows as lines are broken in it, before it scrolls.
MAX_LINES = 8


def text_box(label: str, *, placeholder: str | None = None, **options: Any) -> Any:
    """A ``gr.Textbox`` (call inside a Blocks) whose ``.submit`` runs on Enter, Shift+Enter
    breaking a line; it starts at one line and grows to ``max_lines`` (default
    :data:`MAX_LINES`). ``options`` go to ``gr.Textbox`` (not ``lines``: it stays 1)."""
    import gradio as gr

    options.setdefault("max_lines", MAX_LINES)
    return gr.Textbox(label=label, placeholder=placeholder, lines=1, **options)
