"""flowkernel and the Model Context Protocol: flows served as MCP tools (:mod:`flowkernel.mcp.serve`).

Needs the ``mcp`` extra (``pip install 'flowkernel[mcp]'``); nothing here is imported by ``import flowkernel``.
"""

__all__ = ()
