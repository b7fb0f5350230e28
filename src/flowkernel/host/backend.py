"""The backend-specific part of a driver, and the bookkeeping every backend shares.

A backend starts invokes and timers and hands completions back. This base class keeps the table of
live calls that makes delivery exactly-once: a call cancelled by the kernel is answered ``Cancelled``
at once, and whatever the call produces later is dropped; a late result never reaches the kernel.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol

from ..protocol import Cancel, Cancelled, Completion, Invoke, StartTimer
from .world import NO_WORLD, CallWorld

__all__ = ("NOT_CANCELLABLE", "Backend", "Cancellable")


class Cancellable(Protocol):
    """Anything a backend can cancel: an asyncio task or timer handle, a trio cancel scope, a future."""

    def cancel(self) -> object: ...


class _NotCancellable:
    """The handle of a call that cannot be interrupted (an inline call, a sync-driver timer)."""

    def cancel(self) -> bool:
        return False


NOT_CANCELLABLE: Cancellable = _NotCancellable()


class Backend(ABC):
    """Starts commands and collects completions; subclasses add how to wait for them."""

    def __init__(self) -> None:
        self._live: dict[str, Cancellable] = {}
        self._clock: Callable[[], float] = time.monotonic
        self.world: CallWorld = NO_WORLD
        """What the run's tool calls get: its open resources and middleware (set by the driver)."""

    @property
    def clock(self) -> Callable[[], float]:
        """The driver's clock (seconds, monotonic): call timestamps and event times come from it."""
        return self._clock

    @abstractmethod
    def start_invoke(self, command: Invoke) -> None:
        """Start calling the tool; report through :meth:`complete`."""

    @abstractmethod
    def start_timer(self, command: StartTimer) -> None:
        """Start a timer; report ``TimerFired`` through :meth:`complete`."""

    @abstractmethod
    def post(self, completion: Completion) -> None:
        """Hand a completion to the side that waits for completions (thread-safe where needed)."""

    @abstractmethod
    def take(self) -> list[Completion]:
        """Every completion posted and not yet taken, without waiting."""

    def track(self, call_id: str, handle: Cancellable) -> None:
        """Remember how to cancel a call that has started."""
        self._live[call_id] = handle

    def complete(self, completion: Completion) -> None:
        """Report a call's completion, unless it was already answered (cancelled) before."""
        if self._live.pop(completion.call_id, None) is not None:  # type: ignore[union-attr]
            self.post(completion)

    def cancel(self, command: Cancel) -> None:
        """Cancel a live call and answer ``Cancelled`` at once; a call already completed is left be."""
        handle = self._live.pop(command.call_id, None)
        if handle is not None:
            handle.cancel()
            self.post_here(Cancelled(command.call_id))

    def post_here(self, completion: Completion) -> None:
        """Hand over a completion made in the thread that dispatches commands (the answer to a ``Cancel``):
        :meth:`post`, unless the backend keeps those apart from what other threads post."""
        self.post(completion)

    def is_live(self, call_id: str) -> bool:
        """Whether a call has started and not been answered yet."""
        return call_id in self._live
