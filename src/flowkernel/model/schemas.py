"""JSON Schemas of a flow's inputs and outputs, derived from the models the flow already declares.

Why: a caller that describes a flow to others (an MCP tool's input and output schemas, a form, an API
document) needs them, and the flow holds everything they can be built from: its input model, or the tool
fields its inputs feed; the output models of the tools whose steps give its outputs. What cannot be known
is ``{}`` (any value), never a guess: a schema that is wrong makes a strict client refuse good results.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from .refs import Input
from .signature import ReturnValue

if TYPE_CHECKING:
    from .flow import Flow
    from .step import Step

__all__ = ("flow_input_schema", "flow_output_schema")

Mode = Literal["validation", "serialization"]
JsonSchema = dict[str, Any]


def flow_input_schema(flow: Flow) -> JsonSchema:
    """The schema of the inputs ``flow`` takes: its input model's, else an object of every input the
    steps reference (all required, nothing else allowed, as the run checks), each typed by the tool field
    or sub-flow input it feeds when it is a whole argument, ``{}`` otherwise."""
    if flow.input_model is not None:
        return _model_schema(flow.input_model, "validation")
    defs: JsonSchema = {}
    names = flow.plan.input_names
    properties = {name: _input_schema(flow, name, defs) for name in names}
    schema: JsonSchema = {"type": "object", "properties": properties, "required": list(names)}
    schema["additionalProperties"] = False
    return _with_defs(schema, defs)


def flow_output_schema(flow: Flow) -> JsonSchema:
    """The schema of a run's ``outputs``: an object with one property per output of ``flow``, typed by
    the output model of the step that gives it (a sub-flow step's: its flow's output schema; a map step's:
    an array of its element's). None is required: a run gives only the outputs whose step succeeded."""
    defs: JsonSchema = {}
    properties: JsonSchema = {}
    for name, index, _ in flow.plan.outputs:
        ref = flow.outputs.get(name) if flow.outputs is not None else None
        selects_part = ref is not None and bool(ref.path)  # a path selects something the models do not name
        properties[name] = {} if selects_part else _step_output_schema(flow.steps[index], defs)
    return _with_defs({"type": "object", "properties": properties}, defs)


def _input_schema(flow: Flow, name: str, defs: JsonSchema) -> JsonSchema:
    """What the steps fed whole by input ``name`` expect of it; ``{}`` when they disagree or none says."""
    found: list[JsonSchema] = []
    for step in flow.steps:
        if step.map == Input(name):
            found.append({"type": "array"})
        for argument, value in step.arguments.items():
            if isinstance(value, Input) and value.name == name and not value.path:
                found.append(_argument_schema(step, argument, defs))
    known = [schema for schema in found if schema]
    if not known or any(schema != known[0] for schema in known):
        return {}
    return known[0]


def _argument_schema(step: Step, argument: str, defs: JsonSchema) -> JsonSchema:
    """The schema of one of a step's arguments: the field of its tool's input model, or the input of its
    sub-flow; ``{}`` without either."""
    if step.flow is not None:
        whole = step.flow.input_schema()
    elif step.tool is not None and step.tool.input_model is not None:
        whole = _model_schema(step.tool.input_model, "validation")
    else:
        return {}
    part = whole.get("properties", {}).get(argument)
    if not isinstance(part, dict):
        return {}
    part = {key: value for key, value in part.items() if key not in ("title", "default")}
    return _hoisted(part, whole.get("$defs", {}), defs)


def _step_output_schema(step: Step, defs: JsonSchema) -> JsonSchema:
    if step.on_error != "fail":  # a fallback value, or a tolerated failure, is not what the model says
        return {}
    if step.flow is not None:
        whole = step.flow.output_schema()
    elif step.tool is not None and step.tool.output_model is not None:
        whole = _model_schema(step.tool.output_model, "serialization")
    else:
        whole = {}
    element = _hoisted({k: v for k, v in whole.items() if k != "$defs"}, whole.get("$defs", {}), defs)
    return element if step.map is None else {"type": "array", "items": element}


def _model_schema(model: type[BaseModel], mode: Mode) -> JsonSchema:
    """A model's schema (a derived ``-> int`` model's: its annotation's); ``{}`` when pydantic cannot
    describe it (a field of an arbitrary class)."""
    try:
        if issubclass(model, ReturnValue):
            return dict(model.adapter.json_schema(mode=mode))
        return model.model_json_schema(mode=mode)
    except Exception:  # PydanticInvalidForJsonSchema, or a user model's own schema hook failing
        return {}


def _with_defs(schema: JsonSchema, defs: JsonSchema) -> JsonSchema:
    return {**schema, "$defs": defs} if defs else schema


def _hoisted(schema: JsonSchema, local: Mapping[str, Any], defs: JsonSchema) -> JsonSchema:
    """``schema`` (whose ``$ref``\\ s point into ``local``) with ``local``'s definitions moved into
    ``defs``, the document's; a name already there for another definition gets a suffix."""
    if not local:
        return schema
    renames: dict[str, str] = {}
    for name, definition in local.items():
        target, n = name, 2
        while target in defs and defs[target] != definition:
            target, n = f"{name}_{n}", n + 1
        renames[name] = target
    for name, definition in local.items():
        defs[renames[name]] = _renamed(copy.deepcopy(definition), renames)
    renamed: JsonSchema = _renamed(copy.deepcopy(schema), renames)
    return renamed


def _renamed(value: Any, renames: Mapping[str, str]) -> Any:
    """``value`` with every ``{"$ref": "#/$defs/<name>"}`` pointing at the renamed definition."""
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            value["$ref"] = "#/$defs/" + renames.get(ref.removeprefix("#/$defs/"), ref.removeprefix("#/$defs/"))
        for item in value.values():
            _renamed(item, renames)
    elif isinstance(value, list):
        for item in value:
            _renamed(item, renames)
    return value
