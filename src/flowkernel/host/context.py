"""The call a tool is running for, readable from inside the tool (``current_invoke()``).

Drivers set it around every tool call (thread or task local), so a tool can read its step, attempt and
call id, for example to derive an idempotency key.
"""

from __future__ import annotations

from contextvars import ContextVar

from ..protocol import Invoke

__all__ = ("current_invoke", "invoke_context")

invoke_context: ContextVar[Invoke] = ContextVar("flowkernel_invoke")


def current_invoke() -> Invoke:
    """The :class:`Invoke` being executed; ``LookupError`` outside a tool call."""
    try:
        return invoke_context.get()
    except LookupError:
        raise LookupError("current_invoke() is only available inside a tool called by a flowkernel driver") from None
