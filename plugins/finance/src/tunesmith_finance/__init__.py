"""tunesmith-finance: Scores financial news for sentiment, tracks trends per topic and raises alerts.

From Python (docs/finance.md, "From Python")::

    import tunesmith_finance as finance

    model = finance.load("runs/fin")  # load_model, the earlier name, works too
    finance.score(["Helix Bank shares plunge on deposit worries"], model)
    monitor = finance.Monitor("runs/fin.sqlite")
    monitor.ingest("headlines.jsonl", model)  # or a DataFrame, records, texts=[...]
    rows = monitor.trends(by="topic", bucket="6h")

Each function returns what its command's ``--json`` prints; mistakes raise the one-line
:class:`~tunesmith.errors.UserInputError` the command prints.
"""

from __future__ import annotations

# Not typing.TYPE_CHECKING: importing typing alone cost more than the rest of this package.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from tunesmith_finance.python_api import Monitor, load, load_model, score

__version__ = "0.1.0"

__all__ = ["Monitor", "load", "load_model", "score"]


def __getattr__(name: str) -> object:
    # The API loads at its first use: every `tunesmith` command imports this package (the
    # plugin's entry point is inside it), and none of them needs the API.
    if name in __all__:
        from tunesmith_finance import python_api

        return getattr(python_api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
