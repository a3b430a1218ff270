"""Writes the sample catalogue (150 fictional films) and events simulated from stated tastes.

Deterministic: the same seed writes the same files, byte for byte, so the committed files can be
checked against this generator (a test does). Run ``python -m tunesmith_recommend.sample_gen DIR``.

Every title and description is made up by this module from the phrase lists below; none is a
real film. Users are simulated: each has one or two favourite genres and a favourite theme
(stated in ``users.csv``), and watches films mostly from those, rating them higher.
"""

from __future__ import annotations

import csv
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tunesmith.io import atomic_open

SEED = 20261206
START = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)

#: genre -> (title words A, title words B, protagonists, settings, conflicts, tones)
GENRES: dict[str, tuple[list[str], list[str], list[str], list[str], list[str], list[str]]] = {
    "science fiction": (
        ["Orbit", "Signal", "Quantum", "Starfall", "Nebula", "Vector"],
        ["Drift", "Protocol", "Horizon", "Colony", "Echo", "Relay"],
        ["a starship engineer", "an android archivist", "a stranded pilot", "a colony doctor"],
        [
            "on a generation ship",
            "at a mining station near Saturn",
            "on a terraformed Mars",
            "aboard an orbital habitat",
        ],
        [
            "decodes a signal from deep space",
            "discovers the crew has been cloned",
            "races to restart a failing reactor",
            "uncovers an artificial intelligence's secret",
        ],
        ["cerebral and quiet", "tense and claustrophobic", "hopeful and sweeping"],
    ),
    "space opera": (
        ["Empire", "Crown", "Fleet", "Throne", "Galaxy", "Armada"],
        ["of Suns", "of Ash", "Ascendant", "Rising", "Eternal", "of Stars"],
        ["a rebel captain", "an exiled princess", "a smuggler queen", "a young admiral"],
        [
            "across a dying galactic empire",
            "among warring star systems",
            "in the ruins of an interstellar republic",
            "on the edge of the known galaxy",
        ],
        [
            "leads a ragtag fleet against the emperor",
            "must unite rival houses before war",
            "hunts the weapon that destroyed her homeworld",
            "fights to free a captive moon",
        ],
        ["epic and operatic", "full of starship battles", "romantic and grand"],
    ),
    "romance": (
        ["Letters", "Summer", "Harbour", "Autumn", "Paper", "Lantern"],
        ["in Lisbon", "of Rain", "Hearts", "Promise", "Waltz", "at Dawn"],
        ["a bookshop owner", "a wedding photographer", "a retired violinist", "a ferry captain"],
        [
            "in a seaside town",
            "in rainy Paris",
            "at a vineyard in autumn",
            "in a small Alpine village",
        ],
        [
            "falls for a stranger who writes her letters",
            "meets a former love after twenty years",
            "must choose between a career and a summer romance",
            "pretends to be engaged for a week",
        ],
        ["warm and tender", "bittersweet", "light and charming"],
    ),
    "crime": (
        ["Cold", "Midnight", "Silent", "Broken", "Red", "Dead"],
        ["Case", "Ledger", "Alibi", "Precinct", "Witness", "Verdict"],
        ["a weary detective", "a forensic accountant", "a rookie prosecutor", "a retired burglar"],
        [
            "in a rain-soaked harbour city",
            "in 1970s Marseille",
            "in a corrupt northern town",
            "inside a family-run casino",
        ],
        [
            "tracks a serial killer who leaves riddles",
            "untangles a money-laundering ring",
            "plans one last heist",
            "investigates a murder inside her own precinct",
        ],
        ["gritty and dark", "twisty and suspenseful", "slow-burning noir"],
    ),
    "comedy": (
        ["Totally", "Accidental", "Big", "Wild", "Second", "Best"],
        ["Weekend", "Wedding", "Roommates", "Holiday", "Road Trip", "Reunion"],
        [
            "a clumsy substitute teacher",
            "two feuding brothers",
            "a failed stand-up comedian",
            "an overconfident dog walker",
        ],
        [
            "at a chaotic family wedding",
            "on a cross-country road trip",
            "at a holiday resort",
            "in a shared flat in London",
        ],
        [
            "accidentally becomes the mayor",
            "must hide a goat from the landlord",
            "swaps lives with a famous chef",
            "organises a disastrous school reunion",
        ],
        ["silly and warm-hearted", "sharp and witty", "absurd and fast-paced"],
    ),
    "horror": (
        ["Hollow", "Pale", "Whispering", "Black", "Crooked", "Drowned"],
        ["House", "Woods", "Choir", "Lake", "Doll", "Asylum"],
        [
            "a grieving mother",
            "a paranormal podcaster",
            "a night-shift nurse",
            "a lighthouse keeper",
        ],
        [
            "in an abandoned asylum",
            "in a remote cabin in the woods",
            "on a fog-bound island",
            "in an old house with a sealed room",
        ],
        [
            "hears voices from the walls",
            "is stalked by something in the lake",
            "finds a doll that moves at night",
            "wakes an ancient curse",
        ],
        ["creeping and atmospheric", "terrifying and bloody", "eerie folk horror"],
    ),
    "fantasy": (
        ["Dragon", "Rune", "Shadow", "Iron", "Moon", "Ember"],
        ["Crown", "Blade", "Keeper", "Forest", "Oath", "Song"],
        [
            "a farm girl with hidden magic",
            "an old wizard",
            "a thief with a cursed sword",
            "a young dragon rider",
        ],
        [
            "in a kingdom of floating islands",
            "in an enchanted forest",
            "beneath a mountain of dwarves",
            "in a city ruled by mages",
        ],
        [
            "goes on a quest to destroy a dark relic",
            "must tame the last dragon",
            "breaks an ancient curse on the king",
            "leads an uprising against a sorcerer",
        ],
        ["magical and adventurous", "dark and epic", "whimsical fairy tale"],
    ),
    "documentary": (
        ["Deep", "Hidden", "Wild", "Lost", "Living", "Frozen"],
        ["Oceans", "Kingdoms", "Rivers", "Cities", "Planet", "Forests"],
        [
            "marine biologists",
            "a team of volcanologists",
            "an indigenous community",
            "urban beekeepers",
        ],
        [
            "in the Pacific deep sea",
            "across the Arctic",
            "in the Amazon rainforest",
            "in the heart of Tokyo",
        ],
        [
            "follow the migration of humpback whales",
            "document a glacier's retreat",
            "protect a forest from logging",
            "rebuild bee colonies on rooftops",
        ],
        ["observational nature film", "urgent climate story", "intimate and patient"],
    ),
    "animation": (
        ["Little", "Brave", "Tiny", "Magic", "Sunny", "Cosmic"],
        ["Fox", "Robot", "Penguin", "Kite", "Tugboat", "Owl"],
        [
            "a curious fox cub",
            "a small repair robot",
            "a penguin who cannot swim",
            "a girl and her paper kite",
        ],
        [
            "in a town of talking animals",
            "in a junkyard city",
            "at the South Pole",
            "in a world painted in watercolours",
        ],
        [
            "sets out to find her lost family",
            "learns to fly with help from friends",
            "saves the forest festival",
            "builds a rocket to reach the moon",
        ],
        ["family-friendly and funny", "gentle and heartwarming", "colourful musical adventure"],
    ),
    "thriller": (
        ["Zero", "Final", "Blind", "Dark", "Last", "Double"],
        ["Hour", "Agent", "Exchange", "Cipher", "Target", "Signal"],
        ["a disgraced spy", "a hacker on the run", "an airline pilot", "a journalist"],
        [
            "in Cold War Berlin",
            "in a locked-down skyscraper",
            "on a night train across Europe",
            "during a hostage crisis at an embassy",
        ],
        [
            "must stop a bomb before midnight",
            "uncovers a conspiracy in the government",
            "is framed for an assassination",
            "has to trust the enemy to survive",
        ],
        ["pulse-pounding espionage", "paranoid and cerebral", "relentless action"],
    ),
}

