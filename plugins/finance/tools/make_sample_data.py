"""Write the finance plugin's fictional sample data (deterministic: same files on every run).

    python plugins/finance/tools/make_sample_data.py

Writes, into ``src/tunesmith_finance/sample_data/``:

* ``headlines.jsonl``: a stream of short fictional headlines over five days (ids, ISO 8601 times in
  several time zones, source, text, and for some of them topic and tickers), with a surge of
  negative banking news on the fourth day;
* ``finance_sentences.csv`` / ``finance_sentences_eval.csv``: labelled fictional finance
  sentences (negative / neutral / positive) to fine-tune a sentiment model on.

Every company, ticker, source and event is invented.
"""

from __future__ import annotations

import csv
import json
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "tunesmith_finance" / "sample_data"

COMPANIES = {
    "banking": [("Helix Bank", "HLXB"), ("Crownstone Financial", "CRWN")],
    "tech": [("Orcana Systems", "ORCN"), ("Brightlane Software", "BRLN")],
    "energy": [("Greenfield Energy", "GRFE"), ("Northwind Petroleum", "NWPT")],
    "pharma": [("Quillon Pharma", "QLPH"), ("Vantor Biolabs", "VNTB")],
    "airlines": [("Tradewind Airways", "TWAY")],
}

HEADLINES = {
    "positive": [
        "{co} beats quarterly earnings estimates as revenue climbs {pct}%",
        "{co} raises full-year guidance on strong demand",
        "Analysts upgrade {co} to buy, citing wider margins",
        "${tk} jumps {pct}% after record orders",
        "{co} announces a {amt} billion share buyback",
        "{co} wins major contract, shares rise",
        "{co} lifts dividend as profit grows",
        "${tk} rallies after upbeat investor day",
    ],
    "negative": [
        "{co} misses earnings estimates, shares slide {pct}%",
        "{co} cuts outlook amid weak demand",
        "Analysts downgrade {co} to sell on rising costs",
        "${tk} falls {pct}% as regulators open probe",
        "{co} warns of losses after write-down",
        "{co} suspends dividend, shares tumble",
        "{co} faces lawsuit over accounting practices",
    ],
    "neutral": [
        "{co} to report quarterly results on Thursday",
        "{co} appoints new chief financial officer",
        "{co} schedules investor day for next month",
        "${tk} trading volume in line with average",
        "{co} completes previously announced reorganisation",
        "{co} files annual report with regulators",
        "{co} confirms board meeting date",
    ],
}

SURGE = [
    "Depositors pull funds from {co} as liquidity fears spread",
    "{co} shares plunge on deposit outflow worries",
    "Regional lenders slide as {co} liquidity concerns grow",
    "Rating agency puts {co} on negative watch, ${tk} sinks",
    "{co} taps emergency credit line, stock drops {pct}%",
    "Bank stocks tumble as contagion fears hit {co}",
    "${tk} halted after {pct}% plunge on funding worries",
    "Short sellers pile into {co} as deposit flight deepens",
]

MACRO = {
    "positive": [
        "Inflation cools more than expected, bonds rally",
        "Stocks climb as central bank signals rate cuts",
        "Jobs report beats forecasts, markets rise",
    ],
    "negative": [
        "Unemployment rises unexpectedly, stocks fall",
        "Central bank warns of recession risk, markets slide",
        "Bond yields spike as inflation surprises higher",
    ],
    "neutral": [
        "Central bank holds interest rates steady",
        "Markets await inflation data due on Friday",
        "Treasury to auction ten-year notes next week",
    ],
}

SOURCES = ["Ledger Wire", "Harbor Street Journal", "MarketPulse", "Tickertape Daily"]
ZONES = [
    UTC,
    timezone(timedelta(hours=1)),
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=9)),
    timezone(timedelta(hours=5, minutes=30)),
]
START = datetime(2026, 11, 2, tzinfo=UTC)
DAYS = 5
#: The negative surge: banking news on the fourth day, 13:00 to 19:00 UTC.
SURGE_START = START + timedelta(days=3, hours=13)
SURGE_END = SURGE_START + timedelta(hours=6)


def _label(rng: random.Random, negative: float) -> str:
    roll = rng.random()
    if roll < negative:
        return "negative"
    return "neutral" if roll < negative + (1 - negative) * 0.55 else "positive"


def _fill(template: str, rng: random.Random, co: str, tk: str) -> str:
    return template.format(
        co=co, tk=tk, pct=rng.choice([2, 3, 4, 5, 6, 8, 11, 14]), amt=rng.choice([1, 2, 5])
    )


def _stamp(rng: random.Random, moment: datetime) -> str:
    zone = rng.choice(ZONES)
    text = moment.astimezone(zone).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z") if zone is UTC else text


