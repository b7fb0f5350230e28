"""The trio driver: each invoke is a task in one nursery per run, with its own cancel scope.

Runs trio-compatible async tools (anyio-based ones included); a tool that needs asyncio gets a clear
error. Sync tools run in worker threads by default (``trio.to_thread``, abandoned on cancel), or inline
with ``sync_tools="inline"``. Time comes from ``trio.current_time()``, so ``MockClock`` applies.
Cancelling an enclosing scope cancels the run: the ``Cancelled`` carries the partial result as
``partial_result`` (catch it inside the scope to read it).
"""

from __future__ import annotations

import contextvars
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, TypeVar, Unpack

import trio

from flowkernel import Completion, ExecutionResult, Flow, Invoke, StartTimer, TimerFired
from flowkernel.events import Event
from flowkernel.host import (
    NOT_CANCELLABLE,
    AsyncDriver,
    AsyncWaiter,
    Backend,
    KernelSession,
    RunSettings,
    call_async,
    call_sync,
    check_tools_fit,
)

__all__ = ("TrioDriver",)

__version__ = "0.2.0"
"""The distribution's version (the single source: hatch reads it when building)."""

T = TypeVar("T")
SyncToolMode = Literal["thread", "inline"]
_PASSTHROUGH = (KeyboardInterrupt, trio.Cancelled)


class TrioDriver(AsyncDriver):
    """Runs flows inside trio."""

    name = "trio"
    cancellation = trio.Cancelled

    def __init__(self, *, sync_tools: SyncToolMode = "thread") -> None:
        self.sync_tools = sync_tools

    @trio.lowlevel.enable_ki_protection  # Ctrl-C lands at the next checkpoint, never inside the kernel
    async def run(
        self,
        flow: Flow,
        inputs: Mapping[str, Any] | None = None,
        **settings: Unpack[RunSettings],
    ) -> ExecutionResult:
        """Run ``flow`` to the end in the current trio run and return its result."""
        check_tools_fit(flow, "trio")
        opened = await self.open_run(flow, inputs, settings)
        backend = _TrioBackend(inline_sync_tools=self.sync_tools == "inline")
        session = KernelSession(flow, opened.inputs, backend, recorder=opened.recorder, **opened.settings)
        return await self.drive(session, backend, trio.open_nursery(), backend.attach)

    def event_channel(self) -> tuple[Callable[[Event], None], Callable[[], Awaitable[Event]]]:
        sender, receiver = trio.open_memory_channel[Event](math.inf)
        return sender.send_nowait, receiver.receive

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(fn, *args)

    def task_group(self) -> AbstractAsyncContextManager[trio.Nursery]:
        return trio.open_nursery()

    def spawn(self, group: trio.Nursery, main: Callable[[], Awaitable[None]]) -> Callable[[], object]:
        scope = trio.CancelScope()

        async def run_main() -> None:
            with scope:
                await main()

        group.start_soon(run_main)
        return scope.cancel

    def start_loop(self, main: Callable[[], Awaitable[None]]) -> None:
        async def run_main() -> None:
            await main()

        trio.run(run_main)


class _TrioBackend(Backend, AsyncWaiter):
    def __init__(self, *, inline_sync_tools: bool) -> None:
        super().__init__()
        self._inline = inline_sync_tools
        self._clock = trio.current_time
        self._nursery: trio.Nursery | None = None
        self._arrived: list[Completion] = []
        self._wakeup = trio.Event()
        self._running: dict[trio.CancelScope, str] = {}  # calls' scopes: their tasks are system tasks,
        # outside the run's nursery, so one that ignores cancellation cannot keep the run from returning
        self._all_ended = trio.Event()
        self._crashed: BaseException | None = None

    def attach(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    def _start(self, call_id: str, task: Callable[[trio.CancelScope], Awaitable[None]]) -> None:
        assert self._nursery is not None
        scope = trio.CancelScope()
        self.track(call_id, scope)
        self._nursery.start_soon(task, scope)

    def start_invoke(self, command: Invoke) -> None:
        if self._inline and not command.tool.is_async:
            self.track(command.call_id, NOT_CANCELLABLE)
            self.complete(call_sync(command, self._clock, (KeyboardInterrupt,), self.world))
        else:
            scope = trio.CancelScope()
            self.track(command.call_id, scope)
            self._running[scope] = command.call_id
            trio.lowlevel.spawn_system_task(self._call, command, scope, context=contextvars.copy_context())

    async def _call(self, command: Invoke, scope: trio.CancelScope) -> None:
        """A call as a system task, in its own cancel scope. Whatever escapes it (a KeyboardInterrupt a
        tool raised) is handed to the run loop, which raises it (a system task must not raise)."""
        try:
            with scope:
                if command.tool.is_async:
                    completion = await call_async(command, self._clock, "trio", _PASSTHROUGH, self.world)
                else:  # trio's clock cannot be read from a worker thread: time the call from here
                    started = self._clock()
                    completion = await trio.to_thread.run_sync(
                        call_sync, command, time.monotonic, (), self.world, abandon_on_cancel=True
                    )
                    completion = completion._replace(started=started, finished=self._clock())
                self.complete(completion)
        except BaseException as exc:
            self._crashed = exc
            self._wakeup.set()
        finally:
            del self._running[scope]
            if not self._running:
                self._all_ended.set()

    async def settle(self, grace: float) -> list[str]:
        if not self._running:
            return []
        self._all_ended = trio.Event()
        for scope in self._running:
            scope.cancel()
        with trio.move_on_after(grace):
            await self._all_ended.wait()
        return sorted(self._running.values())

    def start_timer(self, command: StartTimer) -> None:
        self._start(command.call_id, lambda scope: self._timer(command, scope))

    async def _timer(self, command: StartTimer, scope: trio.CancelScope) -> None:
        with scope:
            await trio.sleep(command.seconds)
            self.complete(TimerFired(command.call_id))

    def post(self, completion: Completion) -> None:
        self._arrived.append(completion)
        self._wakeup.set()

    def take(self) -> list[Completion]:
        batch, self._arrived = self._arrived, []
        return batch

    async def wait(self) -> list[Completion]:
        if not self._arrived and self._crashed is None:
            self._wakeup = trio.Event()
            await self._wakeup.wait()
        if self._crashed is not None:
            raise self._crashed
        return self.take()
