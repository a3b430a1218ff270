"""tunesmith-recommend: Recommends items from their text and what users liked.

From Python (docs/recommend.md, "From Python")::

    import tunesmith_recommend as recommend

    recommend.train("films", sample=True, fine_tune=False)
    model = recommend.load("films")
    model.for_user("u01")
    model.for_liked(["f001", "f017"])
    model.search("a haunted lake")
    model.add_events("day.csv")

Each function returns what its command's ``--json`` prints (for recommendations, its
``items``); mistakes raise the one-line :class:`~tunesmith.errors.UserInputError` the command
prints.
"""

from __future__ import annotations

# Not typing.TYPE_CHECKING: importing typing alone cost more than the rest of this package.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from tunesmith_recommend.python_api import RecommendModel, evaluate_models, load, train

__version__ = "0.1.0"

# No name here may be a module of this package: importing the module would replace the
# function (``evaluate`` is one, hence ``evaluate_models``).
__all__ = ["RecommendModel", "evaluate_models", "load", "train"]


def __getattr__(name: str) -> object:
    # The API loads at its first use: every `tunesmith` command imports this package (the
    # plugin's entry point is inside it), and none of them needs the API.
    if name in __all__:
        from tunesmith_recommend import python_api

        return getattr(python_api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
