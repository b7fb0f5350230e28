"""A flow compiled for execution: dependency indexes and argument resolvers, built once per flow."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jmespath.parser import ParsedResult

from .cache import CachePolicy
from .policies import ErrorPolicy
from .refs import MISSING, Context, Input, PathError, Ref, compile_path, nothing_selected, select
from .retry import RetryPolicy
from .scan import CONTEXT, ITEM, SOURCE, ScannedCondition, StepScan, scan_steps, walk
from .step import Step
from .tool import Tool

__all__ = ("Condition", "FlowPlan", "Getter", "Resolver", "compile_plan")

Getter = Callable[[Sequence[Any], Mapping[str, Any]], Any]
"""Reads one value from (outputs by step index, flow inputs)."""
Resolver = Callable[[Sequence[Any], Mapping[str, Any]], dict[str, Any]]
"""Builds a step's arguments from (outputs by step index, flow inputs)."""


@dataclass(frozen=True, slots=True)
class Condition:
    """A step's compiled ``when``: the expression, its text, and the steps it reads (id, index)."""

    expression: ParsedResult
    text: str
    reads: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class FlowPlan:
    """Everything the kernel needs about a flow's structure, indexed by declaration position."""

    step_ids: tuple[str, ...]
    steps: tuple[Step, ...]
    """The step at each position. A map step's elements all run one step (see ``Flow.map_element``),
    under the ids ``step_ids`` gives them: the kernel names steps by ``step_ids``, never by ``Step.id``."""
    deps: tuple[tuple[int, ...], ...]
    dependents: tuple[tuple[int, ...], ...]
    resolvers: tuple[Resolver, ...]
    input_names: tuple[str, ...]
    outputs: tuple[tuple[str, int, Getter | None], ...]
    """The flow's outputs: (name, the step giving it, what reads it from the step's output); ``None``
    reads the whole output (a map's elements: one getter fewer to build per element)."""
    retry: tuple[RetryPolicy | None, ...]
    timeouts: tuple[float | None, ...]
    caches: tuple[CachePolicy | None, ...]
    """The cache policy in force at each step (the kernel passes it on in its calls)."""
    on_error: tuple[ErrorPolicy, ...]
    conditions: tuple[Condition | None, ...]
    join_any: tuple[bool, ...]
    map_sources: tuple[Getter | None, ...]
    """For a map step, the getter of the list it maps over."""
    plain: tuple[bool, ...]
    """Steps with nothing to do before their call but resolving arguments (no condition, context,
    input model, map or sub-flow): the kernel's fast path."""
    reads_context: tuple[bool, ...]
    """Steps with a ``Context()`` argument; their getters read the merged context from the outputs'
    extra slot at index ``len(step_ids)``, which the kernel fills just before resolving them."""


