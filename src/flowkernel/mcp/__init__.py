"""MCP both ways (the ``mcp`` extra): tools of MCP servers in flows (:mod:`flowkernel.mcp.client`), and
flows served as MCP tools (:mod:`flowkernel.mcp.serve`).

Importing this package imports nothing of the MCP SDK: a run that opens a session does, and so does the
first use of a server-side name (loaded on first access).
"""

from __future__ import annotations

from typing import Any

from .client import MCPServer, MCPSession, MCPToolCall
from .errors import MCPArgumentsError, MCPCallError, MCPConnectionError, MCPProtocolError, MCPToolError

__all__ = (
    "FlowTools",
    "MCPArgumentsError",
    "MCPCallError",
    "MCPConnectionError",
    "MCPProtocolError",
    "MCPServer",
    "MCPSession",
    "MCPToolCall",
    "MCPToolError",
    "ServedFlow",
    "flow_server",
    "run_http",
    "run_stdio",
    "serve_flows",
)

_SERVER_SIDE = frozenset({"FlowTools", "ServedFlow", "flow_server", "run_http", "run_stdio", "serve_flows"})


def __getattr__(name: str) -> Any:
    if name in _SERVER_SIDE:
        from . import serve

        return getattr(serve, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
