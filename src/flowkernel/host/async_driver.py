"""What the asyncio and trio drivers share: ``run_blocking`` on top of ``run``, and the run loop's
handling of the task group (or nursery) that every async driver runs its calls in."""

from __future__ import annotations

import contextlib
import warnings
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar, Unpack

from ..errors import AbandonedCallWarning
from ..events import Event, RunFinished
from ..model.flow import Flow
from ..result import ExecutionResult
from .journal.recorder import OpenedRun, open_run
from .session import KernelSession, partial_result
from .settings import RunSettings
from .streams import EventStream

__all__ = ("ABANDON_GRACE", "AsyncDriver", "AsyncWaiter")

ABANDON_GRACE = 1.0
"""Seconds a call the kernel cancelled may take to end once its run is over (see ``AsyncDriver.abandon_after``)."""

T = TypeVar("T")


class AsyncWaiter(ABC):
    """The part of an async backend the run loop needs: wait for completions, settle what is left."""

    @abstractmethod
    async def wait(self) -> list[Any]:
        """Wait until at least one completion is there; return all of them."""

    async def settle(self, grace: float) -> list[str]:
        """Once the run is over: cancel the calls still running (the kernel gave up on them already),
        wait up to ``grace`` seconds for them to end, and return the ids of those that did not."""
        return []


class AsyncDriver(ABC):
    """Base of drivers whose ``run`` is a coroutine of one event loop library."""

    name: str
    cancellation: type[BaseException]
    """The exception the loop library cancels tasks with."""
    abandon_after: float = ABANDON_GRACE
    """Seconds a cancelled call may take to end once its run is over, before the run returns without it."""

    @abstractmethod
    async def run(
        self,
        flow: Flow,
        inputs: Mapping[str, Any] | None = None,
        **settings: Unpack[RunSettings],
    ) -> ExecutionResult:
        """Run ``flow`` to the end inside the running event loop and return its result."""

    @abstractmethod
    def start_loop(self, main: Callable[[], Awaitable[None]]) -> None:
        """Run ``main`` in a new event loop of this driver's kind."""

    @abstractmethod
    def event_channel(self) -> tuple[Callable[[Event], None], Callable[[], Awaitable[Event]]]:
        """An unbounded channel of this loop's kind: (send without waiting, receive)."""

    @abstractmethod
    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking ``fn(*args)`` in a worker thread (journal I/O) without blocking the loop."""

    async def open_run(self, flow: Flow, inputs: Mapping[str, Any] | None, settings: RunSettings) -> OpenedRun:
        """:func:`~flowkernel.host.journal.open_run`, in a thread when there is a journal to read or write."""
        if settings.get("journal") is None:
            return open_run(flow, inputs, settings)
        return await self.in_thread(open_run, flow, inputs, settings)

    @abstractmethod
    def task_group(self) -> AbstractAsyncContextManager[Any]:
        """A task group (nursery) of this loop's kind."""

    @abstractmethod
    def spawn(self, group: Any, main: Callable[[], Awaitable[None]]) -> Callable[[], object]:
        """Start ``main`` in ``group``; return a function that cancels it."""

    @asynccontextmanager
    async def stream(
        self, flow: Flow, inputs: Mapping[str, Any] | None = None, **settings: Unpack[RunSettings]
    ) -> AsyncIterator[EventStream]:
        """Run ``flow`` in the background and read its progress events as they happen::

            async with driver.stream(flow, inputs) as events:
                async for event in events:
                    ...
            events.result

        Leaving the block before the run ends (``break``, an exception) cancels the run cleanly.
        """
        send, receive = self.event_channel()
        events = EventStream(receive)
        also = settings.get("on_event")

        def forward(event: Event) -> None:
            if isinstance(event, RunFinished):
                events.result = event.result
            send(event)
            if also is not None:
                also(event)

        forwarding: RunSettings = {**settings, "on_event": forward}

        async def execute() -> None:
            with contextlib.suppress(self.cancellation):  # a consumer that stopped reading cancelled it
                await self.run(flow, inputs, **forwarding)

        async with self.task_group() as group:
            cancel = self.spawn(group, execute)
            try:
                yield events
            finally:
                cancel()

    def run_blocking(
        self,
        flow: Flow,
        inputs: Mapping[str, Any] | None = None,
        **settings: Unpack[RunSettings],
    ) -> ExecutionResult:
        """Run ``flow`` in a new event loop, for callers that have none."""
        results: list[ExecutionResult] = []

        async def main() -> None:  # hand the result out through a list, not as the main task's result:
            # CPython 3.11 formats the main task's repr (result included) at teardown (cpython#112559)
            results.append(await self.run(flow, inputs, **settings))

        try:
            self.start_loop(main)
            return results[0]
        except KeyboardInterrupt as exc:  # the loop runner raises a fresh one: carry the result over
            result = partial_result(exc)
            if result is not None:
                exc.partial_result = result  # type: ignore[attr-defined]
            raise

    async def drive(
        self,
        session: KernelSession,
        backend: AsyncWaiter,
        group: AbstractAsyncContextManager[Any],
        attach: Callable[[Any], None],
    ) -> ExecutionResult:
        """The run loop inside ``group`` (a task group or nursery) that ``attach`` hands to the backend."""
        try:
            async with session.opened_world():  # resources close after the last call
                try:
                    async with group as opened:
                        attach(opened)
                        with session.guard():
                            session.start()
                            journaled = session.recorder is not None
                            while session.running:
                                batch = await backend.wait()
                                if journaled:  # write-ahead, off the event loop
                                    session.hold(batch)
                                    await self.in_thread(session.record, batch)
                                session.consume(batch)
                            if journaled:
                                await self.in_thread(session.record_result)
                finally:
                    await self._settle(session, backend)
        except BaseExceptionGroup as exc_group:
            raise session.unwrap(exc_group, self.cancellation) from None
        return session.finished_result()

    async def _settle(self, session: KernelSession, backend: AsyncWaiter) -> None:
        """Give calls the kernel cancelled a grace period to end; abandon (and report) the rest."""
        import anyio  # here: importing the host layer stays light

        with anyio.CancelScope(shield=True):  # also when the run itself is being cancelled
            abandoned = await backend.settle(self.abandon_after)
        if abandoned:
            warnings.warn(
                AbandonedCallWarning(
                    f"run {session.options.run_id}: abandoned call {', '.join(abandoned)} (still running "
                    f"{self.abandon_after:g} s after it was cancelled); it runs on in the background"
                ),
                stacklevel=3,
            )