def compile_plan(
    steps: Sequence[Step], outputs: Mapping[str, Ref] | None, scans: Sequence[StepScan] | None = None
) -> FlowPlan:
    """Compile a validated flow's steps; assumes :func:`find_problems` found nothing. ``scans``: the
    steps' :func:`~flowkernel.model.scan.scan_step`, when the caller has them already.

    One pass over the steps fills every per-step column of the plan. It reads the steps' and tools'
    fields from their ``__dict__`` (:func:`~flowkernel.model.scan.field_values`): a pydantic model's
    attribute read costs several times a dict read, and a build makes a dozen per step. No flow-wide
    pass of its own: the columns are filled in that one loop (``tests/model/test_plan.py``)."""
    scans = scan_steps(steps) if scans is None else scans
    index = {scan.fields["id"]: i for i, scan in enumerate(scans)}
    position = index.__getitem__
    deps: list[tuple[int, ...]] = []
    dependents: list[list[int]] = [[] for _ in scans]
    resolvers: list[Resolver] = []
    retry: list[RetryPolicy | None] = []
    timeouts: list[float | None] = []
    caches: list[CachePolicy | None] = []
    conditions: list[Condition | None] = []
    map_sources: list[Getter | None] = []
    plain: list[bool] = []
    reads_context: list[bool] = []
    input_names: dict[str, None] = {}
    condition_inputs: list[str] = []
    for i, scan in enumerate(scans):
        fields = scan.fields
        depends_on = scan.depends_on
        if len(depends_on) == 1:  # a chain's step: no sort
            step_deps: tuple[int, ...] = (position(depends_on[0]),)
        else:
            step_deps = tuple(sorted(map(position, depends_on)))
        deps.append(step_deps)
        for d in step_deps:
            dependents[d].append(i)
        for source in scan.sources:
            if type(source) is not Ref and isinstance(source, Input):
                input_names[source.name] = None
        resolvers.append(_compile_arguments(scan, index))
        tool: Tool | None = fields["tool"]
        tool_fields = None if tool is None else tool.__dict__  # (as field_values reads a step's)
        own_retry, own_timeout, cache = fields["retry"], fields["timeout"], fields["cache"]
        if tool_fields is None:  # a sub-flow: nothing in force but its own, and no cache
            retry.append(own_retry)
            timeouts.append(own_timeout)
            caches.append(None)
        else:  # as in_force and Step.cache_policy give them
            retry.append(tool_fields["retry"] if own_retry is None else own_retry)
            timeouts.append(tool_fields["timeout"] if own_timeout is None else own_timeout)
            caches.append(None if cache is False else tool_fields["cache"] if cache is None else cache)
        condition = scan.condition
        if condition is None:
            conditions.append(None)
        else:
            conditions.append(_compile_condition(fields["when"], condition, index))
            condition_inputs.extend(sorted(condition.inputs))
        map_source = fields["map"]
        map_sources.append(None if map_source is None else _getter(map_source, index))
        context = bool(scan.holds & CONTEXT)
        reads_context.append(context)
        plain.append(
            condition is None
            and map_source is None
            and tool_fields is not None
            and tool_fields["input_model"] is None
            and not context
        )
    input_names.update(dict.fromkeys(condition_inputs))  # after every reference's, as they always were
    if outputs is None:
        outputs = {steps[i].id: Ref(steps[i].id) for i, users in enumerate(dependents) if not users}
    return FlowPlan(
        step_ids=tuple(index),
        steps=tuple(steps),
        deps=tuple(deps),
        dependents=tuple(map(tuple, dependents)),
        resolvers=tuple(resolvers),
        input_names=tuple(input_names),
        outputs=tuple((name, index[ref.step], _getter(ref, index, strict=False)) for name, ref in outputs.items()),
        retry=tuple(retry),
        timeouts=tuple(timeouts),
        caches=tuple(caches),
        on_error=tuple(scan.fields["on_error"] for scan in scans),
        conditions=tuple(conditions),
        join_any=tuple(scan.fields["join"] == "any" for scan in scans),
        map_sources=tuple(map_sources),
        plain=tuple(plain),
        reads_context=tuple(reads_context),
    )


def _compile_condition(when: str, condition: ScannedCondition, index: Mapping[str, int]) -> Condition:
    assert condition.expression is not None
    reads = sorted(condition.steps, key=index.__getitem__)
    return Condition(condition.expression, when, tuple((name, index[name]) for name in reads))


def _getter(source: Ref | Input, index: Mapping[str, int], *, strict: bool = True) -> Getter:
    """Reads the source; a path that selects nothing gives its default, or (``strict``) a PathError.
    The flow's outputs are not strict: an output that selects nothing is null, as it always was."""
    path = compile_path(source.path)
    if isinstance(source, Ref):
        i = index[source.step]
        if path is None:  # the whole output: the fast path, never checked
            return lambda outputs, inputs: outputs[i]
        return _checked(lambda outputs, inputs: select(path, outputs[i]), source, strict)
    name = source.name
    if path is None:
        return lambda outputs, inputs: inputs[name]
    return _checked(lambda outputs, inputs: select(path, inputs[name]), source, strict)


