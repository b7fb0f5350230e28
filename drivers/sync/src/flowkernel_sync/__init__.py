"""The sync driver: plain Python, for scripts. The embedded default.

A sync call that is the only thing a run has in flight (a chain's step, at any concurrency limit) runs
inline in the caller's thread, with no thread hop; the rest run in a pool of daemon threads, built when a
run first needs one (see :func:`runs_inline`). Async tools run on one long-lived event loop in a helper
thread. A thread cannot be killed: cancelling a sync tool releases the caller at once and discards the
late result.

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
from contextvars import copy_context
from typing import Any, Unpack

from flowkernel import Completion, ExecutionResult, Flow, Invoke, StartTimer, StopRun, TimerFired
from flowkernel.events import Event, RunFinished
from flowkernel.host import (
    NOT_CANCELLABLE,
    Backend,
    DaemonThreadPool,
    EventIterator,
    KernelSession,
    RunSettings,
    ThreadCall,
    call_async,
    call_sync,
    call_sync_in_thread,
    check_tools_fit,
    raised,
    shared_resources,
)
from flowkernel.host.journal import open_run
from flowkernel.model import Resource

from .interrupt import CtrlCStops

__all__ = ("SyncDriver",)

__version__ = "0.2.0"
"""The distribution's version (the single source: hatch reads it when building)."""

DEFAULT_MAX_WORKERS = 32
SIGNAL_POLL = 0.05
"""The longest the caller's thread sleeps waiting for completions before it looks for a pending Ctrl-C."""


def runs_inline(calls: int, others_in_flight: int, completions_waiting: bool) -> bool:
    """Whether the sync calls a batch started may run inline, in the caller's thread, rather than in
    threads: only when the batch started exactly one sync call (``calls``), nothing else is in flight
    (``others_in_flight``: no other call, no timer of any kind) and nothing another thread posted waits
    to be taken (``completions_waiting``: a call that just finished, a Ctrl-C's stop; the kernel must
    see those first, they may start calls or stop the run).

    Inline, the caller's thread is busy until the tool returns, so that is allowed only when the run
    could not do anything else meanwhile, which is what keeps everything threads give:

    * **timeouts** and the **deadline** are timers: a call with a timeout has its timer beside it in
      the batch, and every call has the deadline's while one runs, so such a call gets a thread and the
      caller is released when the timer fires;
    * **concurrency**: with nothing else in flight and nothing waiting, the kernel can issue a new call
      only after this one completes, so no other call could have run beside it (a retry's backoff timer
      counts as in flight: its retry could);
    * **Ctrl-C** lands in the tool as ``KeyboardInterrupt`` and stops the run with its partial result,
      as at ``max_concurrency=1``; a tool that swallows it does not keep the run going
      (``_SyncBackend.call_inline``). Only a tool blocked in C code that never checks for signals delays
      the stop until it returns: give it a timeout, or use ``SyncDriver(inline_lone_calls=False)``.

    The parity test ``test_inline_lone_calls_agree_with_threads`` proves both paths give the oracle's
    result on generated flows.
    """
    return calls == 1 and others_in_flight == 0 and not completions_waiting


