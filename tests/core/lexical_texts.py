"""Six finance headlines and their sentiment: the lexical model's tests train on them."""

LABELS = ["negative", "neutral", "positive"]
TEXTS = [
    "shares plunge on heavy losses",
    "stock falls after weak guidance",
    "results due on thursday",
    "company to present at conference",
    "profit beats estimates",
    "shares jump on record revenue",
]
TARGETS = ["negative", "negative", "neutral", "neutral", "positive", "positive"]