#: themes cut across genres; each user also has a favourite one
THEMES = {
    "strong female lead": "Led by a fierce, resourceful heroine.",
    "found family": "A story about strangers who become a family.",
    "music": "Music and song run through every scene.",
    "food": "Told through cooking, kitchens and shared meals.",
    "sea": "Much of it takes place at sea or on the coast.",
    "history": "Set against real historical upheaval.",
}


def make_items(rng: random.Random) -> list[dict[str, str]]:
    """150 films: 15 per genre, each with a second genre 1 time in 3 and one theme."""
    items: list[dict[str, str]] = []
    names = sorted(GENRES)
    used_titles: set[str] = set()
    theme_names = sorted(THEMES)
    number = 1
    for genre in names:
        words_a, words_b, people, settings, conflicts, tones = GENRES[genre]
        for _ in range(15):
            while True:
                title = f"{rng.choice(words_a)} {rng.choice(words_b)}"
                if rng.random() < 0.25:
                    title = f"The {title}"
                if title not in used_titles:
                    used_titles.add(title)
                    break
            theme = rng.choice(theme_names)
            genres = [genre]
            if rng.random() < 1 / 3:
                genres.append(rng.choice([g for g in names if g != genre]))
            person = rng.choice(people)
            description = (
                f"{person[0].upper()}{person[1:]} {rng.choice(settings)} "
                f"{rng.choice(conflicts)}. {rng.choice(tones).capitalize()}. {THEMES[theme]}"
            )
            items.append(
                {
                    "item_id": f"f{number:03d}",
                    "title": title,
                    "year": str(1995 + rng.randrange(31)),
                    "genres": "|".join(genres),
                    "theme": theme,
                    "description": description,
                }
            )
            number += 1
    return items


