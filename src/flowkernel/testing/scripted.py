"""Deterministic tools for parity testing: what each call does is fixed by a :class:`Script`.

A scripted tool's result is a pure function of its step, its attempt and its arguments; the script
decides which (step, attempt) calls fail (some by raising ``CancelledError`` themselves), return a value
their output model rejects, or sleep for a while (so that calls complete in adversarial orders on real
drivers). The script's :class:`CallGauge` counts the calls in flight as the tools see them, so the
parity harness can check a run's concurrency limits on every driver.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent import futures
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import anyio
from pydantic import BaseModel

from ..host.context import current_invoke
from ..model.flow import Flow
from ..model.tool import Tool

__all__ = ("CallGauge", "Scenario", "Script", "ScriptedFailure", "ScriptedOutput", "scripted_tool")

CallKey = tuple[str, int]
"""(step id, attempt)."""


class ScriptedFailure(Exception):
    """The failure a script asked for."""


class ScriptedOutput(BaseModel):
    """The output model of scripted tools that declare one."""

    step: str
    n: int


class CallGauge:
    """How many scripted calls are in flight at once, across a whole run (its sub-runs' and map elements'
    calls included), in all and per tool; thread-safe, as tools run in threads and on event loops.

    The peaks are what the run's ``max_concurrency`` (and a map step's own limit, for its element tool)
    must bound: a call is counted from its tool's first line to its last, which lies inside the time the
    kernel counts it in flight. ``calls`` is how many calls were counted, so a harness can tell a gauge
    that saw the run's calls from one that saw none (tools run in another process).

    Scripts are pickled to reach Dask workers; a gauge pickles as its name, and unpickles as the same
    gauge anywhere in the process that made it (in another process, as a fresh one nobody reads).
    """

    def __init__(self, name: str | None = None) -> None:
        self.name = name or uuid.uuid4().hex
        self._lock = threading.Lock()
        self._now: Counter[str] = Counter()
        self._in_flight = 0
        self.peak = 0
        """The most calls in flight at once since the last :meth:`reset`."""
        self.peaks: Counter[str] = Counter()
        """Per tool name, the most calls of that tool in flight at once."""
        self.calls = 0
        _GAUGES[self.name] = self

    def reset(self) -> None:
        """Forget what was counted: call before each run."""
        with self._lock:
            self._now.clear()
            self._in_flight = self.peak = self.calls = 0
            self.peaks.clear()

    @contextmanager
    def counting(self, tool: str) -> Iterator[None]:
        """Count one call of ``tool`` in flight for the block."""
        with self._lock:
            self.calls += 1
            self._in_flight += 1
            self._now[tool] += 1
            self.peak = max(self.peak, self._in_flight)
            self.peaks[tool] = max(self.peaks[tool], self._now[tool])
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                self._now[tool] -= 1

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return _gauge_named, (self.name,)

    def __repr__(self) -> str:
        return f"CallGauge(peak={self.peak}, calls={self.calls})"


_GAUGES: weakref.WeakValueDictionary[str, CallGauge] = weakref.WeakValueDictionary()
"""This process's gauges by name: an unpickled gauge is the one it was pickled from."""


def _gauge_named(name: str) -> CallGauge:
    gauge = _GAUGES.get(name)
    return gauge if gauge is not None else CallGauge(name)


