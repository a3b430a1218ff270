"""tunesmith: fine-tune, explain and serve small transformer models on your own text.

Nothing heavy is imported here, so that ``import tunesmith`` and the CLI start fast.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

#: Marker for plugin hook implementations: ``@tunesmith.hookimpl``.
hookimpl = pluggy.HookimplMarker("tunesmith")

__all__ = ["__version__", "hookimpl"]
