"""What the commands share: exit codes, loading a flow and a driver, opening a journal, printing a
result, and turning errors into one-line messages (exit 2) instead of tracebacks."""

from __future__ import annotations

import shlex
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

import click
from click.exceptions import NoArgsIsHelpError
from pydantic import ValidationError

from ..errors import (
    ConfigError,
    DefinitionError,
    DriverNotFoundError,
    FlowFileError,
    FlowInputError,
    FlowValidationError,
    JournalError,
    ResourceError,
)
from ..events import Event
from ..host import Driver, UnsupportedToolError, load_driver, partial_result
from ..model.flow import Flow
from ..result import ExecutionResult, RunStatus
from .loading import FlowLoadError, FlowReferenceError, load_flow

if TYPE_CHECKING:
    from ..host.journal import Durability, SqliteJournal

__all__ = (
    "ALLOW_MODULE_HELP",
    "DURABILITY_HELP",
    "EXISTING_JOURNAL",
    "EXIT_FAILED",
    "EXIT_SUCCEEDED",
    "EXIT_USAGE",
    "QUIET_HELP",
    "SCHEDULER_HELP",
    "TABLE_HELP",
    "TRACEBACK_HELP",
    "CannotRunError",
    "allow_module_option",
    "OneLineError",
    "OneLineGroup",
    "announce_on_start",
    "driver_named",
    "exit_with",
    "handle_run_error",
    "journal_errors",
    "load",
    "one_line",
    "one_line_errors",
    "open_journal",
    "resume_command",
)

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def one_line(message: str) -> str:
    """``message`` on one line: a list under a heading (``invalid flow 'f': 2 problems`` then ``  - ...``
    lines) becomes ``heading: item; item``."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else ""
    items = "; ".join(line.removeprefix("- ") for line in lines[1:])
    return f"{lines[0].rstrip(':')}: {items}"


class OneLineError(click.ClickException):
    """An error shown as one line on stderr, ``Error: message``, and nothing else (no usage, no hint)."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"Error: {one_line(self.format_message())}", file=file, err=file is None)


class CannotRunError(OneLineError):
    """The run could not start for a reason that is not the command line's syntax (an invalid flow)."""

    exit_code = EXIT_USAGE


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Any click error raised in the block (a bad option, a missing file, an unknown command...) as a
    :class:`OneLineError` with the same message and exit code (click would print its usage first)."""
    try:
        yield
    except (OneLineError, NoArgsIsHelpError):  # the latter is a request for help, shown as such
        raise
    except click.ClickException as exc:
        message = exc.format_message()
        if isinstance(exc, click.UsageError) and not isinstance(exc, click.BadParameter) and exc.ctx is not None:
            message = f"{one_line(message)} (see: {exc.ctx.command_path} --help)"  # the syntax itself is wrong
        raise (CannotRunError if exc.exit_code == EXIT_USAGE else OneLineError)(message) from None


class OneLineGroup(click.Group):
    """The command group whose every error is one line on stderr (``Error: ...``): the README's promise,
    kept in one place for every command, click's own usage errors included."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        with one_line_errors():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with one_line_errors():
            return super().invoke(ctx)


def announce_on_start(message: str | None, on_event: Callable[[Event], None] | None) -> Callable[[Event], None] | None:
    """An ``on_event`` that prints ``message`` on stderr once the run has started (its first event), then
    passes every event to ``on_event``: a note about a run (``recording run ...``) is never printed before
    an error that keeps the run from starting (a run id taken, a changed flow), which stays one line."""
    if message is None:
        return on_event
    announced = threading.Event()

    def listener(event: Event) -> None:
        if not announced.is_set():
            announced.set()
            click.echo(message, err=True)
        if on_event is not None:
            on_event(event)

    return listener


DURABILITY_HELP = (
    "What a recorded entry survives: 'process' (the default) a killed process; 'power' also a power "
    "failure, at the price of one disk flush per batch of completions."
)
SCHEDULER_HELP = (
    "With --driver dask: the address of the Dask scheduler to send calls to (tcp://host:8786); "
    "without it, the flow runs on an in-process cluster."
)
TRACEBACK_HELP = (
    "Show tracebacks in full: the flow module's when loading it raises, and each failed step's "
    "(without it, only where the step's error was raised)."
)
TABLE_HELP = (
    "Show every step's row even when the run did not succeed (a failed, cancelled or timed-out run "
    "otherwise ends with a summary: counts, the failed steps and their errors)."
)
ALLOW_MODULE_HELP = (
    "A module whose tools a flow file (.yaml, .yml, .json) may name as MODULE:ATTR (a package allows its "
    "modules too); repeatable. Added to allow-modules of [tool.flowkernel] in pyproject.toml or flowkernel.toml."
)
_ALLOWED = "flowkernel.allow_modules"


def _remember_allowed(ctx: click.Context, _: click.Parameter, modules: tuple[str, ...]) -> tuple[str, ...]:
    ctx.meta[_ALLOWED] = (*ctx.meta.get(_ALLOWED, ()), *modules)
    return modules