@dataclass(frozen=True)
class Script:
    """What every call of a scenario does: fail, return a bad output, and how long it sleeps first.

    Also holds the :class:`CallGauge` its tools count their calls on (not part of the script's value).
    """

    failures: frozenset[CallKey] = frozenset()
    bad_outputs: frozenset[CallKey] = frozenset()
    hangs: frozenset[CallKey] = frozenset()
    """Calls that take ``hang_seconds``: far past any timeout the scenario sets."""
    delays: Mapping[CallKey, float] = field(default_factory=dict)
    hang_seconds: float = 3.0
    blocking: frozenset[CallKey] = frozenset()
    """Hanging calls of async tools that block their thread and event loop (``time.sleep``) for
    ``block_seconds`` instead of sleeping cooperatively: they return late, past their timeout, on
    every driver a timeout all the same."""
    block_seconds: float = 0.6
    cancels: frozenset[CallKey] = frozenset()
    """Failing calls (a subset of ``failures``) whose tool raises ``CancelledError`` itself instead of
    :class:`ScriptedFailure`, nobody having cancelled it: asyncio's in async tools, the one a cancelled
    future gives (``concurrent.futures``) in sync tools. Every driver must record it the same way."""
    gauge: CallGauge = field(default_factory=CallGauge, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.cancels <= self.failures:
            raise ValueError(f"cancels must be failures too: {sorted(self.cancels - self.failures)} are not")

    def outcome(self, step: str, attempt: int, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The value the call returns; raises :class:`ScriptedFailure` if the script says it fails (for
        the exception the tool really raises, see :meth:`raised_by_tool`)."""
        if (step, attempt) in self.failures:
            what = "cancel" if (step, attempt) in self.cancels else "failure"
            raise ScriptedFailure(f"scripted {what} of {step} attempt {attempt}")
        if (step, attempt) in self.bad_outputs:
            return {"step": step, "n": "not a number"}
        return {"step": step, "n": (_digest(step) + _sum_ints(arguments)) % 1_000_003}

    def raised_by_tool(self, failure: ScriptedFailure, step: str, attempt: int, *, is_async: bool) -> BaseException:
        """What the tool of ``step`` raises for the scripted ``failure`` of ``attempt``: the failure
        itself, or for a call in ``cancels`` a ``CancelledError`` with its message (asyncio's from an
        async tool, ``concurrent.futures``' from a sync one). Drivers, and the kernel state machine
        that plays one, turn what this returns into the call's error record."""
        if (step, attempt) not in self.cancels:
            return failure
        cancelled = asyncio.CancelledError if is_async else futures.CancelledError
        return cancelled(*failure.args)


def scripted_tool(
    step: str,
    script: Script,
    *,
    is_async: bool,
    output_model: bool = False,
    input_model: type[BaseModel] | None = None,
    counted: bool = True,
) -> Tool:
    """A tool for ``step`` that behaves as ``script`` says, sync or async.

    With ``counted`` its calls count on ``script.gauge`` (under the tool's name), except the ones the
    script makes hang: the kernel gives up on those at their timeout while their thread or task may run
    on, so they are not in flight as far as any limit goes. A fallback tool is not ``counted``: the run's
    limit does not count fallback calls, which replace a failed call.
    """
    name = f"scripted_{step}"

    def call(arguments: Mapping[str, Any]) -> tuple[float, dict[str, Any] | BaseException]:
        invoke = current_invoke()
        try:
            value: dict[str, Any] | BaseException = script.outcome(step, invoke.attempt, arguments)
        except ScriptedFailure as exc:
            value = script.raised_by_tool(exc, step, invoke.attempt, is_async=is_async)
        _scribble(arguments, step)  # a careless tool: the run must not let it change anything outside it
        if (step, invoke.attempt) in script.hangs:
            return (script.block_seconds if (step, invoke.attempt) in script.blocking else script.hang_seconds), value
        return script.delays.get((step, invoke.attempt), 0.0), value

    def gauged() -> AbstractContextManager[None]:
        if counted and (step, current_invoke().attempt) not in script.hangs:
            return script.gauge.counting(name)
        return nullcontext()

    def sync_fn(**arguments: Any) -> dict[str, Any]:
        with gauged():
            delay, value = call(arguments)
            if delay:
                time.sleep(delay)
        if isinstance(value, BaseException):
            raise value
        return value

    async def async_fn(**arguments: Any) -> dict[str, Any]:
        with gauged():
            delay, value = call(arguments)
            if (step, current_invoke().attempt) in script.blocking:
                time.sleep(delay)  # the event loop stops with it
            else:
                await anyio.sleep(delay)
        if isinstance(value, BaseException):
            raise value
        return value

    return Tool(
        name=name,
        fn=async_fn if is_async else sync_fn,
        is_async=is_async,
        input_model=input_model,
        output_model=ScriptedOutput if output_model else None,
    )


def _scribble(value: Any, step: str) -> None:
    """Mutate the dicts and lists in ``value`` (what a careless tool does to its arguments)."""
    if isinstance(value, dict):
        for item in list(value.values()):
            _scribble(item, step)
        value[f"scribbled by {step}"] = True
    elif isinstance(value, list):
        for item in value:
            _scribble(item, step)
        value.append(f"scribbled by {step}")


def _digest(text: str) -> int:
    """A stable small number for a string (``hash`` is salted per process)."""
    return sum((i + 1) * ord(c) for i, c in enumerate(text))


def _sum_ints(value: Any) -> int:
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, Mapping):
        return sum(_sum_ints(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_sum_ints(v) for v in value)
    return len(value) if isinstance(value, str) else 0


@dataclass(frozen=True)
class Scenario:
    """One generated test case: run ``flow`` with ``inputs``; tools behave as ``script`` says."""

    flow: Flow
    inputs: dict[str, Any]
    script: Script
    run_id: str = "parity-run"

    def __repr__(self) -> str:
        lines = [f"Scenario(flow={self.flow.name!r}, inputs={self.inputs}, script={self.script})"]
        for step in self.flow.steps:
            t = step.tool
            if t is None:
                lines.append(f"  {step.id} [{step.target_name}] args={step.arguments} map={step.map}")
                continue
            kind = ("async" if t.is_async else "sync") + (" in-model" if t.input_model else "")
            kind += " out-model" if t.output_model else ""
            lines.append(f"  {step.id} [{kind}] args={step.arguments} after={step.after}")
        return "\n".join(lines)
