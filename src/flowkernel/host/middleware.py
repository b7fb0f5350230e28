"""Call middleware: the one place to act on a tool call, run in the tool's own thread or task.

A middleware is a generator function of the call (an :class:`~flowkernel.protocol.Invoke`). It yields
the call to make (the same one, or one with other arguments) once, receives the tool's return value
there (or the tool's exception, raised at the ``yield``), and returns the call's result::

    def timed(call: Invoke) -> Generator[Invoke, Any, Any]:
        started = time.perf_counter()
        try:
            return (yield call)
        finally:
            log.info("%s took %.3f s", call.tool.name, time.perf_counter() - started)

Returning before the ``yield`` answers the call without calling the tool (a cache hit: calling
:func:`mark_cached` first records the attempt as ``cached``); raising fails the call (access control);
``yield call._replace(arguments=...)`` replaces the arguments. Middleware
composes in list order: the first is outermost (its code before the ``yield`` runs first, after it
last), as in Starlette. Being plain generators, the same middleware wraps sync tools in their thread
and async tools in their task, on every driver: contextvars it sets (a tracing span) are seen by the
tool.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from contextvars import ContextVar
from typing import Any, TypeAlias

from ..errors import MiddlewareError
from ..protocol import Invoke

__all__ = ("CallChain", "Middleware", "mark_cached", "through_chain")

Middleware: TypeAlias = Callable[[Invoke], Generator[Invoke, Any, Any]]
"""A generator function of the call: yields the call to make, returns the call's result."""

CallChain: TypeAlias = Generator[Invoke, Any, Any]
"""The whole chain as one generator: yields the call the tool gets (if any), returns the result."""


cache_marks: ContextVar[list[bool]] = ContextVar("flowkernel_cache_mark")
"""Set by the drivers' call (a fresh ``[False]``) around a call's middleware: :func:`mark_cached` sets it."""


def mark_cached() -> None:
    """Say that the middleware answering this call (returning before its ``yield``) served it from a cache:
    the attempt's record gets ``cached=True``. Ignored when the tool is called after all, or outside a call."""
    mark = cache_marks.get(None)
    if mark is not None:
        mark[0] = True


def through_chain(middleware: Sequence[Middleware], call: Invoke) -> CallChain:
    """Run ``call`` through ``middleware``; the driver makes the call this yields, and sends in its
    value (or throws in its exception). Sync and async tools share it: only that call differs."""
    entered: list[Generator[Invoke, Any, Any]] = []
    value: Any = None
    error: BaseException | None = None
    answered = False
    try:
        for each in middleware:
            layer = each(call)
            try:
                yielded = layer.send(None)
            except StopIteration as stop:  # answered without calling what lies inside
                value, answered = stop.value, True
                break
            call = _checked(each, yielded, call)
            entered.append(layer)
    except BaseException as exc:  # failed before the call: the layers outside still see it
        error, answered = exc, True
    if not answered:
        try:
            value = yield call
        except BaseException as exc:  # the tool raised: thrown into the layers, innermost first
            error = exc
    for layer in reversed(entered):
        try:
            yielded = layer.send(value) if error is None else layer.throw(error)
        except StopIteration as stop:
            value, error = stop.value, None
        except BaseException as exc:
            value, error = None, exc
        else:
            layer.close()
            value, error = None, MiddlewareError(f"middleware {_name(layer)} yielded a second time: {yielded!r}")
    if error is not None:
        raise error
    return value


def _checked(layer: Middleware, yielded: Any, call: Invoke) -> Invoke:
    if type(yielded) is not Invoke:
        raise MiddlewareError(f"middleware {_name(layer)} yielded {type(yielded).__name__}, not the call (Invoke)")
    if yielded.tool.is_async is not call.tool.is_async:
        raise MiddlewareError(f"middleware {_name(layer)} swapped a sync tool for an async one or back")
    return yielded


def _name(layer: object) -> str:
    return getattr(layer, "__qualname__", None) or getattr(layer, "__name__", None) or repr(layer)
