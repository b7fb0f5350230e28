"""``flowkernel serve MODULE:FLOW ...``: flows as the tools of an MCP server, over stdio or streamable HTTP.

The command only parses and loads; the serving is :mod:`flowkernel.mcp.serve`'s, the same an embedding
server uses. Its log (each run's id, a cancelled run's partial result) goes to stderr: stdout is the
protocol's, on stdio.
"""

from __future__ import annotations

import logging
import sys
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import ServeError
from ..host import AsyncDriver
from .common import TRACEBACK_HELP, CannotRunError, allow_module_option, driver_named, load, open_journal
from .loading import flow_source

if TYPE_CHECKING:
    from ..host.journal import SqliteJournal

__all__ = ("serve",)

MCP_HINT = "pip install 'flowkernel[mcp]'"


@click.command()
@click.argument("references", metavar="MODULE:FLOW|FILE...", nargs=-1, required=True)
@allow_module_option
@click.option("--http", "address", metavar="HOST:PORT", help="Serve over streamable HTTP at http://HOST:PORT/mcp.")
@click.option(
    "-d",
    "--driver",
    help="The driver runs go on (default asyncio; trio serves on a trio event loop; not over --http).",
)
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Record every served run in this SQLite journal, for flowkernel runs, show and resume.",
)
@click.option("-c", "--concurrency", type=click.IntRange(min=1), help="Most tool calls in flight in one run.")
@click.option("-v", "--verbose", is_flag=True, help="Log every run's start and end, not only runs that fail.")
@click.option("--traceback", "show_traceback", is_flag=True, help=TRACEBACK_HELP)
def serve(
    references: tuple[str, ...],
    address: str | None,
    driver: str | None,
    journal_path: Path | None,
    concurrency: int | None,
    verbose: bool,
    show_traceback: bool,
) -> None:
    """Serve each flow MODULE:FLOW as a tool of an MCP server, over stdio (default) or --http.

    A tool's name is its flow's, its description the flow's description, its schemas the flow's input
    and output schemas. Every call is a run: progress notifications as its steps finish, the outputs as
    structured content (a failed run is an error result), the run id in the result's _meta. A client
    that cancels a call cancels its run; the partial result goes to the log on stderr.
    """
    try:
        from ..mcp.serve import ServedFlow, flow_server, parse_address, run_http, run_stdio
    except ImportError as exc:
        raise CannotRunError(f"serving flows needs {exc.name or 'mcp'}: {MCP_HINT}") from None
    runner = _async_driver(driver) if driver is not None else None
    loop = "trio" if runner is not None and runner.name == "trio" else "asyncio"
    host_port = None
    if address is not None:
        try:
            host_port = parse_address(address)
        except ServeError as exc:
            raise click.BadParameter(str(exc), param_hint="'--http'") from None
        if loop == "trio":
            raise click.BadParameter(
                "--http serves on asyncio (uvicorn): use --driver asyncio", param_hint="'--driver'"
            )
    flows = [(load(reference, show_traceback), reference) for reference in references]
    _log_to_stderr(logging.DEBUG if verbose else logging.INFO)
    journal: AbstractContextManager[SqliteJournal | None] = nullcontext()
    if journal_path is not None:
        journal = open_journal(journal_path, "process")
    with journal as opened:
        served = [ServedFlow(flow, source=flow_source(reference)) for flow, reference in flows]
        try:
            server = flow_server(served, driver=runner, journal=opened, max_concurrency=concurrency)
        except ServeError as exc:
            raise CannotRunError(str(exc)) from None
        names = ", ".join(flow.name for flow, _ in flows)
        where = "stdio" if host_port is None else f"http://{host_port[0]}:{host_port[1]}/mcp"
        recorded = f", recording runs in {journal_path}" if journal_path is not None else ""
        logging.getLogger("flowkernel.mcp").info("serving %s over %s%s", names, where, recorded)
        import anyio

        main = partial(run_stdio, server) if host_port is None else partial(run_http, server, *host_port)
        try:
            anyio.run(main, backend=loop)
        except KeyboardInterrupt:
            sys.exit(130)


def _async_driver(name: str) -> AsyncDriver:
    runner = driver_named(name)
    if not isinstance(runner, AsyncDriver):
        raise click.BadParameter(
            f"the {name} driver cannot serve flows: its runs would block the server (use asyncio or trio)",
            param_hint="'--driver'",
        )
    return runner


def _log_to_stderr(level: int) -> None:
    """flowkernel's own log lines on stderr, one a line; stdout carries the protocol."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("flowkernel serve: %(message)s"))
    log = logging.getLogger("flowkernel.mcp")
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
