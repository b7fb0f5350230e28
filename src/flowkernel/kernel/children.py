"""Runs inside a run: sub-flow steps, and map steps (a sub-flow built at run time, one step per element).

A child run is a :class:`RunState` of its own, driven by its parent: the parent prefixes the child's
call ids with the step id (``"enrich/fetch@1"``), passes its commands out, and routes completions back.
Events of a child run go to its root's list with the child's paths (see :mod:`.place`).
A map step becomes a flow of steps ``item0 .. itemN-1``, each calling the step's tool (or sub-flow) with
its element, and each carrying the step's retry, timeout and error policies.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..model.flow import Flow
from ..model.refs import Input, Item, Ref
from ..model.step import Step, holds_item
from ..protocol import Cancel, Command, Invoke, StartTimer
from ..result import ErrorInfo, ErrorKind, ExecutionResult, RunStatus, StepStatus

__all__ = ("child_call", "child_outcome", "map_flow", "prefixed")


def map_flow(parent: Flow, step: Step, items: list[Any], outer: dict[str, Any]) -> tuple[Flow, dict[str, Any]]:
    """The flow a map step runs over ``items``, and its inputs (the elements, and the resolved arguments)."""
    steps = [
        Step(
            id=f"item{k}",
            tool=step.tool,
            flow=step.flow,
            arguments={
                name: _with_item(value, k) if holds_item(value) else Input(f"arg_{name}")
                for name, value in step.arguments.items()
            },
            retry=step.retry,
            timeout=step.timeout,
            on_error=step.on_error,
        )
        for k in range(len(items))
    ]
    flow = Flow(
        name=f"{parent.name}.{step.id}",
        version=parent.version,
        steps=steps,
        outputs={f"item{k}": Ref(f"item{k}") for k in range(len(items))},
    )
    inputs = {f"item{k}": item for k, item in enumerate(items)}
    inputs.update({f"arg_{name}": value for name, value in outer.items()})
    return flow, inputs


def _with_item(value: Any, k: int) -> Any:
    if isinstance(value, Item):
        return Input(f"item{k}", value.path, default=value.default)
    if isinstance(value, dict):
        return {key: _with_item(item, k) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_with_item(item, k) for item in value)
    return value


def prefixed(prefix: str, commands: list[Command]) -> list[Command]:
    """A child's commands as its parent yields them: call ids under the step's id."""
    out: list[Command] = []
    for command in commands:
        kind = type(command)
        if kind is Invoke:
            out.append(command._replace(call_id=f"{prefix}/{command.call_id}", step_id=f"{prefix}/{command.step_id}"))  # type: ignore[union-attr, call-arg]
        elif kind is StartTimer or kind is Cancel:
            out.append(command._replace(call_id=f"{prefix}/{command.call_id}"))
    return out


def child_call(call_id: str, children: dict[str, Any]) -> tuple[str, str] | None:
    """``(step id, the child's own call id)`` if ``call_id`` belongs to a child run."""
    head, slash, rest = call_id.partition("/")
    if slash and "@" not in head and head in children:
        return head, rest
    return None


def child_outcome(step: Step, result: ExecutionResult, elements: int | None) -> tuple[Any, ErrorInfo | None]:
    """What a finished child run means for its step: the output, or the error that fails it."""
    if result.status == RunStatus.SUCCEEDED:
        if elements is None:
            return result.outputs, None
        return [result.outputs.get(f"item{k}") for k in range(elements)], None
    failed = next((s for s in result.steps if s.status == StepStatus.FAILED and not s.tolerated), None)
    if failed is None or failed.error is None:
        return None, ErrorInfo(ErrorKind.SUBFLOW, "SubflowFailed", f"the sub-run ended {result.status}", step.id)
    where = f"element {failed.id.removeprefix('item')}" if elements is not None else f"step {failed.id!r}"
    error = failed.error  # keeps the inner error's traceback and details
    return None, replace(error, message=f"{where} failed: {error.message}", step=step.id)
