"""``flowkernel serve`` as a real subprocess, called by the MCP SDK's own clients: over stdio (listing,
structured results, progress inside a sub-flow and a map step, cancellation, failures, ``--driver trio``,
``--journal`` then ``flowkernel runs``/``show``), over streamable HTTP, and the one-line errors of a
command line that cannot serve."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

import anyio
import mcp_types as types
import pytest
from click.testing import CliRunner
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from flowkernel.cli.app import cli as cli_group
from flowkernel.mcp.reporting import RUN_ID_KEY

ROOT = Path(__file__).resolve().parents[2]
FLOWS = "tests/mcp/flows.py"


def serving(*args: str, errlog: TextIO) -> Client:
    """A client of ``flowkernel serve ARGS`` started as a subprocess (its stderr into ``errlog``)."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "flowkernel", "serve", *args], env=dict(os.environ), cwd=ROOT
    )
    return Client(stdio_client(params, errlog=errlog))


def session(tmp_path: Path, main: Callable[[TextIO], Awaitable[Any]]) -> tuple[Any, str]:
    """Run ``main(errlog)``; return what it returned and what the server wrote on stderr."""
    log = tmp_path / "server.log"
    with log.open("w") as errlog:
        value = anyio.run(main, errlog)
    return value, log.read_text()


def text_of(result: types.CallToolResult) -> list[str]:
    return [block.text for block in result.content if isinstance(block, types.TextContent)]


def test_served_flows_are_tools_with_schemas_structured_results_and_progress(tmp_path: Path) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async def main(errlog: TextIO) -> tuple[list[types.Tool], types.CallToolResult, types.CallToolResult]:
        async with serving(f"{FLOWS}:report", f"{FLOWS}:broken", "-v", errlog=errlog) as client:
            tools = (await client.list_tools()).tools
            called = await client.call_tool("report", {"name": "Ada", "n": 3}, progress_callback=on_progress)
            return tools, called, await client.call_tool("broken", {"x": 2})

    (tools, called, failed), log = session(tmp_path, main)
    assert [(tool.name, tool.description) for tool in tools] == [
        ("report", "A greeting, and the squares below n computed by a sub-flow."),
        ("broken", "Always fails."),
    ]
    assert tools[0].input_schema == {
        "type": "object",
        "properties": {"name": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["name", "n"],
        "additionalProperties": False,
    }
    assert tools[0].output_schema is not None
    assert tools[0].output_schema["properties"]["squares"]["properties"]["each"]["items"] == {"type": "integer"}
    outputs = {"hello": {"text": "hello Ada", "length": 9}, "squares": {"each": [0, 1, 4]}}
    assert not called.is_error
    assert called.structured_content == outputs  # the client checked it against the output schema too
    assert json.loads(text_of(called)[0]) == outputs
    messages = [message for _, _, message in seen]
    assert {"squares/list: succeeded", "squares/each[0]: succeeded", "squares/each[2]: succeeded"} < set(messages)
    assert messages[-1] == "squares: succeeded" or messages[-1] == "hello: succeeded"
    assert len(messages) == 7
    assert [progress for progress, _, _ in seen] == sorted({progress for progress, _, _ in seen})
    assert failed.is_error
    errors = json.loads(text_of(failed)[1])["errors"]
    assert errors == [{"step": "boom", "kind": "tool", "type": "ValueError", "message": "cannot take 2"}]
    assert called.meta is not None
    assert f"run {called.meta[RUN_ID_KEY]} of flow 'report' succeeded" in log
    assert "serving report, broken over stdio" in log


def test_a_cancelled_call_stops_its_run_logs_the_partial_result_and_the_server_goes_on(tmp_path: Path) -> None:
    async def main(errlog: TextIO) -> types.CallToolResult:
        async with serving(f"{FLOWS}:slow", f"{FLOWS}:squares", "-v", errlog=errlog) as client:
            with anyio.CancelScope() as scope:

                async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                    if message == "first: succeeded":  # the run now waits in its second step
                        scope.cancel()

                await client.call_tool("slow", {"x": 3}, progress_callback=on_progress)
            assert scope.cancelled_caught
            return await client.call_tool("squares", {"n": 2})

    after, log = session(tmp_path, main)
    assert after.structured_content == {"each": [0, 1]}
    (line,) = [line for line in log.splitlines() if "cancelled by the client" in line]
    assert "of flow 'slow' cancelled by the client: 1 of 2 steps succeeded (first), 1 cancelled (wait)" in line
    partial = json.loads(line.partition("partial result: ")[2])
    assert [(step["id"], step["status"], step["output"]) for step in partial["steps"]] == [
        ("first", "succeeded", 9),
        ("wait", "cancelled", None),
    ]
    assert "of flow 'squares' succeeded" in log.partition(line)[2]  # served after the cancellation


def test_the_trio_driver_serves_on_trio(tmp_path: Path) -> None:
    async def main(errlog: TextIO) -> types.CallToolResult:
        async with serving(f"{FLOWS}:where", "--driver", "trio", errlog=errlog) as client:
            return await client.call_tool("where", {})

    called, _ = session(tmp_path, main)
    assert called.structured_content == {"loop": "trio"}


def test_served_runs_are_journaled_for_runs_and_show(tmp_path: Path) -> None:
    journal = tmp_path / "served.db"

    async def main(errlog: TextIO) -> list[types.CallToolResult]:
        async with serving(f"{FLOWS}:squares", f"{FLOWS}:slow", "--journal", str(journal), errlog=errlog) as client:
            first = await client.call_tool("squares", {"n": 3})
            with anyio.CancelScope() as scope:

                async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                    scope.cancel()

                await client.call_tool("slow", {"x": 2}, progress_callback=on_progress)
            return [first]

    (first,), log = session(tmp_path, main)
    assert first.meta is not None
    run_id = first.meta[RUN_ID_KEY]
    assert f"recording runs in {journal}" in log
    listed = cli("runs", str(journal), "--json")
    assert listed.returncode == 0, listed.stderr
    runs = {run["run_id"]: run for run in json.loads(listed.stdout)}
    assert runs[run_id]["status"] == "succeeded"
    (stopped,) = [run for run in runs.values() if run["flow_name"] == "slow"]
    assert stopped["status"] == "incomplete"  # cancelled by its client: resumable
    assert f"resume it with: flowkernel resume {journal} {stopped['run_id']}" in log
    shown = cli("show", str(journal), run_id, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["outputs"] == {"each": [0, 1, 4]}
    unfinished = cli("show", str(journal), stopped["run_id"], "--json")
    assert unfinished.returncode == 1  # not finished: resumable with the command the log gave
    assert json.loads(unfinished.stdout)["entries"] >= 1  # the completion of the step that finished first


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_streamable_http_serves_the_same_tools(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "flowkernel", "serve", f"{FLOWS}:squares", "--http", f"127.0.0.1:{port}"]
    with (tmp_path / "server.log").open("w") as errlog:
        server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errlog)
    try:
        wait_for_port(port, server)

        async def main() -> types.CallToolResult:
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                return await client.call_tool("squares", {"n": 4})

        called = anyio.run(main)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert called.structured_content == {"each": [0, 1, 4, 9]}


def wait_for_port(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60  # a bound on a hung start, not a speed check
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail("the server did not listen")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowkernel", *args], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tests/mcp/no_such_file.py:flow",), "no such file: 'tests/mcp/no_such_file.py'"),
        (
            ("tests.mcp.flows:nothing",),
            "has no attribute 'nothing' (flows in it: broken, report, slow, squares, where)",
        ),
        (("tests.mcp.flows:squares", "tests.mcp.flows:squares"), "two flows are named 'squares'"),
        (("tests.mcp.flows:squares", "--http", "localhost"), "'localhost' is not HOST:PORT"),
        (("tests.mcp.flows:squares", "--driver", "sync"), "the sync driver cannot serve flows"),
        (("tests.mcp.flows:squares", "--driver", "nope"), "no driver named 'nope'"),
        (("tests.mcp.flows:squares", "--driver", "trio", "--http", "127.0.0.1:8000"), "--http serves on asyncio"),
        ((), "Missing argument 'MODULE:FLOW|FILE...'"),
    ],
)
def test_a_command_line_that_cannot_serve_is_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    done = CliRunner().invoke(cli_group, ["serve", *args])
    assert isinstance(done.exception, SystemExit), done.exception
    assert done.exit_code == 2
    assert done.stderr.startswith("Error: ")
    assert message in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr


