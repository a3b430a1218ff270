"""The ``tunesmith support`` commands, one module per command or close group of commands.

``index.py`` (build or update a KB), ``train_calibrate.py`` (``train`` and ``calibrate``),
``ask_chat.py`` (``ask`` and ``chat``), ``eval.py``, ``feedback_stats.py`` (``feedback``,
``export-feedback`` and ``stats``), ``serve.py`` (the HTTP API), ``demo.py`` (the Gradio demo
alone) and ``about.py``; ``shared.py`` holds the options, the KB's run lock and the service
several of them use. ``tunesmith_support.cli`` makes the Typer group of them.

Heavy libraries and the plugin's own work modules are imported inside the command bodies, so
``tunesmith --help`` stays fast.
"""
