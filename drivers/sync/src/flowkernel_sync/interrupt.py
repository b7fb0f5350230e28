"""Ctrl-C while a sync run is in progress: a clean stop instead of an exception that could land anywhere."""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C module beneath signal (no stub)
import signal
import threading
from types import FrameType
from typing import Any, Protocol

__all__ = ("CtrlCStops", "Interruptible")


class Interruptible(Protocol):
    """What the handler needs of the backend."""

    in_inline_tool: bool
    interrupted: bool

    def interrupt(self) -> None: ...


class CtrlCStops:
    """In the main thread, turn Ctrl-C into a clean stop of the run instead of an exception that could
    land anywhere (inside the kernel it would leave no partial result). Inside an inline tool, and on
    a second Ctrl-C, it raises ``KeyboardInterrupt`` as usual; ``interrupted`` is set either way, so the
    backend stops the run even if an inline tool swallows the exception.

    A context manager class rather than a ``@contextmanager`` generator: it is entered on every run, and
    the generator's machinery costs several times its two handler swaps."""

    __slots__ = ("_backend", "_previous", "_swapped")

    def __init__(self, backend: Interruptible) -> None:
        self._backend = backend
        self._previous: Any = None
        self._swapped = False

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = _swap_sigint_handler(self._on_sigint)
            self._swapped = True

    def __exit__(self, *exc_info: object) -> None:
        if self._swapped:
            _swap_sigint_handler(self._previous)

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        backend = self._backend
        if backend.in_inline_tool or backend.interrupted:
            backend.interrupted = True
            raise KeyboardInterrupt
        backend.interrupt()


def _swap_sigint_handler(handler: Any) -> Any:
    """Install ``handler`` for SIGINT; the one it replaces, as ``signal.signal`` returns it but without
    its conversion to the ``Handlers`` enum: for any Python handler that enum lookup fails, raising and
    formatting a ``ValueError`` (~3 µs, twice a run, a third of a one-step run's cost). The C function
    beneath, ``_signal.signal``, is what ``signal.signal`` calls; it takes and returns the same values."""
    return _signal.signal(signal.SIGINT, handler)
