"""Static checks of a flow: every problem is collected, so one error lists them all."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, KeysView, Mapping, Sequence
from graphlib import CycleError, TopologicalSorter
from typing import Any

from pydantic import BaseModel, PydanticUserError, ValidationError

from ..errors import Problem
from .json_schema import SchemaArguments
from .refs import Context, Input, Item, PathError, Ref, compile_path, condition_names
from .signature import SignatureArguments
from .step import Step, holds, holds_item, walk_sources
from .tool import IDEMPOTENCY_KEY, Tool

__all__ = ("condition_steps", "dependencies_of", "find_problems", "model_argument_problems")


def dependencies_of(step: Step) -> tuple[str, ...]:
    """The ids a step depends on, through references, ``after`` and its condition, in first-mention order."""
    found = dict.fromkeys(source.step for _, source in step.sources() if isinstance(source, Ref))
    found.update(dict.fromkeys(step.after))
    found.update(dict.fromkeys(sorted(condition_steps(step))))
    return tuple(found)


def condition_steps(step: Step) -> set[str]:
    """The steps a step's ``when`` condition reads (none if it has no condition, or one that does not parse)."""
    if step.when is None:
        return set()
    try:
        expression = compile_path(step.when)
    except PathError:
        return set()
    return condition_names(expression)[0]["steps"] if expression is not None else set()


def find_problems(
    steps: Sequence[Step],
    input_model: type[BaseModel] | None,
    outputs: Mapping[str, Ref] | None,
    has_context: bool = False,
) -> list[Problem]:
    """Everything wrong with a flow's structure, in the order a reader meets it."""
    problems: list[Problem] = []
    if not steps:
        problems.append(Problem("steps", "a flow needs at least one step"))
    first_index: dict[str, int] = {}
    for i, step in enumerate(steps):
        if step.id in first_index:
            problems.append(
                Problem(
                    f"steps[{i}].id", f"duplicate step id {step.id!r} (first used by steps[{first_index[step.id]}])"
                )
            )
        else:
            first_index[step.id] = i
    known = first_index.keys()
    parameter_cache: dict[int, list[inspect.Parameter] | None] = {}  # by id(tool.fn): tools repeat
    inputs = None if input_model is None else input_model.model_fields.keys()
    for i, step in enumerate(steps):
        where = f"steps[{i}] ({step.id})"
        for location, source in step.sources():
            problems.extend(_check_source(f"{where}.{location}", source, step.id, known, inputs))
        for position, dep in enumerate(step.after):
            if dep == step.id:
                problems.append(Problem(f"{where}.after[{position}]", "a step cannot wait for itself"))
            elif dep not in first_index:
                problems.append(Problem(f"{where}.after[{position}]", "waits for " + _unknown("step", dep, known)))
        problems.extend(_check_arguments(where, step, parameter_cache))
        problems.extend(_check_items(where, step))
        if not has_context:
            problems.extend(
                Problem(f"{where}.arguments.{name}", "Context() needs a flow with a context policy (Flow(context=...))")
                for name, value in step.arguments.items()
                if holds(value, Context)
            )
        if step.when is not None:
            problems.extend(_check_condition(f"{where}.when", step, known, inputs))
    for name, source in (outputs or {}).items():
        problems.extend(_check_source(f"outputs.{name}", source, None, known, inputs))
    problems.extend(_find_cycles(steps, first_index))
    return problems


def _check_source(
    location: str, source: Ref | Input, own_id: str | None, known: KeysView[str], inputs: KeysView[str] | None
) -> Iterable[Problem]:
    if isinstance(source, Ref):
        if source.step == own_id:
            yield Problem(location, "a step cannot reference its own output")
        elif source.step not in known:
            yield Problem(location, "references " + _unknown("step", source.step, known))
    elif inputs is not None and source.name not in inputs:
        yield Problem(location, "references " + _unknown("flow input", source.name, inputs))
    try:
        compile_path(source.path)
    except PathError as exc:
        yield Problem(location, str(exc))