def make_users(rng: random.Random, n_users: int = 60) -> list[dict[str, str]]:
    """Users with one or two favourite genres and one favourite theme (their stated tastes)."""
    names = sorted(GENRES)
    users = []
    for number in range(1, n_users + 1):
        favourite = rng.sample(names, 2 if rng.random() < 0.5 else 1)
        users.append(
            {
                "user_id": f"u{number:02d}",
                "favourite_genres": "|".join(favourite),
                "favourite_theme": rng.choice(sorted(THEMES)),
            }
        )
    return users


def _appeal(user: dict[str, str], item: dict[str, str]) -> float:
    """How much a user's stated tastes match a film: genre counts most, theme a little."""
    liked = set(user["favourite_genres"].split("|"))
    genres = item["genres"].split("|")
    score = 3.0 if genres[0] in liked else (1.5 if set(genres) & liked else 0.0)
    if item["theme"] == user["favourite_theme"]:
        score += 1.0
    return score


def make_events(
    rng: random.Random, users: list[dict[str, str]], items: list[dict[str, str]]
) -> list[dict[str, str]]:
    """Each user watches 3-24 films over twelve weeks, chosen by appeal, and rates them 1-5."""
    # A few films are broadly popular, so popularity is a real (but beatable) baseline.
    buzz = {item["item_id"]: rng.random() ** 3 for item in items}
    events = []
    for user in users:
        count = rng.choice([3, 3, 4, 5, 6, 8, 10, 12, 15, 18, 24])
        weights = [2.0 ** _appeal(user, item) + 4 * buzz[item["item_id"]] for item in items]
        chosen: list[dict[str, str]] = []
        pool = list(items)
        for _ in range(count):
            pick = rng.choices(range(len(pool)), weights=weights)[0]
            chosen.append(pool.pop(pick))
            weights.pop(pick)
        moment = START + timedelta(days=rng.randrange(14), minutes=rng.randrange(1440))
        for item in chosen:
            appeal = _appeal(user, item)
            rating = max(1, min(5, round(1.6 + appeal * 0.8 + rng.gauss(0, 0.7))))
            events.append(
                {
                    "user_id": user["user_id"],
                    "item_id": item["item_id"],
                    "rating": str(rating),
                    "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            )
            moment += timedelta(days=rng.randrange(1, 6), minutes=rng.randrange(1440))
    events.sort(key=lambda e: (e["timestamp"], e["user_id"]))
    return events


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with atomic_open(path) as handle:
        writer = csv.DictWriter(handle, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def generate(out: str | Path, seed: int = SEED) -> dict[str, Path]:
    """Write items.csv, users.csv and events.csv into ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    items = make_items(rng)
    users = make_users(rng)
    events = make_events(rng, users, items)
    paths = {"items": out / "items.csv", "users": out / "users.csv", "events": out / "events.csv"}
    _write(paths["items"], items)
    _write(paths["users"], users)
    _write(paths["events"], events)
    return paths


if __name__ == "__main__":  # pragma: no cover - a maintenance script
    generate(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "sample_data")
