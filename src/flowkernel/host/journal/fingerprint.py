"""A hash of a flow's structure, so resuming with a changed flow is refused rather than misreplayed.

Structure is what decides which calls the kernel makes: step ids and order, what each step runs (tool
names, sub-flows), arguments and references, dependencies and every policy. A tool's implementation is
not structure: fixing a bug in a tool and resuming is the normal thing to do.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel

from ...model.flow import Flow
from ...model.step import Step
from ...model.tool import Tool

__all__ = ("flow_fingerprint", "flow_structure")


def flow_fingerprint(flow: Flow) -> str:
    """A stable hex digest of :func:`flow_structure`."""
    text = json.dumps(flow_structure(flow), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def flow_structure(flow: Flow) -> dict[str, Any]:
    """The flow's structure as plain data (what :func:`flow_fingerprint` hashes)."""
    return {
        "name": flow.name,
        "version": flow.version,
        "input_model": _model(flow.input_model),
        "outputs": _value(flow.outputs),
        "context": _value(flow.context),
        "steps": [_step(step) for step in flow.steps],
    }


def _step(step: Step) -> dict[str, Any]:
    return {
        "id": step.id,
        "tool": _tool(step.tool) if step.tool is not None else None,
        "flow": flow_structure(step.flow) if step.flow is not None else None,
        "map": _value(step.map),
        "max_concurrency": step.max_concurrency,
        "arguments": _value(step.arguments),
        "after": list(step.after),
        "retry": _value(step.retry_policy),
        "timeout": step.timeout_seconds,
        "on_error": _value(step.on_error),
        "when": step.when,
        "join": step.join,
    }


def _tool(tool: Tool) -> dict[str, Any]:
    return {
        "name": tool.name,
        "input_model": _model(tool.input_model),
        "output_model": _model(tool.output_model),
        "is_async": tool.is_async,
    }


def _model(model: type[BaseModel] | None) -> list[str] | None:
    """A model by its name and field names (a field added or removed changes what validates)."""
    if model is None:
        return None
    return [f"{model.__module__}.{model.__qualname__}", *model.model_fields]


def _value(value: Any) -> Any:
    """Literals as JSON; references, policies and anything else by their (deterministic) repr."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(key): _value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_value(item) for item in value]
    return repr(value)
