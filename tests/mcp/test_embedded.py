"""The Python API of :mod:`flowkernel.mcp.serve`, in-process: the real SDK client (``mcp.Client``) talking
to a real low-level server or ``MCPServer`` in the same event loop, on asyncio and on trio."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
import sniffio
from mcp import Client
from mcp.server.lowlevel import Server
from mcp.server.mcpserver import MCPServer
from mcp.shared.dispatcher import ProgressFnT

from flowkernel import Flow, Step, tool
from flowkernel.errors import ServeError
from flowkernel.host.journal import SqliteJournal
from flowkernel.mcp.reporting import RUN_ID_KEY, STATUS_KEY
from flowkernel.mcp.serve import FlowTools, ServedFlow, flow_server, parse_address, serve_flows

from .flows import broken, report, slow, squares

LOOPS = ["asyncio", "trio"]


def run_on(loop: str, main: Callable[[], Awaitable[Any]]) -> Any:
    return anyio.run(main, backend=loop)


Progress = list[tuple[float, float | None, str | None]]


def recorder() -> tuple[Progress, ProgressFnT]:
    seen: Progress = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    return seen, on_progress


def test_flows_are_listed_with_their_names_descriptions_and_schemas() -> None:
    async def main() -> list[types.Tool]:
        async with Client(flow_server([report, squares, slow])) as client:
            return (await client.list_tools()).tools

    tools = {tool.name: tool for tool in run_on("asyncio", main)}
    assert list(tools) == ["report", "squares", "slow"]
    assert tools["report"].description == report.description
    assert tools["report"].input_schema == report.input_schema()
    assert tools["report"].input_schema["properties"] == {"name": {"type": "string"}, "n": {"type": "integer"}}
    assert tools["report"].output_schema == report.output_schema()
    assert tools["squares"].output_schema == {
        "type": "object",
        "properties": {"each": {"type": "array", "items": {"type": "integer"}}},
    }


@pytest.mark.parametrize("loop", LOOPS)
def test_a_call_runs_the_flow_on_the_servers_loop_and_reports_each_step_by_path(loop: str) -> None:
    loops: list[str] = []

    @tool
    async def where() -> str:
        loops.append(sniffio.current_async_library())
        return "here"

    located = Flow(name="located", steps=[Step(id="where", tool=where)])
    seen, on_progress = recorder()

    async def main() -> tuple[types.CallToolResult, types.CallToolResult]:
        async with Client(flow_server([report, located])) as client:
            called = await client.call_tool("report", {"name": "Ada", "n": 3}, progress_callback=on_progress)
            return called, await client.call_tool("located", {})

    called, elsewhere = run_on(loop, main)
    outputs = {"hello": {"text": "hello Ada", "length": 9}, "squares": {"each": [0, 1, 4]}}
    assert not called.is_error
    assert called.structured_content == outputs
    assert isinstance(called.content[0], types.TextContent)
    assert json.loads(called.content[0].text) == outputs
    assert called.meta is not None
    assert called.meta[STATUS_KEY] == "succeeded"
    assert len(called.meta[RUN_ID_KEY]) == 32
    messages = [message for _, _, message in seen]
    assert set(messages) == {
        "hello: succeeded",
        "squares/list: succeeded",
        "squares/each[0]: succeeded",
        "squares/each[1]: succeeded",
        "squares/each[2]: succeeded",
        "squares/each: succeeded",
        "squares: succeeded",
    }
    assert messages.index("squares/each[2]: succeeded") < messages.index("squares/each: succeeded")
    assert [progress for progress, _, _ in seen] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert {total for _, total, _ in seen} == {None}  # a sub-flow and a map: the count shows only as it runs
    assert elsewhere.structured_content == {"where": "here"}
    assert loops == [loop]  # the default driver is the loop's own: trio's on trio, asyncio's on asyncio


def test_a_flow_without_sub_flows_or_maps_reports_its_total() -> None:
    seen, on_progress = recorder()

    async def main() -> None:
        async with Client(flow_server([Flow(name="quick", steps=slow.steps[:1])])) as client:
            await client.call_tool("quick", {"x": 3}, progress_callback=on_progress)

    run_on("asyncio", main)
    assert seen == [(1.0, 1.0, "first: succeeded")]


@pytest.mark.parametrize("loop", LOOPS)
def test_a_failed_run_is_an_error_result_with_its_error_records(loop: str) -> None:
    async def main() -> types.CallToolResult:
        async with Client(flow_server([broken])) as client:
            return await client.call_tool("broken", {"x": 7})

    called = run_on(loop, main)
    assert called.is_error
    assert called.structured_content is None
    assert called.meta is not None
    assert called.meta[STATUS_KEY] == "failed"
    texts = [block.text for block in called.content if isinstance(block, types.TextContent)]
    assert texts[0] == f"run {called.meta[RUN_ID_KEY]} of flow 'broken' failed"
    record = json.loads(texts[1])
    assert record["status"] == "failed"
    assert record["errors"] == [{"step": "boom", "kind": "tool", "type": "ValueError", "message": "cannot take 7"}]


def test_arguments_that_do_not_fit_the_flow_are_an_error_result_the_model_can_read() -> None:
    async def main() -> types.CallToolResult:
        async with Client(flow_server([squares])) as client:
            return await client.call_tool("squares", {"n": 2, "m": 3})

    called = run_on("asyncio", main)
    assert called.is_error
    assert isinstance(called.content[0], types.TextContent)
    assert "unknown input 'm'" in called.content[0].text


@pytest.mark.parametrize("loop", LOOPS)
def test_a_client_that_cancels_a_call_cancels_the_run_and_the_server_goes_on(
    loop: str, caplog: pytest.LogCaptureFixture
) -> None:
    ended: list[str] = []

    @tool
    async def hold(x: int) -> int:
        try:
            await anyio.sleep(600)
        except anyio.get_cancelled_exc_class():
            ended.append("cancelled")
            raise
        return x

    held = Flow(name="held", steps=[*slow.steps[:1], Step(id="wait", tool=hold, arguments=slow.steps[1].arguments)])

    async def main() -> types.CallToolResult:
        async with Client(flow_server([held, squares])) as client:
            with anyio.CancelScope() as scope:

                async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                    if message == "first: succeeded":  # the run is waiting in its second step now
                        scope.cancel()

                await client.call_tool("held", {"x": 3}, progress_callback=on_progress)
            assert scope.cancelled_caught
            return await client.call_tool("squares", {"n": 2})

    with caplog.at_level(logging.INFO, logger="flowkernel.mcp"):
        after = run_on(loop, main)
    assert after.structured_content == {"each": [0, 1]}
    assert ended == ["cancelled"]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "of flow 'held' cancelled by the client: 1 of 2 steps succeeded (first), 1 cancelled (wait)" in warning
    partial = json.loads(warning.partition("partial result: ")[2])
    assert partial["status"] == "cancelled"
    assert partial["steps"][0]["output"] == 9


def test_flows_join_the_tools_of_an_existing_mcp_server() -> None:
    existing = MCPServer("calculator")

    @existing.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    serve_flows(existing, [squares])

    async def main() -> tuple[list[str], types.CallToolResult, types.CallToolResult]:
        async with Client(existing) as client:
            names = [tool.name for tool in (await client.list_tools()).tools]
            return names, await client.call_tool("add", {"a": 1, "b": 2}), await client.call_tool("squares", {"n": 3})

    names, added, squared = run_on("asyncio", main)
    assert names == ["add", "squares"]
    assert added.structured_content == {"result": 3}
    assert squared.structured_content == {"each": [0, 1, 4]}


def test_flows_join_a_low_level_server_and_unknown_tools_still_reach_its_handler() -> None:
    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool(name="ping", input_schema={"type": "object"})])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(type="text", text=f"pong {params.name}")])

    server: Server[Any] = Server("mine", on_list_tools=list_tools, on_call_tool=call_tool)
    serve_flows(server, [ServedFlow(squares, name="squares_v2")])

    async def main() -> tuple[list[str], types.CallToolResult, types.CallToolResult]:
        async with Client(server) as client:
            names = [tool.name for tool in (await client.list_tools()).tools]
            return names, await client.call_tool("ping", {}), await client.call_tool("squares_v2", {"n": 1})

    names, pinged, squared = run_on("trio", main)
    assert names == ["ping", "squares_v2"]
    assert isinstance(pinged.content[0], types.TextContent)
    assert pinged.content[0].text == "pong ping"
    assert squared.structured_content == {"each": [0]}


def test_a_journal_records_every_served_run(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "served.db")

    async def main() -> list[types.CallToolResult]:
        async with Client(flow_server([squares, broken], journal=journal)) as client:
            return [await client.call_tool("squares", {"n": 2}), await client.call_tool("broken", {"x": 1})]

    try:
        called = run_on("asyncio", main)
        runs = {run.run_id: run for run in journal.runs()}
    finally:
        journal.close()
    assert [result.meta[RUN_ID_KEY] for result in called if result.meta] == list(runs)
    assert [(run.flow_name, run.status) for run in runs.values()] == [("squares", "succeeded"), ("broken", "failed")]


def test_a_driver_that_cannot_run_in_the_servers_loop_is_an_error_result() -> None:
    async def main() -> types.CallToolResult:
        async with Client(flow_server([squares], driver="trio")) as client:
            return await client.call_tool("squares", {"n": 2})

    called = run_on("asyncio", main)
    assert called.is_error
    assert isinstance(called.content[0], types.TextContent)
    assert called.content[0].text == "the trio driver cannot run inside an asyncio server (it needs trio)"


def test_what_cannot_be_served_is_refused_before_serving() -> None:
    with pytest.raises(ServeError, match="two flows are named 'squares'"):
        FlowTools([squares, ServedFlow(report, name="squares")])
    with pytest.raises(ServeError, match="the sync driver cannot serve flows"):
        FlowTools([squares], driver="sync")


@pytest.mark.parametrize(
    ("address", "parsed"), [("127.0.0.1:8000", ("127.0.0.1", 8000)), ("[::1]:80", ("::1", 80)), ("h:1", ("h", 1))]
)
def test_an_address_is_host_and_port(address: str, parsed: tuple[str, int]) -> None:
    assert parse_address(address) == parsed


@pytest.mark.parametrize("address", ["8000", ":8000", "localhost", "localhost:", "localhost:http", "h:0", "h:65536"])
def test_an_address_that_is_not_host_and_port_is_refused(address: str) -> None:
    with pytest.raises(ServeError, match="is not HOST:PORT"):
        parse_address(address)
