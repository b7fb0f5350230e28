"""A flow over two real MCP servers (stdio): the time in several zones, fanned out with a map step over
``mcp-server-time``, and this repository's latest commits from ``mcp-server-git``, joined into a report.

Run it from a clone (the README's install command installs both servers)::

    flowkernel run examples/mcp_clock_and_log.py:flow
    flowkernel run examples/mcp_clock_and_log.py:flow --input zones='["UTC", "America/Sao_Paulo"]' --input commits=3
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from flowkernel import Flow, Input, Item, Ref, RetryPolicy, Step, tool
from flowkernel.mcp import MCPServer

REPOSITORY = str(Path(__file__).resolve().parents[1])

clock = MCPServer("time", command="mcp-server-time")
git = MCPServer("git", command="mcp-server-git", args=["--repository", REPOSITORY])


class Options(BaseModel):
    zones: list[str] = ["UTC", "Europe/Paris", "Asia/Tokyo"]
    commits: int = 5


@tool
def report(times: list[dict[str, Any]], log: str) -> dict[str, list[str]]:
    """The report: the time in each zone, and the subjects of the latest commits."""
    clocks = [f"{t['timezone']}: {t['datetime']} ({t['day_of_week']})" for t in times]
    subjects = [line.removeprefix("Message: ")[:72] for line in log.splitlines() if line.startswith("Message: ")]
    return {"times": clocks, "commits": subjects}


flow = Flow(
    name="clock-and-log",
    description="The time in several zones and the repository's latest commits, from two MCP servers.",
    input_model=Options,
    steps=[
        Step(
            id="times",
            tool=clock.tool("get_current_time", retry=RetryPolicy(max_attempts=2, retry_on=("MCPConnectionError",))),
            map=Input("zones"),
            arguments={"timezone": Item()},
        ),
        Step(id="log", tool=git.tool("git_log"), arguments={"repo_path": REPOSITORY, "max_count": Input("commits")}),
        Step(id="report", tool=report, arguments={"times": Ref("times"), "log": Ref("log")}),
    ],
)
