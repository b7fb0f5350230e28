"""The sync driver: plain Python, for scripts. The embedded default.

Concurrency 1 calls sync tools inline in the caller's thread (no thread hop at all); above 1 they run in
a pool of daemon threads. Async tools run on one long-lived event loop in a helper thread. A thread
cannot be killed: cancelling a sync tool releases the caller at once and discards the late result.

asyncio and the loop thread (``loop_thread``) are imported on first need (an async tool, or resources to
open), not with the driver: a run of sync tools, the command line's usual case, never loads asyncio.
"""

from __future__ import annotations

import heapq
import queue
import time
from collections.abc import Generator, Iterator, Mapping
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Unpack

from flowkernel import Completion, ExecutionResult, Flow, Invoke, StartTimer, StopRun, TimerFired
from flowkernel.events import Event, RunFinished
from flowkernel.host import (
    NOT_CANCELLABLE,
    Backend,
    Cancellable,
    DaemonThreadPool,
    EventIterator,
    KernelSession,
    RunSettings,
    ThreadCall,
    call_async,
    call_sync,
    check_tools_fit,
    raised,
    shared_resources,
)
from flowkernel.host.journal import open_run
from flowkernel.model import Resource

from .interrupt import ctrl_c_stops

__all__ = ("SyncDriver",)

DEFAULT_MAX_WORKERS = 32
SIGNAL_POLL = 0.05
"""The longest the caller's thread sleeps waiting for completions before it looks for a pending Ctrl-C."""


class SyncDriver:
    """Runs flows from plain synchronous code; Ctrl-C cancels and attaches the partial result."""

    name = "sync"

    def __init__(self, *, max_workers: int | None = None) -> None:
        self.max_workers = max_workers

    def run(
        self,
        flow: Flow,
        inputs: Mapping[str, Any] | None = None,
        **settings: Unpack[RunSettings],
    ) -> ExecutionResult:
        """Run ``flow`` to the end and return its result."""
        execution = self._execute(flow, inputs, settings, pause=False)
        try:
            next(execution)
        except StopIteration as done:
            result: ExecutionResult = done.value
            return result
        raise AssertionError("a run that does not pause paused")  # pragma: no cover

    run_blocking = run

    @contextmanager
    def shared(self, *resources: Resource[Any]) -> Iterator[tuple[Resource[Any], ...]]:
        """Open ``resources`` once, on the loop thread where this driver's async tools run, for many
        runs: pass what the block gets in each run's ``resources=`` (an MCP session shared by runs)."""
        from .loop_thread import held_on_loop_thread

        with held_on_loop_thread(shared_resources(resources)) as opened:
            yield opened

    def stream(
        self,
        flow: Flow,
        inputs: Mapping[str, Any] | None = None,
        **settings: Unpack[RunSettings],
    ) -> EventIterator:
        """Run ``flow``, yielding its progress events as they happen; the last is ``RunFinished``.

        Stopping early (``close()``, or leaving a ``with`` block) cancels the run cleanly; ``result``
        then holds the partial result.
        """
        stream = EventIterator()
        events: list[Event] = []
        also = settings.get("on_event")

        def collect(event: Event) -> None:
            if isinstance(event, RunFinished):
                stream.result = event.result
            events.append(event)
            if also is not None:
                also(event)

        def generate(execution: Generator[None, None, ExecutionResult]) -> Iterator[Event]:
            try:
                while True:
                    try:
                        next(execution)
                    except StopIteration:
                        yield from events
                        return
                    yield from events
                    events.clear()
            finally:
                execution.close()  # a consumer that stopped reading: cancel the run

        collecting: RunSettings = {**settings, "on_event": collect}
        stream.events = generate(self._execute(flow, inputs, collecting, pause=True))
        return stream

    def _execute(
        self, flow: Flow, inputs: Mapping[str, Any] | None, settings: RunSettings, *, pause: bool
    ) -> Generator[None, None, ExecutionResult]:
        """The run loop; with ``pause`` it yields after every batch, so a stream can hand out events."""
        check_tools_fit(flow, "asyncio")
        opened = open_run(flow, inputs, settings)
        settings = opened.settings
        limit = settings.get("max_concurrency")
        workers = self.max_workers or max(limit or 0, DEFAULT_MAX_WORKERS)  # the kernel enforces the limits
        # One at a time, tools run inline in this thread; timeouts, a deadline or nested limits need threads.
        inline = limit == 1 and flow.runs_inline_safely and settings.get("deadline") is None
        backend = _SyncBackend(inline=inline, max_workers=workers)
        session = KernelSession(flow, opened.inputs, backend, recorder=opened.recorder, **settings)
        world: AbstractContextManager[Any] = nullcontext()
        if session.resources:
            from .loop_thread import held_on_loop_thread

            world = held_on_loop_thread(session.opened_world())
        try:
            with world, session.guard(), ctrl_c_stops(backend):
                session.start()
                if pause:
                    yield
                while session.result is None:  # (session.running, without a property call per batch)
                    session.feed(backend.wait())
                    if pause:
                        yield
                session.record_result()
        finally:
            backend.close()
        result = session.finished_result()
        if backend.interrupted:  # Ctrl-C stopped the run cleanly: still raise it, with the result on it
            interrupt = KeyboardInterrupt()
            interrupt.partial_result = result  # type: ignore[attr-defined]
            raise interrupt
        return result


