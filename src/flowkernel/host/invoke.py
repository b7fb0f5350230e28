"""Calling a tool and turning whatever happens into a completion: shared by every driver.

Sync and async calls differ by one ``await``; everything else (timestamps, error capture) is here once.
A tool that raises anything, any ``BaseException`` included, becomes a ``Raised`` completion, except
the ``passthrough`` types a driver names: its own cancellation, and ``KeyboardInterrupt`` where that
means the user's Ctrl-C (in the caller's thread, never in a worker thread).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Sequence
from concurrent import futures
from functools import partial
from typing import Any

from ..errors import AsyncResultError, MiddlewareError
from ..model.resource import open_resources
from ..protocol import Invoke, Raised, Returned
from ..result import ErrorInfo, ErrorKind
from .context import invoke_context
from .loops import foreign_loop_error
from .middleware import CallChain, Middleware, cache_marks, through_chain
from .world import NO_WORLD, CallWorld

__all__ = ("Clock", "Passthrough", "call_async", "call_sync", "call_sync_in_thread", "raised")

Clock = Callable[[], float]
"""The driver's clock: seconds, monotonic."""

Passthrough = tuple[type[BaseException], ...]


def raised(command: Invoke, exc: BaseException, started: float, clock: Clock) -> Raised:
    """The completion of a call whose tool raised ``exc``.

    A ``CancelledError`` the tool raised itself (nobody cancelled it) is one record on every driver,
    whichever class reached the driver (asyncio's, or the one a cancelled future gives).
    """
    if isinstance(exc, futures.CancelledError) or _asyncio_cancelled(exc):
        detail = _message(exc)
        message = "the tool raised CancelledError itself (it was not cancelled)" + (f": {detail}" if detail else "")
        error = ErrorInfo(ErrorKind.TOOL, "CancelledError", message, command.step_id)
    else:
        error = ErrorInfo.from_exception(exc, ErrorKind.TOOL).for_step(command.step_id)
    return Raised(command.call_id, error, started, clock())


def _message(exc: BaseException) -> str:
    try:
        return str(exc)[:1000]
    except Exception:
        return ""


def _asyncio_cancelled(exc: BaseException) -> bool:
    """Whether ``exc`` is asyncio's ``CancelledError``, without importing asyncio (tens of milliseconds at
    start-up, which a sync run of sync tools never needs): if asyncio is not loaded, nothing raised one."""
    exceptions = sys.modules.get("asyncio.exceptions")
    return exceptions is not None and isinstance(exc, exceptions.CancelledError)


def _cancelled_by_the_driver(exc: BaseException) -> bool:
    """Whether an asyncio ``CancelledError`` is the task's cancellation, not one the tool raised itself."""
    if not _asyncio_cancelled(exc):
        return True
    import asyncio  # already loaded: it raised exc

    try:
        task = asyncio.current_task()
    except RuntimeError:  # not on asyncio (trio): asyncio's CancelledError is the tool's own
        return False
    return task is None or task.cancelling() > 0


def _not_async(value: Any, tool: str) -> None:
    """A sync tool must not hand back a coroutine or an async generator as its output."""
    if type(value) in _ASYNC_RESULTS:
        close = getattr(value, "close", None)
        if close is not None:
            close()  # no "never awaited" warning: it is reported here
        raise AsyncResultError(
            f"sync tool {tool!r} returned {type(value).__name__}: declare it async (async def, or is_async=True)"
        )


_ASYNC_RESULTS = frozenset({types.CoroutineType, types.AsyncGeneratorType})
_new_returned = partial(tuple.__new__, Returned)
"""``Returned`` from all its fields, without its Python-level ``__new__`` (one per call)."""
if Returned._fields != ("call_id", "value", "started", "finished", "cached"):  # pragma: no cover
    raise ImportError("Returned's fields changed: update the calls to _new_returned, which give every field")


