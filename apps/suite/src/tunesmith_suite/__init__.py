"""tunesmith-suite: the web app that serves every registered demo as a tab."""

__version__ = "0.1.0"
