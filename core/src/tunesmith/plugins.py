"""The plugin manager: built-ins first, then entry points of the group ``tunesmith``, one by one.

A plugin that fails to import or register is reported on stderr and skipped, and the rest work.
The same holds at run time: :func:`call_each` calls every plugin's implementation of a hook in its
own ``try``, so one that raises is recorded (``tunesmith plugins`` shows it) and skipped.
``TUNESMITH_STRICT_PLUGINS=1`` re-raises instead (CI sets it).

Every caller merges hook results through :func:`collect_list` / :func:`collect_dict`, with one
rule: results come in registration order (built-ins first, then installed plugins by entry-point
name, then any registered later), and on a name clash the plugin registered last wins. ``TUNESMITH_DISABLE_PLUGINS=a,b``
blocks plugins by entry-point name. ``TUNESMITH_TRACE_PLUGINS=1`` prints every hook call.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy

from tunesmith import hookspecs
from tunesmith.errors import PluginError
from tunesmith.home import tunesmith_home

GROUP = "tunesmith"
BUILTINS = ("tunesmith.builtins",)


@dataclass
class PluginRecord:
    """What ``tunesmith plugins`` shows for one plugin."""

    name: str
    distribution: str | None
    version: str | None
    hooks: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: What a plugin's folder may be called: its entry-point name, so never a path.
_PLUGIN_NAME = re.compile(r"[a-z][a-z0-9_-]*")


def plugin_home(name: str) -> Path:
    """The folder plugin ``name`` keeps its own files in, ``$TUNESMITH_HOME/plugins/<name>``,
    made if missing (a plugin's default database, say ``plugin_home("moderation") /
    "queue.sqlite"``).

    Under ``plugins/`` so that no plugin name can land on the core's own files there
    (``events.sqlite``, ``outbox.key``, ``demo-models``). ``name`` is the entry-point name:
    lower-case letters, digits, ``-`` and ``_``; anything else (a path, ``..``) is a
    ``ValueError``, since a plugin that builds it from user text must not write elsewhere."""
    if not isinstance(name, str) or not _PLUGIN_NAME.fullmatch(name):
        raise ValueError(
            f"a plugin's folder name is lower-case letters, digits, '-' and '_', not {name!r}"
        )
    folder = tunesmith_home() / "plugins" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


_pm: pluggy.PluginManager | None = None
_records: dict[str, PluginRecord] = {}
_reported: set[tuple[str, str]] = set()  # (plugin, hook) failures already printed


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def disabled_plugins() -> set[str]:
    """Names listed in ``TUNESMITH_DISABLE_PLUGINS`` (comma-separated)."""
    raw = os.environ.get("TUNESMITH_DISABLE_PLUGINS", "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def _hook_names(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    return sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])


def _register_builtins(pm: pluggy.PluginManager) -> None:
    import importlib

    for modname in BUILTINS:
        module = importlib.import_module(modname)
        pm.register(module, name=modname)
        _records[modname] = PluginRecord(
            name=modname,
            distribution="tunesmith",
            version=_version("tunesmith"),
            hooks=_hook_names(pm, module),
        )


def _version(distribution: str | None) -> str | None:
    if not distribution:
        return None
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _load_entry_point(pm: pluggy.PluginManager, ep: metadata.EntryPoint, strict: bool) -> None:
    dist = ep.dist.name if ep.dist is not None else None
    record = PluginRecord(name=ep.name, distribution=dist, version=_version(dist))
    _records[ep.name] = record
    try:
        plugin = ep.load()
        if pm.get_plugin(ep.name) is not None:
            raise PluginError(f"a plugin named {ep.name!r} is registered already")
        pm.register(plugin, name=ep.name)
        record.hooks = _hook_names(pm, plugin)
    except Exception as exc:  # a broken plugin must not take the others down
        record.error = f"{type(exc).__name__}: {exc}"
        if strict:
            raise
        print(
            f"tunesmith: plugin {ep.name!r} ({dist or 'unknown distribution'}) failed to load "
            f"and was skipped: {record.error}",
            file=sys.stderr,
        )


def _drop_unknown_hooks(pm: pluggy.PluginManager, strict: bool) -> None:
    """Reject a plugin whose hook names match no spec (usually a typo), after all have loaded.

    Checked only now because a plugin may add hookspecs of its own for another to implement.
    """
    for name, record in _records.items():
        plugin = pm.get_plugin(name)
        if plugin is None or record.error or name in BUILTINS:
            continue
        unknown = sorted(c.name for c in pm.get_hookcallers(plugin) or [] if not c.has_spec())
        if not unknown:
            continue
        pm.unregister(plugin)
        record.error = f"PluginError: unknown hook(s) {', '.join(unknown)}"
        if strict:
            raise PluginError(f"plugin {name!r}: {record.error}")
        print(f"tunesmith: plugin {name!r} skipped: {record.error}", file=sys.stderr)


def unmarked_hooks(plugin: object, hook_names: Iterable[str]) -> list[str]:
    """The functions of ``plugin`` named like one of ``hook_names`` that lack ``@hookimpl``
    (pluggy never calls them), sorted; a hookspec the plugin defines for others is not one."""
    import inspect

    found = []
    for attr in hook_names:
        function = getattr(plugin, attr, None)
        if (
            inspect.isroutine(function)
            and not hasattr(function, f"{GROUP}_impl")
            and not hasattr(function, f"{GROUP}_spec")
        ):
            found.append(attr)
    return sorted(found)


def _report_unmarked_hooks(pm: pluggy.PluginManager, strict: bool) -> None:
    """Report ``tunesmith_*`` hook functions that lack ``@hookimpl``: pluggy never calls them.

    Without this, a plugin whose author forgot the decorator loads with no error and its
    command or tab simply never appears. Its marked hooks keep working; the error is shown by
    ``tunesmith plugins`` and said once on stderr (strict mode raises).
    """
    # Only names of real hooks: a helper that happens to start with "tunesmith_" is no mistake.
    hooks = [attr for attr in dir(pm.hook) if attr.startswith("tunesmith_")]
    for name, record in _records.items():
        plugin = pm.get_plugin(name)
        if plugin is None or record.error or name in BUILTINS:
            continue
        unmarked = unmarked_hooks(plugin, hooks)
        if not unmarked:
            continue
        record.error = (
            f"PluginError: {', '.join(unmarked)} not marked with @hookimpl, so never called"
        )
        if strict:
            raise PluginError(f"plugin {name!r}: {record.error}")
        print(f"tunesmith: plugin {name!r}: {record.error}", file=sys.stderr)


def _trace(pm: pluggy.PluginManager) -> None:
    def before(hook_name: str, hook_impls: list[Any], kwargs: dict[str, Any]) -> None:
        names = ", ".join(impl.plugin_name for impl in hook_impls)
        print(f"tunesmith trace: {hook_name}({', '.join(kwargs)}) -> [{names}]", file=sys.stderr)

    def after(outcome: Any, hook_name: str, hook_impls: list[Any], kwargs: dict[str, Any]) -> None:
        return None

    pm.add_hookcall_monitoring(before, after)


def build_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    """Build a fresh manager: hookspecs, built-ins, then the installed plugins."""
    _records.clear()
    _reported.clear()
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    _register_builtins(pm)
    if load_entry_points:
        strict = _flag("TUNESMITH_STRICT_PLUGINS")
        blocked = disabled_plugins()
        seen: set[str] = set()
        for ep in sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name):
            if ep.name in blocked or ep.name in seen:
                continue
            seen.add(ep.name)
            _load_entry_point(pm, ep, strict)
        _drop_unknown_hooks(pm, strict)
        _report_unmarked_hooks(pm, strict)
    # A misspelled @hookimpl fails here, at once, not silently later.
    pm.check_pending()
    if _flag("TUNESMITH_TRACE_PLUGINS"):
        _trace(pm)
    return pm


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager, built on first use."""
    global _pm
    if _pm is None:
        _pm = build_plugin_manager()
    return _pm


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (tests use this after changing the environment)."""
    global _pm
    _pm = None
    _records.clear()
    _reported.clear()


def plugin_records() -> list[PluginRecord]:
    """One record per plugin, built-ins first, including those that failed to load.

    A plugin registered by hand (``get_plugin_manager().register(...)``, as plugin authors'
    tests do) is listed too, after the others: without this it showed only once a hook failed.
    """
    pm = get_plugin_manager()
    for name, plugin in pm.list_name_plugin():
        if name not in _records and plugin is not None:
            _records[name] = PluginRecord(name, None, None, hooks=_hook_names(pm, plugin))
    return list(_records.values())


def _record_failure(plugin_name: str, hook_name: str, exc: BaseException, plugin: object) -> None:
    """Put a run-time hook failure on the plugin's record and say it once on stderr."""
    if isinstance(exc, WrongResultError):
        error = str(exc)
    else:
        error = f"{hook_name} raised {type(exc).__name__}: {exc}"
    record = _records.get(plugin_name)
    if record is None:  # registered by hand (``pm.register``), not through an entry point
        pm = get_plugin_manager()
        record = PluginRecord(plugin_name, None, None, hooks=_hook_names(pm, plugin))
        _records[plugin_name] = record
    if not record.error:
        record.error = error
    elif error not in record.error:
        record.error += f"; {error}"
    if (plugin_name, hook_name) not in _reported:
        _reported.add((plugin_name, hook_name))
        print(f"tunesmith: plugin {plugin_name!r} skipped: {error}", file=sys.stderr)


