"""Runs inside a run: sub-flow steps, and map steps (a sub-flow built at run time, one step per element).

A child run is a :class:`RunState` of its own, driven by its parent: the parent prefixes the child's
call ids with the step id (``"enrich/fetch@1"``), passes its commands out, and routes completions back.
Events of a child run go to its root's list with the child's paths (see :mod:`.place`).
A map step over N elements runs the flow :func:`map_flow` defines: steps ``item0 .. itemN-1``, each
calling the step's tool (or sub-flow) with its element, and each carrying the step's retry, timeout and
error policies. The kernel does not build that flow: it runs :func:`element_plan`, the same plan expanded
from the element flow the map step built once (``Flow.map_element``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from ..model.flow import ELEMENT, Flow
from ..model.plan import FlowPlan, Resolver
from ..model.refs import Ref
from ..model.step import Step, element_step
from ..protocol import Cancel, Command, Completion, Invoke, StartTimer
from ..result import ErrorInfo, ErrorKind, ExecutionResult, RunStatus, StepStatus

__all__ = ("child_call", "child_outcome", "element_inputs", "element_plan", "map_flow", "prefixed", "renamed")

_new = tuple.__new__  # named tuples built from their fields, without their Python-level __new__


def map_flow(parent: Flow, step: Step, items: list[Any], outer: dict[str, Any]) -> tuple[Flow, dict[str, Any]]:
    """The flow a map step runs over ``items``, and its inputs (the elements, and the resolved arguments).

    This is the definition (the oracle runs it, and a test holds :func:`element_plan` to it); it builds
    and validates one step per element, which the kernel cannot afford (about 200 µs an element).
    """
    flow = Flow(
        name=f"{parent.name}.{step.id}",
        version=parent.version,
        steps=[element_step(step, f"{ELEMENT}{k}") for k in range(len(items))],
        outputs={f"{ELEMENT}{k}": Ref(f"{ELEMENT}{k}") for k in range(len(items))},
    )
    inputs = {f"{ELEMENT}{k}": item for k, item in enumerate(items)}
    inputs.update(element_inputs(outer))
    return flow, inputs


def element_inputs(outer: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs every element of a map step shares: the step's arguments that do not hold ``Item()``,
    resolved once by the map step (``arg_<name>``)."""
    return {f"arg_{name}": value for name, value in outer.items()}


def element_plan(element: Flow, items: Sequence[Any]) -> FlowPlan:
    """The fast path of a map step: the plan of ``map_flow(...)`` over ``items``, from the element flow.

    Every element runs the element flow's one step, so everything but the ids, the arguments and the
    outputs is that step's entry repeated (tuples of references, no copies). Element ``k``'s arguments
    are the element step's, resolved with ``item`` = ``items[k]`` beside the shared inputs
    (:func:`element_inputs`); its whole output is the flow's output ``item<k>``. Nothing is validated per
    element: the element flow was validated once, and the inputs are the map step's own.
    ``tests/kernel/test_children.py`` holds this to :func:`map_flow`, field by field and run by run.
    """
    one, n = element.plan, len(items)
    step_ids = tuple([f"{ELEMENT}{k}" for k in range(n)])
    resolve = one.resolvers[0]
    return FlowPlan(
        step_ids=step_ids,
        steps=one.steps * n,
        deps=one.deps * n,  # ((),): elements depend on nothing inside the map
        dependents=one.dependents * n,
        resolvers=tuple([partial(_element_arguments, resolve, item) for item in items]),
        input_names=tuple(name for name in one.input_names if name != ELEMENT),
        outputs=tuple([(step_id, k, None) for k, step_id in enumerate(step_ids)]),  # each element's whole output
        retry=one.retry * n,
        timeouts=one.timeouts * n,
        caches=one.caches * n,
        on_error=one.on_error * n,
        conditions=one.conditions * n,
        join_any=one.join_any * n,
        map_sources=one.map_sources * n,
        plain=one.plain * n,
        reads_context=one.reads_context * n,
    )


def _element_arguments(
    resolve: Resolver, item: Any, outputs: Sequence[Any], inputs: Mapping[str, Any]
) -> dict[str, Any]:
    """One element's arguments: the element step's resolver, with the input ``item`` holding the element."""
    return resolve(outputs, {**inputs, ELEMENT: item})


def prefixed(prefix: str, commands: list[Command]) -> list[Command]:
    """A child's commands as its parent yields them: call ids under the step's id."""
    if not commands:
        return commands
    head = prefix + "/"
    out: list[Command] = []
    for command in commands:
        kind = type(command)
        if kind is Invoke:  # its step id is prefixed too
            out.append(_new(kind, (head + command[0], head + command[1], *command[2:])))  # type: ignore[operator, misc]
        elif kind is StartTimer or kind is Cancel:
            out.append(_new(kind, (head + command[0], *command[1:])))
    return out


def renamed(message: Completion, call_id: str) -> Completion:
    """A completion with another call id (every completion's first field): what the parent hands its
    child, under the child's own id. Built as ``prefixed`` builds commands, without ``_replace`` (a
    Python-level call and a field-by-field rebuild, per message and per level of nesting)."""
    return _new(type(message), (call_id, *message[1:]))


def child_call(call_id: str, children: dict[str, Any]) -> tuple[str, str] | None:
    """``(step id, the child's own call id)`` if ``call_id`` belongs to a child run."""
    head, slash, rest = call_id.partition("/")
    if slash and "@" not in head and head in children:
        return head, rest
    return None


def child_outcome(step_id: str, result: ExecutionResult, elements: int | None) -> tuple[Any, ErrorInfo | None]:
    """What a finished child run means for its step: the output, or the error that fails it."""
    if result.status == RunStatus.SUCCEEDED:
        if elements is None:
            return result.outputs, None
        return [result.outputs.get(f"{ELEMENT}{k}") for k in range(elements)], None
    failed = next((s for s in result.steps if s.status == StepStatus.FAILED and not s.tolerated), None)
    if failed is None or failed.error is None:
        return None, ErrorInfo(ErrorKind.SUBFLOW, "SubflowFailed", f"the sub-run ended {result.status}", step_id)
    where = f"element {failed.id.removeprefix(ELEMENT)}" if elements is not None else f"step {failed.id!r}"
    error = failed.error  # keeps the inner error's traceback and details
    return None, replace(error, message=f"{where} failed: {error.message}", step=step_id)
