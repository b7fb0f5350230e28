"""The asyncio driver: each invoke is a task in one ``TaskGroup`` per run.

Async tools are awaited on the running loop and really cancelled on ``Cancel``. Sync tools run in
daemon worker threads by default, or inline on the loop with ``sync_tools="inline"`` for fast CPU-only
tools. Cancelling the task that awaits ``run`` cancels the run: the ``CancelledError`` carries the
partial result as ``partial_result``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar, Unpack

from flowkernel import Completion, ExecutionResult, Flow, Invoke, Raised, Returned, StartTimer, TimerFired
from flowkernel.events import Event
from flowkernel.host import (
    NOT_CANCELLABLE,
    AsyncDriver,
    AsyncWaiter,
    Backend,
    DaemonThreadPool,
    KernelSession,
    RunSettings,
    ThreadCall,
    call_async,
    call_sync,
    call_sync_in_thread,
    check_tools_fit,
    raised,
)

__all__ = ("AsyncioBackend", "AsyncioDriver")

__version__ = "0.2.0"
"""The distribution's version (the single source: hatch reads it when building)."""

T = TypeVar("T")
SyncToolMode = Literal["thread", "inline"]
DEFAULT_MAX_WORKERS = 32
_PASSTHROUGH = (KeyboardInterrupt, asyncio.CancelledError)


def _resolve(done: asyncio.Future[T], value: T) -> None:
    """Resolve a call's future on the loop, unless its task stopped waiting (cancelled)."""
    if not done.done():
        done.set_result(value)


class AsyncioDriver(AsyncDriver):
    """Runs flows inside an asyncio event loop."""

    name = "asyncio"
    cancellation = asyncio.CancelledError

    def __init__(self, *, sync_tools: SyncToolMode = "thread", max_workers: int | None = None) -> None:
        self.sync_tools = sync_tools
        self.max_workers = max_workers

    async def run(
        self,
        flow: Flow,
        inputs: Mapping[str, Any] | None = None,
        **settings: Unpack[RunSettings],
    ) -> ExecutionResult:
        """Run ``flow`` to the end on the running loop and return its result."""
        check_tools_fit(flow, "asyncio")
        opened = await self.open_run(flow, inputs, settings)
        workers = self.max_workers or max(opened.settings.get("max_concurrency") or 0, DEFAULT_MAX_WORKERS)
        backend = AsyncioBackend(inline_sync_tools=self.sync_tools == "inline", max_workers=workers)
        session = KernelSession(flow, opened.inputs, backend, recorder=opened.recorder, **opened.settings)
        try:
            return await self.drive(session, backend, asyncio.TaskGroup(), backend.attach)
        finally:
            backend.close()

    def event_channel(self) -> tuple[Callable[[Event], None], Callable[[], Awaitable[Event]]]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        return queue.put_nowait, queue.get

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    def task_group(self) -> asyncio.TaskGroup:
        return asyncio.TaskGroup()

    def spawn(self, group: asyncio.TaskGroup, main: Callable[[], Awaitable[None]]) -> Callable[[], object]:
        async def run_main() -> None:
            await main()

        return group.create_task(run_main()).cancel

    def start_loop(self, main: Callable[[], Awaitable[None]]) -> None:
        async def run_main() -> None:
            await main()

        asyncio.run(run_main())


class AsyncioBackend(Backend, AsyncWaiter):
    """Calls as tasks in the run's task group, timers as ``call_later``, completions in a list the driver
    loop awaits. Public so drivers built on asyncio (the Dask driver) extend it rather than copy it."""

    def __init__(self, *, inline_sync_tools: bool, max_workers: int) -> None:
        super().__init__()
        self._inline = inline_sync_tools
        self._max_workers = max_workers
        self._pool: DaemonThreadPool | None = None
        self._loop = asyncio.get_running_loop()
        self._clock = self._loop.time
        self._group: asyncio.TaskGroup | None = None
        self._arrived: list[Completion] = []
        self._waiter: asyncio.Future[None] | None = None
        self._crashed: BaseException | None = None
        self._running: dict[str, asyncio.Task[None]] = {}  # calls' tasks, outside the task group:
        # a task that ignores cancellation must not keep the run from returning (see settle). A task
        # takes itself out when it ends (not a done callback: one loop callback less per call)

    def attach(self, group: asyncio.TaskGroup) -> None:
        self._group = group

    def start_invoke(self, command: Invoke) -> None:
        if self._inline and not command.tool.is_async:
            self.track(command.call_id, NOT_CANCELLABLE)
            self.complete(call_sync(command, self._clock, (KeyboardInterrupt,), self.world))
        else:
            task = self._loop.create_task(self._invoke(command))
            self._running[command.call_id] = task
            self.track(command.call_id, task)

    async def settle(self, grace: float) -> list[str]:
        # (a task cancelled before it ran never took itself out: it is done, and skipped)
        running = {call_id: task for call_id, task in self._running.items() if not task.done()}
        if not running:
            return []
        for task in running.values():
            task.cancel()
        await asyncio.wait(running.values(), timeout=grace)
        return sorted(call_id for call_id, task in running.items() if not task.done())

    async def _invoke(self, command: Invoke) -> None:
        call: ThreadCall | None = None
        try:
            if command.tool.is_async:
                completion = await call_async(command, self._clock, "asyncio", _PASSTHROUGH, self.world)
            else:
                done: asyncio.Future[Returned | Raised] = self._loop.create_future()
                if self._pool is None:
                    self._pool = DaemonThreadPool(self._max_workers)
                call = ThreadCall(self._pool, self._call_in_thread, (command, done))
                self._pool.start(call)
                completion = await done
        except asyncio.CancelledError as exc:
            if not self.is_live(command.call_id):
                if call is not None:  # not started: it never runs; else its thread runs on, and the
                    call.cancel()  # pool has another in its place until it returns
                raise  # cancelled by the kernel or with the run: already answered
            completion = raised(command, exc, self._clock(), self._clock)  # the tool raised it itself
        except KeyboardInterrupt as exc:  # a tool raised it on the loop: the run loop raises it (the task
            self._crashed = exc  # is outside the task group, which would have cancelled the run)
            self.post_nothing()
            return
        finally:
            del self._running[command[0]]
        self.complete(completion)

    def _call_in_thread(self, job: tuple[Invoke, asyncio.Future[Returned | Raised]]) -> None:
        """A pool thread's call: its outcome goes to the waiting task, on the loop (unless the loop has
        closed meanwhile: the run ended, and nobody waits)."""
        command, done = job
        completion = call_sync_in_thread(command, self._clock, self.world)
        with contextlib.suppress(RuntimeError):  # the loop is closed
            self._loop.call_soon_threadsafe(_resolve, done, completion)

    def start_timer(self, command: StartTimer) -> None:
        fired = TimerFired(command.call_id)
        self.track(command.call_id, self._loop.call_later(command.seconds, self.complete, fired))

    def post(self, completion: Completion) -> None:
        self._arrived.append(completion)
        self.post_nothing()

    def take(self) -> list[Completion]:
        batch, self._arrived = self._arrived, []
        return batch

    def post_nothing(self) -> None:
        """Wake the run loop without a completion (it has something else to look at)."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self) -> list[Completion]:
        if not self._arrived and self._crashed is None:
            self._waiter = self._loop.create_future()
            await self._waiter
        if self._crashed is not None:
            raise self._crashed
        return self.take()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
