"""Reading, validating, cleaning and augmenting labelled text."""
