"""The oracle: a small reference interpreter that states flowkernel's semantics plainly.

It shares no execution logic with the kernel: it walks the flow in a topological order, one call at a
time, and builds the canonical result directly. Only leaf formatting (how an exception or a pydantic
error becomes an :class:`ErrorInfo`) is shared, since that is presentation, not semantics.
"""

from __future__ import annotations

from typing import Any

import jmespath
from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from ..model.flow import Flow
from ..model.refs import Input, Ref
from ..model.step import Step
from ..result import ErrorInfo, ErrorKind
from .scripted import Scenario, Script, ScriptedFailure

__all__ = ("oracle_result",)


def oracle_result(scenario: Scenario) -> dict[str, Any]:
    """The canonical result (as :meth:`ExecutionResult.canonical` gives it) the scenario must produce."""
    flow, script = scenario.flow, scenario.script
    inputs = dict(scenario.inputs)
    if flow.input_model is not None:
        inputs = dict(flow.input_model.model_validate(inputs))
    deps = {step.id: _dependencies(step, flow) for step in flow.steps}
    records: dict[str, dict[str, Any]] = {}
    outputs: dict[str, Any] = {}
    for step in _topological(flow, deps):
        blocker = next((d for d in deps[step.id] if records[d]["status"] != "succeeded"), None)
        if blocker is not None:
            word = "failed" if records[blocker]["status"] == "failed" else "was skipped"
            records[step.id] = _record(step.id, "skipped", reason=f"dependency {blocker!r} {word}")
            continue
        records[step.id], outputs[step.id] = _call(step, _resolve(step.arguments, outputs, inputs), script)
    result_outputs = {
        name: _select(ref.path, outputs[ref.step])
        for name, ref in _output_refs(flow, deps).items()
        if records[ref.step]["status"] == "succeeded"
    }
    failed = any(r["status"] == "failed" for r in records.values())
    return to_jsonable_python(  # type: ignore[no-any-return]
        {
            "run_id": scenario.run_id,
            "flow_name": flow.name,
            "flow_version": flow.version,
            "status": "failed" if failed else "succeeded",
            "reason": None,
            "outputs": result_outputs,
            "steps": [records[step.id] for step in flow.steps],
        },
        fallback=repr,
    )


def _call(step: Step, arguments: dict[str, Any], script: Script) -> tuple[dict[str, Any], Any]:
    tool = step.tool
    if tool.input_model is not None:
        try:
            arguments = dict(tool.input_model.model_validate(arguments))
        except ValidationError as exc:
            error = ErrorInfo.from_validation_error(ErrorKind.INPUT_VALIDATION, exc, step.id)
            return _record(step.id, "failed", input=arguments, error=error), None
    try:
        value: Any = script.outcome(step.id, 1, arguments)
    except ScriptedFailure as exc:
        error = ErrorInfo.from_exception(exc).for_step(step.id)
        return _record(step.id, "failed", input=arguments, error=error, attempt=("failed", error)), None
    if tool.output_model is not None:
        try:
            value = tool.output_model.model_validate(value)
        except ValidationError as exc:
            error = ErrorInfo.from_validation_error(ErrorKind.OUTPUT_VALIDATION, exc, step.id)
            return _record(step.id, "failed", input=arguments, error=error, attempt=("failed", error)), None
    return _record(step.id, "succeeded", input=arguments, output=value, attempt=("succeeded", None)), value


def _record(
    step_id: str,
    status: str,
    *,
    input: dict[str, Any] | None = None,
    output: Any = None,
    error: ErrorInfo | None = None,
    attempt: tuple[str, ErrorInfo | None] | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    attempts = [] if attempt is None else [{"attempt": 1, "status": attempt[0], "error": _error(attempt[1])}]
    return {
        "id": step_id,
        "status": status,
        "input": input,
        "output": output,
        "error": _error(error),
        "attempts": attempts,
        "reason": reason,
    }


def _error(error: ErrorInfo | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"kind": str(error.kind), "type": error.type, "message": error.message, "step": error.step}


def _dependencies(step: Step, flow: Flow) -> list[str]:
    """The steps ``step`` waits for, in declaration order."""
    named = set(step.after)
    _collect_refs(step.arguments, named)
    return [other.id for other in flow.steps if other.id in named]


def _collect_refs(value: Any, into: set[str]) -> None:
    if isinstance(value, Ref):
        into.add(value.step)
    elif isinstance(value, dict):
        for item in value.values():
            _collect_refs(item, into)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect_refs(item, into)


def _topological(flow: Flow, deps: dict[str, list[str]]) -> list[Step]:
    done: set[str] = set()
    order: list[Step] = []
    while len(order) < len(flow.steps):
        for step in flow.steps:
            if step.id not in done and all(d in done for d in deps[step.id]):
                done.add(step.id)
                order.append(step)
                break
    return order


def _resolve(value: Any, outputs: dict[str, Any], inputs: dict[str, Any]) -> Any:
    if isinstance(value, Ref):
        return _select(value.path, outputs[value.step])
    if isinstance(value, Input):
        return _select(value.path, inputs[value.name])
    if isinstance(value, dict):
        return {key: _resolve(item, outputs, inputs) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_resolve(item, outputs, inputs) for item in value)
    return value


def _select(path: str, value: Any) -> Any:
    if not path:
        return value
    return jmespath.search(path, value.model_dump() if isinstance(value, BaseModel) else value)


def _output_refs(flow: Flow, deps: dict[str, list[str]]) -> dict[str, Ref]:
    if flow.outputs is not None:
        return flow.outputs
    depended_on = {d for ds in deps.values() for d in ds}
    return {step.id: Ref(step.id) for step in flow.steps if step.id not in depended_on}
