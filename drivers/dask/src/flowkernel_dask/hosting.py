"""Running a coroutine on the Dask client's loop for a caller in another thread or loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any

__all__ = ("Hosted",)


class Hosted:
    """A coroutine run on the client's loop for a caller in another thread.

    ``outcome`` gets the result or the exception itself, a cancellation included (``run_coroutine_threadsafe``
    would only mark its future cancelled, losing the partial result the ``CancelledError`` carries).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, Any]) -> None:
        self.outcome: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._loop = loop
        self._task: asyncio.Task[Any] | None = None
        self._cancelled = False
        loop.call_soon_threadsafe(self._start, coroutine)

    def _start(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        self._task = self._loop.create_task(coroutine)
        self._task.add_done_callback(self._finished)
        if self._cancelled:
            self._task.cancel()

    def _finished(self, task: asyncio.Task[Any]) -> None:
        try:
            self.outcome.set_result(task.result())
        except BaseException as exc:  # handed to the caller's thread
            self.outcome.set_exception(exc)

    def cancel(self) -> None:
        """Cancel the task on the client's loop (thread-safe)."""
        self._loop.call_soon_threadsafe(self._cancel)

    def _cancel(self) -> None:
        self._cancelled = True
        if self._task is not None:
            self._task.cancel()
