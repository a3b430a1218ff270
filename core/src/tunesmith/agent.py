"""Who is at work: the name plugins record for the person acting when no flag gives one (an
agent closing a support hand-off, an analyst marking a finance alert).

One variable, ``$TUNESMITH_AGENT``, names that person across tunesmith. ``$USER`` is not read
here: on a shared machine or in a container it is the account's name ("support", "root"), and
a plugin that prefers it as a last resort says so itself.
"""

from __future__ import annotations

import os

#: The environment variable that names the person at work.
AGENT_ENV = "TUNESMITH_AGENT"


def env_agent() -> str:
    """``$TUNESMITH_AGENT`` on one line (runs of blanks and line breaks as one space), or ``""``
    when it is unset or blank."""
    return " ".join(os.environ.get(AGENT_ENV, "").split())