class SyncDriver:
    """Runs flows from plain synchronous code; Ctrl-C cancels and attaches the partial result.

    ``inline_lone_calls=False`` gives every sync call a thread, even one that runs alone (for tools that
    must not run in the caller's thread: thread-local state, C code that ignores Ctrl-C).
    """

    name = "sync"

    def __init__(self, *, max_workers: int | None = None, inline_lone_calls: bool = True) -> None:
        self.max_workers = max_workers
        self.inline_lone_calls = inline_lone_calls

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
        backend = _SyncBackend(max_workers=workers, inline_lone_calls=self.inline_lone_calls)
        session = KernelSession(flow, opened.inputs, backend, recorder=opened.recorder, **settings)
        world: AbstractContextManager[Any] = nullcontext()
        if session.resources:
            from .loop_thread import held_on_loop_thread

            world = held_on_loop_thread(session.opened_world())
        try:
            with world, session.guard(), CtrlCStops(backend):
                session.start()
                backend.start_sync_calls()
                if pause:
                    yield
                while session.result is None:  # (session.running, without a property call per batch)
                    session.feed(backend.wait())
                    backend.start_sync_calls()
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
    """Sync calls are held while the session dispatches a batch (``start_invoke``) and started together
    once the whole batch is known (``start_sync_calls``), since whether one may run inline depends on
    what else the batch started."""

    def __init__(self, *, max_workers: int, inline_lone_calls: bool = True) -> None:
        super().__init__()
        self._inline_lone_calls = inline_lone_calls
        self._max_workers = max_workers
        self._pool: DaemonThreadPool | None = None
        self._held: list[Invoke] = []  # the batch's sync calls, tracked but not started yet
        self._local: list[Completion] = []  # completions made in the caller's thread: inline calls', cancels' answers
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
        if command[2].is_async:  # Invoke.tool, .call_id by position (see flowkernel.host.invoke.call_sync)
            self._start_async(command)
        else:
            self._live[command[0]] = NOT_CANCELLABLE  # track(), inlined; a thread's handle replaces it
            self._held.append(command)

    def start_sync_calls(self) -> None:
        """Start the sync calls of the batch just dispatched: inline if :func:`runs_inline` allows, else
        each in a thread, in the batch's order."""
        held = self._held
        if not held:
            return
        self._held = []
        live = self._live
        lone = len(held) == 1 and len(live) == 1 and self._inline_lone_calls  # a chain's call: no new list
        if lone and held[0][0] in live and self._queue.empty():  # runs_inline(1, 0, False), inlined
            self.call_inline(held[0])
            return
        if len(held) > 1 or held[0].call_id not in live:
            # A call the same batch cancelled (a sub-run's call, when fail_fast stops the run) was answered.
            held = [command for command in held if command.call_id in live]
            if not held:
                return
        if self._inline_lone_calls and runs_inline(len(held), len(live) - len(held), not self._queue.empty()):
            self.call_inline(held[0])
            return
        if self._pool is None:
            self._pool = DaemonThreadPool(self._max_workers)
        pool, live, call_in_thread = self._pool, self._live, self._call_in_thread
        for command in held:
            call = ThreadCall(pool, call_in_thread, command)
            live[command[0]] = call  # track(), before it starts: the call may end at once
            pool.start(call)

    def _call_in_thread(self, command: Invoke) -> None:
        """A pool thread's call: its outcome goes to the queue."""
        self.complete(call_sync_in_thread(command, self._clock, self.world))

    def _start_async(self, command: Invoke) -> None:
        """An async tool: a task on the shared loop thread (asyncio is imported here, on the first one)."""
        import asyncio

        from .loop_thread import shared_loop_thread

        coroutine = call_async(command, self._clock, "asyncio", (asyncio.CancelledError,), self.world)
        self._watch(command, shared_loop_thread().submit(coroutine))

    def call_inline(self, command: Invoke) -> None:
        """Call a sync tool in the caller's thread, where ``KeyboardInterrupt`` is the user's Ctrl-C.

        It runs in a copy of the caller's context, as in a pool thread, so a contextvar the tool sets
        stays in its call. If Ctrl-C landed in the tool and the tool swallowed it, the run is stopped
        all the same (as when the tool runs in a thread, which never sees it)."""
        interrupted = self.interrupted
        self.in_inline_tool = True
        try:
            context = copy_context()
            completion = context.run(call_sync, command, self._clock, (KeyboardInterrupt,), self.world)
        finally:
            self.in_inline_tool = False
        del self._live[command[0]]  # complete(), without the queue: nothing could have answered it
        self._local.append(completion)
        if self.interrupted and not interrupted:
            self.interrupt()

    def _watch(self, command: Invoke, future: Future[Any]) -> None:
        self.track(command.call_id, future)

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

    def post_here(self, completion: Completion) -> None:
        """Answers to the kernel's cancellations skip the queue: only what other threads post (a call's
        result, a Ctrl-C's stop) can let the kernel start a call, so only that keeps a call from running
        inline (``runs_inline``'s ``completions_waiting``)."""
        self._local.append(completion)

    def take(self) -> list[Completion]:
        batch, self._local = self._local, []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    def wait(self) -> list[Completion]:
        """Block until at least one completion is there, firing due timers meanwhile."""
        while True:
            if self._timers:
                if len(self._timers) > 64 and len(self._timers) > 2 * len(self._live):  # mostly cancelled ones
                    self._timers = [timer for timer in self._timers if self.is_live(timer[1])]
                    heapq.heapify(self._timers)
                now = self._clock()
                while self._timers and self._timers[0][0] <= now:
                    self.complete(TimerFired(heapq.heappop(self._timers)[1]))
            batch, self._local = self._local, []  # take(), inlined: this runs once per batch
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
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
        self._held = []  # a run that stopped while dispatching: its calls were answered Cancelled
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
