"""What runs on a Dask worker: the tool, called through the shared ``call_sync``/``call_async`` (so any
exception becomes a completion, ``current_invoke()`` works and the run's middleware wraps the call),
and the run's resources, opened on each worker for the run (a live client cannot be sent there)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

from flowkernel import Invoke, Raised, Returned
from flowkernel.host import CallWorld, Middleware, call_async, call_sync
from flowkernel.model import CachePolicy, Resource

from .shipping import Shipped, resolve

__all__ = ("call_on_worker", "call_on_worker_loop", "close_on_worker", "open_on_worker")

_open: dict[str, tuple[dict[str, Any], asyncio.Event, asyncio.Task[None]]] = {}
"""This worker process's open resources, per run id: (values, the release, the task holding them)."""


def _world(run_id: str, middleware: Sequence[Middleware]) -> CallWorld:
    opened = _open.get(run_id)
    return CallWorld(opened[0] if opened is not None else {}, tuple(middleware))


def call_on_worker(
    shipped: Shipped,
    call_id: str,
    step_id: str,
    arguments: Mapping[str, Any],
    attempt: int,
    run_id: str,
    cache: CachePolicy | None,
    timeout: float | None,
    middleware: Sequence[Middleware],
) -> Returned | Raised:
    """A sync tool, in a worker thread: any exception becomes a ``Raised`` (a worker thread has no Ctrl-C)."""
    command = Invoke(call_id, step_id, resolve(shipped), arguments, attempt, run_id, cache, timeout)
    return call_sync(command, time.perf_counter, (), _world(run_id, middleware))


async def call_on_worker_loop(
    shipped: Shipped,
    call_id: str,
    step_id: str,
    arguments: Mapping[str, Any],
    attempt: int,
    run_id: str,
    cache: CachePolicy | None,
    timeout: float | None,
    middleware: Sequence[Middleware],
) -> Returned | Raised:
    """An async tool, on the worker's event loop; the worker's own cancellation passes through."""
    command = Invoke(call_id, step_id, resolve(shipped), arguments, attempt, run_id, cache, timeout)
    return await call_async(
        command, time.perf_counter, "asyncio", (asyncio.CancelledError,), _world(run_id, middleware)
    )


async def open_on_worker(run_id: str, declared: Sequence[Resource[Any]]) -> None:
    """Open the run's resources on this worker (``client.run``), held by one task on its loop until
    :func:`close_on_worker`, so clients that must be closed in the task that opened them are."""
    from flowkernel.host import opened_resources

    opened: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    release = asyncio.Event()

    async def hold() -> None:
        try:
            async with opened_resources(declared) as values:
                opened.set_result(values)
                await release.wait()
        except BaseException as exc:
            if not opened.done():
                opened.set_exception(exc)
            raise

    task = asyncio.get_running_loop().create_task(hold())
    values = await opened
    _open[run_id] = (values, release, task)


async def close_on_worker(run_id: str) -> None:
    """Close what :func:`open_on_worker` opened for the run (nothing if it opened nothing here)."""
    held = _open.pop(run_id, None)
    if held is not None:
        held[1].set()
        await held[2]
