"""The ``RunConfig`` that ``tunesmith train``'s options describe, built by field name."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _split_names(values: list[str] | None) -> list[str]:
    names: list[str] = []
    for value in values or []:
        names.extend(part.strip() for part in value.split(",") if part.strip())
    return names


#: Train options whose RunConfig field is named or shaped differently: option -> (field, convert).
#: Every other option named like a RunConfig field is copied as it is (paths as strings), so a
#: new setting is a RunConfig field plus its Typer option, and nothing else.
_RENAMED_OPTIONS: dict[str, tuple[str, Any]] = {
    "no_calibrate": ("calibrate", lambda value: not value),
    "no_feature_cache": ("feature_cache", lambda value: not value),
    "augment": ("augment", lambda value: _split_names(value)),
}


def _run_config(options: dict[str, Any]) -> Any:
    """The RunConfig the train command's ``options`` describe. An option left at ``None``
    whose field has another default (``--batch-size``) keeps the field's default."""
    import dataclasses

    from tunesmith.engine.config import RunConfig

    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    settings: dict[str, Any] = {}
    for option, value in options.items():
        name, convert = _RENAMED_OPTIONS.get(option, (option, None))
        if name not in defaults or name == "resolved":
            continue
        if convert is not None:
            value = convert(value)
        elif isinstance(value, Path):
            value = str(value)
        if value is None and defaults[name] not in (None, dataclasses.MISSING):
            continue
        settings[name] = value
    return RunConfig(**settings)
