"""What runs on a Dask worker: the tool, called through the shared ``call_sync``/``call_async``, so any
exception becomes a completion and ``current_invoke()`` works inside the tool."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from flowkernel import Invoke, Raised, Returned
from flowkernel.host import call_async, call_sync

from .shipping import Shipped, resolve

__all__ = ("call_on_worker", "call_on_worker_loop")


def call_on_worker(
    shipped: Shipped, call_id: str, step_id: str, arguments: Mapping[str, Any], attempt: int
) -> Returned | Raised:
    """A sync tool, in a worker thread: any exception becomes a ``Raised`` (a worker thread has no Ctrl-C)."""
    return call_sync(Invoke(call_id, step_id, resolve(shipped), arguments, attempt), time.perf_counter)


async def call_on_worker_loop(
    shipped: Shipped, call_id: str, step_id: str, arguments: Mapping[str, Any], attempt: int
) -> Returned | Raised:
    """An async tool, on the worker's event loop; the worker's own cancellation passes through."""
    command = Invoke(call_id, step_id, resolve(shipped), arguments, attempt)
    return await call_async(command, time.perf_counter, "asyncio", (asyncio.CancelledError,))
