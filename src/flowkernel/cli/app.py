"""The click commands: ``flowkernel run`` and ``flowkernel drivers``. Imported only once click is known.

Exit codes of ``run``: 0 the run succeeded; 1 it failed or was cancelled; 2 it could not start (a bad
command line, an unknown driver, a flow that cannot be found or is invalid, bad inputs, tools the
driver cannot run). Those errors are one clear message on stderr, never a traceback.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import click
from pydantic import ValidationError
from rich.console import Console

from .. import __version__
from ..diagrams import flow_graph
from ..errors import DriverNotFoundError, FlowInputError, FlowValidationError
from ..host import UnsupportedToolError, installed_drivers, load_driver, partial_result
from ..model.flow import Flow
from ..result import ExecutionResult, RunStatus
from .loading import (
    FlowLoadError,
    FlowReferenceError,
    InputSyntaxError,
    load_flow,
    parse_input_pairs,
    parse_inputs_json,
)
from .render import render_result

__all__ = ("EXIT_FAILED", "EXIT_SUCCEEDED", "EXIT_USAGE", "CannotRunError", "cli")

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class CannotRunError(click.ClickException):
    """The run could not start for a reason that is not the command line's syntax (an invalid flow)."""

    exit_code = EXIT_USAGE


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="flowkernel")
def cli() -> None:
    """Run flowkernel flows: flows of tool calls, executed by a driver of your choice."""


@cli.command()
@click.argument("reference", metavar="MODULE:FLOW")
@click.option("-d", "--driver", default="sync", show_default=True, help="The driver to run the flow with.")
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
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON instead of a table.")
@click.option("--traceback", "show_traceback", is_flag=True, help="Show the traceback when the flow's code raises.")
def run(
    reference: str,
    driver: str,
    input_pairs: tuple[str, ...],
    inputs_json: str | None,
    concurrency: int | None,
    deadline: float | None,
    fail_fast: bool,
    run_id: str | None,
    as_json: bool,
    show_traceback: bool,
) -> None:
    """Run the flow MODULE:FLOW and show its result.

    MODULE is a dotted module name or a path to a .py file; FLOW names a Flow in it, or a function of
    no arguments that returns one (default: flow). Exits 0 if the run succeeded, 1 if it failed or was
    cancelled, 2 if it could not start.
    """
    try:
        runner = load_driver(driver)
    except DriverNotFoundError as exc:
        raise click.BadParameter(str(exc), param_hint="'--driver'") from None
    if run_id is not None and not run_id:
        raise click.BadParameter("must not be empty", param_hint="'--run-id'")
    inputs = _read_inputs(input_pairs, inputs_json)
    flow = _load(reference, show_traceback)
    try:
        result = runner.run_blocking(
            flow, inputs, run_id=run_id, max_concurrency=concurrency, deadline=deadline, fail_fast=fail_fast
        )
    except BaseException as exc:
        result = _handle_run_error(exc)
    if as_json:
        click.echo(result.to_json(indent=2))
    else:
        render_result(result, Console(highlight=False))
    sys.exit(EXIT_SUCCEEDED if result.status is RunStatus.SUCCEEDED else EXIT_FAILED)


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


def _load(reference: str, show_traceback: bool) -> Flow:
    try:
        return load_flow(reference)
    except FlowReferenceError as exc:
        raise click.BadParameter(str(exc), param_hint="'MODULE:FLOW'") from None
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


def _handle_run_error(exc: BaseException) -> ExecutionResult:
    """Turn an error from the driver into a clean exit, or the partial result of a run stopped by Ctrl-C."""
    if isinstance(exc, FlowInputError | UnsupportedToolError):
        raise CannotRunError(str(exc)) from None
    if isinstance(exc, KeyboardInterrupt):
        partial = partial_result(exc)
        if partial is not None:
            click.echo("interrupted: showing the partial result", err=True)
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
