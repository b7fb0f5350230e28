"""Calling a tool and turning whatever happens into a completion: shared by every driver.

Sync and async calls differ by one ``await``; everything else (timestamps, error capture) is here once.
A tool that raises anything, any ``BaseException`` included, becomes a ``Raised`` completion, except
the ``passthrough`` types a driver names: its own cancellation, and ``KeyboardInterrupt`` where that
means the user's Ctrl-C (in the caller's thread, never in a worker thread).
"""

from __future__ import annotations

from collections.abc import Callable

from ..protocol import Invoke, Raised, Returned
from ..result import ErrorInfo, ErrorKind
from .context import invoke_context
from .loops import foreign_loop_error

__all__ = ("Clock", "Passthrough", "call_async", "call_sync", "raised")

Clock = Callable[[], float]
"""The driver's clock: seconds, monotonic."""

Passthrough = tuple[type[BaseException], ...]


def raised(command: Invoke, exc: BaseException, started: float, clock: Clock) -> Raised:
    """The completion of a call whose tool raised ``exc``."""
    error = ErrorInfo.from_exception(exc, ErrorKind.TOOL).for_step(command.step_id)
    return Raised(command.call_id, error, started, clock())


def call_sync(command: Invoke, clock: Clock, passthrough: Passthrough = ()) -> Returned | Raised:
    """Call a sync tool and describe the outcome."""
    token = invoke_context.set(command)
    started = clock()
    try:
        value = command.tool.fn(**command.arguments)
    except BaseException as exc:
        if isinstance(exc, passthrough):
            raise
        return raised(command, exc, started, clock)
    finally:
        invoke_context.reset(token)
    return Returned(command.call_id, value, started, clock())


async def call_async(command: Invoke, clock: Clock, loop: str, passthrough: Passthrough) -> Returned | Raised:
    """Await an async tool on event loop ``loop``; errors that say it needs another loop are named so."""
    token = invoke_context.set(command)
    started = clock()
    try:
        value = await command.tool.fn(**command.arguments)
    except BaseException as exc:
        if isinstance(exc, passthrough):
            raise
        foreign = foreign_loop_error(exc, loop, command.tool.name) if loop else None
        if foreign is not None:
            return Raised(command.call_id, foreign.for_step(command.step_id), started, clock())
        return raised(command, exc, started, clock)
    finally:
        invoke_context.reset(token)
    return Returned(command.call_id, value, started, clock())
