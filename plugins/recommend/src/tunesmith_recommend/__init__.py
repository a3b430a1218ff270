"""tunesmith-recommend: Recommends items from their text and what users liked."""

__version__ = "0.1.0"
