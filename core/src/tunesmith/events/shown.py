"""Sink URLs as logs, stderr and a delivery's last error show them: tokens hidden."""

from __future__ import annotations

import hashlib


def shown_url(url: str) -> str:
    """``url`` as logs and error messages show it: its scheme, host and port, with the user
    info, path, query and fragment (where webhook services keep their token, such as
    ``https://hooks.slack.com/services/T.../B.../SECRET``) replaced by a fingerprint of the whole
    URL, so that two webhooks on one host still read apart. The outbox keeps the full URL."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or not parts.scheme or not parts.hostname:
        return f"<url {hashlib.sha256(url.encode('utf-8', 'replace')).hexdigest()[:8]}>"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    base = f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    if (
        parts.username is None
        and parts.password is None
        and not (parts.path.strip("/") or parts.query or parts.fragment)
    ):
        return base + parts.path
    fingerprint = hashlib.sha256(url.encode("utf-8", "replace")).hexdigest()[:8]
    return f"{base}/<hidden {fingerprint}>"


def shown_sink(name: str) -> str:
    """A sink's recorded name as logs show it: a URL in it (``webhook:https://...``, or a
    plugin's ``scheme:https://...``) passed through :func:`shown_url`; other names as they are."""
    scheme, _, rest = name.partition(":")
    if "://" in rest:
        return f"{scheme}:{shown_url(rest)}"
    return name


def without_secrets(text: str, name: str) -> str:
    """``text`` (an error of a delivery to sink ``name``) with the sink's URL, which may hold a
    token, replaced by its :func:`shown_sink` form."""
    shown = shown_sink(name)
    if shown == name:
        return text
    _scheme, _, rest = name.partition(":")
    return text.replace(name, shown).replace(rest, shown.partition(":")[2])