def call_each(
    hook_name: str, /, *, on_failure: Callable[[str], None] | None = None, **kwargs: Any
) -> Iterator[tuple[str, Any]]:
    """Call each plugin's ``hook_name`` on its own, in registration order: ``(plugin, result)``,
    ``result`` None for an implementation that returned nothing.

    A plugin whose implementation raises is recorded and skipped (strict mode re-raises), so one
    broken plugin never costs the others their commands, demos, readers or sinks; then
    ``on_failure(plugin)`` may undo what it did before it raised. Calls go through pluggy
    (``subset_hook_caller``), so ``TUNESMITH_TRACE_PLUGINS`` still shows them.
    """
    pm = get_plugin_manager()
    hook = getattr(pm.hook, hook_name)
    shape = _result_shape(hook)
    impls = [impl for impl in hook.get_hookimpls() if not (impl.hookwrapper or impl.wrapper)]
    everyone = [impl.plugin for impl in impls]
    for impl in impls:
        others = [plugin for plugin in everyone if plugin is not impl.plugin]
        try:
            results = pm.subset_hook_caller(hook_name, remove_plugins=others)(**kwargs)
            for result in results:
                _check_result(hook_name, shape, result)
        except Exception as exc:  # one plugin's bug must not take the others down
            if _flag("TUNESMITH_STRICT_PLUGINS"):
                raise
            _record_failure(impl.plugin_name, hook_name, exc, impl.plugin)
            if on_failure is not None:
                on_failure(impl.plugin_name)
            continue
        if not results:  # returned None (``tunesmith_cli`` always does): still say who ran
            yield impl.plugin_name, None
        for result in results:
            yield impl.plugin_name, result


