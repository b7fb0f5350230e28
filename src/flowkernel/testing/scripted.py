"""Deterministic tools for parity testing: what each call does is fixed by a :class:`Script`.

A scripted tool's result is a pure function of its step, its attempt and its arguments; the script
decides which (step, attempt) calls fail, return a value their output model rejects, or sleep for a
while (so that calls complete in adversarial orders on real drivers).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from pydantic import BaseModel

from ..host.context import current_invoke
from ..model.flow import Flow
from ..model.tool import Tool

__all__ = ("Scenario", "Script", "ScriptedFailure", "ScriptedOutput", "scripted_tool")

CallKey = tuple[str, int]
"""(step id, attempt)."""


class ScriptedFailure(Exception):
    """The failure a script asked for."""


class ScriptedOutput(BaseModel):
    """The output model of scripted tools that declare one."""

    step: str
    n: int


@dataclass(frozen=True)
class Script:
    """What every call of a scenario does: fail, return a bad output, and how long it sleeps first."""

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

    def outcome(self, step: str, attempt: int, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The value the call returns; raises :class:`ScriptedFailure` if the script says it fails."""
        if (step, attempt) in self.failures:
            raise ScriptedFailure(f"scripted failure of {step} attempt {attempt}")
        if (step, attempt) in self.bad_outputs:
            return {"step": step, "n": "not a number"}
        return {"step": step, "n": (_digest(step) + _sum_ints(arguments)) % 1_000_003}


def scripted_tool(
    step: str, script: Script, *, is_async: bool, output_model: bool = False, input_model: type[BaseModel] | None = None
) -> Tool:
    """A tool for ``step`` that behaves as ``script`` says, sync or async."""

    def call(arguments: Mapping[str, Any]) -> tuple[float, dict[str, Any] | BaseException]:
        invoke = current_invoke()
        try:
            value: dict[str, Any] | BaseException = script.outcome(step, invoke.attempt, arguments)
        except ScriptedFailure as exc:
            value = exc
        _scribble(arguments, step)  # a careless tool: the run must not let it change anything outside it
        if (step, invoke.attempt) in script.hangs:
            return (script.block_seconds if (step, invoke.attempt) in script.blocking else script.hang_seconds), value
        return script.delays.get((step, invoke.attempt), 0.0), value

    def sync_fn(**arguments: Any) -> dict[str, Any]:
        delay, value = call(arguments)
        if delay:
            time.sleep(delay)
        if isinstance(value, BaseException):
            raise value
        return value

    async def async_fn(**arguments: Any) -> dict[str, Any]:
        delay, value = call(arguments)
        if (step, current_invoke().attempt) in script.blocking:
            time.sleep(delay)  # the event loop stops with it
        else:
            await anyio.sleep(delay)
        if isinstance(value, BaseException):
            raise value
        return value

    return Tool(
        name=f"scripted_{step}",
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
