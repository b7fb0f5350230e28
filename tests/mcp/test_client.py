"""MCP tools in flows, against real servers over stdio: ``mcp-server-time``, ``mcp-server-git``, and a
server of ours whose tools misbehave on purpose (tests/mcp/servers/misbehaving.py)."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flowkernel import Flow, Input, Item, Ref, Resource, Step, tool
from flowkernel.errors import ResourceError, ToolMismatchError
from flowkernel.host import Driver
from flowkernel.mcp import MCPServer
from flowkernel.model.policies import Fallback
from flowkernel.model.retry import RetryPolicy
from flowkernel.result import ErrorKind
from flowkernel_sync import SyncDriver

pytest.importorskip("mcp", reason="the MCP tests need the mcp extra: pip install 'flowkernel[mcp]'")

BIN = Path(sys.executable).parent
MISBEHAVING = str(Path(__file__).parent / "servers" / "misbehaving.py")


def server_command(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (it comes with the development requirements)")
    return found


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository of two commits, for mcp-server-git."""
    path = tmp_path_factory.mktemp("repo")
    git = ["git", "-C", str(path), "-c", "user.name=flowkernel", "-c", "user.email=tests@flowkernel"]
    subprocess.run([*git, "init", "-q"], check=True)
    for n, message in enumerate(["first: the readme", "second: a fix"]):
        (path / "readme.txt").write_text(f"version {n}\n")
        subprocess.run([*git, "add", "readme.txt"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", message], check=True)
    return path


def misbehaving(marks: Path | None = None) -> MCPServer:
    env = {"FLOWKERNEL_TEST_MARKS": str(marks)} if marks is not None else None
    return MCPServer("odd", command=sys.executable, args=[MISBEHAVING], env=env)


@tool
def summary(times: list[dict[str, Any]], log: str) -> dict[str, Any]:
    return {"zones": [t["timezone"] for t in times], "commits": log.count("Commit: ")}


def test_a_flow_over_two_real_servers_with_a_map(flowkernel_driver: Driver, repo: Path) -> None:
    clock = MCPServer("time", command=server_command("mcp-server-time"))
    git = MCPServer("git", command=server_command("mcp-server-git"), args=["--repository", str(repo)])
    flow = Flow(
        name="clock-and-log",
        steps=[
            Step(id="times", tool=clock.tool("get_current_time"), map=Input("zones"), arguments={"timezone": Item()}),
            Step(id="log", tool=git.tool("git_log"), arguments={"repo_path": str(repo), "max_count": 5}),
            Step(id="summary", tool=summary, arguments={"times": Ref("times"), "log": Ref("log")}),
        ],
    )
    zones = ["UTC", "Europe/Paris", "Asia/Tokyo"]
    result = flowkernel_driver.run_blocking(flow, {"zones": zones})
    assert result.status == "succeeded", result.steps
    assert result.outputs == {"summary": {"zones": zones, "commits": 2}}


def test_declaring_a_server_connects_to_nothing() -> None:
    server = MCPServer("nowhere", command="/nonexistent/mcp-server")
    now = server.tool("get_current_time")
    flow = Flow(name="f", steps=[Step(id="now", tool=now, arguments={"timezone": "UTC"})])
    assert now.resources == (server,)
    assert now.is_async
    assert now.name == "nowhere.get_current_time"
    assert isinstance(server, Resource)
    copy = pickle.loads(pickle.dumps(flow.steps[0].tool.fn))  # Dask ships tools: the declaration pickles
    assert copy.server.command == "/nonexistent/mcp-server"
    assert copy.tool == "get_current_time"
    with pytest.raises(ResourceError, match="'nowhere' could not be opened"):
        SyncDriver().run(flow)


def test_every_step_is_checked_against_the_listed_schemas_before_any_call(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    odd = misbehaving(marks)
    flow = Flow(
        name="mismatched",
        steps=[
            Step(id="typo", tool=odd.tool("ecko"), arguments={"text": "a"}),
            Step(id="missing", tool=odd.tool("echo"), arguments={"times": 2}),
            Step(id="unknown", tool=odd.tool("echo"), arguments={"text": "a", "color": "red"}),
            Step(id="wrong", tool=odd.tool("echo"), arguments={"text": "a", "times": "twice"}),
            Step(id="inner", flow=Flow(name="in", steps=[Step(id="h", tool=odd.tool("hang"), arguments={})])),
            Step(id="fine", tool=odd.tool("die"), arguments={}),
        ],
    )
    from flowkernel_asyncio import AsyncioDriver

    with pytest.raises(ToolMismatchError) as raised:
        AsyncioDriver().run_blocking(flow)
    assert [str(p) for p in raised.value.problems] == [
        "steps[0] (typo).tool: MCP server 'odd' has no tool 'ecko'; did you mean 'echo'?",
        "steps[1] (missing).arguments: missing required argument 'text' of tool 'odd.echo'",
        "steps[2] (unknown).arguments.color: unknown argument 'color' of tool 'odd.echo'",
        "steps[3] (wrong).arguments.times: 'twice' is not of type 'integer' (tool 'odd.echo')",
        "steps[4] (inner).flow.steps[0] (h).arguments: missing required argument 'label' of tool 'odd.hang'",
    ]
    assert isinstance(raised.value, ResourceError)  # a run whose resources do not fit does not start
    assert not marks.exists()  # no call ran (die would have killed the server; hang would have marked)


@pytest.mark.parametrize("driver", ["sync", "asyncio", "trio"])
def test_arguments_from_references_are_checked_before_they_are_sent(driver: str) -> None:
    from flowkernel.host import load_driver

    odd = misbehaving()
    flow = Flow(name="f", steps=[Step(id="echo", tool=odd.tool("echo"), arguments={"text": Input("t")})])
    result = load_driver(driver).run_blocking(flow, {"t": 42})
    error = result.step("echo").error
    assert error is not None
    assert error.type == "flowkernel.mcp.errors.MCPArgumentsError"
    assert error.details == {
        "server": "odd",
        "tool": "echo",
        "errors": [{"at": "text", "message": "42 is not of type 'string'"}],
    }
    assert load_driver(driver).run_blocking(flow, {"t": "ok"}).outputs == {"echo": {"result": "ok"}}


def test_an_error_result_is_a_tool_error_with_the_content_and_retries_can_name_it() -> None:
    from flowkernel_trio import TrioDriver

    odd = misbehaving()
    again = RetryPolicy(max_attempts=3, initial_delay=0, retry_on=("MCPToolError",))
    flow = Flow(name="f", steps=[Step(id="fail", tool=odd.tool("fail", retry=again), arguments={"reason": "no"})])
    result = TrioDriver().run_blocking(flow)
    record = result.step("fail")
    assert len(record.attempts) == 3
    assert record.error is not None
    assert record.error.kind is ErrorKind.TOOL
    assert record.error.type == "flowkernel.mcp.errors.MCPToolError"
    assert record.error.message == "odd.fail: Error executing tool fail: refused: no"
    assert record.error.details == {
        "server": "odd",
        "tool": "fail",
        "content": [{"type": "text", "text": "Error executing tool fail: refused: no"}],
    }


def test_a_protocol_error_keeps_its_code_and_data() -> None:
    from flowkernel_asyncio import AsyncioDriver

    odd = misbehaving()
    flow = Flow(name="f", steps=[Step(id="reject", tool=odd.tool("reject"), arguments={"code": -32042})])
    error = AsyncioDriver().run_blocking(flow).step("reject").error
    assert error is not None
    assert error.type == "flowkernel.mcp.errors.MCPProtocolError"
    assert error.details == {
        "server": "odd",
        "tool": "reject",
        "code": -32042,
        "message": "rejected on purpose",
        "data": {"why": "a test"},
    }


@pytest.mark.parametrize("driver", ["sync", "asyncio", "trio"])
def test_a_timeout_cancels_the_request_and_the_session_serves_the_next_call(driver: str, tmp_path: Path) -> None:
    from flowkernel.host import load_driver

    marks = tmp_path / "marks"
    odd = misbehaving(marks)
    flow = Flow(
        name="f",
        steps=[
            Step(
                id="hang",
                tool=odd.tool("hang"),
                arguments={"label": driver},
                timeout=0.5,
                on_error=Fallback(value="gave up"),
            ),
            Step(id="echo", tool=odd.tool("echo"), arguments={"text": "still here"}, after=["hang"]),
        ],
    )
    result = load_driver(driver).run_blocking(flow)
    timed_out = result.step("hang").attempts[0].error
    assert timed_out is not None
    assert timed_out.kind is ErrorKind.TIMEOUT
    assert result.outputs == {"echo": {"result": "still here"}}  # the same session, after the cancellation
    assert marks.read_text() == f"cancelled {driver}\n"  # the server was told (MCP's notifications/cancelled)


@pytest.mark.parametrize("driver", ["sync", "asyncio", "trio"])
def test_a_server_that_dies_mid_call_fails_the_step_with_a_typed_error_and_the_run_goes_on(driver: str) -> None:
    from flowkernel.host import load_driver

    odd = misbehaving()

    @tool
    def local(x: int) -> int:
        return x + 1

    flow = Flow(
        name="f",
        steps=[Step(id="die", tool=odd.tool("die"), arguments={}), Step(id="local", tool=local, arguments={"x": 1})],
    )
    result = load_driver(driver).run_blocking(flow)
    assert result.status == "failed"
    error = result.step("die").error
    assert error is not None
    assert error.type == "flowkernel.mcp.errors.MCPConnectionError"
    assert error.details is not None
    assert error.details["code"] == -32000
    assert result.step("local").output == 2


def echo_and_session_id(odd: MCPServer) -> Flow:
    """Two steps: an echo over ``odd``, and the id of the session the run's tools see."""

    @tool
    async def session_id(x: int) -> int:
        return id(odd.get())

    return Flow(
        name="f",
        steps=[
            Step(id="echo", tool=odd.tool("echo"), arguments={"text": "hi"}),
            Step(id="which", tool=session_id, arguments={"x": 1}),
        ],
    )


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_one_session_opened_by_the_caller_serves_many_runs(backend: str) -> None:
    import anyio

    from flowkernel.host import load_driver

    odd = misbehaving()
    flow = echo_and_session_id(odd)
    driver = load_driver(backend)

    async def main() -> tuple[int, list[Any]]:
        async with odd.connect() as session:
            shared = odd.opened(session)
            runs = [await driver.run(flow, resources=[shared]) for _ in range(3)]
        return id(session), runs

    session, runs = anyio.run(main, backend=backend)
    assert [run.outputs for run in runs] == [{"echo": {"result": "hi"}, "which": session}] * 3


def test_the_sync_driver_shares_one_session_between_runs_on_its_loop_thread() -> None:
    odd = misbehaving()
    flow = echo_and_session_id(odd)
    driver = SyncDriver()
    with driver.shared(odd) as resources:
        runs = [driver.run(flow, resources=resources) for _ in range(3)]
    sessions = {run.outputs["which"] for run in runs}
    assert len(sessions) == 1  # one session served the three runs
    assert [run.outputs["echo"] for run in runs] == [{"result": "hi"}] * 3
