"""The rule each numeric training setting must meet, written once.

``RunConfig.validate`` applies them to ``tunesmith train``'s settings; the pair training, the
plugins' commands (``support train --classifier-epochs``, ``recommend train
--encoder-epochs``) and their Python APIs apply the same rules under their own flags, so a value
is refused with the same words wherever it is given. A Python API's ``keyword_errors`` then
says the keyword instead of the flag. Light module: no torch, no transformers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from tunesmith.errors import UserInputError

#: numpy's and torch's seeding take an unsigned 32-bit number.
MAX_SEED = 2**32 - 1


def invalid(flag: str, value: Any, expected: str) -> UserInputError:
    """The one wording of a refused setting: ``--epochs 0 is not valid; expected ...``."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # 2, not np.int64(2): the number the user gave
    return UserInputError(f"{flag} {value!r} is not valid; expected {expected}")


@dataclass(frozen=True)
class Rule:
    """What a setting must be: ``accepts`` a number (an ``int`` when ``whole``)."""

    flag: str
    expected: str
    accepts: Callable[[Any], bool]
    whole: bool = False


def _finite_above_zero(value: float) -> bool:
    # NaN fails every comparison and inf passes "> 0": the Trainer then raised an
    # OverflowError, or trained to NaN weights and saved them without a word.
    return value > 0 and math.isfinite(value)


def _finite_weight(value: float) -> bool:
    return 0 <= value < math.inf


#: The rules by the setting's name, each a ``RunConfig`` field (``validate`` checks them all);
#: ``flag`` is ``tunesmith train``'s.
RULES: dict[str, Rule] = {
    "seed": Rule(
        "--seed", f"a whole number from 0 to {MAX_SEED}", lambda v: 0 <= v <= MAX_SEED, True
    ),
    "epochs": Rule("--epochs", "a finite number above 0", _finite_above_zero),
    # 1 or more, NaN or infinity: an encoder that embeds every text alike, or NaN weights
    "lr": Rule("--lr", "a number between 0 and 1", lambda v: 0 < v < 1),
    "batch_size": Rule("--batch-size", "a whole number of at least 1", lambda v: v >= 1, True),
    # fewer leaves no room for a word between [CLS] and [SEP]
    "max_length": Rule("--max-length", "a whole number of at least 4", lambda v: v >= 4, True),
    "early_stopping": Rule(
        "--early-stopping", "0 (off) or a patience of 1 or more", lambda v: v >= 0, True
    ),
    "eval_fraction": Rule("--eval-fraction", "a fraction from 0 up to 0.5", lambda v: 0 <= v < 0.5),
    "save_steps": Rule("--save-steps", "a whole number of at least 1", lambda v: v >= 1, True),
    "contrastive": Rule("--contrastive", "a finite weight of 0 (off) or more", _finite_weight),
    "wise_ft": Rule("--wise-ft", "a weight from 0 (the start) to 1 (off)", lambda v: 0 <= v <= 1),
    "label_smoothing": Rule(
        "--label-smoothing", "a share from 0 (off) below 1", lambda v: 0 <= v < 1
    ),
    "rdrop": Rule("--rdrop", "a finite weight of 0 (off) or more", _finite_weight),
    "lexical": Rule("--lexical", "a share from 0 (off) below 1", lambda v: 0 <= v < 1),
    # No flag: a Python keyword. 1 or more would be read by the Trainer as a number of steps.
    "warmup_ratio": Rule(
        "warmup_ratio", "a share of the steps from 0 below 1", lambda v: 0 <= v < 1
    ),
    "layer_decay": Rule("--layer-decay", "a factor above 0, at most 1 (off)", lambda v: 0 < v <= 1),
    "average_epochs": Rule(
        "--average-epochs", "0 (off) or a number of epochs >= 2", lambda v: v == 0 or v >= 2, True
    ),
    "pseudo_threshold": Rule(
        "--pseudo-threshold", "a probability above 0, at most 1", lambda v: 0 < v <= 1
    ),
    "pseudo_rounds": Rule(
        "--pseudo-rounds", "a whole number of rounds, at least 1", lambda v: v >= 1, True
    ),
    "lora_r": Rule("--lora-r", "a whole number of at least 1", lambda v: v >= 1, True),
    "lora_alpha": Rule("--lora-alpha", "a whole number of at least 1", lambda v: v >= 1, True),
}


def _is_number(value: Any, whole: bool) -> bool:
    """An int (numpy's too) when ``whole``, else any real number; never a bool or a string."""
    if isinstance(value, bool):
        return False
    return isinstance(value, Integral if whole else Real)


def check_setting(name: str, value: Any, flag: str | None = None) -> Any:
    """``value`` if it meets the rule of the setting ``name`` (a key of :data:`RULES`), else a
    :class:`UserInputError` naming ``flag`` (default: ``tunesmith train``'s)."""
    rule = RULES[name]
    if not (_is_number(value, rule.whole) and rule.accepts(value)):
        raise invalid(flag or rule.flag, value, rule.expected)
    return value


def check_settings(values: Mapping[str, Any], flags: Mapping[str, str] | None = None) -> None:
    """Check each of ``values`` (setting name -> value; ``None``: not given, so not checked)
    by its rule, in order; ``flags`` names the caller's flag or keyword for a setting whose
    name differs from ``tunesmith train``'s (``{"epochs": "--classifier-epochs"}``)."""
    for name, value in values.items():
        if value is not None:
            check_setting(name, value, (flags or {}).get(name))


def check_epochs(value: Any, flag: str = "--epochs") -> float:
    """``value`` if it is a finite number of epochs above 0, else a :class:`UserInputError`."""
    return check_setting("epochs", value, flag)


def check_seed(seed: Any, flag: str = "--seed") -> int:
    """``seed`` if numpy and torch can seed with it, else a :class:`UserInputError`."""
    return check_setting("seed", seed, flag)
