"""A run's progress events as something to iterate: sync (``EventIterator``) and async (``EventStream``).

Both end after ``RunFinished`` and keep the run's ``result``; leaving early cancels the run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

from ..events import Event, RunFinished
from ..result import ExecutionResult

__all__ = ("EventIterator", "EventStream")


class EventIterator:
    """The progress events of a run; ``result`` holds its result once it has ended (or been stopped)."""

    def __init__(self) -> None:
        self.result: ExecutionResult | None = None
        self.events: Iterator[Event] = iter(())

    def __iter__(self) -> EventIterator:
        return self

    def __next__(self) -> Event:
        return next(self.events)

    def close(self) -> None:
        """Stop reading: cancels the run if it is still going."""
        close = getattr(self.events, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> EventIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventStream:
    """The progress events of a run, as an async iterator that ends after ``RunFinished``."""

    def __init__(self, receive: Callable[[], Awaitable[Event]]) -> None:
        self._receive = receive
        self._ended = False
        self.result: ExecutionResult | None = None
        """The run's result once it has ended: after the block, the partial result if it was cut short."""

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        if self._ended:
            raise StopAsyncIteration
        event = await self._receive()
        self._ended = isinstance(event, RunFinished)
        return event
