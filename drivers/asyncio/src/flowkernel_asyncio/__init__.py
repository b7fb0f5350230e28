"""The asyncio driver: each invoke is a task in one ``TaskGroup`` per run.

Async tools are awaited on the running loop and really cancelled on ``Cancel``. Sync tools run in worker
threads (``asyncio.to_thread``) by default, or inline on the loop with ``sync_tools="inline"`` for
fast CPU-only tools. Cancelling the task that awaits ``run`` cancels the run: the ``CancelledError``
carries the partial result as ``partial_result``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Literal

from flowkernel import Completion, ExecutionResult, Flow, Invoke, StartTimer, TimerFired
from flowkernel.host import Backend, KernelSession, call_async, call_sync, check_tools_fit
from flowkernel.host.invoke import raised

__all__ = ("AsyncioDriver",)

SyncToolMode = Literal["thread", "inline"]


class AsyncioDriver:
    """Runs flows inside an asyncio event loop."""

    name = "asyncio"

    def __init__(self, *, sync_tools: SyncToolMode = "thread") -> None:
        self.sync_tools = sync_tools

    async def run(
        self,
        flow: Flow,
        inputs: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        max_concurrency: int | None = None,
    ) -> ExecutionResult:
        """Run ``flow`` to the end on the running loop and return its result."""
        check_tools_fit(flow, "asyncio")
        async with asyncio.TaskGroup() as group:
            backend = _AsyncioBackend(group, inline_sync_tools=self.sync_tools == "inline")
            session = KernelSession(flow, inputs, backend, run_id=run_id, max_concurrency=max_concurrency)
            with session.guard():
                session.start()
                while session.running:
                    session.feed(await backend.wait())
        return session.finished_result()

    def run_blocking(
        self,
        flow: Flow,
        inputs: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        max_concurrency: int | None = None,
    ) -> ExecutionResult:
        """Run ``flow`` in a new event loop (``asyncio.run``), for callers without one."""
        return asyncio.run(self.run(flow, inputs, run_id=run_id, max_concurrency=max_concurrency))


class _AsyncioBackend(Backend):
    def __init__(self, group: asyncio.TaskGroup, *, inline_sync_tools: bool) -> None:
        super().__init__()
        self._group = group
        self._inline = inline_sync_tools
        self._loop = asyncio.get_running_loop()
        self._clock = self._loop.time
        self._arrived: list[Completion] = []
        self._waiter: asyncio.Future[None] | None = None

    def start_invoke(self, command: Invoke) -> None:
        if self._inline and not command.tool.is_async:
            self.post(call_sync(command, self._clock))
        else:
            self.track(command.call_id, self._group.create_task(self._invoke(command)))

    async def _invoke(self, command: Invoke) -> None:
        try:
            if command.tool.is_async:
                completion = await call_async(command, self._clock, "asyncio")
            else:
                completion = await asyncio.to_thread(call_sync, command, self._clock)
        except asyncio.CancelledError as exc:
            if command.call_id not in self._live:
                raise  # cancelled by the kernel or with the run: already answered
            completion = raised(command, exc, self._clock(), self._clock)  # the tool raised it itself
        self.complete(completion)

    def start_timer(self, command: StartTimer) -> None:
        fired = TimerFired(command.call_id)
        self.track(command.call_id, self._loop.call_later(command.seconds, self.complete, fired))

    def post(self, completion: Completion) -> None:
        self._arrived.append(completion)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def take(self) -> list[Completion]:
        batch, self._arrived = self._arrived, []
        return batch

    async def wait(self) -> list[Completion]:
        """Wait until at least one completion is there; return all of them."""
        if not self._arrived:
            self._waiter = self._loop.create_future()
            await self._waiter
        return self.take()