def test_a_real_process_that_cannot_serve_says_why_in_one_line() -> None:
    done = cli("serve", f"{FLOWS}:squares", "--http", "nowhere")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "Error: Invalid value for '--http': 'nowhere' is not HOST:PORT (a host name or address, and a port from 1 to "
        "65535)"
    ]


@pytest.mark.parametrize("headers", [None, {"X-Flowkernel-Test": "yes"}])
def test_a_flow_calls_a_served_flow_over_streamable_http(tmp_path: Path, headers: dict[str, str] | None) -> None:
    """Both ways at once: MCPServer(url=...) in a flow, against ``flowkernel serve --http``; the flow's
    literal arguments checked against the served flow's input schema before the run."""
    from flowkernel import Flow as LocalFlow
    from flowkernel import Step
    from flowkernel.errors import ToolMismatchError
    from flowkernel.mcp import MCPServer
    from flowkernel_asyncio import AsyncioDriver

    port = free_port()
    command = [sys.executable, "-m", "flowkernel", "serve", f"{FLOWS}:squares", "--http", f"127.0.0.1:{port}"]
    with (tmp_path / "server.log").open("w") as errlog:
        server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errlog)
    served = MCPServer("served", url=f"http://127.0.0.1:{port}/mcp", headers=headers)
    caller = LocalFlow(name="caller", steps=[Step(id="remote", tool=served.tool("squares"), arguments={"n": 4})])
    wrong = LocalFlow(name="wrong", steps=[Step(id="remote", tool=served.tool("squares"), arguments={"n": "4"})])
    try:
        wait_for_port(port, server)
        result = AsyncioDriver().run_blocking(caller)
        with pytest.raises(ToolMismatchError, match=r"arguments\.n: '4' is not of type 'integer'"):
            AsyncioDriver().run_blocking(wrong)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert result.status == "succeeded", result.steps
    assert result.outputs == {"remote": {"each": [0, 1, 4, 9]}}
