"""Ctrl-C while a sync run is in progress: a clean stop instead of an exception that could land anywhere."""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C module beneath signal (no stub)
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, Protocol

__all__ = ("Interruptible", "ctrl_c_stops")


class Interruptible(Protocol):
    """What the handler needs of the backend."""

    in_inline_tool: bool
    interrupted: bool

    def interrupt(self) -> None: ...


@contextmanager
def ctrl_c_stops(backend: Interruptible) -> Iterator[None]:
    """In the main thread, turn Ctrl-C into a clean stop of the run instead of an exception that could
    land anywhere (inside the kernel it would leave no partial result). Inside an inline tool, and on
    a second Ctrl-C, it raises ``KeyboardInterrupt`` as usual; ``interrupted`` is set either way, so the
    backend stops the run even if an inline tool swallows the exception."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if backend.in_inline_tool or backend.interrupted:
            backend.interrupted = True
            raise KeyboardInterrupt
        backend.interrupt()

    previous = _swap_sigint_handler(on_sigint)
    try:
        yield
    finally:
        _swap_sigint_handler(previous)


def _swap_sigint_handler(handler: Any) -> Any:
    """Install ``handler`` for SIGINT; the one it replaces, as ``signal.signal`` returns it but without
    its conversion to the ``Handlers`` enum: for any Python handler that enum lookup fails, raising and
    formatting a ``ValueError`` (~3 µs, twice a run, a third of a one-step run's cost). The C function
    beneath, ``_signal.signal``, is what ``signal.signal`` calls; it takes and returns the same values."""
    return _signal.signal(signal.SIGINT, handler)
