"""tunesmith-finance: Scores financial news for sentiment, tracks trends per topic and raises alerts."""

__version__ = "0.1.0"
