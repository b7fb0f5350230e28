"""Calling a tool and turning whatever happens into a completion: shared by every driver.

Sync and async calls differ by one ``await``; everything else (timestamps, error capture) is here once.
A tool that raises anything, ``SystemExit`` included, becomes a ``Raised`` completion; only
cancellation of the driver's own task passes through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..protocol import Invoke, Raised, Returned
from ..result import ErrorInfo, ErrorKind
from .context import invoke_context
from .loops import foreign_loop_error

__all__ = ("Clock", "call_async", "call_sync", "raised", "returned")

Clock = Callable[[], float]
"""The driver's clock: seconds, monotonic."""

_TOOL_ERRORS = (Exception, SystemExit, GeneratorExit)


def returned(command: Invoke, value: Any, started: float, clock: Clock) -> Returned:
    """The completion of a call that returned ``value``."""
    return Returned(command.call_id, value, started, clock())


def raised(command: Invoke, exc: BaseException, started: float, clock: Clock, kind: ErrorKind = ErrorKind.TOOL) -> Raised:
    """The completion of a call that raised ``exc``."""
    return Raised(command.call_id, ErrorInfo.from_exception(exc, kind).for_step(command.step_id), started, clock())


def call_sync(command: Invoke, clock: Clock) -> Returned | Raised:
    """Call a sync tool and describe the outcome."""
    token = invoke_context.set(command)
    started = clock()
    try:
        value = command.tool.fn(**command.arguments)
    except _TOOL_ERRORS as exc:
        return raised(command, exc, started, clock)
    finally:
        invoke_context.reset(token)
    return Returned(command.call_id, value, started, clock())


async def call_async(command: Invoke, clock: Clock, loop: str = "") -> Returned | Raised:
    """Await an async tool and describe the outcome; errors of a foreign event loop are named so."""
    token = invoke_context.set(command)
    started = clock()
    try:
        value = await command.tool.fn(**command.arguments)
    except _TOOL_ERRORS as exc:
        foreign = foreign_loop_error(exc, loop, command.tool.name) if loop else None
        if foreign is not None:
            return Raised(command.call_id, foreign.for_step(command.step_id), started, clock())
        return raised(command, exc, started, clock)
    finally:
        invoke_context.reset(token)
    return Returned(command.call_id, value, started, clock())
