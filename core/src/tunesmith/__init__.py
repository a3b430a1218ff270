"""tunesmith: fine-tune, explain and serve small transformer models on your own text.

From Python (docs/cli.md, "From Python")::

    import tunesmith

    tunesmith.train("train.csv", "runs/intents", eval_data="eval.csv")
    model = tunesmith.load("runs/intents")
    model.predict(["my card never arrived"])

Nothing heavy is imported here, so that ``import tunesmith`` and the CLI start fast: the
Python API loads at its first use.
"""

from __future__ import annotations

import pluggy

# Not typing.TYPE_CHECKING: importing typing costs more than the rest of this module.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from tunesmith.python_api import Model, load, train

__version__ = "0.1.0"

#: Marker for plugin hook implementations: ``@tunesmith.hookimpl``.
hookimpl = pluggy.HookimplMarker("tunesmith")

#: The Python API (tunesmith/python_api.py), resolved on first use.
_API = ("Model", "load", "train")

__all__ = ["Model", "__version__", "hookimpl", "load", "train"]


def __getattr__(name: str) -> object:
    # Every `tunesmith` command and plugin imports this package; none of them needs the API.
    # By name, not an import statement: the facade sits above every layer of the core, while
    # the layers import this package for `__version__` and `hookimpl` only; the import
    # linter would read a statement here as engine -> commands through the package.
    if name in _API:
        import importlib

        return getattr(importlib.import_module("tunesmith.python_api"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
