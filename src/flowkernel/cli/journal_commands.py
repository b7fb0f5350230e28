"""The journal commands: ``runs`` lists a journal's runs, ``resume`` goes on with one, ``show`` prints one.

Both ``resume`` and ``show`` find the run's flow where ``run --journal`` recorded it was loaded from
(or ``--flow``); ``show`` rebuilds the result by replaying the record, calling no tool.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..host.journal import RunSummary, replay
from ..host.journal import retry_failed as mark_for_retry
from ..model.flow import Flow
from .cache_commands import CACHE_HELP, cache_for_run
from .common import (
    DURABILITY_HELP,
    EXISTING_JOURNAL,
    EXIT_FAILED,
    QUIET_HELP,
    SCHEDULER_HELP,
    TABLE_HELP,
    TRACEBACK_HELP,
    CannotRunError,
    allow_module_option,
    announce_on_start,
    driver_named,
    exit_with,
    handle_run_error,
    journal_errors,
    load,
    open_journal,
    resume_command,
)
from .pictures import TIMELINE_HELP, timeline_path, write_timeline
from .progress import live_progress
from .summaries import INCOMPLETE, run_summary_dict

if TYPE_CHECKING:  # SQLite loads when a command opens a journal (common.open_journal)
    from ..host.journal import Durability, SqliteJournal

__all__ = ("delete", "resume", "runs", "show")

Command = TypeVar("Command", bound=Callable[..., Any])


def a_recorded_run(command: Command) -> Command:
    """The arguments of ``resume`` and ``show``: JOURNAL RUN_ID."""
    command = click.argument("run_id")(command)
    return click.argument("journal_path", metavar="JOURNAL", type=EXISTING_JOURNAL)(command)


TRUSTED_HELP = (
    "Read a journal that stores pickles (written by an older flowkernel, or opened with codec='pickle'). "
    "Reading a pickle can run any code it holds: only for files you trust."
)
trusted_option = click.option("--trusted", is_flag=True, help=TRUSTED_HELP)


def _flow_help(purpose: str) -> str:
    return f"The flow to {purpose} (default: the one the run recorded, where it was started from)."


@click.command()
@a_recorded_run
@click.option("--flow", "reference", metavar="MODULE:FLOW|FILE", help=_flow_help("resume with"))
@allow_module_option
@click.option("-d", "--driver", default="sync", show_default=True, help="The driver to resume the run with.")
@click.option("--scheduler", metavar="ADDRESS", help=SCHEDULER_HELP)
@click.option(
    "--allow-flow-change",
    is_flag=True,
    help="Resume even though the flow's structure changed since the run started (replay still checks each step).",
)
@click.option("--durability", type=click.Choice(["process", "power"]), default="process", help=DURABILITY_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON instead of a table.")
@click.option("--traceback", "show_traceback", is_flag=True, help=TRACEBACK_HELP)
@click.option("--table", "full_table", is_flag=True, help=TABLE_HELP)
@click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="If the run finished without succeeding, run again what failed, was cancelled or was skipped because of "
    "it (steps that succeeded keep their outputs; their tools are not called again).",
)
@trusted_option
@click.option("--cache", "cache_path", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path), help=CACHE_HELP)
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
    full_table: bool,
    quiet: bool,
    retry_failed: bool,
    trusted: bool,
    cache_path: Path | None,
) -> None:
    """Resume run RUN_ID from JOURNAL and show its result.

    The journal's record is replayed (completed calls are not made again, and the replay must issue
    the same calls as the record: a flow that changed is refused), then the run goes on from where it
    stopped, with the inputs and options it started with. A run that had finished is shown as it is;
    with --retry-failed, a run that finished without succeeding runs again what did not succeed.
    Shows its progress and its result like run. Exits like run: 0 succeeded, 1 failed or cancelled,
    2 could not resume.
    """
    runner = driver_named(driver, scheduler)
    step_cache = cache_for_run(cache_path)
    with open_journal(journal_path, durability, trusted=trusted) as journal:
        flow = recorded_flow(journal, run_id, reference, show_traceback)
        status = summary_of(journal, run_id).status
        retrying = False
        if retry_failed:
            with journal_errors():
                retrying = mark_for_retry(journal, run_id)
        finished = status != INCOMPLETE and not retrying
        note = f"run {run_id} had already finished: nothing to resume (its record is replayed)" if finished else None
        if retrying:
            note = f"run {run_id} {status}: running again what did not succeed"
        try:
            with live_progress(flow, enabled=not (quiet or as_json)) as progress:
                on_event = announce_on_start(note, progress)  # printed once the replay starts, never before a refusal
                result = runner.run_blocking(
                    flow,
                    journal=journal,
                    run_id=run_id,
                    resume=True,
                    allow_flow_change=allow_flow_change,
                    on_event=on_event,
                    cache=step_cache,
                )
        except BaseException as exc:
            result = handle_run_error(exc, resume_hint=resume_command(journal_path, run_id))
    exit_with(result, as_json, full_tracebacks=show_traceback, table=full_table)


def summary_of(journal: SqliteJournal, run_id: str) -> RunSummary:
    """The listing line of run ``run_id``; a one-line error if the journal holds no such run."""
    with journal_errors():
        summary = next((s for s in journal.runs() if s.run_id == run_id), None)
    if summary is None:
        raise CannotRunError(f"{journal.path} holds no run {run_id!r} (see: flowkernel runs {journal.path})")
    return summary


def recorded_flow(journal: SqliteJournal, run_id: str, reference: str | None, show_traceback: bool) -> Flow:
    """The flow ``reference`` names, or else the one run ``run_id`` recorded it was started with."""
    if reference is not None:
        return load(reference, show_traceback, param_hint="'--flow'")
    with journal_errors():
        reference = journal.header(run_id).flow_source
    if reference is None:
        raise CannotRunError(
            f"run {run_id!r} recorded no flow source (it was not started by `flowkernel run --journal`):"
            " name its flow with --flow MODULE:FLOW"
        )
    return load(reference, show_traceback, recorded_for=run_id)


@click.command()
@click.argument("journal_path", metavar="JOURNAL", type=EXISTING_JOURNAL)
@click.option("--json", "as_json", is_flag=True, help="Print the runs as a JSON list instead of a table.")
def runs(journal_path: Path, as_json: bool) -> None:
    """List the runs JOURNAL holds, oldest first.

    Each with its flow and version, its status (`incomplete`: crashed, interrupted or still running,
    so resumable), when it started, how many steps had succeeded and how many entries are recorded.
    """
    with open_journal(journal_path, "process") as journal, journal_errors():
        summaries = journal.runs()
    if as_json:
        click.echo(json.dumps([run_summary_dict(summary) for summary in summaries], indent=2))
    else:
        from rich.console import Console  # rich only for a table

        from .render import render_runs

        render_runs(summaries, Console(highlight=False), title=f"runs in {journal_path}")


@click.command()
@a_recorded_run
@click.option("--flow", "reference", metavar="MODULE:FLOW|FILE", help=_flow_help("replay the record with"))
@allow_module_option
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON instead of a table.")
@click.option("--traceback", "show_traceback", is_flag=True, help=TRACEBACK_HELP)
@click.option(
    "--timeline",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=timeline_path,
    help=TIMELINE_HELP,
)
@trusted_option
def show(
    journal_path: Path,
    run_id: str,
    reference: str | None,
    as_json: bool,
    show_traceback: bool,
    timeline: Path | None,
    trusted: bool,
) -> None:
    """Show the result of run RUN_ID from JOURNAL, as run --table showed it (every step's row).

    The result is rebuilt from the journal's record by replaying it with the run's flow (no tool is
    called). With --timeline FILE, also draws where the run's time went (FILE.svg, or FILE.html: the
    picture in a page, hover a bar for its details). Exits 0 if the run succeeded, 1 if it failed, was
    cancelled or has not finished (then it says how far it got and how to resume it), 2 if there is no
    such run or the journal cannot be read (or the timeline cannot be drawn: a run not finished).
    """
    with open_journal(journal_path, "process", trusted=trusted) as journal:
        summary = summary_of(journal, run_id)
        if summary.status != INCOMPLETE:
            flow = recorded_flow(journal, run_id, reference, show_traceback)
            with journal_errors():
                result = replay(flow, journal, run_id, allow_flow_change=reference is not None)
            if timeline is not None:
                write_timeline(timeline, result, flow)
            exit_with(result, as_json, full_tracebacks=show_traceback)
        if timeline is not None:
            raise CannotRunError(
                f"run {run_id} has not finished: its timeline can be drawn once it has "
                f"(resume it with: {resume_command(journal_path, run_id)})"
            )
    if as_json:
        click.echo(json.dumps(run_summary_dict(summary), indent=2))
    else:
        click.echo(
            f"run {run_id} (flow {summary.flow_name} v{summary.flow_version}) is {INCOMPLETE}: "
            f"{summary.steps_done} step{'s' * (summary.steps_done != 1)} done, "
            f"{summary.entries} entr{'ies' if summary.entries != 1 else 'y'} recorded"
        )
        click.echo(f"resume it with: {resume_command(journal_path, run_id)}")
    sys.exit(EXIT_FAILED)


@click.command()
@a_recorded_run
def delete(journal_path: Path, run_id: str) -> None:
    """Delete run RUN_ID and its record from JOURNAL, so the run id can be used again.

    Refused (exit 2) while the run is being executed elsewhere. Exits 0 once deleted, 2 if there is no
    such run or the journal cannot be written.
    """
    with open_journal(journal_path, "process") as journal, journal_errors():
        journal.delete(run_id)
    click.echo(f"deleted run {run_id} from {journal_path}", err=True)
