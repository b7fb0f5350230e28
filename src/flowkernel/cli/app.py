"""The click commands: ``run``, ``graph`` and ``drivers`` here; the others (``resume``, ``runs``, ``show``,
``delete``, ``serve``, ``validate``, ``schema``, ``parity``, ``cache``) in modules of their own.
Imported only once click is known.

Exit codes of ``run``, ``resume`` and ``show``: 0 the run succeeded; 1 it failed, was cancelled or
timed out (``show``: or has not finished); 2 it could not start (a bad command line, an unknown driver,
a flow that cannot be found or is invalid, bad inputs, tools the driver cannot run, a journal that
cannot be used: not a journal, damaged, no such run, a run id taken, a changed flow, a replay that is
not deterministic). Those errors are one clear message on stderr, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import __version__
from ..host import installed_drivers, new_run_id
from .cache_commands import CACHE_HELP, cache, cache_for_run
from .common import (
    DURABILITY_HELP,
    EXIT_FAILED,
    EXIT_SUCCEEDED,
    EXIT_USAGE,
    QUIET_HELP,
    SCHEDULER_HELP,
    TABLE_HELP,
    TRACEBACK_HELP,
    CannotRunError,
    OneLineGroup,
    allow_module_option,
    announce_on_start,
    driver_named,
    exit_with,
    handle_run_error,
    load,
    open_journal,
    resume_command,
)
from .flow_files import schema, validate
from .journal_commands import delete, resume, runs, show
from .loading import InputSyntaxError, flow_source, parse_input_pairs, parse_inputs_json
from .parity import parity
from .pictures import GRAPH_FORMATS, graph_text
from .progress import live_progress
from .serve import serve

if TYPE_CHECKING:
    from ..host.journal import Durability

__all__ = ("EXIT_FAILED", "EXIT_SUCCEEDED", "EXIT_USAGE", "CannotRunError", "cli")


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="flowkernel")
def cli() -> None:
    """Run flowkernel flows: flows of tool calls, executed by a driver of your choice."""


@cli.command()
@click.argument("reference", metavar="MODULE:FLOW|FILE")
@allow_module_option
@click.option("-d", "--driver", default="sync", show_default=True, help="The driver to run the flow with.")
@click.option("--scheduler", metavar="ADDRESS", help=SCHEDULER_HELP)
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
@click.option("--durability", type=click.Choice(["process", "power"]), help=DURABILITY_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON instead of a table.")
@click.option("--traceback", "show_traceback", is_flag=True, help=TRACEBACK_HELP)
@click.option("--table", "full_table", is_flag=True, help=TABLE_HELP)
@click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)
@click.option("--cache", "cache_path", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path), help=CACHE_HELP)
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
    full_table: bool,
    quiet: bool,
    cache_path: Path | None,
) -> None:
    """Run the flow MODULE:FLOW and show its result.

    MODULE is a dotted module name or a path to a .py file; FLOW names a Flow in it, or a function of
    no arguments that returns one (default: flow). With --journal the run is recorded as it goes, with
    where its flow came from: resume it after a crash or Ctrl-C with `flowkernel resume JOURNAL RUN_ID`.
    On a terminal, a live display on stderr shows the run's progress while it lasts (--quiet: none).
    Exits 0 if the run succeeded, 1 if it failed or was cancelled, 2 if it could not start.
    """
    runner = driver_named(driver, scheduler)
    if run_id is not None and not run_id:
        raise click.BadParameter("must not be empty", param_hint="'--run-id'")
    if durability is not None and journal_path is None:
        raise click.BadParameter("only applies to a journaled run: add --journal PATH", param_hint="'--durability'")
    inputs = _read_inputs(input_pairs, inputs_json)
    flow = load(reference, show_traceback)
    step_cache = cache_for_run(cache_path)
    if journal_path is None:
        try:
            with live_progress(flow, enabled=not (quiet or as_json)) as on_event:
                result = runner.run_blocking(
                    flow,
                    inputs,
                    run_id=run_id,
                    max_concurrency=concurrency,
                    deadline=deadline,
                    fail_fast=fail_fast,
                    on_event=on_event,
                    cache=step_cache,
                )
        except BaseException as exc:
            result = handle_run_error(exc)
        exit_with(result, as_json, full_tracebacks=show_traceback, table=full_table)
    run_id = run_id or new_run_id()  # chosen here, so that it can be shown before the run starts
    with open_journal(journal_path, durability or "process") as journal:
        recording = f"recording run {run_id} in {journal_path}"  # once it has started: the id may be taken
        try:
            with live_progress(flow, enabled=not (quiet or as_json)) as progress:
                on_event = announce_on_start(recording, progress)
                result = runner.run_blocking(
                    flow,
                    inputs,
                    run_id=run_id,
                    max_concurrency=concurrency,
                    deadline=deadline,
                    fail_fast=fail_fast,
                    journal=journal,
                    flow_source=flow_source(reference),
                    on_event=on_event,
                    cache=step_cache,
                )
        except BaseException as exc:
            result = handle_run_error(exc, resume_hint=resume_command(journal_path, run_id))
    exit_with(result, as_json, full_tracebacks=show_traceback, table=full_table)


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


@cli.command()
@click.argument("reference", metavar="MODULE:FLOW|FILE")
@click.option(
    "--format",
    "form",
    type=click.Choice(GRAPH_FORMATS),
    default="mermaid",
    show_default=True,
    help="Mermaid flowchart text, or an SVG picture (steps in layers by depth).",
)
@allow_module_option
def graph(reference: str, form: str) -> None:
    """Print the flow's graph as a Mermaid flowchart or an SVG picture: an edge for every dependency the run
    waits on.

    Solid: the output reaches the step's arguments; thick: only through its accumulated context;
    dotted (dashed in SVG): nothing reaches it (ordering, or a condition only); labelled when: the
    step's condition reads it.
    """
    click.echo(graph_text(load(reference, show_traceback=False), form), nl=form == "mermaid")


@cli.command()
def drivers() -> None:
    """List the installed drivers, one name a line (use one with run --driver NAME)."""
    names = installed_drivers()
    if not names:
        raise click.ClickException('no drivers are installed; install one, e.g. pip install "flowkernel[sync]"')
    for name in names:
        click.echo(name)


for _command in (resume, runs, show, delete, serve, validate, schema, parity, cache):
    cli.add_command(_command)
