"""The root ``tunesmith`` command. Heavy libraries are imported inside commands, never here."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from tunesmith import __version__
from tunesmith.errors import (
    DISK_FULL_REASONS,
    NO_DESCRIPTOR_ERRNOS,
    TunesmithError,
    disk_full_errno,
    open_file_limit,
    out_of_memory,
)
from tunesmith.signals import (
    end_stopped_process,
    exit_code,
    received,
    stop_on_signals,
    stopped_line,
)

#: Set to show the traceback of an operating-system error instead of its one line.
DEBUG_ENV = "TUNESMITH_DEBUG"
#: The exit code of a command stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130


def _is_path_parameter(param: Any) -> bool:
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    return annotation is Path or annotation == list[Path]


def _refuse_empty_paths(command: Any) -> None:
    """Make every path option and argument of ``command`` and its subcommands refuse ``""``.

    ``Path("")`` is ``.``: an unset shell variable (``--plot "$DIR"``) silently wrote into the
    current folder, and ``--db ""`` was reported as the folder ``.``."""
    for param in command.params:
        if _is_path_parameter(param) and not getattr(param, "_refuses_empty", False):
            param.process_value = _no_empty_path(param, param.process_value)
            param._refuses_empty = True
    for sub in getattr(command, "commands", {}).values():
        _refuse_empty_paths(sub)


def _hide_flag_types(command: Any) -> None:
    """Show no value type for the flags of ``command`` and its subcommands.

    Typer (0.29) printed ``<bool>`` beside every flag (``--json <bool>``), which reads as if
    the flag took a value (``--json true`` is a usage error)."""
    for param in command.params:
        if getattr(param, "is_flag", False) and not getattr(param, "count", False):
            param.display_type_rich = _no_type
    if not getattr(command, "_flag_types_hidden", False):
        command.get_help_option = _typeless_help(command.get_help_option)
        command._flag_types_hidden = True
    for sub in getattr(command, "commands", {}).values():
        _hide_flag_types(sub)


def _typeless_help(get_help_option: Callable[[Any], Any]) -> Callable[[Any], Any]:
    # click builds the --help option per context, outside ``command.params``.
    def typeless(ctx: Any) -> Any:
        option = get_help_option(ctx)
        if option is not None:
            option.display_type_rich = _no_type
        return option

    return typeless


def _no_type(ctx: Any = None) -> None:
    return None


def _reflow_help(command: Any) -> None:
    """Join the lines of each help paragraph of ``command`` and its subcommands into one.

    Typer (0.29) keeps a docstring's single line breaks in every paragraph after the first, so
    a paragraph wrapped at 100 columns in the source came out ragged on an 80-column terminal
    ("... marks each one) and" / "stdout: ..."). Indented lines, list items, and paragraphs
    marked with click's ``\\b``, keep their breaks."""
    if getattr(command, "help", None) and not getattr(command, "_reflowed", False):
        command.help = reflow_paragraphs(command.help)
        command._reflowed = True
    for sub in getattr(command, "commands", {}).values():
        _reflow_help(sub)


def reflow_paragraphs(text: str) -> str:
    """``text`` with each paragraph's wrapped lines joined (see :func:`_reflow_help`)."""
    import inspect
    import re

    paragraphs = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        if paragraph.startswith("\b"):
            paragraphs.append(paragraph)
            continue
        lines: list[str] = []
        for line in paragraph.split("\n"):
            # An indented line (an example command) or a list item starts a line of its own.
            if lines and not re.match(r"\s|([-*]|\d+[.)])\s", line):
                lines[-1] = f"{lines[-1]} {line.strip()}"
            else:
                lines.append(line)
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def _no_empty_path(param: Any, process: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def process_value(ctx: Any, value: Any) -> Any:
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, str) and not v.strip() for v in values):
            raise typer.BadParameter("the path is empty; give a file or folder", ctx, param)
        return process(ctx, value)

    return process_value


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (a test runner)
        pass


def _full_stdout() -> str | None:
    """Where standard output goes, when that is a regular file (``> out.jsonl``) left with no
    room: the file an error without a file name was about."""
    import stat

    from tunesmith.io import no_room_shown

    try:
        if not stat.S_ISREG(os.fstat(sys.stdout.fileno()).st_mode):
            return None
        target = os.readlink(f"/proc/self/fd/{sys.stdout.fileno()}")
    except (OSError, ValueError, AttributeError):  # no /proc (macOS), or no real stdout
        return None
    return target if no_room_shown(target) is not None else None


