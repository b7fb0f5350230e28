"""A scenario as a reader wants it: its inputs, each step with its arguments, dependencies and policies,
and what the script makes each of its tool's calls do.

The parity report prints this for the minimal scenario hypothesis shrank a divergence to, so a driver
author sees the flow that breaks their driver without reading hypothesis' reprs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from ..model.flow import Flow
from ..model.policies import Fallback
from ..model.refs import Context, Input, Item, Ref
from ..model.signature import DERIVED_MODULE
from ..model.step import Step
from ..model.tool import Tool
from .scripted import Scenario, Script

__all__ = ("describe_scenario",)

_INDENT = "  "
SCRIPTED_PREFIX = "scripted_"
"""Scripted tools are named ``scripted_<key>``, where the script's calls are keyed ``(key, attempt)``."""


def describe_scenario(scenario: Scenario) -> str:
    """``scenario`` in plain lines: inputs, outputs, context policy, then every step (sub-flows' nested)."""
    flow = scenario.flow
    lines = [f"flow {flow.name!r}: {_count(len(flow.steps), 'step')}, inputs {_json(scenario.inputs)}"]
    if flow.outputs:
        lines.append(f"outputs: {', '.join(f'{name} = {_value(ref)}' for name, ref in flow.outputs.items())}")
    if flow.context is not None:
        lines.append(f"context policy: collision={flow.context.collision}")
    lines.extend(_steps(flow, scenario.script, depth=0))
    return "\n".join(lines)


def _steps(flow: Flow, script: Script, depth: int) -> Iterator[str]:
    pad = _INDENT * (depth + 1)
    for step in flow.steps:
        yield f"{pad}{step.id}: {_target(step)}"
        for detail in _details(step, script):
            yield f"{pad}{_INDENT * 2}{detail}"
        if step.flow is not None:
            yield from _steps(step.flow, script, depth + 2)


def _target(step: Step) -> str:
    if step.tool is None:
        assert step.flow is not None  # a step runs a tool or a sub-flow
        return f"sub-flow {step.flow.name!r} ({_count(len(step.flow.steps), 'step')})"
    return _tool(step.tool)


def _tool(tool: Tool) -> str:
    kind = "async" if tool.is_async else "sync"
    declared = (("input", tool.input_model), ("output", tool.output_model))
    models = [f", {what} model {model.__name__}" for what, model in declared if model and _declared(model)]
    return f"{kind} tool {tool.name}{''.join(models)}"


def _declared(model: type[BaseModel]) -> bool:
    """A model the tool declares, not one derived from its function's annotations (which tells a reader
    of the flow nothing)."""
    return model.__module__ != DERIVED_MODULE


def _details(step: Step, script: Script) -> Iterator[str]:
    """One line per thing the step says: arguments, dependencies, policies, its calls' script."""
    if step.arguments:
        yield "arguments: " + ", ".join(f"{name}={_value(value)}" for name, value in step.arguments.items())
    if step.after:
        yield f"after: {', '.join(step.after)}"
    if step.map is not None:
        limit = f", at most {step.max_concurrency} at once" if step.max_concurrency is not None else ""
        yield f"map: over {_value(step.map)}{limit}"
    if step.when is not None:
        yield f"when: {step.when}"
    if step.join != "all":
        yield f"join: {step.join} (runs once any dependency settles)"
    if step.retry is not None:
        retry = step.retry
        on = f", only on {', '.join(retry.retry_on)}" if retry.retry_on else ""
        timeouts = "" if retry.retry_on_timeout else ", not on timeouts"
        yield (
            f"retry: up to {_count(retry.max_attempts, 'attempt')}{on}{timeouts}, first delay "
            f"{retry.initial_delay:g} s, jitter {retry.jitter:g}"
        )
    if step.timeout is not None:
        yield f"timeout: {step.timeout:g} s"
    if step.on_error != "fail":
        yield f"on error: {_error_policy(step.on_error, script)}"
    if step.tool is not None:
        calls = _calls(step.tool, script)
        if calls:
            yield f"calls: {calls}"


def _error_policy(policy: Any, script: Script) -> str:
    if not isinstance(policy, Fallback):
        return str(policy)
    if policy.tool is None:
        return f"fall back to the value {_json(policy.value)}"
    calls = _calls(policy.tool, script)
    return f"fall back to the {_tool(policy.tool)}" + (f" ({calls})" if calls else "")


def _calls(tool: Tool, script: Script) -> str:
    """What the script makes each attempt of ``tool`` do, or ``""`` for a tool the script does not drive."""
    if not tool.name.startswith(SCRIPTED_PREFIX):
        return ""
    key = tool.name.removeprefix(SCRIPTED_PREFIX)
    keyed = script.failures | script.bad_outputs | script.hangs | set(script.delays)
    attempts = sorted(attempt for name, attempt in keyed if name == key) or [1]
    return "; ".join(f"attempt {attempt} {_outcome(script, (key, attempt))}" for attempt in attempts)


def _outcome(script: Script, call: tuple[str, int]) -> str:
    if call in script.cancels:
        what = "raises CancelledError itself"
    elif call in script.failures:
        what = "fails (ScriptedFailure)"
    elif call in script.bad_outputs:
        what = "returns an output its model rejects"
    else:
        what = "succeeds"
    if call in script.blocking:
        return f"{what} after blocking its event loop for {script.block_seconds:g} s"
    if call in script.hangs:
        return f"{what} after hanging for {script.hang_seconds:g} s"
    delay = script.delays.get(call, 0.0)
    return f"{what} after {delay * 1000:g} ms" if delay else what


def _value(value: Any) -> str:
    """An argument as the flow states it: references as ``ref(step.path)``, literals as JSON."""
    if isinstance(value, Ref | Input | Context | Item):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return _json(value)


def _json(value: Any) -> str:
    return json.dumps(value, default=repr)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"
