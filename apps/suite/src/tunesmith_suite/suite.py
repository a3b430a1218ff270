"""Assemble the suite: every registered demo in its own tab, each built in its own ``try``."""

from __future__ import annotations

import html
import os
import sys
import traceback
from dataclasses import dataclass
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.hooktypes import Demo


@dataclass
class BuiltDemo:
    """A demo and what its ``build()`` gave: a Blocks, or the error it raised."""

    demo: Demo
    blocks: Any = None
    error: str | None = None


def parse_only(value: str | None) -> list[str] | None:
    """``"a,b"`` -> ``["a", "b"]``; empty -> ``None`` (all demos)."""
    names = [part.strip() for part in (value or "").split(",") if part.strip()]
    return names or None


def collect_demos(only: list[str] | None = None) -> list[Demo]:
    """Every registered demo, in registration order, optionally filtered by name.

    Two demos with one name: the plugin registered last wins. A plugin whose
    ``tunesmith_demos`` raises is skipped (and listed by ``tunesmith plugins``).
    """
    from tunesmith.plugins import collect_by_name

    demos: list[Demo] = list(collect_by_name("tunesmith_demos").values())
    if only is None:
        return demos
    known = {d.name for d in demos}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise UserInputError(
            f"unknown demo(s) {', '.join(unknown)} in --only; known: {', '.join(sorted(known))}"
        )
    return [d for d in demos if d.name in only]


def build_demo(demo: Demo) -> BuiltDemo:
    """Call ``demo.build()``; an exception is kept to be shown in the demo's tab."""
    try:
        return BuiltDemo(demo, blocks=demo.build())
    except Exception as exc:  # one broken demo must not take the suite down
        print(f"tunesmith: demo {demo.name!r} failed to build:", file=sys.stderr)
        traceback.print_exc()
        return BuiltDemo(demo, error=f"{type(exc).__name__}: {exc}")


def build_suite(only: list[str] | None = None) -> Any:
    """The suite as one ``gradio.Blocks`` with a tab per demo."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    built = [build_demo(demo) for demo in collect_demos(only)]
    with gr.Blocks(title="tunesmith") as app:
        gr.Markdown(
            "# tunesmith\nFine-tune, explain and serve small transformer models on your own "
            "text. Each tab is a plugin's demo; models load when first used."
        )
        with gr.Tabs():
            for item in built:
                with gr.Tab(item.demo.title, id=item.demo.name, elem_id=f"tab-{item.demo.name}"):
                    if item.error is not None:
                        gr.HTML(
                            '<div class="tunesmith-demo-error" role="alert">'
                            f"<strong>This demo failed to build.</strong><br>"
                            f"<code>{html.escape(item.error)}</code></div>"
                        )
                    elif item.blocks is not None:
                        item.blocks.render()
    return app