def _no_room_line(exc: BaseException, code: int) -> str:
    """One line for a write that found no room and that no command caught: the file when the
    error names it, standard output when that is where the write went, else the library's words.
    """
    from tunesmith.errors import DiskFullError, room_hint

    if isinstance(exc, OSError) and (out := _full_stdout()) is not None:
        _silence_stdout()  # the rest of the output cannot be written either, not even at exit
        outcome = f"what was written there is incomplete: {room_hint(code)}"
        return str(DiskFullError(f"standard output ({out})", code, outcome=outcome))
    reason = f"{DISK_FULL_REASONS[code]} ({os.strerror(code)})"
    if isinstance(exc, OSError):  # the system's error without a file name says no more
        return f"{reason} while writing; {room_hint(code)}"
    detail = " ".join(str(exc).split())  # a library's words name the file, if anything does
    return f"{reason}: {detail}; {room_hint(code)}"


def _no_memory_line(words: str) -> str:
    """One line for a command that ran out of memory (an encoding or a batch too large for
    the machine), with the library's words when it had any."""
    said = f" ({words})" if words else ""
    return (
        f"out of memory{said}; close other programs or process less at once (a smaller "
        "--batch-size, where the command has one) and run again"
    )


def _no_descriptor_line(exc: OSError) -> str:
    """One line for an ``open`` that found no file descriptor left: the limit and what to do,
    not a library's module folder with "[Errno 24]" as if that file were at fault."""
    opening = f" (opening {exc.filename})" if exc.filename is not None else ""
    if exc.errno == errno.ENFILE:
        return (
            f"the system's table of open files is full{opening}; close other programs and run again"
        )
    limit = open_file_limit()
    allowed = f"this process may have {limit} open (`ulimit -n`)" if limit else "the limit"
    return (
        f"too many open files: {allowed} and needed more{opening}; raise the limit "
        "(`ulimit -n 4096`) and run again"
    )


