"""An MCP server (stdio) whose tools misbehave on purpose: they report errors, hang, or kill the server.

``hang`` writes "cancelled" to the file named by ``$FLOWKERNEL_TEST_MARKS`` when its request is cancelled,
so a test sees that the client sent MCP's cancellation (not just that it stopped waiting).
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
from mcp import MCPError
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

app = MCPServer("misbehaving")


@app.tool()
def echo(text: str, times: int = 1) -> str:
    """Give back ``text``, ``times`` times."""
    return text * times


@app.tool()
def fail(reason: str) -> str:
    """Report an error (an ``isError`` result)."""
    raise ToolError(f"refused: {reason}")


@app.tool()
def reject(code: int) -> str:
    """Answer with a JSON-RPC error of this code (a protocol error, not an ``isError`` result)."""
    raise MCPError(code, "rejected on purpose", {"why": "a test"})


@app.tool()
async def hang(label: str) -> str:
    """Never answer; note the cancellation when it comes."""
    try:
        await anyio.sleep_forever()
    finally:
        marks = os.environ.get("FLOWKERNEL_TEST_MARKS")
        if marks:
            with Path(marks).open("a") as file:
                file.write(f"cancelled {label}\n")
    return "never"


@app.tool()
def die(code: int = 3) -> str:
    """Kill the server in the middle of the call."""
    os._exit(code)


if __name__ == "__main__":
    app.run()
