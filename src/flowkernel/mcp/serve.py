"""Flows as MCP tools: each flow a tool (its name, description, input and output schemas), each call a
run on an async driver inside the server's own event loop.

Why: an agent reaches a flow the way it reaches any tool, and gets what the kernel guarantees with it
(retries, timeouts, a journal to resume from). Three ways in, from most to least embedded:

- :func:`serve_flows` adds the flows to an existing low-level ``mcp.server.lowlevel.Server`` (or an
  ``MCPServer``), next to its own tools (calls of other tools go to its handlers as before);
- :func:`flow_server` makes a server offering only the flows;
- :func:`run_stdio` and :func:`run_http` serve them (``flowkernel serve`` is built on these).

A call runs its flow with the arguments as inputs; progress notifications follow the steps as they finish
(sub-flows' and map elements' too, by path: ``report/each[3]``); a client that cancels the request
cancels the run, whose partial result is logged (logger ``flowkernel.mcp``), and the server goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
import sniffio
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.mcpserver import MCPServer

from ..errors import FlowKernelError, ServeError
from ..host import AsyncDriver, load_driver, new_run_id, partial_result
from ..host.journal import Journal
from ..host.settings import RunSettings
from ..model.flow import Flow
from .reporting import ProgressReporter, Report, error_result, partial_summary, tool_result

__all__ = ("FlowTools", "ServedFlow", "flow_server", "parse_address", "run_http", "run_stdio", "serve_flows")

logger = logging.getLogger("flowkernel.mcp")

DRIVER_FOR_LOOP = {"asyncio": "asyncio", "trio": "trio"}
"""The driver a call runs on when none was chosen: the one of the server's event loop."""
LOOP_OF_DRIVER = {"trio": "trio"}
"""The event loop a named driver needs (asyncio for any other: asyncio, dask, third-party ones)."""


@dataclass(frozen=True, slots=True)
class ServedFlow:
    """A flow offered as a tool: under ``name`` (default: the flow's name); ``source`` is where it loads
    from (``path.py:flow``), recorded in the journal so ``flowkernel resume`` finds it."""

    flow: Flow
    name: str | None = None
    source: str | None = None

    @property
    def tool_name(self) -> str:
        return self.name or self.flow.name


