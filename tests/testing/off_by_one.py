"""A deliberately broken driver, self-contained so a test can install it as a package of its own: it runs
every call inline through the shared host layer, and reports each value a tool returns with ``n`` one
too high. The parity check must catch it on any flow with a call that succeeds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Unpack

from flowkernel import Completion, ExecutionResult, Flow, Invoke, Returned, StartTimer, TimerFired
from flowkernel.host import Backend, KernelSession, RunSettings, call_async, call_sync

__all__ = ("OffByOneDriver",)


class _OffByOneBackend(Backend):
    def __init__(self) -> None:
        super().__init__()
        self._arrived: list[Completion] = []

    def start_invoke(self, command: Invoke) -> None:
        if command.tool.is_async:
            completion = asyncio.run(call_async(command, time.monotonic, "asyncio", (asyncio.CancelledError,)))
        else:
            completion = call_sync(command, time.monotonic)
        if isinstance(completion, Returned) and isinstance(completion.value, dict) and "n" in completion.value:
            completion = completion._replace(value={**completion.value, "n": completion.value["n"] + 1})  # the lie
        self._arrived.append(completion)

    def start_timer(self, command: StartTimer) -> None:
        self._arrived.append(TimerFired(command.call_id))  # time passes instantly: every call ran inline

    def post(self, completion: Completion) -> None:
        self._arrived.append(completion)

    def take(self) -> list[Completion]:
        batch, self._arrived = self._arrived, []
        return batch


class OffByOneDriver:
    name = "off-by-one"

    def run_blocking(
        self, flow: Flow, inputs: Mapping[str, Any] | None = None, **settings: Unpack[RunSettings]
    ) -> ExecutionResult:
        backend = _OffByOneBackend()
        session = KernelSession(flow, inputs, backend, **settings)
        session.start()
        while session.running:
            session.feed(backend.take())
        return session.finished_result()
