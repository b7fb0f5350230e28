"""The oracle: a small reference interpreter that states flowkernel's semantics plainly.

It shares no execution logic with the kernel: it walks the flow in a topological order, one call at a
time, trying each step's attempts in a loop, and builds the canonical result directly. What it shares
is definitions, not mechanics: how an exception or a pydantic error becomes an :class:`ErrorInfo`, the
retry policy's delay formula and jitter hash, and how a condition names the steps it reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jmespath
from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from ..errors import FlowInputError
from ..kernel.children import map_flow
from ..kernel.inputs import prepare_inputs
from ..model.flow import Flow
from ..model.policies import Fallback
from ..model.refs import MISSING, Context, Input, Item, Ref, is_truthy, nothing_selected
from ..model.retry import jitter_unit
from ..model.step import Step, holds, holds_item
from ..model.tool import Tool
from ..model.validation import condition_steps
from ..result import ErrorInfo, ErrorKind
from .scripted import Scenario, Script, ScriptedFailure

__all__ = ("oracle_result",)


def oracle_result(scenario: Scenario) -> dict[str, Any]:
    """The canonical result (as :meth:`ExecutionResult.canonical` gives it) the scenario must produce."""
    inputs = dict(scenario.inputs)
    if scenario.flow.input_model is not None:
        inputs = dict(scenario.flow.input_model.model_validate(inputs))
    result = _Run(scenario.flow, inputs, scenario.run_id, scenario.script).result()
    return to_jsonable_python(result, fallback=repr)  # type: ignore[no-any-return]


@dataclass
class _Run:
    """One run (the top one, or a sub-flow's), one step at a time, in a topological order."""

    flow: Flow
    inputs: dict[str, Any]
    run_id: str
    script: Script
    outputs: dict[str, Any] = field(default_factory=dict)
    """The values of the steps that succeeded."""

    def result(self) -> dict[str, Any]:
        """The run's result as plain data; ``self.outputs`` then holds every succeeded step's value."""
        flow = self.flow
        self.deps = {step.id: _dependencies(step, flow) for step in flow.steps}
        self.records: dict[str, dict[str, Any]] = {}
        for step in _topological(flow, self.deps):
            settled = [self.records[d]["status"] for d in self.deps[step.id]]
            runs = all(s == "succeeded" for s in settled)
            if step.join == "any" and settled:
                runs = any(s == "succeeded" for s in settled)
            if not runs:
                blocker = next(d for d in self.deps[step.id] if self.records[d]["status"] != "succeeded")
                word = "failed" if self.records[blocker]["status"] == "failed" else "was skipped"
                self.records[step.id] = _record(step.id, "skipped", reason=f"dependency {blocker!r} {word}")
                continue
            self.records[step.id] = record = self._step(step)
            if record["status"] == "succeeded":
                self.outputs[step.id] = record.pop("value")
        failed = any(r["status"] == "failed" and not r["tolerated"] for r in self.records.values())
        self.final_outputs = {
            name: _output(ref, self.outputs[ref.step])
            for name, ref in _output_refs(flow, self.deps).items()
            if self.records[ref.step]["status"] == "succeeded"
        }
        return {
            "run_id": self.run_id,
            "flow_name": flow.name,
            "flow_version": flow.version,
            "status": "failed" if failed else "succeeded",
            "reason": None,
            "outputs": self.final_outputs,
            "steps": [self.records[step.id] for step in flow.steps],
        }

    def _step(self, step: Step) -> dict[str, Any]:
        """One step: its condition, its context, its arguments, its attempts with retries, its error policy."""
        if step.when is not None:
            document = {"inputs": self.inputs, "steps": {d: _plain(self.outputs.get(d)) for d in condition_steps(step)}}
            if not is_truthy(jmespath.search(step.when, document)):
                return _record(step.id, "skipped", reason=f"condition {step.when!r} is false")
        warnings: list[str] = []
        context = None
        if self.flow.context is not None and any(holds(value, Context) for value in step.arguments.values()):
            context, warnings, problem = self._context(step)
            if problem is not None:
                return _give_up(step, _record(step.id, "failed"), problem, self.script)
        if step.map is not None or step.flow is not None:
            return self._nested(step, context, warnings)
        try:
            arguments = _resolve(step.arguments, self.outputs, self.inputs, context)
        except _NothingSelected as exc:
            return _give_up(step, _record(step.id, "failed", warnings=warnings), exc.error(step.id), self.script)
        record = _record(step.id, "running", input=arguments, warnings=warnings)
        tool = step.tool
        assert tool is not None
        if tool.input_model is not None:
            try:
                arguments = record["input"] = dict(tool.input_model.model_validate(arguments))
            except ValidationError as exc:
                invalid = ErrorInfo.from_validation_error(ErrorKind.INPUT_VALIDATION, exc, step.id)
                return _give_up(step, record, invalid, self.script)
        policy = step.retry_policy
        attempt = 1
        while True:
            value, error = _call(step.id, tool, step.timeout_seconds, attempt, arguments, self.script)
            if error is None:
                return _succeeded(record, value, attempt)
            retry_in = None
            if policy is not None and attempt < policy.max_attempts:
                if error.kind == ErrorKind.TIMEOUT:
                    again = policy.retry_on_timeout
                else:
                    retryable = error.kind in (ErrorKind.TOOL, ErrorKind.OUTPUT_VALIDATION)
                    again = retryable and policy.retries_type(error.type)
                if again:
                    retry_in = policy.delay(attempt, jitter_unit(self.run_id, step.id, attempt))
            record["attempts"].append(_attempt(attempt, "failed", error, retry_in))
            if retry_in is None:
                return _give_up(step, record, error, self.script)
            attempt += 1

    def _nested(self, step: Step, context: Any, warnings: list[str]) -> dict[str, Any]:
        """A sub-flow step, or a map step: a run inside the run, over its inputs or the list's elements."""
        outer = {name: value for name, value in step.arguments.items() if not holds_item(value)}
        try:
            arguments = _resolve(outer, self.outputs, self.inputs, context)
        except _NothingSelected as exc:
            return _give_up(step, _record(step.id, "failed", warnings=warnings), exc.error(step.id), self.script)
        record = _record(step.id, "running", input=arguments, warnings=warnings)
        elements = None
        if step.map is not None:
            try:
                items = _resolve(step.map, self.outputs, self.inputs)
            except _NothingSelected as exc:
                return _give_up(step, record, exc.error(step.id), self.script)
            if not isinstance(items, list | tuple):
                message = f"map= gave {type(items).__name__}, not a list"
                error = ErrorInfo(ErrorKind.ARGUMENT, "TypeError", message, step.id)
                return _give_up(step, record, error, self.script)
            if not items:
                return _succeeded(record, [], None)
            elements = len(items)
            child, child_inputs = map_flow(self.flow, step, list(items), arguments)
        else:
            assert step.flow is not None
            child, child_inputs = step.flow, arguments
        try:
            child_inputs = prepare_inputs(child, child_inputs)
        except FlowInputError as exc:
            message = "; ".join(str(problem) for problem in exc.problems)
            error = ErrorInfo(ErrorKind.INPUT_VALIDATION, "FlowInputError", message, step.id)
            return _give_up(step, record, error, self.script)
        run = _Run(child, child_inputs, f"{self.run_id}/{step.id}", self.script)
        record["subflow"] = result = run.result()
        if result["status"] == "succeeded":
            outputs = run.final_outputs
            return _succeeded(
                record, outputs if elements is None else [outputs.get(f"item{k}") for k in range(elements)], 1
            )
        failed = next(s for s in result["steps"] if s["status"] == "failed" and not s["tolerated"])
        where = f"element {failed['id'].removeprefix('item')}" if elements is not None else f"step {failed['id']!r}"
        cause = failed["error"]
        error = ErrorInfo(cause["kind"], cause["type"], f"{where} failed: {cause['message']}", step.id)
        record["attempts"].append(_attempt(1, "failed", error, None))
        if elements is not None:  # the elements had the step's error policy already
            record.update(status="failed", error=_error(error))
            return record
        return _give_up(step, record, error, self.script)

    def _context(self, step: Step) -> tuple[dict[str, Any], list[str], ErrorInfo | None]:
        """The step's accumulated context: its ancestors' outputs, merged in declaration order."""
        policy = self.flow.context
        assert policy is not None
        succeeded = {name for name, record in self.records.items() if record["status"] == "succeeded"}
        ancestors: set[str] = set()  # reached through succeeded steps only
        todo = [name for name in self.deps[step.id] if name in succeeded]
        while todo:
            name = todo.pop()
            if name not in ancestors:
                ancestors.add(name)
                todo.extend(d for d in self.deps[name] if d in succeeded)
        context: dict[str, Any] = {}
        source: dict[str, str] = {}
        warnings: list[str] = []
        for other in self.flow.steps:
            if other.id not in ancestors or self.records[other.id]["status"] != "succeeded":
                continue
            value = _plain(self.outputs[other.id])
            for key, item in value.items() if isinstance(value, dict) else [(other.id, value)]:
                if key in context:
                    message = f"context key {key!r} from {other.id!r} replaces the one from {source[key]!r}"
                    if policy.collision == "error":
                        return context, warnings, ErrorInfo(ErrorKind.CONTEXT, "ContextCollision", message, step.id)
                    if policy.collision == "warn":
                        warnings.append(message)
                context[key] = item
                source[key] = other.id
        if policy.model is not None:
            try:
                policy.model.model_validate(context)
            except ValidationError as exc:
                return context, warnings, ErrorInfo.from_validation_error(ErrorKind.CONTEXT, exc, step.id)
        return context, warnings, None


def _succeeded(record: dict[str, Any], value: Any, attempt: int | None) -> dict[str, Any]:
    """The record of a step that succeeded with ``value`` (on ``attempt``; ``None``: nothing was called)."""
    if attempt is not None:
        record["attempts"].append(_attempt(attempt, "succeeded", None, None))
    record.update(status="succeeded", output=value, value=value)
    return record


def _attempt(attempt: int, status: str, error: ErrorInfo | None, retry_in: float | None) -> dict[str, Any]:
    return {"attempt": attempt, "status": status, "error": _error(error), "retry_in": retry_in}


def _call(
    step_id: str, tool: Tool, timeout: float | None, attempt: int, arguments: dict[str, Any], script: Script
) -> tuple[Any, ErrorInfo | None]:
    """What one call of a scripted tool comes to: its value, or the error it ends in."""
    key = tool.name.removeprefix("scripted_")  # the script knows calls by their tool's step
    if (key, attempt) in script.hangs and timeout is not None:
        message = f"attempt {attempt} timed out after {timeout:g} s"
        return None, ErrorInfo(ErrorKind.TIMEOUT, "TimeoutError", message, step_id)
    try:
        value: Any = script.outcome(key, attempt, arguments)
    except ScriptedFailure as exc:
        if (key, attempt) in script.cancels:  # the tool raised CancelledError itself: one record everywhere
            message = f"the tool raised CancelledError itself (it was not cancelled): {exc}"
            return None, ErrorInfo(ErrorKind.TOOL, "CancelledError", message, step_id)
        return None, ErrorInfo.from_exception(exc).for_step(step_id)
    if tool.output_model is not None:
        try:
            value = tool.output_model.model_validate(value)
        except ValidationError as exc:
            return None, ErrorInfo.from_validation_error(ErrorKind.OUTPUT_VALIDATION, exc, step_id)
    return value, None


def _give_up(step: Step, record: dict[str, Any], error: ErrorInfo, script: Script) -> dict[str, Any]:
    """The step failed for good: its error policy decides what that means."""
    record.update(status="failed", error=_error(error))
    policy = step.on_error
    if policy == "continue":
        record["tolerated"] = True
    elif isinstance(policy, Fallback):
        record["fallback"] = True
        if policy.tool is None:
            record.update(status="succeeded", output=policy.value, value=policy.value)
        else:
            name = policy.tool.name.removeprefix("scripted_")
            value, fallback_error = _call(name, policy.tool, None, 1, record["input"] or {}, script)
            if fallback_error is None:
                record.update(status="succeeded", output=value, value=value)
            else:
                record["error"] = _error(fallback_error.for_step(step.id))
    return record


def _record(
    step_id: str,
    status: str,
    *,
    input: dict[str, Any] | None = None,
    reason: str | None = None,
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "id": step_id,
        "status": status,
        "input": input,
        "output": None,
        "error": None,
        "attempts": [],
        "reason": reason,
        "fallback": False,
        "tolerated": False,
        "subflow": None,
        "warnings": warnings or [],
    }


def _error(error: ErrorInfo | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"kind": str(error.kind), "type": error.type, "message": error.message, "step": error.step}


def _dependencies(step: Step, flow: Flow) -> list[str]:
    """The steps ``step`` waits for (references, ``after``, its condition), in declaration order."""
    named = set(step.after) | condition_steps(step)
    _collect_refs(step.arguments, named)
    _collect_refs(step.map, named)
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


class _NothingSelected(Exception):
    """A source's path selected nothing (null) and the source gives no default."""

    def __init__(self, source: Ref | Input | Context | Item) -> None:
        self.source = source

    def error(self, step_id: str) -> ErrorInfo:
        return ErrorInfo(ErrorKind.ARGUMENT, "PathError", nothing_selected(self.source), step_id)


def _resolve(value: Any, outputs: dict[str, Any], inputs: dict[str, Any], context: Any = None) -> Any:
    if isinstance(value, Ref):
        return _source(value, outputs.get(value.step))
    if isinstance(value, Input):
        return _source(value, inputs[value.name])
    if isinstance(value, Context):
        return _source(value, context)
    if isinstance(value, dict):
        return {key: _resolve(item, outputs, inputs, context) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_resolve(item, outputs, inputs, context) for item in value)
    return value


def _plain(value: Any) -> Any:
    return value.model_dump() if isinstance(value, BaseModel) else value


def _select(path: str, value: Any) -> Any:
    if not path:
        return value
    return jmespath.search(path, _plain(value))


def _source(source: Ref | Input | Context, value: Any) -> Any:
    """An argument's source: a path that selects nothing is its default, or an argument error."""
    if not source.path:
        return value
    selected = _select(source.path, value)
    if selected is not None:
        return selected
    if source.default is MISSING:
        raise _NothingSelected(source)
    return source.default


def _output(ref: Ref, value: Any) -> Any:
    """A flow output: a path that selects nothing is its default, or null (never an error)."""
    selected = _select(ref.path, value)
    return ref.default if selected is None and ref.default is not MISSING else selected


def _output_refs(flow: Flow, deps: dict[str, list[str]]) -> dict[str, Ref]:
    if flow.outputs is not None:
        return flow.outputs
    depended_on = {d for ds in deps.values() for d in ds}
    return {step.id: Ref(step.id) for step in flow.steps if step.id not in depended_on}
