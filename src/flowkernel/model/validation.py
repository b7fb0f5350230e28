"""Static checks of a flow: every problem is collected, so one error lists them all."""

from __future__ import annotations

from collections.abc import Iterable, KeysView, Mapping, Sequence
from graphlib import CycleError, TopologicalSorter
from typing import Any

from pydantic import BaseModel

from ..errors import Problem
from .arguments import MAX_FLOW_DEPTH, ToolFacts, argument_problems, model_argument_problems, unknown
from .refs import Input, Item, PathError, Ref, compile_path
from .scan import CONTEXT, ITEM, SOURCE, ScannedCondition, StepScan, scan_condition, scan_step, scan_steps
from .step import Step

__all__ = ("MAX_FLOW_DEPTH", "condition_steps", "dependencies_of", "find_problems", "model_argument_problems")


def dependencies_of(step: Step) -> tuple[str, ...]:
    """The ids a step depends on, through references, ``after`` and its condition, in first-mention order."""
    return tuple(scan_step(step).depends_on)


def condition_steps(step: Step) -> set[str]:
    """The steps a step's ``when`` condition reads (none if it has no condition, or one that does not parse)."""
    return set() if step.when is None else set(scan_condition(step.when).steps)


def find_problems(
    steps: Sequence[Step],
    input_model: type[BaseModel] | None,
    outputs: Mapping[str, Ref] | None,
    has_context: bool = False,
    scans: Sequence[StepScan] | None = None,
) -> list[Problem]:
    """Everything wrong with a flow's structure, in the order a reader meets it. ``scans``: the steps'
    :func:`~flowkernel.model.scan.scan_step`, when the caller has them (a flow's build hands them on to
    its plan)."""
    problems: list[Problem] = []
    if not steps:
        problems.append(Problem("steps", "a flow needs at least one step"))
    scans = scan_steps(steps) if scans is None else scans
    first_index: dict[str, int] = {}
    for i, scan in enumerate(scans):
        step_id = scan.fields["id"]
        if step_id in first_index:
            problems.append(
                Problem(
                    f"steps[{i}].id", f"duplicate step id {step_id!r} (first used by steps[{first_index[step_id]}])"
                )
            )
        else:
            first_index[step_id] = i
    known = first_index.keys()
    inputs = None if input_model is None else input_model.model_fields.keys()
    tools = ToolFacts()
    for i, (step, scan) in enumerate(zip(steps, scans, strict=True)):
        found = _step_problems(step, scan, known, inputs, has_context, tools)
        if found:  # located in the flow only when there is something to report
            where = f"steps[{i}] ({step.id})"
            problems.extend(Problem(f"{where}.{problem.location}", problem.message) for problem in found)
    for name, source in (outputs or {}).items():
        problems.extend(
            Problem(f"outputs.{name}", message) for message in _source_messages(source, None, known, inputs)
        )
    problems.extend(_find_cycles(first_index, scans))
    return problems


def _step_problems(
    step: Step,
    scan: StepScan,
    known: KeysView[str],
    inputs: KeysView[str] | None,
    has_context: bool,
    tools: ToolFacts,
) -> list[Problem]:
    """Everything wrong with one step, located in the step (``arguments.x``): its references, ``after``,
    arguments, ``Item()``, ``Context()`` and condition, in that order."""
    problems: list[Problem] = []
    fields = scan.fields
    step_id = fields["id"]
    locations: list[str] | None = None  # asked for only when a reference has a problem
    for position, source in enumerate(scan.sources):
        messages = _source_messages(source, step_id, known, inputs)
        if messages:
            locations = locations or [location for location, _ in step.sources()]
            problems.extend(Problem(locations[position], message) for message in messages)
    for position, dep in enumerate(fields["after"]):
        if dep == step_id:
            problems.append(Problem(f"after[{position}]", "a step cannot wait for itself"))
        elif dep not in known:
            problems.append(Problem(f"after[{position}]", "waits for " + unknown("step", dep, known)))
    if not tools.fits(scan):
        problems.extend(argument_problems(step, scan, tools))
    if scan.holds & ITEM:
        problems.extend(_check_items(step, scan))
    if scan.holds & CONTEXT and not has_context:
        problems.extend(
            Problem(f"arguments.{name}", "Context() needs a flow with a context policy (Flow(context=...))")
            for name, _, kind in scan.argument_kinds()
            if kind & CONTEXT
        )
    if scan.condition is not None:
        problems.extend(
            Problem("when", message) for message in _condition_messages(step, scan.condition, known, inputs)
        )
    return problems


