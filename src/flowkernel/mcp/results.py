"""One call of an MCP tool: check the arguments, send the request, and turn what comes back into the
step's output or a typed tool error (:mod:`flowkernel.mcp.errors`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .errors import MCPArgumentsError, MCPConnectionError, MCPProtocolError, MCPToolError

if TYPE_CHECKING:
    from .client import MCPSession

__all__ = ("call_remote", "output_of")


async def call_remote(session: MCPSession, tool: str, arguments: dict[str, Any]) -> Any:
    """Call ``tool`` with ``arguments`` in ``session``; its output (see :func:`output_of`). Cancelling the
    caller (a step timeout, a stopped run) cancels the request: the SDK sends the server MCP's
    ``notifications/cancelled``, and the session serves the run's other calls."""
    import anyio
    import mcp
    from mcp.types import CONNECTION_CLOSED  # a request whose connection closed before it was answered

    where = {"server": session.server, "tool": tool}
    if tool not in session.tools:
        raise MCPProtocolError(f"MCP server {session.server!r} has no tool {tool!r}", details=where)
    problems = session.arguments_model(tool).schema_errors(arguments, top_names=False)
    if problems:
        listed = [{"at": ".".join(map(str, p["loc"])), "message": _message(p)} for p in problems]
        said = "; ".join(f"{p['at'] or 'arguments'}: {p['message']}" for p in listed)
        raise MCPArgumentsError(
            f"{session.server}.{tool}: arguments violate its schema: {said}", details={**where, "errors": listed}
        )
    try:
        result = await session.client.call_tool(tool, arguments)
    except mcp.MCPError as exc:
        details = {**where, "code": exc.code, "message": exc.message, "data": exc.data}
        if exc.code == CONNECTION_CLOSED:
            raise MCPConnectionError(
                f"{session.server}.{tool}: the connection closed during the call: {exc.message}", details=details
            ) from None
        raise MCPProtocolError(f"{session.server}.{tool}: error {exc.code}: {exc.message}", details=details) from None
    except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
        raise MCPConnectionError(
            f"{session.server}.{tool}: the connection is closed ({type(exc).__name__})", details=where
        ) from None
    if result.is_error:
        content = [block.model_dump(mode="json", exclude_none=True) for block in result.content]
        said = _text(result.content) or "the tool reported an error and said nothing more"
        raise MCPToolError(f"{session.server}.{tool}: {said}", details={**where, "content": content})
    return output_of(result)


def output_of(result: Any) -> Any:
    """A tool result as a step's output: its structured content where the server gives it, else its
    text (the text blocks joined by newlines), else its content blocks as JSON data (images, resources)."""
    if result.structured_content is not None:
        return result.structured_content
    blocks = result.content
    if all(getattr(block, "type", None) == "text" for block in blocks):
        return _text(blocks)
    return [block.model_dump(mode="json", exclude_none=True) for block in blocks]


def _text(blocks: Sequence[Any]) -> str:
    return "\n".join(block.text for block in blocks if getattr(block, "type", None) == "text")


def _message(detail: Any) -> str:
    kind = detail["type"]  # a PydanticCustomError: top_names=False leaves no pydantic error types
    return str(kind.message() if hasattr(kind, "message") else kind)