class WrongResultError(PluginError):
    """A hook implementation returned the wrong kind of value (a list for a dict, ...)."""


#: Item types of list hooks whose items are merged by ``name`` (see ``collect_by_name``).
_NAMED_ITEMS = ("Demo", "SampleData", "Augmenter")


def _result_shape(hook: Any) -> str | None:
    """``"dict"``, ``"list"``, ``"named list"`` or None, from the hookspec's return annotation
    (``dict[str, Reader]``, ``list[Demo]``; a string, as hookspecs.py postpones annotations)."""
    spec = getattr(hook, "spec", None)
    function = getattr(spec, "function", None)
    annotation = str(getattr(function, "__annotations__", {}).get("return", ""))
    if annotation.startswith("dict["):
        return "dict"
    if annotation.startswith("list["):
        item = annotation[len("list[") : -1].strip()
        return "named list" if item in _NAMED_ITEMS else "list"
    return None


def _check_result(hook_name: str, shape: str | None, result: Any) -> None:
    """A PluginError when a hook returned the wrong kind of value, before any caller merges it:
    a list where a dict belongs (or a string, whose characters would become items) would
    otherwise break every command that reads the hook, not just this plugin."""
    if shape is None:
        return
    if shape == "dict":
        if not isinstance(result, dict):
            raise WrongResultError(f"{hook_name} must return a dict, got {type(result).__name__}")
        bad = [key for key in result if not isinstance(key, str) or not key]
        if bad:
            raise WrongResultError(
                f"{hook_name} returned a dict whose key {bad[0]!r} is not a name"
            )
        return
    if not isinstance(result, list | tuple):
        raise WrongResultError(f"{hook_name} must return a list, got {type(result).__name__}")
    if shape == "named list":
        for item in result:
            name = getattr(item, "name", None)
            if not isinstance(name, str) or not name:
                raise WrongResultError(
                    f"{hook_name} returned {type(item).__name__} without a name "
                    "(a non-empty `name` string)"
                )


def collect_list(hook_name: str, **kwargs: Any) -> list[Any]:
    """Every plugin's list for ``hook_name``, concatenated: built-ins first, registration order."""
    found: list[Any] = []
    for _plugin, result in call_each(hook_name, **kwargs):
        found.extend(result or [])
    return found


def collect_dict(hook_name: str, **kwargs: Any) -> dict[str, Any]:
    """Every plugin's dict for ``hook_name``, merged; on a clash the last registered wins."""
    found: dict[str, Any] = {}
    for _plugin, result in call_each(hook_name, **kwargs):
        found.update(result or {})
    return found


def collect_by_name(hook_name: str, **kwargs: Any) -> dict[str, Any]:
    """A list hook's items (each with ``.name``) by name; on a clash the last registered wins."""
    return {item.name: item for item in collect_list(hook_name, **kwargs)}


def probe_hooks() -> None:
    """Call every hook that takes no arguments once, so run-time failures reach the records.

    ``tunesmith plugins`` runs this before listing: a plugin whose ``tunesmith_demos`` (say)
    raises is shown with its error even though no UI was started. Cheap: hooks return
    descriptions, and demos build only when the UI starts.
    """
    import inspect

    for name in sorted(vars(hookspecs)):
        spec = getattr(hookspecs, name)
        takes_nothing = callable(spec) and not inspect.signature(spec).parameters
        if name.startswith("tunesmith_") and takes_nothing:
            for _plugin, _result in call_each(name):
                pass
