"""The click commands: ``run``, ``resume``, ``runs``, ``show``, ``graph`` and ``drivers``. Imported only
once click is known.

Exit codes of ``run``, ``resume`` and ``show``: 0 the run succeeded; 1 it failed, was cancelled or
timed out (``show``: or has not finished); 2 it could not start (a bad command line, an unknown driver,
a flow that cannot be found or is invalid, bad inputs, tools the driver cannot run, a journal that
cannot be used: not a journal, damaged, no such run, a run id taken, a changed flow, a replay that is
not deterministic). Those errors are one clear message on stderr, never a traceback.
"""

from __future__ import annotations

import json
import shlex
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import ValidationError
from rich.console import Console

from .. import __version__
from ..diagrams import flow_graph
from ..errors import DriverNotFoundError, FlowInputError, FlowValidationError, JournalError
from ..host import Driver, UnsupportedToolError, installed_drivers, load_driver, new_run_id, partial_result
from ..host.journal import Durability, RunSummary, SqliteJournal, replay
from ..model.flow import Flow
from ..result import ExecutionResult, RunStatus
from .loading import (
    FlowLoadError,
    FlowReferenceError,
    InputSyntaxError,
    flow_source,
    load_flow,
    parse_input_pairs,
    parse_inputs_json,
)
from .render import INCOMPLETE, render_result, render_runs, run_summary_dict

__all__ = ("EXIT_FAILED", "EXIT_SUCCEEDED", "EXIT_USAGE", "CannotRunError", "cli")

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class CannotRunError(click.ClickException):
    """The run could not start for a reason that is not the command line's syntax (an invalid flow)."""

    exit_code = EXIT_USAGE


_DURABILITY_HELP = (
    "What a recorded entry survives: 'process' (the default) a killed process; 'power' also a power "
    "failure, at the price of one disk flush per batch of completions."
)
_SCHEDULER_HELP = (
    "With --driver dask: the address of the Dask scheduler to send calls to (tcp://host:8786); "
    "without it, the flow runs on an in-process cluster."
)
_EXISTING_JOURNAL = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="flowkernel")
def cli() -> None:
    """Run flowkernel flows: flows of tool calls, executed by a driver of your choice."""