def allow_module_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--allow-module MOD`` (repeatable, or ``FLOWKERNEL_ALLOW_MODULES``, space-separated) on a command
    that loads flows: :func:`load` passes the modules to the loading of flow files."""
    return click.option(
        "--allow-module",
        "allow_modules",
        multiple=True,
        metavar="MODULE",
        envvar="FLOWKERNEL_ALLOW_MODULES",
        expose_value=False,
        callback=_remember_allowed,
        help=ALLOW_MODULE_HELP,
    )(command)


def allowed_modules() -> tuple[str, ...]:
    """The modules the running command was given with ``--allow-module``."""
    ctx = click.get_current_context(silent=True)
    return () if ctx is None else tuple(ctx.meta.get(_ALLOWED, ()))


QUIET_HELP = "Show no live progress while the run goes (shown only on a terminal, on stderr, after half a second)."
EXISTING_JOURNAL = click.Path(exists=True, dir_okay=False, path_type=Path)


def driver_named(name: str, scheduler: str | None = None) -> Driver:
    """The driver ``name``; one that holds resources (a Dask cluster) is closed when the command ends."""
    if scheduler is not None and name != "dask":
        raise click.BadParameter(f"only applies to --driver dask, not {name!r}", param_hint="'--scheduler'")
    try:
        driver = load_driver(name, **({} if scheduler is None else {"scheduler": scheduler}))
    except DriverNotFoundError as exc:
        raise click.BadParameter(str(exc), param_hint="'--driver'") from None
    close = getattr(driver, "close", None)
    if callable(close):
        click.get_current_context().call_on_close(close)
    return driver


def exit_with(result: ExecutionResult, as_json: bool, *, full_tracebacks: bool = False, table: bool = True) -> NoReturn:
    """Print ``result`` (a table, or JSON: complete, every traceback in full) and exit 0 if the run
    succeeded, else 1. Without ``table``, a run that did not succeed gets a summary instead of its table."""
    if as_json:
        click.echo(result.to_json(indent=2))
    else:  # rich is imported here, when a table is printed: a run with --json never loads it
        from rich.console import Console

        from .render import render_result

        full = table or result.status is RunStatus.SUCCEEDED
        render_result(result, Console(highlight=False), full_tracebacks=full_tracebacks, table=full)
    sys.exit(EXIT_SUCCEEDED if result.status is RunStatus.SUCCEEDED else EXIT_FAILED)


@contextmanager
def journal_errors() -> Iterator[None]:
    """A journal error (not a journal, damaged, no such run, ...) as a one-line message and exit 2."""
    try:
        yield
    except JournalError as exc:
        raise CannotRunError(str(exc)) from None


@contextmanager
def open_journal(path: Path, durability: Durability, *, trusted: bool = False) -> Iterator[SqliteJournal]:
    """``trusted``: the journal may hold pickles, which can run code when read (``--trusted``).

    SQLite is imported here, when a command opens a journal, not when the command line starts."""
    from ..host.journal import SqliteJournal

    with journal_errors():
        journal = SqliteJournal(path, durability=durability, trusted=trusted)
    try:
        yield journal
    finally:
        journal.close()


def resume_command(journal_path: Path, run_id: str) -> str:
    return f"flowkernel resume {shlex.quote(str(journal_path))} {shlex.quote(run_id)}"


def load(
    reference: str, show_traceback: bool, *, param_hint: str = "'MODULE:FLOW|FILE'", recorded_for: str | None = None
) -> Flow:
    """The flow ``reference`` names; ``recorded_for``: the run whose journal recorded the reference."""
    try:
        return load_flow(reference, allow_modules=allowed_modules())
    except (FlowFileError, ConfigError) as exc:
        raise CannotRunError(str(exc)) from None
    except FlowReferenceError as exc:
        if recorded_for is not None:
            raise CannotRunError(
                f"cannot find the flow {reference!r} run {recorded_for!r} was started with: {exc}"
                " (name it with --flow MODULE:FLOW)"
            ) from None
        raise click.BadParameter(str(exc), param_hint=param_hint) from None
    except FlowValidationError as exc:
        raise CannotRunError(str(exc)) from None
    except DefinitionError as exc:
        raise CannotRunError(f"invalid flow definition in {reference!r}: {exc}") from None
    except ValidationError as exc:
        raise CannotRunError(f"invalid flow definition in {reference!r}: {describe_validation_error(exc)}") from None
    except FlowLoadError as exc:
        if show_traceback and exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__, file=sys.stderr)
            raise CannotRunError(str(exc)) from None
        raise CannotRunError(f"{exc} (rerun with --traceback to see where)") from None


def describe_validation_error(exc: ValidationError) -> str:
    """A pydantic error in a few lines, without the links pydantic adds to its own message."""
    lines = [f"{exc.error_count()} error{'s' * (exc.error_count() != 1)} building {exc.title}"]
    for error in exc.errors(include_url=False):
        location = ".".join(map(str, error["loc"])) or "<root>"
        lines.append(f"  - {location}: {error['msg']} (got {error.get('input')!r})")
    return "\n".join(lines)


def handle_run_error(exc: BaseException, *, resume_hint: str | None = None) -> ExecutionResult:
    """Turn an error from the driver into a clean exit, or the partial result of a run stopped by Ctrl-C
    (with ``resume_hint``, the command that resumes a journaled run, since Ctrl-C leaves it resumable)."""
    if isinstance(exc, FlowInputError | UnsupportedToolError | JournalError | ResourceError):
        raise CannotRunError(str(exc)) from None
    if isinstance(exc, KeyboardInterrupt):
        partial = partial_result(exc)
        if partial is not None:
            click.echo("interrupted: showing the partial result", err=True)
            if resume_hint is not None:
                click.echo(f"resume the run with: {resume_hint}", err=True)
            return partial
    raise exc
