"""Pools of daemon worker threads for sync tools, drawing on one process-wide cache of idle threads.

``concurrent.futures.ThreadPoolExecutor`` joins its workers when the interpreter exits, so after Ctrl-C
a process could not exit until a stuck tool returned. A thread cannot be killed; a daemon thread at
least does not hold the process hostage. Each run has a pool of its own, with its own limit (so a tool
that runs a flow never waits for a thread its own run holds), but the threads outlive it: a worker
whose pool has no more work goes back to the cache, and the next run's pool takes it from there
instead of starting a thread (about 100 µs each: 32 of them were most of a small map step's time).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from contextvars import copy_context
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

__all__ = ("DaemonThreadPool", "ThreadCall")

P = ParamSpec("P")
T = TypeVar("T")

KEEP_IDLE_THREADS_FOR = 30.0
"""Seconds an idle cached thread waits for a pool to serve before it exits."""

_PENDING, _RUNNING, _CANCELLED, _ABANDONED, _DONE = 0, 1, 2, 3, 4


class DaemonThreadPool(Executor):
    """An executor whose calls run in daemon threads, at most ``max_workers`` at once; ``shutdown``
    never waits for a stuck call.

    :meth:`start` is the light way in: a call and its cancel handle are one slotted :class:`ThreadCall`,
    with no ``Future``, condition or callback list for the collector to walk; the drivers use it.
    :meth:`submit` (the ``Executor`` API, for code that wants a ``Future``) is built on it. Calls wait
    in a deque that the pool's workers drain one after another; a worker is added only while fewer
    than ``max_workers`` serve it.
    """

    def __init__(self, max_workers: int, *, name: str = "flowkernel-tool") -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._max_workers = max_workers
        self._name = name
        self._work: deque[ThreadCall] = deque()
        self._serving = 0  # workers draining this pool's deque
        self._lock = threading.Lock()
        self._closed = False
        self._drained = threading.Condition(self._lock)  # for shutdown(wait=True)

    def start(self, call: ThreadCall) -> None:
        """Run the call in a worker thread. Made first and started apart, so the caller can file the
        handle where the call's outcome will look for it before the call can end."""
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a pool that was shut down")
            self._work.append(call)
            if self._serving >= self._max_workers:
                return  # a worker serving the pool takes it when it is free
            self._serving += 1
        _IDLE.serve(self)

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        self.start(_FutureCall(self, _settle, (future, fn, args, kwargs)))
        return future

    def drain(self, idle: Callable[[], None]) -> None:
        """Run the pool's calls until none is left (a worker thread's turn serving this pool); ``idle``
        files the thread as idle before the pool stops counting it, so whoever waited for the pool to
        drain finds the thread free for the next one."""
        work, lock = self._work, self._lock
        threading.current_thread().name = self._name
        while True:
            try:
                call = work.popleft()
            except IndexError:
                with lock:  # empty under the lock: a call started after this adds a worker
                    if work:
                        continue
                    idle()
                    self._serving -= 1
                    self._drained.notify_all()
                return
            with lock:
                if call.state != _PENDING:
                    continue
                call.state = _RUNNING
            try:
                call.context.run(call.fn, call.arg)
            except BaseException as exc:  # fn hands its outcome on itself; this is its own failure
                sys.unraisablehook(_Unraisable(exc, call.fn))
            with lock:
                if call.state == _ABANDONED:  # the pool had one more thread in its place: not any more
                    self._max_workers -= 1
                call.state = _DONE

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Take no more calls; with ``cancel_futures`` drop those not started. Never waits for a running
        call unless ``wait`` is set."""
        with self._lock:
            self._closed = True
            if cancel_futures:
                while self._work:
                    call = self._work.popleft()
                    call.state = _CANCELLED
                    call.dropped()
            if wait:
                self._drained.wait_for(lambda: self._serving == 0)


class ThreadCall:
    """A call for a pool, ``fn(arg)``, and its cancel handle: a call that already started cannot be
    stopped, so cancelling it gives the pool a thread in its place (the limit is the kernel's, not the
    pool's). It runs in a copy of the contextvars of the thread that made it, as on trio. What ``fn``
    returns is dropped and what it raises is reported as unraisable: ``fn`` hands its outcome on itself."""

    __slots__ = ("arg", "context", "fn", "pool", "state")

    def __init__(self, pool: DaemonThreadPool, fn: Callable[[Any], object], arg: Any) -> None:
        self.pool = pool
        self.context = copy_context()
        self.fn = fn
        self.arg = arg
        self.state = _PENDING

    def cancel(self) -> bool:
        pool = self.pool
        with pool._lock:
            if self.state == _PENDING:
                self.state = _CANCELLED
                return True
            if self.state == _RUNNING:  # the pool may start one more in its place, until this returns
                self.state = _ABANDONED
                pool._max_workers += 1
        return False

    def dropped(self) -> None:
        """The pool shut down before the call started: nothing to say (``fn`` hands its outcome on)."""


class _FutureCall(ThreadCall):
    """:meth:`DaemonThreadPool.submit`'s call, which settles a ``concurrent.futures.Future``."""

    __slots__ = ()

    def dropped(self) -> None:
        self.arg[0].cancel()  # whoever waits on the future hears it


class _IdleThreads:
    """The process's idle worker threads: each waits for a pool to drain, then comes back."""

    def __init__(self) -> None:
        self._idle: list[queue.SimpleQueue[DaemonThreadPool | None]] = []
        self._lock = threading.Lock()

    def serve(self, pool: DaemonThreadPool) -> None:
        """Have an idle thread drain the pool, or a new one if none is idle."""
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is not None:
            inbox.put(pool)
            return
        inbox = queue.SimpleQueue()
        inbox.put(pool)
        threading.Thread(target=self._worker, args=(inbox,), daemon=True).start()

    def _worker(self, inbox: queue.SimpleQueue[DaemonThreadPool | None]) -> None:
        while True:
            try:
                pool = inbox.get(timeout=KEEP_IDLE_THREADS_FOR)
            except queue.Empty:
                with self._lock:
                    if inbox in self._idle:  # nobody gave it work: leave (else take what it was given)
                        self._idle.remove(inbox)
                        return
                pool = inbox.get()
            if pool is None:
                return
            pool.drain(lambda: self._rest(inbox))

    def _rest(self, inbox: queue.SimpleQueue[DaemonThreadPool | None]) -> None:
        with self._lock:
            self._idle.append(inbox)


_IDLE = _IdleThreads()


def _forget_idle_threads() -> None:
    """In a forked child: none of the parent's threads exist there, idle or not."""
    global _IDLE
    _IDLE = _IdleThreads()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_idle_threads)


def _settle(call: tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]) -> None:
    """:meth:`DaemonThreadPool.submit`'s call: run ``fn`` unless its future was cancelled, and settle it."""
    future, fn, args, kwargs = call
    if future.set_running_or_notify_cancel():
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # the future carries it to whoever waits
            future.set_exception(exc)


class _Unraisable:
    """What ``sys.unraisablehook`` is given: the shape of ``sys.UnraisableHookArgs``."""

    def __init__(self, exc: BaseException, fn: Callable[..., object]) -> None:
        self.exc_type: type[BaseException] = type(exc)
        self.exc_value: BaseException | None = exc
        self.exc_traceback: TracebackType | None = exc.__traceback__
        self.err_msg: str | None = "Exception in a flowkernel pool call"
        self.object: object = fn
