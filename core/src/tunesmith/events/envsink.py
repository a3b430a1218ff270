"""The ``env:NAME`` sink: the real sink (``webhook:https://...`` with its token) read from the
environment variable ``NAME``, so that the secret is on no command line (``ps`` shows those to
every user of the machine) and not in the outbox, which records ``env:NAME``."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.events.shown import without_secrets
from tunesmith.hooktypes import Event

#: A variable name as shells take it (``export NAME=...``).
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: What the variable may hold, said in every error instead of its value.
_EXAMPLE = "the sink itself, such as webhook:https://... or jsonl:PATH.jsonl"


def env_sink_spec(variable: str) -> str:
    """The sink spec the environment variable ``variable`` holds, stripped of surrounding
    whitespace; a UserInputError naming the variable, never its value, when the name is not a
    variable's, or it is unset, empty or holds another ``env:`` sink."""
    if not _VARIABLE.match(variable):
        # A URL typed after env: by mistake holds its token: not echoed.
        given = f", got {variable!r}" if variable and not set(":/@?") & set(variable) else ""
        raise UserInputError(
            "the env sink names an environment variable: env:NAME (letters, digits and _, "
            f"not starting with a digit){given}"
        )
    where = f"event sink env:{variable}: the environment variable {variable}"
    value = os.environ.get(variable)
    if value is None:
        raise UserInputError(f"{where} is not set; set it to {_EXAMPLE}")
    value = value.strip()
    if not value:
        raise UserInputError(f"{where} is empty; set it to {_EXAMPLE}")
    if value.partition(":")[0] == "env":
        raise UserInputError(f"{where} holds another env: sink; set it to {_EXAMPLE}")
    return value


class EnvSink:
    """Delivers to the sink the environment variable ``variable`` holds, read when built
    (``events retry`` in another process reads it again); recorded as ``env:VARIABLE``.

    Errors, of building or of a send, never show the variable's value: a URL in it is shown
    as logs show it (:func:`~tunesmith.events.shown.shown_url`), anything else of it replaced.
    """

    def __init__(
        self,
        variable: str,
        *,
        make_sink: Callable[[str], Any],
        sink_factories: Callable[[], dict[str, Any]],
    ) -> None:
        """``make_sink`` and ``sink_factories``: :mod:`tunesmith.events.sinks`' (passed in by
        it, which imports this module: no import cycle)."""
        self.variable = variable
        self.sink_url = f"env:{variable}"
        spec = env_sink_spec(variable)
        self._spec = spec
        scheme, _, rest = spec.partition(":")
        self._secrets = {spec, rest}
        if scheme == "webhook" and rest.startswith("//"):  # make_sink's shorthand for https:
            self._secrets.add(f"https:{rest}")
        self._secrets |= {repr(s)[1:-1] for s in self._secrets}
        factories = sink_factories()
        if scheme not in factories:
            hint = (
                "; write webhook: before its URL"
                if spec.startswith(("http://", "https://"))
                else ""
            )
            raise UserInputError(
                f"event sink env:{variable}: the environment variable {variable} holds no known "
                f"sink (known: {', '.join(sorted(set(factories) - {'env'}))}){hint}"
            )
        try:
            self.inner: Any = make_sink(spec)
        except UserInputError as exc:
            raise UserInputError(
                f"event sink env:{variable}: the environment variable {variable} holds a sink "
                f"that cannot be built: {self._hidden(str(exc))}"
            ) from None
        inner_url = getattr(self.inner, "sink_url", None)
        if isinstance(inner_url, str) and inner_url:
            self._secrets |= {inner_url, inner_url.partition(":")[2]}

    def send(self, event: Event) -> None:
        try:
            self.inner.send(event)
        except Exception as exc:
            # Recorded in the outbox and said on stderr under env:NAME, which the delivery's
            # own scrubbing (by recorded name) cannot match to the URL the variable holds.
            text = str(exc)
            hidden = self._hidden(text)
            if hidden == text:
                raise
            if isinstance(exc, TimeoutError):  # still a timeout: the delivery holds the sink
                raise TimeoutError(hidden) from None
            raise RuntimeError(f"{type(exc).__name__}: {hidden}") from None

    def _hidden(self, text: str) -> str:
        """``text`` without the variable's value: a URL in its shown form, the rest replaced."""
        text = without_secrets(text, self._spec)
        for secret in sorted(self._secrets, key=len, reverse=True):
            if len(secret) >= 4:  # "" or "x" would cut up every word
                text = text.replace(secret, f"<the value of {self.variable}>")
        return text