def _context_getter(source: Context, slot: int) -> Getter:
    path = compile_path(source.path)
    if path is None:
        return lambda outputs, inputs: outputs[slot]
    return _checked(lambda outputs, inputs: select(path, outputs[slot]), source, True)


def _checked(read: Getter, source: Ref | Input | Context, strict: bool) -> Getter:
    """``read``, with what a path that selects nothing (null) gives: the default (copied when mutable, as
    literals are), or an argument error naming the source."""
    default = source.default
    if default is MISSING:
        if not strict:
            return read

        def strict_read(outputs: Sequence[Any], inputs: Mapping[str, Any]) -> Any:
            value = read(outputs, inputs)
            if value is None:
                raise PathError(nothing_selected(source))  # formatted when it happens, not per step built
            return value

        return strict_read
    if _immutable(default):
        return lambda outputs, inputs: default if (value := read(outputs, inputs)) is None else value
    return lambda outputs, inputs: copy.deepcopy(default) if (value := read(outputs, inputs)) is None else value


_SOURCES = (Ref, Input)
_CONTAINERS = (dict, list, tuple, set)
_MUTABLE = (dict, list, set, bytearray)
"""Type tuples for ``isinstance``: ``Ref | Input`` written in a function builds a union per call."""


def _compile_value(value: Any, index: Mapping[str, int], kind: int | None = None) -> Getter | None:
    """A getter for a value holding references, or ``None`` when the value is an immutable literal.
    ``kind``: what the value holds (:func:`~flowkernel.model.scan.walk`), when the caller knows.

    Mutable literals (lists, dicts) get a getter that copies them, so a tool that mutates its
    arguments cannot change the flow or another call's arguments.
    """
    if isinstance(value, _SOURCES):
        return _getter(value, index)
    if isinstance(value, Context):
        return _context_getter(value, len(index))  # the slot after the last step's output
    if not isinstance(value, _CONTAINERS):
        return None
    if not (walk(value, []) if kind is None else kind) & (SOURCE | CONTEXT):
        return None if _immutable(value) else lambda o, i: copy.deepcopy(value)
    if isinstance(value, dict):
        items = [(key, item, _compile_value(item, index)) for key, item in value.items()]
        return lambda o, i: {key: item if g is None else g(o, i) for key, item, g in items}
    parts = [(item, _compile_value(item, index)) for item in value]
    kind_of = type(value)
    return lambda o, i: kind_of(item if g is None else g(o, i) for item, g in parts)


def _immutable(value: Any) -> bool:
    if isinstance(value, tuple):
        return all(_immutable(item) for item in value)
    return not isinstance(value, _MUTABLE)


def _compile_arguments(scan: StepScan, index: Mapping[str, int]) -> Resolver:
    """The resolver of the arguments the step's own flow resolves: in a map step, those without
    :class:`~flowkernel.model.refs.Item` (each element's step resolves those).

    One argument taken whole from a step's output or a flow input (a chain's step) reads it in the
    resolver itself: one closure per step where a getter and a resolver calling it would be two, and
    one call fewer each time it runs."""
    arguments: dict[str, Any] = scan.fields["arguments"]
    if len(arguments) == 1 and not scan.holds & ITEM:
        for name, value in arguments.items():
            if type(value) is Ref and not value.path:
                j = index[value.step]
                return lambda o, i: {name: o[j]}
            if type(value) is Input and not value.path:
                key = value.name
                return lambda o, i: {name: i[key]}
            only = _compile_value(value, index, scan.holds)
            if only is not None:
                return lambda o, i: {name: only(o, i)}
    compiled = [
        (name, value, _compile_value(value, index, kind))
        for name, value, kind in scan.argument_kinds()
        if not kind & ITEM
    ]
    if all(getter is None for _, _, getter in compiled):
        constant = {name: value for name, value, _ in compiled}
        return lambda o, i: constant.copy()
    return lambda o, i: {name: value if g is None else g(o, i) for name, value, g in compiled}
