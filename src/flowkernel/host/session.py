"""The driver loop, written once: every driver wraps a :class:`KernelSession` around its backend.

A driver's own loop is then three lines, identical in shape for sync and async code::

    with session.guard():
        session.start()
        while session.running:
            session.feed(backend.wait())        # or: await backend.wait()

``guard`` handles caller cancellation (Ctrl-C, task cancellation, a trio cancel scope) the same way
everywhere: the kernel is told to stop, in-flight calls are cancelled, and the partial result is
attached to the exception as ``partial_result`` before it propagates.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import ProtocolError
from ..kernel import RunOptions, run_flow
from ..model.flow import Flow
from ..protocol import Cancel, Cancelled, Command, Completion, Invoke, StartTimer, StopRun
from ..result import ExecutionResult
from .backend import Backend

__all__ = ("KernelSession", "new_run_id", "partial_result")


def new_run_id() -> str:
    """A fresh random run id (the kernel itself never makes one up: that would not be pure)."""
    return uuid.uuid4().hex


def partial_result(exc: BaseException) -> ExecutionResult | None:
    """The partial result a driver attached to a cancellation exception, if any."""
    result = getattr(exc, "partial_result", None)
    return result if isinstance(result, ExecutionResult) else None


class KernelSession:
    """One run: a kernel generator, the backend executing its commands, and the result at the end."""

    def __init__(
        self,
        flow: Flow,
        inputs: Mapping[str, Any] | None,
        backend: Backend,
        *,
        run_id: str | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        self.options = RunOptions(run_id or new_run_id(), max_concurrency)
        self.backend = backend
        self.result: ExecutionResult | None = None
        self._kernel = run_flow(flow, inputs, self.options)
        self._started = False
        self._kernel_failed = False

    @property
    def running(self) -> bool:
        """True until the kernel has returned its result."""
        return self.result is None

    def start(self) -> None:
        """Ask the kernel for its first batch and start it."""
        self._started = True
        self._dispatch(self._send(None))

    def feed(self, completions: Sequence[Completion]) -> None:
        """Send completions to the kernel and start the commands it answers with."""
        self._dispatch(self._send(completions))

    def finished_result(self) -> ExecutionResult:
        """The result of a run that has finished."""
        if self.result is None:
            raise RuntimeError("the run has not finished")
        return self.result

    def _send(self, completions: Sequence[Completion] | None) -> list[Command]:
        try:
            return self._kernel.send(completions)  # type: ignore[arg-type]
        except StopIteration as stop:
            self.result = stop.value
            return []
        except BaseException:
            self._kernel_failed = True
            raise

    def _dispatch(self, commands: list[Command]) -> None:
        backend = self.backend
        for command in commands:
            kind = type(command)
            if kind is Invoke:
                backend.start_invoke(command)  # type: ignore[arg-type]
            elif kind is StartTimer:
                backend.start_timer(command)  # type: ignore[arg-type]
            else:
                backend.cancel(command)  # type: ignore[arg-type]

    @contextmanager
    def guard(self) -> Iterator[None]:
        """On any exception while the run is live, stop it and attach the partial result."""
        try:
            yield
        except BaseException as exc:
            if self.result is None and not self._kernel_failed:
                self._abort(f"{type(exc).__name__} in the caller")
                exc.partial_result = self.result  # type: ignore[attr-defined]
                exc.add_note(f"flowkernel: run {self.options.run_id} stopped; its partial result is on .partial_result")
            raise

    def _abort(self, reason: str) -> None:
        """Finish the run synchronously: stop the kernel, cancel every live call, feed the answers."""
        never_started: list[Completion] = []
        if not self._started:  # prime the generator; its first commands are answered as cancelled
            self._started = True
            never_started = [Cancelled(c.call_id) for c in self._send(None) if isinstance(c, Invoke)]
        commands = self._send([*self.backend.take(), StopRun(reason)])
        while self.result is None:
            for command in commands:
                if isinstance(command, Cancel):
                    self.backend.cancel(command)
            answers = [*self.backend.take(), *never_started]
            never_started = []
            if not answers:
                raise ProtocolError(
                    f"backend {type(self.backend).__name__} did not answer the cancellation of {commands}"
                )
            commands = self._send(answers)
