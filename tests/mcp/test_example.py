"""The MCP example runs as the README says: ``flowkernel run examples/mcp_clock_and_log.py:flow``, in a
real process, against real ``mcp-server-time`` and ``mcp-server-git``; and a server that cannot start is
a one-line error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flowkernel import ExecutionResult, RunStatus

pytest.importorskip("mcp", reason="the MCP tests need the mcp extra: pip install 'flowkernel[mcp]'")

ROOT = Path(__file__).resolve().parents[2]


def flowkernel(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowkernel", *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env
    )


def test_the_example_runs_from_the_command_line_even_without_the_environment_on_path() -> None:
    bare = {**os.environ, "PATH": "/usr/bin:/bin"}  # the servers are found beside this Python
    done = flowkernel(
        "run", "examples/mcp_clock_and_log.py:flow", "--input", 'zones=["UTC", "Asia/Kolkata"]', "--input", "commits=2",
        "--json", env=bare,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = ExecutionResult.from_json(done.stdout)
    assert result.status is RunStatus.SUCCEEDED
    report = result.outputs["report"]
    assert [line.split(":")[0] for line in report["times"]] == ["UTC", "Asia/Kolkata"]
    assert "+05:30" in report["times"][1]
    assert len(report["commits"]) == 2


def test_a_server_that_cannot_start_is_a_one_line_error(tmp_path: Path) -> None:
    module = tmp_path / "broken.py"
    module.write_text(
        "from flowkernel import Flow, Step\n"
        "from flowkernel.mcp import MCPServer\n"
        "server = MCPServer('nowhere', command='/nonexistent/mcp-server')\n"
        "flow = Flow(name='f', steps=[Step(id='s', tool=server.tool('anything'))])\n"
    )
    done = flowkernel("run", f"{module}:flow", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("Error: resource 'nowhere' could not be opened: ")
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
