"""MCP both ways (the ``mcp`` extra): tools of MCP servers in flows, and flows served as MCP tools.

Importing this package imports nothing of the MCP SDK; a run that opens a session, or a server, does.
"""

from __future__ import annotations

from .client import MCPServer, MCPSession, MCPToolCall
from .errors import MCPArgumentsError, MCPCallError, MCPConnectionError, MCPProtocolError, MCPToolError

__all__ = (
    "MCPArgumentsError",
    "MCPCallError",
    "MCPConnectionError",
    "MCPProtocolError",
    "MCPServer",
    "MCPSession",
    "MCPToolCall",
    "MCPToolError",
)