def headlines(seed: int = 27) -> list[dict]:
    """The stream, sorted by time: about 80 headlines a day, plus the banking surge."""
    rng = random.Random(seed)
    moments = [START + timedelta(seconds=rng.randrange(DAYS * 86400)) for _ in range(390)]
    surge = [
        SURGE_START
        + timedelta(seconds=rng.randrange(int((SURGE_END - SURGE_START).total_seconds())))
        for _ in range(45)
    ]
    items: list[tuple[datetime, str | None]] = [(m, None) for m in moments]
    items += [(m, "surge") for m in surge]
    items.sort(key=lambda item: item[0])
    docs = []
    for number, (moment, kind) in enumerate(items, start=1):
        if kind == "surge":
            topic = "banking"
            co, tk = rng.choice(COMPANIES["banking"])
            label = "negative" if rng.random() < 0.85 else "neutral"
            template = rng.choice(SURGE) if label == "negative" else rng.choice(HEADLINES[label])
            text = _fill(template, rng, co, tk)
            tickers = [tk]
        elif rng.random() < 0.12:
            topic, tk = "macro", None
            label = _label(rng, 0.2)
            text = rng.choice(MACRO[label])
            tickers = []
        else:
            topic = rng.choice(sorted(COMPANIES))
            co, tk = rng.choice(COMPANIES[topic])
            label = _label(rng, 0.18)
            text = _fill(rng.choice(HEADLINES[label]), rng, co, tk)
            tickers = [tk]
        doc = {
            "id": f"fx-{number:04d}",
            "time": _stamp(rng, moment),
            "source": rng.choice(SOURCES),
            "text": text,
        }
        # Half of the documents say their topic and tickers; the rest rely on the rules file.
        if rng.random() < 0.5:
            doc["topic"] = topic
            doc["tickers"] = tickers
        docs.append(doc)
    return docs


SUBJECTS = [
    "The company",
    "The bank",
    "The group",
    "The retailer",
    "The insurer",
    "The utility",
    "The chipmaker",
    "The carrier",
    "The lender",
    "The fund",
]

PREDICATES = {
    "positive": [
        "reported a sharp rise in operating profit",
        "raised its sales forecast for the year",
        "said net income doubled from a year earlier",
        "won a large order from a government customer",
        "increased its dividend by ten percent",
        "posted record revenue in the third quarter",
        "expects strong growth in the coming year",
        "returned to profit after two weak years",
        "beat analyst expectations on every line",
        "saw its shares climb to an all-time high",
        "improved its operating margin markedly",
        "received an upgrade from two brokers",
        "shares jumped after a broker raised its price target",
        "topped earnings estimates and lifted its outlook",
        "announced a large buyback as cash flow surged",
        "gained market share in every region",
        "said bookings are running well ahead of last year",
        "rallied after regulators approved its new drug",
    ],
    "negative": [
        "reported a steep drop in quarterly profit",
        "cut its earnings guidance for the year",
        "said it will lay off a fifth of its staff",
        "swung to a net loss on weak sales",
        "suspended its dividend to preserve cash",
        "warned that demand is falling sharply",
        "saw its shares slump after the results",
        "is under investigation for misleading investors",
        "missed revenue forecasts by a wide margin",
        "was downgraded to junk by a rating agency",
        "booked a large impairment charge",
        "lost a key customer to a rival",
        "shares plunged as depositors withdrew funds",
        "faces a shareholder lawsuit over its accounts",
        "tumbled after liquidity worries spread",
        "was put on negative watch by a rating agency",
        "drew on an emergency credit line",
        "fell sharply after a regulatory probe was announced",
    ],
    "neutral": [
        "will publish its interim report next week",
        "named a new head of investor relations",
        "held its annual general meeting on Tuesday",
        "said the transaction is expected to close in the spring",
        "operates in twelve countries",
        "moved its headquarters to a new office building",
        "has about four thousand employees",
        "filed its quarterly statement with the regulator",
        "said the figures are unaudited",
        "will hold a conference call for analysts",
        "did not comment on market rumours",
        "listed its shares on the main market",
        "confirmed the date of its next board meeting",
        "appointed a new chief financial officer",
        "completed the reorganisation it announced in May",
        "said trading volume was in line with the average",
        "scheduled an investor day for next month",
        "published its annual report on its website",
    ],
}


def sentences(seed: int) -> list[tuple[str, str]]:
    """Every subject with every predicate: 540 labelled sentences, shuffled."""
    rows = [
        (f"{subject} {predicate}.", label)
        for label, predicates in PREDICATES.items()
        for predicate in predicates
        for subject in SUBJECTS
    ]
    random.Random(seed).shuffle(rows)
    return rows


def write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / "headlines.jsonl").open("w", encoding="utf-8") as handle:
        for doc in headlines():
            handle.write(json.dumps(doc, ensure_ascii=False) + "\n")
    rows = sentences(seed=7)
    write_csv(OUT / "finance_sentences.csv", rows[:450])
    write_csv(OUT / "finance_sentences_eval.csv", rows[450:])


if __name__ == "__main__":
    main()