def call_sync(
    command: Invoke, clock: Clock, passthrough: Passthrough = (), world: CallWorld = NO_WORLD
) -> Returned | Raised:
    """Call a sync tool (through the run's middleware, with its resources reachable) and describe the outcome.

    The hot path reads ``Invoke``'s fields by position (``command[2]`` is its tool, ``[3]`` its arguments):
    CPython 3.11 does not specialize a named tuple's field names, and each costs a full attribute lookup.
    """
    token = invoke_context.set(command)
    opened = None if world is NO_WORLD or not world.resources else open_resources.set(world.resources)
    started = clock()
    cached = False
    try:
        if world is NO_WORLD or not world.middleware:
            value = command[2].fn(**command[3])
        else:
            value, cached = _sync_through(world.middleware, command, passthrough)
        if type(value) in _ASYNC_RESULTS:
            _not_async(value, command.tool.name)
    except BaseException as exc:
        if isinstance(exc, passthrough):
            raise
        return raised(command, exc, started, clock)
    finally:
        if opened is not None:
            open_resources.reset(opened)
        invoke_context.reset(token)
    return _new_returned((command[0], value, started, clock(), cached))


def call_sync_in_thread(command: Invoke, clock: Clock, world: CallWorld = NO_WORLD) -> Returned | Raised:
    """:func:`call_sync` in a pool thread, where nothing may escape: should describing the outcome fail
    too (``raised`` or the clock), the call is still answered, with that failure. A call is never lost."""
    try:
        return call_sync(command, clock, (), world)
    except BaseException as exc:
        return raised(command, exc, clock(), clock)


async def call_async(
    command: Invoke, clock: Clock, loop: str, passthrough: Passthrough, world: CallWorld = NO_WORLD
) -> Returned | Raised:
    """Await an async tool on event loop ``loop``; errors that say it needs another loop are named so."""
    token = invoke_context.set(command)
    opened = open_resources.set(world.resources) if world.resources else None
    started = clock()
    cached = False
    try:
        if world.middleware:
            value, cached = await _async_through(world.middleware, command, passthrough)
        else:
            value = await command.tool.fn(**command.arguments)
    except BaseException as exc:
        if isinstance(exc, passthrough) and _cancelled_by_the_driver(exc):
            raise
        foreign = foreign_loop_error(exc, loop, command.tool.name) if loop else None
        if foreign is not None:
            return Raised(command.call_id, foreign.for_step(command.step_id), started, clock())
        return raised(command, exc, started, clock)
    finally:
        if opened is not None:
            open_resources.reset(opened)
        invoke_context.reset(token)
    return _new_returned((command.call_id, value, started, clock(), cached))


def _sync_through(middleware: Sequence[Middleware], command: Invoke, passthrough: Passthrough) -> tuple[Any, bool]:
    """The sync tool's call through the run's middleware: its result, and whether a cache served it."""
    chain, call, cached = _enter(middleware, command)
    if call is None:  # a middleware answered
        return chain, cached
    try:
        outcome = call.tool.fn(**call.arguments)
    except BaseException as exc:
        return _leave(chain, passthrough, error=exc), False
    return _leave(chain, passthrough, outcome), False


async def _async_through(
    middleware: Sequence[Middleware], command: Invoke, passthrough: Passthrough
) -> tuple[Any, bool]:
    """The async tool's call through the run's middleware: :func:`_sync_through` but for the ``await``."""
    chain, call, cached = _enter(middleware, command)
    if call is None:
        return chain, cached
    try:
        outcome = await call.tool.fn(**call.arguments)
    except BaseException as exc:
        return _leave(chain, passthrough, error=exc), False
    return _leave(chain, passthrough, outcome), False


def _enter(middleware: Sequence[Middleware], command: Invoke) -> tuple[Any, Invoke | None, bool]:
    """``(chain, the call to make, False)``, or ``(the answer, None, cached)`` when a middleware answered
    at once (``cached``: it called :func:`~flowkernel.host.middleware.mark_cached`)."""
    mark = [False]
    token = cache_marks.set(mark)
    try:
        chain = through_chain(middleware, command)
        try:
            return chain, next(chain), False
        except StopIteration as answered:
            return answered.value, None, mark[0]
    finally:
        cache_marks.reset(token)


def _leave(chain: CallChain, passthrough: Passthrough, outcome: Any = None, error: BaseException | None = None) -> Any:
    """Hand the tool's return value (or ``error``) back through the chain; the call's result.

    A driver's cancellation (``passthrough``) still runs the middleware's cleanup, then goes on up.
    """
    try:
        if error is None:
            chain.send(outcome)
        else:
            chain.throw(error)
    except StopIteration as stop:
        if error is not None and isinstance(error, passthrough):
            raise error from None
        return stop.value
    except BaseException as final:
        if error is not None and isinstance(error, passthrough) and final is not error:
            raise error from final
        raise
    chain.close()
    raise MiddlewareError("the middleware chain yielded a second call")
