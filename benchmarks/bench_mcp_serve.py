"""Benchmark 9: the round trip of a flow served as an MCP tool, against a plain MCP tool doing the same work.

Two servers, each in its own fresh process, both low-level MCP servers on asyncio over stdio:

* ``served``: ``flowkernel serve benchmarks/bench_mcp_serve.py:flow``, a one-step flow whose async tool adds
  one to its input (the run on the asyncio driver, events built for progress, the result as structured
  content); a sync tool would add the asyncio driver's thread per run (about 1 ms here; see drivers.md);
* ``plain``: ``python benchmarks/bench_mcp_serve.py --plain-server``, one tool answering ``x + 1`` as
  structured content and JSON text, what a hand-written tool does.

One client (this process, the SDK's ``mcp.Client`` over stdio) calls both, interleaved sample by sample
(A, B, A, B, ...); a sample is a run of sequential calls and reports milliseconds per call. The ratio says
what running the call as a flow adds to a round trip that already crosses two processes.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from _harness import Config, Row, log, median

from flowkernel import Flow, Input, Step, tool

NAME = "mcp_serve"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@tool
async def add_one(x: int) -> int:  # async, as the plain tool's handler is: both do the work on the loop
    return x + 1


flow = Flow(
    name="add_one",
    description="Adds one to x.",
    steps=[Step(id="add", tool=add_one, arguments={"x": Input("x")})],
)


def run(config: Config) -> list[Row]:
    import anyio

    calls = 5 if config.quick else 200
    samples: dict[str, list[float]] = {"served": [], "plain": []}
    log(f"{NAME}: {config.repeats} samples of {calls} calls each, served flow vs plain tool, interleaved")
    anyio.run(_measure, calls, config.repeats, samples)
    served, plain = median(samples["served"]), median(samples["plain"])
    return [
        Row(
            "mcp serve: served flow vs plain tool, round trip (stdio, asyncio)",
            served,
            plain,
            "ms/call",
            served / plain,
            f"ratio {served / plain:.2f}x, +{served - plain:.3f} ms/call "
            f"(served {_spread(samples['served'])}; plain {_spread(samples['plain'])})",
            "reported",
            None,
            note=(
                "one tools/call at a time from one client; each server its own fresh process; the flow is one "
                "step adding one, the plain tool does the same"
            ),
            samples=samples,
        )
    ]


def _spread(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}"


async def _measure(calls: int, repeats: int, samples: dict[str, list[float]]) -> None:
    from contextlib import AsyncExitStack

    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    def server(*args: str) -> Client:
        params = StdioServerParameters(command=sys.executable, args=list(args), env=dict(os.environ), cwd=ROOT)
        return Client(stdio_client(params, errlog=quiet))  # the served one logs every run on stderr

    async with AsyncExitStack() as stack:
        quiet = stack.enter_context(open(os.devnull, "w"))  # noqa: SIM115 - closed by the stack
        clients = {
            "served": await stack.enter_async_context(
                server("-m", "flowkernel", "serve", f"{Path(__file__).resolve()}:flow")
            ),
            "plain": await stack.enter_async_context(server(str(Path(__file__).resolve()), "--plain-server")),
        }
        names = {"served": "add_one", "plain": "add_one"}
        for name, client in clients.items():  # warm up: first calls, imports, caches
            for x in range(max(3, calls // 10)):
                result = await client.call_tool(names[name], {"x": x})
                if result.structured_content != ({"add": x + 1} if name == "served" else {"result": x + 1}):
                    raise AssertionError(f"{name}: {result}")
        for _ in range(repeats):
            for name, client in clients.items():
                gc.collect()
                started = time.perf_counter()
                for x in range(calls):
                    await client.call_tool(names[name], {"x": x})
                samples[name].append((time.perf_counter() - started) / calls * 1e3)


def plain_server() -> None:
    """The baseline: a low-level server with one tool adding one, as a hand-written tool would answer."""
    import anyio
    import mcp_types as types
    from mcp.server.lowlevel import Server

    tool_entry = types.Tool(
        name="add_one",
        description="Adds one to x.",
        input_schema={"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
        output_schema={"type": "object", "properties": {"result": {"type": "integer"}}},
    )

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[tool_entry])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        value = {"result": int((params.arguments or {})["x"]) + 1}
        text = types.TextContent(type="text", text=json.dumps(value))
        return types.CallToolResult(content=[text], structured_content=value, is_error=False)

    server: Server[Any] = Server("plain", on_list_tools=list_tools, on_call_tool=call_tool)

    async def main() -> None:
        from mcp.server.stdio import stdio_server

        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)


if __name__ == "__main__":
    if sys.argv[1:] == ["--plain-server"]:
        plain_server()
    else:
        for row in run(Config.make(quick="--quick" in sys.argv)):
            print(row.name, f"{row.measured:.3f} vs {row.baseline} {row.unit}", row.judged)
