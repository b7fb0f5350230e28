"""MCP tools in flows: declare a server, name its tools in steps, and each run gets a session.

An :class:`MCPServer` is a :class:`~flowkernel.Resource`: declaring one connects to nothing, so a flow
module that uses MCP tools is an ordinary module-level ``Flow`` that ``flowkernel run``, ``resume`` and
``graph`` load. A run that calls one of its tools opens a session when it starts (on the driver's own
loop: the SDK is anyio-based, so asyncio, trio and the sync driver's loop thread all serve) and closes
it when the run ends. Opening lists the server's tools, and every step calling one is checked against
its JSON Schema before any call (unknown tools, unknown and missing names, literal types: all at once,
in one :class:`~flowkernel.errors.ToolMismatchError`); each call's arguments are checked again before
they are sent::

    time = MCPServer("time", command="mcp-server-time")
    now = time.tool("get_current_time")
    flow = Flow(name="clock", steps=[Step(id="now", tool=now, arguments={"timezone": "Europe/Paris"})])
"""

from __future__ import annotations

import difflib
import shutil
import sys
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowkernel.errors import Problem
from flowkernel.model.json_schema import SchemaArguments, schema_arguments_model
from flowkernel.model.resource import Resource
from flowkernel.model.retry import RetryPolicy
from flowkernel.model.tool import Tool
from flowkernel.model.validation import model_argument_problems

from .results import call_remote

if TYPE_CHECKING:
    import mcp
    import mcp.types

    from flowkernel.model.flow import Flow

__all__ = ("MCPServer", "MCPSession", "MCPToolCall")


class MCPSession:
    """An open session with an MCP server, as a run's tools get it (``server.get()``): the SDK's
    ``mcp.Client`` and the server's tools, listed when it opened."""

    def __init__(self, server: str, client: mcp.Client, tools: Sequence[mcp.types.Tool]) -> None:
        self.server = server
        self.client = client
        self.tools = {tool.name: tool for tool in tools}
        self._models: dict[str, type[SchemaArguments]] = {}

    def arguments_model(self, tool: str) -> type[SchemaArguments]:
        """The input model checking a tool's arguments against its listed schema (made once)."""
        model = self._models.get(tool)
        if model is None:
            model = self._models[tool] = schema_arguments_model(f"{self.server}.{tool}", self.tools[tool].input_schema)
        return model


class MCPToolCall:
    """The function behind an MCP tool: call ``tool`` on ``server``'s session in the current run.
    Module-level and holding only the declaration, so it pickles (Dask ships it to its workers)."""

    def __init__(self, server: MCPServer, tool: str) -> None:
        self.server = server
        self.tool = tool

    async def __call__(self, **arguments: Any) -> Any:
        return await call_remote(self.server.get(), self.tool, arguments)

    def __repr__(self) -> str:
        return f"MCPToolCall({self.server.name!r}, {self.tool!r})"


class MCPServer(Resource[MCPSession]):
    """An MCP server, by stdio ``command`` (with ``args``, ``env``, ``cwd``) or streamable HTTP ``url``
    (with ``headers``); ``name`` names it among the run's resources and prefixes its tools' names."""

    __slots__ = ("args", "command", "cwd", "env", "headers", "url")

    def __init__(
        self,
        name: str,
        *,
        command: str | None = None,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if (command is None) == (url is None):
            raise ValueError(f"MCP server {name!r}: give either command= (stdio) or url= (streamable HTTP)")
        if isinstance(args, str):
            raise TypeError(f"MCP server {name!r}: args= is a list of arguments, not one string")
        super().__init__(name, self.connect)
        self.command = command
        self.args = tuple(args)
        self.env = None if env is None else dict(env)
        self.cwd = cwd
        self.url = url
        self.headers = None if headers is None else dict(headers)

    def tool(
        self,
        name: str,
        *,
        description: str = "",
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> Tool[..., Any]:
        """A tool calling the server's tool ``name``, named ``server.name`` in steps and results; its
        arguments are checked against the schema the server lists when the run's session opens."""
        return Tool(
            name=f"{self.name}.{name}",
            fn=MCPToolCall(self, name),
            description=description,
            is_async=True,
            retry=retry,
            timeout=timeout,
            validate_annotations=False,
            resources=(self,),
        )

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[MCPSession]:
        """Open a session in the current task (what a run does): connect, list the tools, and close
        the session (and a stdio server's process) when the block ends."""
        import mcp

        async with AsyncExitStack() as stack:
            target: Any = self.url
            if self.command is not None:
                target = mcp.StdioServerParameters(
                    command=_found(self.command), args=list(self.args), env=self.env, cwd=self.cwd
                )
            elif self.headers:
                from mcp.client.streamable_http import streamable_http_client
                from mcp.shared._httpx_utils import create_mcp_http_client

                http = await stack.enter_async_context(create_mcp_http_client(headers=self.headers))
                target = streamable_http_client(self.url or "", http_client=http)
            client = await stack.enter_async_context(mcp.Client(target, cache=None))
            yield MCPSession(self.name, client, await _listed_tools(client))

    def check(self, value: MCPSession, flow: Flow) -> Iterable[Problem]:
        """Every step calling one of this server's tools, against the listed tools and their schemas."""
        for where, tool, step in flow.calls():
            call = tool.fn
            if not isinstance(call, MCPToolCall) or call.server.name != self.name:
                continue
            if call.tool not in value.tools:
                yield Problem(f"{where}.tool", _unknown_tool(self.name, call.tool, value.tools))
                continue
            model = value.arguments_model(call.tool)
            yield from model_argument_problems(where, tool.name, model, step.arguments, names=True)

    def __reduce__(self) -> tuple[Any, ...]:
        settings = {"command": self.command, "args": self.args, "env": self.env, "cwd": self.cwd, "url": self.url}
        return (_rebuild, (self.name, settings, self.headers))


def _found(command: str) -> str:
    """``command`` as given, or from the directory of the running Python when it is not on ``PATH``: a
    server installed beside flowkernel (``pip install mcp-server-time``) is found from an unactivated
    virtual environment too."""
    if shutil.which(command) is not None:
        return command
    return shutil.which(command, path=str(Path(sys.executable).parent)) or command


async def _listed_tools(client: mcp.Client) -> list[mcp.types.Tool]:
    """Every tool the server lists, page by page."""
    tools: list[mcp.types.Tool] = []
    cursor: str | None = None
    while True:
        listed = await client.list_tools(cursor=cursor)
        tools.extend(listed.tools)
        cursor = listed.next_cursor
        if not cursor:
            return tools


def _rebuild(name: str, settings: dict[str, Any], headers: dict[str, str] | None) -> MCPServer:
    return MCPServer(name, headers=headers, **settings)


def _unknown_tool(server: str, tool: str, known: Iterable[str]) -> str:
    names = sorted(known)
    close = difflib.get_close_matches(tool, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f" (it has: {', '.join(names) or 'none'})"
    return f"MCP server {server!r} has no tool {tool!r}{hint}"
