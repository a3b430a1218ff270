"""What a model's items are called (``train --item-noun``), in the singular and the plural.

The rule (docs/recommend.md, *Your own data*): ``--item-noun`` is the singular, and the plural is
made by the regular English endings (``book`` -> ``books``, ``box`` -> ``boxes``, ``story`` ->
``stories``; the last word of ``audio book``), with a few nouns known by heart (``series``,
``person`` -> ``people``); or both are given as ``singular/plural``. A single word that already
ends in one ``s`` (``novels``, ``bus``) is refused: it cannot be told from a plural, and the rule
turned ``novels`` into "novelss".
"""

from __future__ import annotations

from typing import Any

from tunesmith.errors import UserInputError

#: What an item is called when the model's ``meta.json`` does not say.
ITEM_NOUN = "item"
#: The longest ``--item-noun`` (it is a word or two in the demo's labels and messages).
ITEM_NOUN_CHARS = 40
#: Plurals the endings get wrong, and singulars that end in "s" (their own plural).
IRREGULAR = {
    "person": "people",
    "child": "children",
    "man": "men",
    "woman": "women",
    "series": "series",
    "species": "species",
}


def plural(noun: str) -> str | None:
    """The plural of ``noun`` by the regular endings (its last word), or None when the noun
    already ends in a single "s" and so may be a plural itself."""
    head, space, last = noun.rpartition(" ")
    lower = last.casefold()
    if lower in IRREGULAR:
        many = IRREGULAR[lower]
        # the table's word in the case it was typed in ("Person" -> "People")
        many = many.capitalize() if last[:1].isupper() else many
    elif lower.endswith("s") and not lower.endswith("ss"):
        return None
    elif lower.endswith(("ss", "x", "z", "ch", "sh")):
        many = f"{last}es"
    elif len(lower) > 1 and lower.endswith("y") and lower[-2] not in "aeiou":
        many = f"{last[:-1]}ies"
    else:
        many = f"{last}s"
    return f"{head}{space}{many}"


def item_noun_meta(value: str) -> dict[str, str]:
    """``meta.json``'s words for an item from ``train --item-noun``: ``book`` (plural by
    :func:`plural`), or ``singular/plural`` (``person/people``). A blank, over-long, unprintable
    or plural-looking single noun is a :class:`UserInputError`."""
    one, slash, many = (part.strip() for part in value.partition("/"))
    usage = (
        "give what one item is, like 'book', or 'singular/plural' like 'person/people' "
        f"(one line, at most {ITEM_NOUN_CHARS} characters)"
    )
    # printable: no newline, control character or lone surrogate in a label or a message
    if (
        not one
        or (slash and (not many or "/" in many))
        or len(value) > ITEM_NOUN_CHARS
        or not all(ch.isprintable() for ch in one + many)
    ):
        raise UserInputError(f"--item-noun {value!r}: {usage}")
    if not slash:
        found = plural(one)
        if found is None:
            raise UserInputError(
                f"--item-noun {value!r} ends in 's', so it may be a plural: give the singular "
                "('book', not 'books'), or both as 'singular/plural' ('novel/novels', "
                "'bus/buses')"
            )
        many = found
    return {"item_noun": one, "item_noun_plural": many}


def item_nouns(meta: dict[str, Any] | None) -> tuple[str, str]:
    """(singular, plural) of what the model's items are, from its ``meta.json``: ``("item",
    "items")`` for a model trained without ``--item-noun`` (or before it was recorded)."""
    meta = meta or {}
    one, many = meta.get("item_noun"), meta.get("item_noun_plural")
    if isinstance(one, str) and isinstance(many, str) and one and many:
        if many == f"{one}s" and one.casefold().endswith("s"):
            # Written before a lone plural was refused: `--item-noun novels` was stored with
            # the plural "novelss" (and "series" with "seriess"). The word as typed stands for
            # both unless its plural is known: it may be a plural ("novels") or a singular
            # ("bus"). `train --item-noun novel` records the pair.
            return one, plural(one) or one
        return one, many
    return ITEM_NOUN, f"{ITEM_NOUN}s"