def _check_condition(
    location: str, step: Step, known: KeysView[str], inputs: KeysView[str] | None
) -> Iterable[Problem]:
    assert step.when is not None
    try:
        expression = compile_path(step.when)
    except PathError as exc:
        yield Problem(location, str(exc))
        return
    if expression is None:
        yield Problem(location, "a condition cannot be empty")
        return
    names, stray = condition_names(expression)
    if stray:
        hint = " (JMESPath reads '!steps.a.b' as '(!steps).a.b': write '!(steps.a.b)')" if "!" in step.when else ""
        yield Problem(
            location,
            f"a condition reads steps.<id> or inputs.<name>, not {', '.join(map(repr, stray))}{hint}",
        )
    for name in sorted(names["steps"]):
        if name == step.id:
            yield Problem(location, "a step's condition cannot read its own output")
        elif name not in known:
            yield Problem(location, "references " + _unknown("step", name, known))
    for name in sorted(names["inputs"]):
        if inputs is not None and name not in inputs:
            yield Problem(location, "references " + _unknown("flow input", name, inputs))


def _unknown(kind: str, name: str, known: Iterable[str], suffix: str = "") -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}{suffix}{hint}"


def _check_arguments(
    where: str, step: Step, parameter_cache: dict[int, list[inspect.Parameter] | None]
) -> Iterable[Problem]:
    """Arguments that cannot fit the tool: unknown or missing names, literals of the wrong type."""
    tool = step.tool
    if tool is None:
        yield from _check_subflow(where, step)
        return
    model = tool.input_model
    if model is None or issubclass(model, SignatureArguments):  # names checked against the signature
        key = id(tool.fn)
        if key not in parameter_cache:
            parameter_cache[key] = _parameters(tool)
        parameters = parameter_cache[key]
        if parameters is not None:
            yield from _check_signature(where, tool, parameters, step.arguments)
        if model is None:
            return
    else:
        yield from _check_names(where, tool.name, model, step.arguments)
    yield from model_argument_problems(where, tool.name, model, step.arguments)


def _check_names(where: str, tool: str, model: type[BaseModel], arguments: Mapping[str, Any]) -> Iterable[Problem]:
    """Argument names the input model does not know, and the ones it requires that are missing."""
    if issubclass(model, SchemaArguments):
        known, required, open_names = model.names()
    else:
        fields = model.model_fields
        known, open_names = list(fields), model.model_config.get("extra") == "allow"
        required = [name for name, field in fields.items() if field.is_required()]
    if not open_names:
        for name in arguments:
            if name not in known:
                yield Problem(f"{where}.arguments.{name}", _unknown("argument", name, known, f" of tool {tool!r}"))
    for name in required:
        if name not in arguments:
            yield Problem(f"{where}.arguments", f"missing required argument {name!r} of tool {tool!r}")


def model_argument_problems(
    where: str, tool: str, model: type[BaseModel], arguments: Mapping[str, Any], names: bool = False
) -> Iterable[Problem]:
    """Problems of a step's literal arguments against a tool's input model (with ``names``, also
    unknown and missing names): what a flow's build checks, and what an MCP session checks on opening."""
    if names:
        yield from _check_names(where, tool, model, arguments)
    literals = {name: value for name, value in arguments.items() if _is_literal(value)}
    try:
        model.model_validate(literals)
    except PydanticUserError as exc:  # e.g. a model whose annotations cannot be resolved
        yield Problem(f"{where}.tool", f"the input model of tool {tool!r} is unusable: {exc.message}")
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            if error["type"] in ("missing", "extra_forbidden") or not error["loc"] or error["loc"][0] not in literals:
                continue
            path = ".".join(str(part) for part in error["loc"])
            yield Problem(f"{where}.arguments.{path}", f"{error['msg']} (tool {tool!r})")


def _parameters(tool: Tool) -> list[inspect.Parameter] | None:
    try:
        return list(inspect.signature(tool.fn).parameters.values())
    except (TypeError, ValueError):  # builtins and some callables have no introspectable signature
        return None


