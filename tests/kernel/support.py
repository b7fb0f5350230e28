"""Helpers for driving the kernel generator by hand: start a run, answer its commands with exact
completions, and build the commands it is expected to issue."""

from __future__ import annotations

from typing import Any

import pytest

from flowkernel import ErrorInfo, ErrorKind, ExecutionResult, Flow, RunOptions, Step, run_flow, tool
from flowkernel.kernel.run import KernelGenerator
from flowkernel.protocol import Command, Completion, Invoke, Raised, Returned

RUN_ID = "run-1"


@tool
def echo(x: Any = None, y: Any = None) -> Any:
    return x


@tool
def backup(x: Any = None, y: Any = None) -> Any:
    return "backup"


def step(step_id: str, x: Any = None, **more: Any) -> Step:
    return Step(id=step_id, tool=echo, arguments={"x": x}, **more)


def start(
    flow: Flow, inputs: dict[str, Any] | None = None, *, run_id: str = RUN_ID, **options: Any
) -> tuple[KernelGenerator, list[Command]]:
    """Start ``flow`` (``options`` as for :class:`RunOptions`) and return the kernel and its first commands."""
    kernel = run_flow(flow, inputs, RunOptions(run_id, **options))
    return kernel, kernel.send(None)  # type: ignore[arg-type]


def _call_id(call: str | Command) -> str:
    return call if isinstance(call, str) else call.call_id


def ok(call: str | Command, value: Any = "v", started: float = 0.0, finished: float = 1.0) -> Returned:
    """``call`` (a call id or the command itself) returned ``value``."""
    return Returned(_call_id(call), value, started, finished)


def error(error_type: str = "ValueError", message: str = "boom", kind: ErrorKind = ErrorKind.TOOL) -> ErrorInfo:
    return ErrorInfo(kind, error_type, message)


def fail(
    call: str | Command, error_type: str = "ValueError", message: str = "boom", kind: ErrorKind = ErrorKind.TOOL
) -> Raised:
    """``call`` (a call id or the command itself) raised ``error(error_type, message, kind)``."""
    return Raised(_call_id(call), error(error_type, message, kind), 0.0, 1.0)


def finish(kernel: KernelGenerator, batch: list[Completion]) -> ExecutionResult:
    """Send the last batch; the kernel must end with its result."""
    with pytest.raises(StopIteration) as stop:
        kernel.send(batch)
    return stop.value.value  # type: ignore[no-any-return]


def invoke(
    call_id: str, arguments: dict[str, Any] | None = None, fn: Any = echo, timeout: float | None = None
) -> Invoke:
    """The Invoke for ``call_id`` (``"s/a@2"``): its step id is the call id without the attempt (``"s/a"``),
    its attempt the number after the ``@`` (2); ``arguments`` default to ``{"x": None}``."""
    step_id, _, attempt = call_id.rpartition("@")
    arguments = {"x": None} if arguments is None else arguments
    return Invoke(call_id, step_id, fn, arguments, int(attempt), RUN_ID, timeout=timeout)


def statuses(result: ExecutionResult | None) -> dict[str, str]:
    assert result is not None
    return {s.id: s.status.value for s in result.steps}
