"""Run the suite as it is on a hosting platform: ``python -m tunesmith_suite.app``."""

from __future__ import annotations

import os

from tunesmith.ui.a11y import page_options
from tunesmith.ui.launch import preload_transformers, serve
from tunesmith_suite.suite import build_suite

demo = build_suite()
preload_transformers()  # the tabs' first actions run in parallel threads

if __name__ == "__main__":
    serve(
        demo,
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        **page_options(),
    )
