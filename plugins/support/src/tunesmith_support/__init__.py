"""tunesmith-support: Answers customer questions from a knowledge base and hands off to a person when unsure."""

__version__ = "0.1.0"
