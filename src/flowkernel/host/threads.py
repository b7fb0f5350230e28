"""A pool of daemon worker threads for sync tools.

``concurrent.futures.ThreadPoolExecutor`` joins its workers when the interpreter exits, so after Ctrl-C
a process could not exit until a stuck tool returned. A thread cannot be killed; a daemon thread at
least does not hold the process hostage. Threads start lazily, up to ``max_workers``.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

__all__ = ("DaemonThreadPool", "ThreadCall")

P = ParamSpec("P")
T = TypeVar("T")
_Work = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class DaemonThreadPool(Executor):
    """An executor whose worker threads are daemons; ``shutdown`` never waits for a stuck call."""

    def __init__(self, max_workers: int, *, name: str = "flowkernel-tool") -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._max_workers = max_workers
        self._name = name
        self._work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        context = contextvars.copy_context()  # the tool sees the submitter's contextvars, as on trio
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a pool that was shut down")
            self._work.put((future, context.run, (fn, *args), kwargs))
            if self._idle == 0 and len(self._threads) < self._max_workers:
                thread = threading.Thread(target=self._worker, name=f"{self._name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1
        return future

    def abandon(self) -> None:
        """A call was given up on while its thread still runs: let the pool grow by one in its place."""
        with self._lock:
            self._max_workers += 1

    def _worker(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # the future carries it to whoever waits
                    future.set_exception(exc)
            with self._lock:
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the workers once their current call returns; never waits unless ``wait`` is set."""
        with self._lock:
            self._closed = True
            if cancel_futures:
                while True:
                    try:
                        item = self._work.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[0].cancel()
            for _ in self._threads:
                self._work.put(None)
        if wait:
            for thread in self._threads:
                thread.join()


class ThreadCall:
    """The cancel handle of a call running in a pool: a call that already started cannot be stopped,
    so cancelling it gives the pool a thread in its place (the limit is the kernel's, not the pool's)."""

    def __init__(self, future: Future[Any], pool: DaemonThreadPool) -> None:
        self.future = future
        self._pool = pool

    def cancel(self) -> bool:
        if self.future.cancel():
            return True
        self._pool.abandon()
        return False