class _SyncBackend(Backend):
    def __init__(self, *, inline: bool, max_workers: int) -> None:
        super().__init__()
        self._inline = inline
        self._max_workers = max_workers
        self._pool: DaemonThreadPool | None = None
        self._local: list[Completion] = []  # inline calls' completions
        self._queue: queue.SimpleQueue[Completion] = queue.SimpleQueue()  # everything else, from any thread
        self._timers: list[tuple[float, str]] = []
        self._clock = time.monotonic
        self.in_inline_tool = False
        self.interrupted = False

    def interrupt(self) -> None:
        """Ask the kernel to stop the run (safe to call from a signal handler)."""
        self.interrupted = True
        self._queue.put(StopRun("KeyboardInterrupt in the caller"))

    def start_invoke(self, command: Invoke) -> None:
        if command.tool.is_async:
            self._start_async(command)
        elif self._inline:  # in the caller's thread, where KeyboardInterrupt is the user's Ctrl-C
            self.in_inline_tool = True
            try:
                self._local.append(call_sync(command, self._clock, (KeyboardInterrupt,), self.world))
            finally:
                self.in_inline_tool = False
        else:
            if self._pool is None:
                self._pool = DaemonThreadPool(self._max_workers)
            future = self._pool.submit(call_sync, command, self._clock, (), self.world)
            self._watch(command, future, ThreadCall(future, self._pool))

    def _start_async(self, command: Invoke) -> None:
        """An async tool: a task on the shared loop thread (asyncio is imported here, on the first one)."""
        import asyncio

        from .loop_thread import shared_loop_thread

        coroutine = call_async(command, self._clock, "asyncio", (asyncio.CancelledError,), self.world)
        self._watch(command, shared_loop_thread().submit(coroutine))

    def _watch(self, command: Invoke, future: Future[Any], handle: Cancellable | None = None) -> None:
        self.track(command.call_id, handle or future)

        def done(future: Future[Any]) -> None:
            try:
                completion = future.result()
            except BaseException as exc:  # cancelled, or a tool that cancelled itself: never lose a call
                completion = raised(command, exc, self._clock(), self._clock)
            self.complete(completion)

        future.add_done_callback(done)

    def start_timer(self, command: StartTimer) -> None:
        heapq.heappush(self._timers, (self._clock() + command.seconds, command.call_id))
        self.track(command.call_id, NOT_CANCELLABLE)  # a cancelled timer's firing is dropped by complete()

    def post(self, completion: Completion) -> None:
        self._queue.put(completion)

    def take(self) -> list[Completion]:
        batch, self._local = self._local, []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    def wait(self) -> list[Completion]:
        """Block until at least one completion is there, firing due timers meanwhile."""
        while True:
            if len(self._timers) > 64 and len(self._timers) > 2 * len(self._live):  # mostly cancelled ones
                self._timers = [timer for timer in self._timers if self.is_live(timer[1])]
                heapq.heapify(self._timers)
            if self._timers:
                now = self._clock()
                while self._timers and self._timers[0][0] <= now:
                    self.complete(TimerFired(heapq.heappop(self._timers)[1]))
            batch = self.take()
            if batch:
                return batch
            # Never sleep long: a Ctrl-C the OS delivered to a tool's thread runs its handler here only
            # when this thread next runs Python code (a lock wait is not interrupted by it).
            timeout = min(max(0.0, self._timers[0][0] - self._clock()), SIGNAL_POLL) if self._timers else SIGNAL_POLL
            try:
                batch.append(self._queue.get(timeout=timeout))
            except queue.Empty:
                continue
            return batch + self.take()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