@cli.command()
@click.argument("reference", metavar="MODULE:FLOW")
@click.option("-d", "--driver", default="sync", show_default=True, help="The driver to run the flow with.")
@click.option("--scheduler", metavar="ADDRESS", help=_SCHEDULER_HELP)
@click.option(
    "-i",
    "--input",
    "input_pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="A flow input; VALUE is read as JSON if it parses (3, true, [1, 2]), else as a string. Repeatable.",
)
@click.option(
    "--inputs-json",
    metavar="FILE_OR_JSON",
    help="Inputs as a JSON object: inline, a file, or - for stdin. --input values override it.",
)
@click.option("-c", "--concurrency", type=click.IntRange(min=1), help="Most tool calls in flight at once.")
@click.option(
    "--deadline",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds the whole run may take; then calls in flight are cancelled (status timed_out).",
)
@click.option("--fail-fast", is_flag=True, help="Cancel everything on the first failure that fails the run.")
@click.option("--run-id", help="The run id (default: a random one); results depend on it, so fix it to compare.")
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Record the run in this SQLite journal (created if missing), so that it can be resumed.",
)
@click.option("--durability", type=click.Choice(["process", "power"]), help=_DURABILITY_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON instead of a table.")
@click.option("--traceback", "show_traceback", is_flag=True, help="Show the traceback when the flow's code raises.")
def run(
    reference: str,
    driver: str,
    scheduler: str | None,
    input_pairs: tuple[str, ...],
    inputs_json: str | None,
    concurrency: int | None,
    deadline: float | None,
    fail_fast: bool,
    run_id: str | None,
    journal_path: Path | None,
    durability: Durability | None,
    as_json: bool,
    show_traceback: bool,
) -> None:
    """Run the flow MODULE:FLOW and show its result.

    MODULE is a dotted module name or a path to a .py file; FLOW names a Flow in it, or a function of
    no arguments that returns one (default: flow). With --journal the run is recorded as it goes, with
    where its flow came from: resume it after a crash or Ctrl-C with `flowkernel resume JOURNAL RUN_ID`.
    Exits 0 if the run succeeded, 1 if it failed or was cancelled, 2 if it could not start.
    """
    runner = _driver(driver, scheduler)
    if run_id is not None and not run_id:
        raise click.BadParameter("must not be empty", param_hint="'--run-id'")
    if durability is not None and journal_path is None:
        raise click.BadParameter("only applies to a journaled run: add --journal PATH", param_hint="'--durability'")
    inputs = _read_inputs(input_pairs, inputs_json)
    flow = _load(reference, show_traceback)
    if journal_path is None:
        try:
            result = runner.run_blocking(
                flow, inputs, run_id=run_id, max_concurrency=concurrency, deadline=deadline, fail_fast=fail_fast
            )
        except BaseException as exc:
            result = _handle_run_error(exc)
        _exit_with(result, as_json)
    run_id = run_id or new_run_id()  # chosen here, so that it can be shown before the run starts
    with _open_journal(journal_path, durability or "process") as journal:
        click.echo(f"recording run {run_id} in {journal_path}", err=True)
        try:
            result = runner.run_blocking(
                flow,
                inputs,
                run_id=run_id,
                max_concurrency=concurrency,
                deadline=deadline,
                fail_fast=fail_fast,
                journal=journal,
                flow_source=flow_source(reference),
            )
        except BaseException as exc:
            result = _handle_run_error(exc, resume_hint=_resume_command(journal_path, run_id))
    _exit_with(result, as_json)


@cli.command()
@click.argument("journal_path", metavar="JOURNAL", type=_EXISTING_JOURNAL)
@click.argument("run_id")
@click.option(
    "--flow",
    "reference",
    metavar="MODULE:FLOW",
    help="The flow to resume with (default: the one the run recorded, where it was started from).",
)
@click.option("-d", "--driver", default="sync", show_default=True, help="The driver to resume the run with.")
@click.option("--scheduler", metavar="ADDRESS", help=_SCHEDULER_HELP)
@click.option(
    "--allow-flow-change",
    is_flag=True,
    help="Resume even though the flow's structure changed since the run started (replay still checks each step).",
)
@click.option("--durability", type=click.Choice(["process", "power"]), default="process", help=_DURABILITY_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON instead of a table.")
@click.option("--traceback", "show_traceback", is_flag=True, help="Show the traceback when the flow's code raises.")
def resume(
    journal_path: Path,
    run_id: str,
    reference: str | None,
    driver: str,
    scheduler: str | None,
    allow_flow_change: bool,
    durability: Durability,
    as_json: bool,
    show_traceback: bool,
) -> None:
    """Resume run RUN_ID from JOURNAL and show its result.

    The journal's record is replayed (completed calls are not made again, and the replay must issue
    the same calls as the record: a flow that changed is refused), then the run goes on from where it
    stopped, with the inputs and options it started with. A run that had finished is shown as it is.
    Exits like run: 0 succeeded, 1 failed or cancelled, 2 could not resume.
    """
    runner = _driver(driver, scheduler)
    with _open_journal(journal_path, durability) as journal:
        flow = _recorded_flow(journal, run_id, reference, show_traceback)
        if _summary(journal, run_id).status != INCOMPLETE:
            click.echo(f"run {run_id} had already finished: nothing to resume (its record is replayed)", err=True)
        try:
            result = runner.run_blocking(
                flow, journal=journal, run_id=run_id, resume=True, allow_flow_change=allow_flow_change
            )
        except BaseException as exc:
            result = _handle_run_error(exc, resume_hint=_resume_command(journal_path, run_id))
    _exit_with(result, as_json)


def _summary(journal: SqliteJournal, run_id: str) -> RunSummary:
    """The listing line of run ``run_id``; a one-line error if the journal holds no such run."""
    with _journal_errors():
        summary = next((s for s in journal.runs() if s.run_id == run_id), None)
    if summary is None:
        raise CannotRunError(f"{journal.path} holds no run {run_id!r} (see: flowkernel runs {journal.path})")
    return summary


def _recorded_flow(journal: SqliteJournal, run_id: str, reference: str | None, show_traceback: bool) -> Flow:
    """The flow ``reference`` names, or else the one run ``run_id`` recorded it was started with."""
    if reference is not None:
        return _load(reference, show_traceback, param_hint="'--flow'")
    with _journal_errors():
        reference = journal.header(run_id).flow_source
    if reference is None:
        raise CannotRunError(
            f"run {run_id!r} recorded no flow source (it was not started by `flowkernel run --journal`):"
            " name its flow with --flow MODULE:FLOW"
        )
    return _load(reference, show_traceback, recorded_for=run_id)


@cli.command()
@click.argument("journal_path", metavar="JOURNAL", type=_EXISTING_JOURNAL)
@click.option("--json", "as_json", is_flag=True, help="Print the runs as a JSON list instead of a table.")
def runs(journal_path: Path, as_json: bool) -> None:
    """List the runs JOURNAL holds, oldest first.

    Each with its flow and version, its status (`incomplete`: crashed, interrupted or still running,
    so resumable), when it started, how many steps had succeeded and how many entries are recorded.
    """
    with _open_journal(journal_path, "process") as journal, _journal_errors():
        summaries = journal.runs()
    if as_json:
        click.echo(json.dumps([run_summary_dict(summary) for summary in summaries], indent=2))
    else:
        render_runs(summaries, Console(highlight=False), title=f"runs in {journal_path}")


@cli.command()
@click.argument("journal_path", metavar="JOURNAL", type=_EXISTING_JOURNAL)
@click.argument("run_id")
@click.option(
    "--flow",
    "reference",
    metavar="MODULE:FLOW",
    help="The flow to replay the record with (default: the one the run recorded, where it was started from).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON instead of a table.")
@click.option("--traceback", "show_traceback", is_flag=True, help="Show the traceback when the flow's code raises.")
def show(journal_path: Path, run_id: str, reference: str | None, as_json: bool, show_traceback: bool) -> None:
    """Show the result of run RUN_ID from JOURNAL, as run showed it.

    The result is rebuilt from the journal's record by replaying it with the run's flow (no tool is
    called). Exits 0 if the run succeeded, 1 if it failed, was cancelled or has not finished (then it
    says how far it got and how to resume it), 2 if there is no such run or the journal cannot be read.
    """
    with _open_journal(journal_path, "process") as journal:
        summary = _summary(journal, run_id)
        if summary.status != INCOMPLETE:
            flow = _recorded_flow(journal, run_id, reference, show_traceback)
            with _journal_errors():
                result = replay(flow, journal, run_id, allow_flow_change=reference is not None)
            _exit_with(result, as_json)
    if as_json:
        click.echo(json.dumps(run_summary_dict(summary), indent=2))
    else:
        click.echo(
            f"run {run_id} (flow {summary.flow_name} v{summary.flow_version}) is {INCOMPLETE}: "
            f"{summary.steps_done} step{'s' * (summary.steps_done != 1)} done, "
            f"{summary.entries} entr{'ies' if summary.entries != 1 else 'y'} recorded"
        )
        click.echo(f"resume it with: {_resume_command(journal_path, run_id)}")
    sys.exit(EXIT_FAILED)


def _driver(name: str, scheduler: str | None = None) -> Driver:
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


def _exit_with(result: ExecutionResult, as_json: bool) -> NoReturn:
    """Print ``result`` (a table, or JSON) and exit 0 if the run succeeded, else 1."""
    if as_json:
        click.echo(result.to_json(indent=2))
    else:
        render_result(result, Console(highlight=False))
    sys.exit(EXIT_SUCCEEDED if result.status is RunStatus.SUCCEEDED else EXIT_FAILED)


@contextmanager
def _journal_errors() -> Iterator[None]:
    """A journal error (not a journal, damaged, no such run, ...) as a one-line message and exit 2."""
    try:
        yield
    except JournalError as exc:
        raise CannotRunError(str(exc)) from None


@contextmanager
def _open_journal(path: Path, durability: Durability) -> Iterator[SqliteJournal]:
    with _journal_errors():
        journal = SqliteJournal(path, durability=durability)
    try:
        yield journal
    finally:
        journal.close()


def _resume_command(journal_path: Path, run_id: str) -> str:
    return f"flowkernel resume {shlex.quote(str(journal_path))} {shlex.quote(run_id)}"


def _read_inputs(pairs: tuple[str, ...], inputs_json: str | None) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    if inputs_json is not None:
        try:
            inputs.update(parse_inputs_json(inputs_json))
        except (InputSyntaxError, OSError) as exc:
            raise click.BadParameter(str(exc), param_hint="'--inputs-json'") from None
    try:
        inputs.update(parse_input_pairs(pairs))
    except InputSyntaxError as exc:
        raise click.BadParameter(str(exc), param_hint="'--input'") from None
    return inputs


def _load(
    reference: str, show_traceback: bool, *, param_hint: str = "'MODULE:FLOW'", recorded_for: str | None = None
) -> Flow:
    """The flow ``reference`` names; ``recorded_for``: the run whose journal recorded the reference."""
    try:
        return load_flow(reference)
    except FlowReferenceError as exc:
        if recorded_for is not None:
            raise CannotRunError(
                f"cannot find the flow {reference!r} run {recorded_for!r} was started with: {exc}"
                " (name it with --flow MODULE:FLOW)"
            ) from None
        raise click.BadParameter(str(exc), param_hint=param_hint) from None
    except FlowValidationError as exc:
        raise CannotRunError(str(exc)) from None
    except ValidationError as exc:
        raise CannotRunError(f"invalid flow definition in {reference!r}: {_describe(exc)}") from None
    except FlowLoadError as exc:
        if show_traceback and exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__, file=sys.stderr)
            raise CannotRunError(str(exc)) from None
        raise CannotRunError(f"{exc} (rerun with --traceback to see where)") from None


def _describe(exc: ValidationError) -> str:
    """A pydantic error in a few lines, without the links pydantic adds to its own message."""
    lines = [f"{exc.error_count()} error{'s' * (exc.error_count() != 1)} building {exc.title}"]
    for error in exc.errors(include_url=False):
        location = ".".join(map(str, error["loc"])) or "<root>"
        lines.append(f"  - {location}: {error['msg']} (got {error.get('input')!r})")
    return "\n".join(lines)


def _handle_run_error(exc: BaseException, *, resume_hint: str | None = None) -> ExecutionResult:
    """Turn an error from the driver into a clean exit, or the partial result of a run stopped by Ctrl-C
    (with ``resume_hint``, the command that resumes a journaled run, since Ctrl-C leaves it resumable)."""
    if isinstance(exc, FlowInputError | UnsupportedToolError | JournalError):
        raise CannotRunError(str(exc)) from None
    if isinstance(exc, KeyboardInterrupt):
        partial = partial_result(exc)
        if partial is not None:
            click.echo("interrupted: showing the partial result", err=True)
            if resume_hint is not None:
                click.echo(f"resume the run with: {resume_hint}", err=True)
            return partial
    raise exc


@cli.command()
@click.argument("reference", metavar="MODULE:FLOW")
def graph(reference: str) -> None:
    """Print the flow's graph as a Mermaid flowchart (data edges solid, ordering-only edges dotted)."""
    click.echo(flow_graph(_load(reference, show_traceback=False)))


@cli.command()
def drivers() -> None:
    """List the installed drivers, one name a line (use one with run --driver NAME)."""
    names = installed_drivers()
    if not names:
        raise click.ClickException("no drivers are installed; install one, e.g. pip install flowkernel-sync")
    for name in names:
        click.echo(name)
