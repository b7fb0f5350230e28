"""How a call of an MCP tool fails: one :class:`~flowkernel.errors.ToolError` subclass per way, each with
the MCP content or error code in ``details``, so a step's error record keeps them and a retry policy
can name the ones worth retrying (``retry_on=("MCPConnectionError",)``)."""

from __future__ import annotations

from flowkernel.errors import ToolError

__all__ = ("MCPArgumentsError", "MCPCallError", "MCPConnectionError", "MCPProtocolError", "MCPToolError")


class MCPCallError(ToolError):
    """A call of an MCP tool failed; ``details`` names the server and the tool, and what they said."""


class MCPToolError(MCPCallError):
    """The tool answered with an error result (``isError``); ``details["content"]`` is what it said."""


class MCPProtocolError(MCPCallError):
    """The server answered the request with a JSON-RPC error (an unknown tool, invalid parameters, a
    server fault); ``details`` holds its ``code``, ``message`` and ``data``."""


class MCPConnectionError(MCPCallError):
    """The connection to the server broke during the call (the server died, or closed its end): whether
    the tool ran is unknown. The session cannot serve more calls; the run's other steps go on."""


class MCPArgumentsError(MCPCallError):
    """The call's arguments violate the tool's input schema, so it was not sent; ``details["errors"]``
    lists each violation (literal arguments are checked before the run; these came from references)."""