def _source_messages(
    source: Ref | Input, own_id: str | None, known: KeysView[str], inputs: KeysView[str] | None
) -> list[str]:
    """What is wrong with one reference: whom it names, and its path."""
    messages: list[str] = []
    if isinstance(source, Ref):
        if source.step == own_id:
            messages.append("a step cannot reference its own output")
        elif source.step not in known:
            messages.append("references " + unknown("step", source.step, known))
    elif inputs is not None and source.name not in inputs:
        messages.append("references " + unknown("flow input", source.name, inputs))
    if source.path:
        try:
            compile_path(source.path)
        except PathError as exc:
            messages.append(str(exc))
    return messages


def _condition_messages(
    step: Step, condition: ScannedCondition, known: KeysView[str], inputs: KeysView[str] | None
) -> Iterable[str]:
    if condition.error is not None:
        yield condition.error
        return
    if condition.expression is None:
        yield "a condition cannot be empty"
        return
    if condition.stray:
        hint = " (JMESPath reads '!steps.a.b' as '(!steps).a.b': write '!(steps.a.b)')" if "!" in str(step.when) else ""
        yield f"a condition reads steps.<id> or inputs.<name>, not {', '.join(map(repr, condition.stray))}{hint}"
    for name in sorted(condition.steps):
        if name == step.id:
            yield "a step's condition cannot read its own output"
        elif name not in known:
            yield "references " + unknown("step", name, known)
    for name in sorted(condition.inputs):
        if inputs is not None and name not in inputs:
            yield "references " + unknown("flow input", name, inputs)


def _check_items(step: Step, scan: StepScan) -> Iterable[Problem]:
    """``Item()`` belongs to map steps, and an argument holding it cannot also hold references."""
    for name, value, kind in scan.argument_kinds():
        if not kind & ITEM:
            continue
        for item in _items_in(value):
            try:
                compile_path(item.path)
            except PathError as exc:
                yield Problem(f"arguments.{name}", str(exc))
        if step.map is None:
            yield Problem(f"arguments.{name}", "Item() is only meaningful in a step with map=")
        elif kind & SOURCE:
            yield Problem(
                f"arguments.{name}",
                "an argument holding Item() cannot also hold Ref() or Input(); pass those as another argument",
            )


def _find_cycles(first_index: Mapping[str, int], scans: Sequence[StepScan]) -> list[Problem]:
    if len(first_index) == len(scans) and _depend_on_earlier(first_index, scans):
        return []  # (declared_in_order, asked of the scans without building the graph)
    graph = {
        scan.fields["id"]: [d for d in scan.depends_on if d in first_index and d != scan.fields["id"]] for scan in scans
    }
    if declared_in_order(graph, first_index):
        return []
    return graph_cycles(graph)


def _depend_on_earlier(first_index: Mapping[str, int], scans: Sequence[StepScan]) -> bool:
    """Whether every step (ids unique) depends only on steps declared before it, unknown ids aside:
    :func:`declared_in_order` of the graph, which ``tests/model/test_cycles.py`` compares it with."""
    position = first_index.get
    for i, scan in enumerate(scans):
        for dep in scan.depends_on:
            at = position(dep)
            if at is not None and at > i:  # (at == i: the step itself, reported elsewhere)
                return False
    return True


def declared_in_order(graph: Mapping[str, Sequence[str]], first_index: Mapping[str, int]) -> bool:
    """Whether every step depends only on steps declared before it: then the graph has no cycle (the
    declaration order is a topological order), which is most flows, and :func:`graph_cycles` need not
    run. A fast path: ``False`` says nothing, and a flow with a dependency declared later gets the
    general search."""
    for node, deps in graph.items():
        own = first_index[node]
        for dep in deps:
            if first_index[dep] >= own:
                return False
    return True


def graph_cycles(graph: dict[str, list[str]]) -> list[Problem]:
    """One problem per dependency cycle of ``graph`` (node: the nodes it depends on)."""
    problems: list[Problem] = []
    while True:
        try:
            TopologicalSorter(graph).prepare()
            return problems
        except CycleError as exc:
            cycle: list[str] = exc.args[1]
            problems.append(Problem("steps", "dependency cycle: " + " -> ".join(cycle)))
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