def _check_signature(
    where: str, tool: Tool, parameters: list[inspect.Parameter], arguments: Mapping[str, Any]
) -> Iterable[Problem]:
    """Without an input model, check argument names against the function's signature, each on its own."""
    by_keyword = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters)
    if tool.idempotency_key:
        by_keyword.discard(IDEMPOTENCY_KEY)
        if IDEMPOTENCY_KEY in arguments:
            yield Problem(
                f"{where}.arguments.{IDEMPOTENCY_KEY}",
                f"tool {tool.name!r} receives its {IDEMPOTENCY_KEY!r} from the driver; a step cannot set it",
            )
            arguments = {name: value for name, value in arguments.items() if name != IDEMPOTENCY_KEY}
    for p in parameters:
        if p.kind is p.POSITIONAL_ONLY and p.default is p.empty:
            yield Problem(
                f"{where}.arguments",
                f"tool {tool.name!r} has a positional-only parameter {p.name!r}; tools are called with keywords",
            )
        elif p.name in by_keyword and p.default is p.empty and p.name not in arguments:
            yield Problem(f"{where}.arguments", f"missing required argument {p.name!r} of tool {tool.name!r}")
    if not takes_any:
        for name in arguments:
            if name not in by_keyword:
                yield Problem(
                    f"{where}.arguments.{name}", _unknown("argument", name, by_keyword, f" of tool {tool.name!r}")
                )


def _is_literal(value: Any) -> bool:
    return next(walk_sources(value, ""), None) is None and not holds_item(value) and not holds(value, Context)


MAX_FLOW_DEPTH = 16
"""How deep sub-flows may nest (flows are immutable, so a flow cannot contain itself: no cycle can be
built; this bounds the rest)."""


def _check_subflow(where: str, step: Step) -> Iterable[Problem]:
    """A sub-flow step's arguments are the sub-flow's inputs; retries and timeouts belong to its steps."""
    child = step.flow
    assert child is not None
    if child.depth >= MAX_FLOW_DEPTH:
        yield Problem(f"{where}.flow", f"sub-flows nest {child.depth + 1} deep; at most {MAX_FLOW_DEPTH} are allowed")
    if child.input_model is not None:
        known = list(child.input_model.model_fields)
        required = [name for name, field in child.input_model.model_fields.items() if field.is_required()]
    else:
        known = required = list(child.plan.input_names)
    for name in step.arguments:
        if name not in known:
            yield Problem(f"{where}.arguments.{name}", _unknown("input", name, known, f" of sub-flow {child.name!r}"))
    for name in required:
        if name not in step.arguments:
            yield Problem(f"{where}.arguments", f"missing input {name!r} of sub-flow {child.name!r}")
    for field in ("retry", "timeout"):
        if getattr(step, field) is not None:
            yield Problem(f"{where}.{field}", f"a sub-flow step has no {field} of its own; give its steps one")


def _check_items(where: str, step: Step) -> Iterable[Problem]:
    """``Item()`` belongs to map steps, and an argument holding it cannot also hold references."""
    for name, value in step.arguments.items():
        if not holds_item(value):
            continue
        for item in _items_in(value):
            try:
                compile_path(item.path)
            except PathError as exc:
                yield Problem(f"{where}.arguments.{name}", str(exc))
        if step.map is None:
            yield Problem(f"{where}.arguments.{name}", "Item() is only meaningful in a step with map=")
        elif next(walk_sources(value, ""), None) is not None:
            yield Problem(
                f"{where}.arguments.{name}",
                "an argument holding Item() cannot also hold Ref() or Input(); pass those as another argument",
            )


def _find_cycles(steps: Sequence[Step], first_index: Mapping[str, int]) -> Iterable[Problem]:
    graph = {step.id: [d for d in dependencies_of(step) if d in first_index and d != step.id] for step in steps}
    while True:
        try:
            TopologicalSorter(graph).prepare()
            return
        except CycleError as exc:
            cycle: list[str] = exc.args[1]
            yield Problem("steps", "dependency cycle: " + " -> ".join(cycle))
            for node in cycle:  # drop this cycle to find any other
                graph.pop(node, None)
            graph = {node: [d for d in deps if d in graph] for node, deps in graph.items()}


def _items_in(value: Any) -> Iterable[Item]:
    if isinstance(value, Item):
        yield value
    elif isinstance(value, dict):
        for part in value.values():
            yield from _items_in(part)
    elif isinstance(value, list | tuple):
        for part in value:
            yield from _items_in(part)
