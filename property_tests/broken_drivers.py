"""Deliberately broken drivers: the parity suite must catch each of them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Unpack

from flowkernel import (
    Completion,
    ErrorInfo,
    ErrorKind,
    ExecutionResult,
    Flow,
    Invoke,
    Raised,
    Returned,
    StartTimer,
    TimerFired,
)
from flowkernel.host import Backend, KernelSession, RunSettings, call_async, call_sync
from flowkernel_sync import SyncDriver


class _InlineBackend(Backend):
    """Runs every call inline, in order; ``distort`` is where each broken driver lies."""

    def __init__(self) -> None:
        super().__init__()
        self._arrived: list[Completion] = []

    def distort(self, completion: Completion) -> list[Completion]:
        return [completion]

    def start_invoke(self, command: Invoke) -> None:
        if command.tool.is_async:
            completion = asyncio.run(call_async(command, time.monotonic, "asyncio", (asyncio.CancelledError,)))
        else:
            completion = call_sync(command, time.monotonic)
        self._arrived.extend(self.distort(completion))

    def start_timer(self, command: StartTimer) -> None:
        """Time passes instantly here: every timer fires at once (tools ran inline before it started)."""
        self._arrived.append(TimerFired(command.call_id))

    def post(self, completion: Completion) -> None:
        self._arrived.append(completion)

    def take(self) -> list[Completion]:
        batch, self._arrived = self._arrived, []
        return batch


class _BrokenDriver:
    name = "broken"
    backend: type[_InlineBackend] = _InlineBackend

    def run_blocking(
        self,
        flow: Flow,
        inputs: Mapping[str, Any] | None = None,
        **settings: Unpack[RunSettings],
    ) -> ExecutionResult:
        backend = self.backend()
        session = KernelSession(flow, inputs, backend, **settings)
        session.start()
        while session.running:
            session.feed(backend.take())
        return session.finished_result()


class _ReportsFailuresAsReturned(_InlineBackend):
    def distort(self, completion: Completion) -> list[Completion]:
        if isinstance(completion, Raised):
            return [Returned(completion.call_id, None, completion.started, completion.finished)]
        return [completion]


class _CompletesTwice(_InlineBackend):
    def distort(self, completion: Completion) -> list[Completion]:
        return [completion, completion]


class _LosesOutputs(_InlineBackend):
    """Returns ``None`` in place of every other value: a driver that mixes up results."""

    count = 0

    def distort(self, completion: Completion) -> list[Completion]:
        self.count += 1
        if isinstance(completion, Returned) and self.count % 2 == 0:
            return [completion._replace(value={"step": "?", "n": 0})]
        return [completion]


class _RecordsOwnCancelsRaw(_InlineBackend):
    """Records a tool's own ``CancelledError`` as the sync driver did before issue 10.8: by its class, with
    its message lost."""

    def distort(self, completion: Completion) -> list[Completion]:
        if isinstance(completion, Raised) and completion.error.type == "CancelledError":
            error = ErrorInfo(ErrorKind.TOOL, "concurrent.futures._base.CancelledError", "", completion.error.step)
            return [completion._replace(error=error)]
        return [completion]


class IgnoresTheLimitsDriver:
    """The sync driver, with the run's ``max_concurrency`` and the steps' own limits dropped: the same
    results as an honest run, more calls in flight than the caller allowed (as sub-runs had before issue
    10.16)."""

    name = "ignores-the-limits"

    def run_blocking(
        self,
        flow: Flow,
        inputs: Mapping[str, Any] | None = None,
        **settings: Unpack[RunSettings],
    ) -> ExecutionResult:
        settings.pop("max_concurrency", None)
        steps = tuple(step.model_copy(update={"max_concurrency": None}) for step in flow.steps)
        return SyncDriver().run(flow.model_copy(update={"steps": steps}), inputs, **settings)


class RecordsOwnCancelsRawDriver(_BrokenDriver):
    backend = _RecordsOwnCancelsRaw


class FailuresAsReturnedDriver(_BrokenDriver):
    backend = _ReportsFailuresAsReturned


class CompletesTwiceDriver(_BrokenDriver):
    backend = _CompletesTwice


class MixesUpResultsDriver(_BrokenDriver):
    backend = _LosesOutputs


class HonestInlineDriver(_BrokenDriver):
    """The same inline driver without a lie: the control that must pass."""
