"""tunesmith-support: Answers customer questions from a knowledge base and hands off to a person when unsure.

From Python (docs/support.md, "From Python")::

    import tunesmith_support as support

    support.index("faq.csv", "kb")
    with support.load("kb") as kb:  # KnowledgeBase.open("kb"), the earlier name, works too
        kb.calibrate("history.csv")
        turn = kb.ask("how much is delivery?")

Each function returns what its command's ``--json`` prints; mistakes raise the one-line
:class:`~tunesmith.errors.UserInputError` the command prints.
"""

from __future__ import annotations

# Not typing.TYPE_CHECKING: importing typing alone cost more than the rest of this package.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from tunesmith_support.python_api import KnowledgeBase, index, load

__version__ = "0.1.0"

__all__ = ["KnowledgeBase", "index", "load"]


def __getattr__(name: str) -> object:
    # The API loads at its first use: every `tunesmith` command imports this package (the
    # plugin's entry point is inside it), and none of them needs the API.
    if name in __all__:
        from tunesmith_support import python_api

        return getattr(python_api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
