"""Where tunesmith keeps its own files: ``$TUNESMITH_HOME``, else ``~/.cache/tunesmith``."""

from __future__ import annotations

import os
from pathlib import Path


def tunesmith_home() -> Path:
    """``$TUNESMITH_HOME``, or ``~/.cache/tunesmith`` when the variable is unset or empty.

    The outbox, its key and the demos' models live there; tests point the variable at a temporary
    folder so that nothing is written into the user's home."""
    return Path(os.environ.get("TUNESMITH_HOME") or Path.home() / ".cache" / "tunesmith")