class FlowTools:
    """The flows one server offers, by tool name, and how a call of one runs.

    ``driver``: an async driver, a driver's name, or ``None`` for the server's own loop's (asyncio, or
    trio on trio). ``journal``: record every run there, so ``flowkernel runs``/``show``/``resume`` see it.
    ``max_concurrency``: the most tool calls in flight in one run.
    """

    def __init__(
        self,
        flows: Iterable[Flow | ServedFlow],
        *,
        driver: AsyncDriver | str | None = None,
        journal: Journal | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        self.flows: dict[str, ServedFlow] = {}
        for item in flows:
            served = item if isinstance(item, ServedFlow) else ServedFlow(item)
            if served.tool_name in self.flows:
                raise ServeError(f"two flows are named {served.tool_name!r}: give one another tool name")
            self.flows[served.tool_name] = served
        self.driver = _async_driver(driver) if isinstance(driver, str) else driver
        self.journal = journal
        self.max_concurrency = max_concurrency
        self._defaults: dict[str, AsyncDriver] = {}
        self._tools = [self._tool(name, served.flow) for name, served in self.flows.items()]

    def tools(self) -> list[types.Tool]:
        """The flows as MCP tools: name, description, input and output schemas."""
        return list(self._tools)

    def input_schema(self, name: str) -> dict[str, Any] | None:
        served = self.flows.get(name)
        return None if served is None else served.flow.input_schema()

    @staticmethod
    def _tool(name: str, flow: Flow) -> types.Tool:
        steps = ", ".join(step.id for step in flow.steps)
        description = flow.description or f"Runs the flow {flow.name!r} (version {flow.version}): steps {steps}."
        return types.Tool(
            name=name,
            description=description,
            input_schema=flow.input_schema(),
            output_schema=flow.output_schema(),
            _meta={"flowkernel/flow": flow.name, "flowkernel/version": flow.version},
        )

    def driver_here(self) -> AsyncDriver:
        """The driver for a call in the running event loop: the chosen one, else the loop's own."""
        loop = sniffio.current_async_library()
        if self.driver is not None:
            needed = LOOP_OF_DRIVER.get(self.driver.name, "asyncio")
            if needed != loop:
                raise ServeError(
                    f"the {self.driver.name} driver cannot run inside {_a(loop)} server (it needs {needed})"
                )
            return self.driver
        if loop not in self._defaults:
            name = DRIVER_FOR_LOOP.get(loop)
            if name is None:
                raise ServeError(f"no driver runs inside a {loop} event loop; serve on asyncio or trio")
            self._defaults[loop] = _async_driver(name)
        return self._defaults[loop]

    async def call(
        self, name: str, arguments: Mapping[str, Any] | None, report: Report | None = None
    ) -> types.CallToolResult:
        """Run the flow ``name`` with ``arguments`` as its inputs and give its result as a tool result.

        ``report`` is the request's ``report_progress`` (progress, total, message), or ``None``. A run the
        caller cancels is stopped: its partial result is logged and the cancellation goes on up.
        """
        served = self.flows[name]
        run_id = new_run_id()
        reporter = ProgressReporter(served.flow)
        settings: RunSettings = {"run_id": run_id, "on_event": reporter.on_event}
        if self.max_concurrency is not None:
            settings["max_concurrency"] = self.max_concurrency
        if self.journal is not None:
            settings["journal"] = self.journal
            settings["flow_source"] = served.source
        where = f" in {self.journal.path}" if self.journal is not None and hasattr(self.journal, "path") else ""
        # Per-run lines are DEBUG: two INFO lines per call were half of a served call's time (a
        # synchronous write to stderr on the server's loop, measured with py-spy); failures stay visible.
        logger.debug("run %s of flow %r started%s", run_id, served.flow.name, where and f" (recorded{where})")
        async with anyio.create_task_group() as group:
            if report is not None:
                group.start_soon(reporter.deliver, report)
            try:
                result = await self.driver_here().run(served.flow, dict(arguments or {}), **settings)
            except FlowKernelError as exc:  # arguments that do not fit, a tool the driver cannot run, ...
                logger.info("run %s of flow %r could not start: %s", run_id, served.flow.name, exc)
                return error_result(str(exc), run_id)
            except anyio.get_cancelled_exc_class() as exc:
                self._log_cancelled(served, run_id, exc)
                raise
            finally:
                reporter.close()
        level = logging.DEBUG if result.status == "succeeded" else logging.INFO
        logger.log(level, "run %s of flow %r %s%s", run_id, served.flow.name, result.status, where)
        return tool_result(result)

    def _log_cancelled(self, served: ServedFlow, run_id: str, exc: BaseException) -> None:
        resume = ""
        if self.journal is not None and hasattr(self.journal, "path"):
            resume = f"; resume it with: flowkernel resume {self.journal.path} {run_id}"
        logger.warning(
            "run %s of flow %r cancelled by the client: %s%s",
            run_id,
            served.flow.name,
            partial_summary(partial_result(exc)),
            resume,
        )


def _async_driver(name: str) -> AsyncDriver:
    driver = load_driver(name)
    if not isinstance(driver, AsyncDriver):
        raise ServeError(f"the {name} driver cannot serve flows: its runs block the server; use an async driver")
    return driver


def serve_flows(
    server: Server[Any] | MCPServer[Any],
    flows: Iterable[Flow | ServedFlow],
    *,
    driver: AsyncDriver | str | None = None,
    journal: Journal | None = None,
    max_concurrency: int | None = None,
) -> FlowTools:
    """Offer ``flows`` as tools of ``server``, beside the tools it has: its ``tools/list`` answer gains
    them, and a ``tools/call`` of one runs it; calls of other tools reach the server's handlers as before
    (a tool of the server's named like a flow is shadowed by the flow, with a warning in the log).
    Options as for :class:`FlowTools`. Returns the :class:`FlowTools` it registered."""
    offered = FlowTools(flows, driver=driver, journal=journal, max_concurrency=max_concurrency)
    lowlevel: Server[Any] = server._lowlevel_server if isinstance(server, MCPServer) else server
    listing = lowlevel.get_request_handler("tools/list")
    calling = lowlevel.get_request_handler("tools/call")

    async def list_tools(ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams) -> Any:
        theirs = await listing.handler(ctx, params) if listing is not None else None
        if theirs is None:
            return types.ListToolsResult(tools=offered.tools())
        if not isinstance(theirs, types.ListToolsResult):
            return theirs
        kept = [tool for tool in theirs.tools if tool.name not in offered.flows]
        if len(kept) < len(theirs.tools):
            shadowed = sorted({tool.name for tool in theirs.tools} & offered.flows.keys())
            logger.warning("flows shadow the server's own tools %s", ", ".join(map(repr, shadowed)))
        ours = offered.tools() if params.cursor is None else []  # the flows come on the first page
        return theirs.model_copy(update={"tools": [*kept, *ours]})

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> Any:
        if params.name not in offered.flows:
            if calling is not None:
                return await calling.handler(ctx, params)
            return error_result(f"unknown tool {params.name!r} (tools: {', '.join(offered.flows)})")
        return await offered.call(params.name, params.arguments, ctx.session.report_progress)

    lowlevel.add_request_handler("tools/list", types.PaginatedRequestParams, list_tools)
    lowlevel.add_request_handler("tools/call", types.CallToolRequestParams, call_tool)
    schema_of = lowlevel.get_tool_input_schema
    if schema_of is not None:  # header validation asks this, not tools/list: answer for the flows too
        lowlevel.get_tool_input_schema = lambda name: offered.input_schema(name) or schema_of(name)
    return offered


def flow_server(
    flows: Iterable[Flow | ServedFlow],
    *,
    name: str = "flowkernel",
    driver: AsyncDriver | str | None = None,
    journal: Journal | None = None,
    max_concurrency: int | None = None,
) -> Server[Any]:
    """A low-level MCP server offering ``flows`` as its tools, and nothing else."""
    from .. import __version__

    server: Server[Any] = Server(name, version=__version__)
    serve_flows(server, flows, driver=driver, journal=journal, max_concurrency=max_concurrency)
    return server


async def run_stdio(server: Server[Any]) -> None:
    """Serve ``server`` over this process's standard input and output until the client closes them."""
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


async def run_http(server: Server[Any], host: str, port: int) -> None:
    """Serve ``server`` over streamable HTTP at ``http://HOST:PORT/mcp`` (on asyncio: uvicorn's loop)."""
    import uvicorn

    app = server.streamable_http_app(host=host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning")
    await uvicorn.Server(config).serve()


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8000`` for an IPv6 host) as ``(host, port)``; :class:`ServeError` if it is not."""
    host, sep, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ServeError(f"{address!r} is not HOST:PORT (a host name or address, and a port from 1 to 65535)")
    return host, int(port)


def _a(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"
