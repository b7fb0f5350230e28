"""One long-lived asyncio event loop in a helper thread, for async tools called from sync code.

Starting a loop per call (``asyncio.run`` per step) costs milliseconds and breaks tools that keep
loop-bound state; this loop is started once per process, lazily, and lives as a daemon thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any, TypeVar

__all__ = ("held_on_loop_thread", "shared_loop_thread")

T = TypeVar("T")


class LoopThread:
    """An event loop running forever in a daemon thread; ``submit`` schedules a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="flowkernel-async-tools", daemon=True)
        self._thread.start()

    def is_alive(self) -> bool:
        """Whether the loop is still running (a tool could have stopped it)."""
        return self._thread.is_alive()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        """Run ``coroutine`` on the loop; cancelling the future cancels the task there."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)


_shared: LoopThread | None = None
_lock = threading.Lock()


def shared_loop_thread() -> LoopThread:
    """The process-wide loop thread, started on first use."""
    global _shared
    with _lock:
        if _shared is None or not _shared.is_alive():
            _shared = LoopThread()
        return _shared


@contextmanager
def held_on_loop_thread(manager: AbstractAsyncContextManager[T]) -> Iterator[T]:
    """Enter ``manager`` on the loop thread for the block, entering and exiting it in one task there
    (as anyio-based clients require), so async resources live on the loop that runs async tools; the
    block gets what it entered to."""
    entered: Future[T] = Future()
    release: list[asyncio.Event] = []

    async def hold() -> None:
        release.append(asyncio.Event())
        async with manager as value:
            entered.set_result(value)
            await release[0].wait()

    thread = shared_loop_thread()
    task = thread.submit(hold())
    either: list[Future[Any]] = [entered, task]
    wait(either, return_when=FIRST_COMPLETED)
    if not entered.done():
        task.result()  # it failed to open: raise why
    try:
        yield entered.result()
    finally:
        thread.loop.call_soon_threadsafe(release[0].set)
        task.result()  # wait until everything is closed