class _TunesmithGroup(TyperGroup):
    """Turns a :class:`TunesmithError` from any command, an operating-system error no command
    foresaw (a full disk, a permission denied), and a usage error (a missing option, a value out
    of range, an unknown command), into one ``Error:`` line and an exit code."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except TunesmithError as exc:
            # An interruption's message (what became of the checkpoints) is a plain line: main
            # adds the one "Error: interrupted" line for its exit code.
            prefix = "" if exc.exit_code == INTERRUPTED else "Error: "
            typer.echo(f"{prefix}{exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except BrokenPipeError:
            # The reader of our output went away (`tunesmith predict ... | head`): nothing is
            # wrong and nobody is left to tell. Point stdout at devnull so that Python's own
            # flush at exit does not raise again.
            _silence_stdout()
            raise typer.Exit(1) from None
        except OSError as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            if exc.errno in DISK_FULL_REASONS and exc.filename is None:
                typer.echo(f"Error: {_no_room_line(exc, exc.errno)}", err=True)
                raise typer.Exit(1) from None
            if exc.errno in NO_DESCRIPTOR_ERRNOS:
                typer.echo(f"Error: {_no_descriptor_line(exc)}", err=True)
                raise typer.Exit(1) from None
            if (words := out_of_memory(exc)) is not None:
                typer.echo(f"Error: {_no_memory_line(words)}", err=True)
                raise typer.Exit(1) from None
            # str(OSError) names the file ("[Errno 28] No space left on device: 'out.csv'").
            typer.echo(f"Error: {exc} (set {DEBUG_ENV}=1 for the traceback)", err=True)
            raise typer.Exit(1) from None
        except Exception as exc:
            # A library's own error around a full disk (safetensors' "os error 28", FAISS's
            # "(No space left on device)") or memory run out (a MemoryError, torch's allocator):
            # one line too. Any other stays a traceback (a bug).
            if os.environ.get(DEBUG_ENV):
                raise
            code = disk_full_errno(exc)
            if code is not None:
                typer.echo(f"Error: {_no_room_line(exc, code)}", err=True)
                raise typer.Exit(1) from None
            words = out_of_memory(exc)
            if words is None:
                raise
            typer.echo(f"Error: {_no_memory_line(words)}", err=True)
            raise typer.Exit(1) from None

    def main(self, *args, standalone_mode: bool = True, **kwargs):  # type: ignore[no-untyped-def]
        _refuse_empty_paths(self)
        _reflow_help(self)
        _hide_flag_types(self)
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        # Typer would print the usage, a hint and a boxed message: three lines and a frame
        # where every other error of ours is one line a script can log.
        try:
            # SIGTERM (systemd, docker stop) and SIGHUP stop as Ctrl-C does, cleanup included.
            with stop_on_signals():
                code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        except typer.TyperException as exc:  # click's usage errors (typer vendors click)
            if not hasattr(exc, "format_message"):
                raise
            message = exc.format_message()
            if message.strip():  # empty: a group called bare, its help is already printed
                ctx = getattr(exc, "ctx", None)
                hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
                typer.echo(f"Error: {message}{hint}", err=True)
            sys.exit(getattr(exc, "exit_code", 2))
        if code == INTERRUPTED:  # Ctrl-C (or a stop signal): typer makes it this code, silently
            _echo_stderr(stopped_line())
            code = exit_code(code)
        # Without standalone mode click returns an exit code for typer.Exit, else the
        # command's return value (None for every command here).
        sys.exit(code if isinstance(code, int) else 0)


def _echo_stderr(line: str) -> None:
    # After SIGHUP the terminal is gone: writing there fails (EIO), the exit code still tells.
    with contextlib.suppress(OSError):
        typer.echo(line, err=True)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"tunesmith {__version__}")
        raise typer.Exit()


def _root(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the version and exit.",
        callback=_version_callback,
        is_eager=True,
    ),
) -> None:
    """Fine-tune, explain and serve small transformer models on your own text."""


def plugins_command(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """List installed plugins, the hooks each implements, and any that failed to load or run."""
    from tunesmith.plugins import plugin_records, probe_hooks

    probe_hooks()
    records = [r.to_dict() for r in plugin_records()]
    if as_json:
        typer.echo(json.dumps(records, indent=2))
        return
    headers = ["name", "distribution", "version", "hooks", "error"]
    rows = [
        [
            r["name"],
            r["distribution"] or "-",
            r["version"] or "-",
            ", ".join(h.removeprefix("tunesmith_") for h in r["hooks"]) or "-",
            r["error"] or "",
        ]
        for r in records
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def build_app() -> typer.Typer:
    """The root app with the core commands and every plugin's commands.

    Each plugin's ``tunesmith_cli`` runs in its own ``try`` (``call_each``): one that raises is
    listed with its error by ``tunesmith plugins`` and the other commands keep working.
    """
    from tunesmith.plugins import call_each

    app = typer.Typer(
        cls=_TunesmithGroup,
        name="tunesmith",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)
    app.command("plugins")(plugins_command)
    commands_seen, groups_seen = len(app.registered_commands), len(app.registered_groups)

    def undo(_plugin: str) -> None:
        # A plugin skipped for raising keeps none of the commands it added before it raised.
        del app.registered_commands[commands_seen:]
        del app.registered_groups[groups_seen:]

    for _plugin, _result in call_each("tunesmith_cli", app=app, on_failure=undo):
        names = {_command_name(info) for info in app.registered_commands[commands_seen:]}
        # The last registered wins: Typer lists groups after commands whatever their order, so
        # an earlier plugin's group of this name would silently beat the command just added.
        app.registered_groups[:groups_seen] = [
            info for info in app.registered_groups[:groups_seen] if _group_name(info) not in names
        ]
        commands_seen, groups_seen = len(app.registered_commands), len(app.registered_groups)
    return app


def _command_name(info: Any) -> str:
    """The name Typer gives a registered command (``@app.command("x")`` or the function's)."""
    from typer.main import get_command_name

    return info.name or get_command_name(info.callback.__name__)


def _group_name(info: Any) -> str | None:
    """The name Typer gives a registered group (``app.add_typer(group, name="x")``)."""
    from typer.main import solve_typer_info_defaults

    return solve_typer_info_defaults(info).name


def main() -> None:
    """Console-script entry point."""
    # No network unless a command is told otherwise (``--allow-network``).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    try:
        app = build_app()
    except TunesmithError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    try:
        app()
    except SystemExit as ended:
        # Stopped (not a service's orderly exit 0): its cleanup has run, end it now.
        signum = received()
        if signum is not None and ended.code == 128 + signum:
            end_stopped_process(ended.code)
        raise


if __name__ == "__main__":
    main()
