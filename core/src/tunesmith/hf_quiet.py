"""Keeping transformers' load reports and progress bars off the user's terminal.

Two needs, one place: a whole training run silences transformers for good
(:func:`silence_transformers`); loading a model for a command silences it only while loading and
then puts the settings back (:func:`quiet_transformers`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator


def silence_transformers() -> None:
    """Silence load reports and weight-loading progress bars for the rest of the process."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' progress bars, load reports and deprecation notices while inside,
    then restore the verbosity and progress bars as they were."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    silence_transformers()
    try:
        with warnings.catch_warnings():
            # Deprecation notices from inside transformers/peft are not the user's business.
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
