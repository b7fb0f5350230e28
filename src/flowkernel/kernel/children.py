"""Runs inside a run: sub-flow steps, and map steps (a sub-flow built at run time, one step per element).

A child run is a :class:`RunState` of its own, driven by its parent: the child names its calls as the
driver knows them, under its step's id (``"enrich/fetch@1"``, see :class:`~.place.Place`), so the parent
passes its commands out as they are and routes completions back by that first part, renaming nothing.
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
from typing import TYPE_CHECKING, Any

from ..errors import FlowInputError
from ..events import StepStarted
from ..model.flow import ELEMENT, Flow
from ..model.plan import FlowPlan, Resolver
from ..model.refs import PathError, Ref
from ..model.step import Step, element_step
from ..protocol import Command, Completion
from ..result import AttemptStatus, ErrorInfo, ErrorKind, ExecutionResult, RunStatus, StepStatus
from .inputs import prepare_inputs
from .options import RunOptions
from .policies import PolicyTable
from .states import RUNNING

if TYPE_CHECKING:
    from .run import RunState

__all__ = (
    "ChildRuns",
    "child_call",
    "child_outcome",
    "element_inputs",
    "element_plan",
    "map_flow",
)


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


def child_call(call_id: str, prefix: str, children: Mapping[str, Any]) -> str | None:
    """The step id of the child run that call ``call_id`` belongs to, if any, in the run whose calls start
    with ``prefix``: its own calls are ``<step>@<attempt>...`` there, its children's ``<step>/...``."""
    head, slash, _ = call_id[len(prefix) :].partition("/")
    if slash and "@" not in head and head in children:
        return head
    return None


def child_outcome(step_id: str, result: ExecutionResult, elements: int | None) -> tuple[Any, ErrorInfo | None]:
    """What a finished child run means for its step: the output, or the error that fails it."""
    if result.status == RunStatus.SUCCEEDED:
        if elements is None:
            return result.outputs, None
        if len(result.outputs) == elements:  # every element's output, in element order (see element_plan)
            return [*result.outputs.values()], None
        return [result.outputs.get(f"{ELEMENT}{k}") for k in range(elements)], None
    failed = next((s for s in result.steps if s.status == StepStatus.FAILED and not s.tolerated), None)
    if failed is None or failed.error is None:
        return None, ErrorInfo(ErrorKind.SUBFLOW, "SubflowFailed", f"the sub-run ended {result.status}", step_id)
    where = f"element {failed.id.removeprefix(ELEMENT)}" if elements is not None else f"step {failed.id!r}"
    error = failed.error  # keeps the inner error's traceback and details
    return None, replace(error, message=f"{where} failed: {error.message}", step=step_id)


class ChildRuns(PolicyTable):
    """The part of a run that starts its runs inside (sub-flow and map steps), routes their completions,
    dispatches for the whole tree in declaration order, and settles a step when its run ends."""

    _children: dict[str, tuple[int, RunState, int | None]]
    """Step id -> (its index, its run, a map step's number of elements)."""

    def _dispatch(self, commands: list[Command], before: int = 1 << 62) -> None:
        """Start ready steps declared before ``before`` (the run state's)."""
        raise NotImplementedError

    def _route(self, batches: dict[str, list[Completion]], commands: list[Command]) -> None:
        """Hand each child run its completions; pass its commands out."""
        for step_id, batch in batches.items():
            if step_id in self._children:
                self._advance_child(step_id, self._children[step_id][1].handle(batch), commands)

    def _dispatch_all(self, commands: list[Command]) -> None:
        """Start what is ready here and in the runs inside, in declaration order, while the run's limit
        (shared by the whole tree) and each run's own allow."""
        children = self._children
        in_order = children.items() if len(children) == 1 else sorted(children.items(), key=lambda item: item[1][0])
        for step_id, (i, child, _) in [*in_order]:  # (a copy: a child that ends leaves the table)
            self._dispatch(commands, before=i)
            if step_id in self._children and child._stop_reason is None:
                child_commands: list[Command] = []
                if child._children:
                    child._dispatch_all(child_commands)
                else:
                    child._dispatch(child_commands)
                self._advance_child(step_id, child_commands, commands)
        self._dispatch(commands)

    def _start_child(self, i: int, arguments: dict[str, Any], commands: list[Command]) -> None:
        """Start a sub-flow step, or a map step over the list its source gives."""
        step, step_id = self._plan.steps[i], self._plan.step_ids[i]
        elements: int | None = None
        plan: FlowPlan | None = None
        if step.map is not None:
            source = self._plan.map_sources[i]
            assert source is not None
            try:
                items = source(self._outputs, self.inputs)
            except PathError as exc:
                self._give_up(i, ErrorInfo(ErrorKind.ARGUMENT, "PathError", str(exc), step_id), commands)
                return
            if not isinstance(items, list | tuple):
                message = f"map= gave {type(items).__name__}, not a list"
                self._give_up(i, ErrorInfo(ErrorKind.ARGUMENT, "TypeError", message, step_id), commands)
                return
            if not items:
                self._outputs[i] = []
                self._succeed(i)
                return
            elements = len(items)
            flow = self.flow.map_element(i)  # built and validated once, with the flow
            plan, inputs = element_plan(flow, items), element_inputs(arguments)  # (inputs of our own: no check)
        else:
            assert step.flow is not None
            flow = step.flow
            try:
                inputs = prepare_inputs(flow, arguments)
            except FlowInputError as exc:
                message = "; ".join(str(problem) for problem in exc.problems)
                self._give_up(i, ErrorInfo(ErrorKind.INPUT_VALIDATION, "FlowInputError", message, step_id), commands)
                return
        options = RunOptions(
            run_id=f"{self.options.run_id}/{step_id}",
            max_concurrency=step.max_concurrency or self.options.max_concurrency,
            fail_fast=self.options.fail_fast and step.on_error == "fail",  # a failure inside fails the run
            events=self._emit,
        )
        place = self.place.child(self._paths[i] if self._emit else step_id, step_id, elements is not None)
        from .run import RunState  # (the run module builds on this one)

        child = RunState(flow, inputs, options, place, plan)
        self._state[i] = RUNNING
        self._children[step_id] = (i, child, elements)
        if self._emit:
            self.events.append(StepStarted(place.run_id, self._paths[i], 1, None, None, arguments))
        self._advance_child(step_id, child.start(), commands)

    def _advance_child(self, step_id: str, child_commands: list[Command], commands: list[Command]) -> None:
        """Pass a child's commands out; when the child is done, settle its step."""
        i, child, elements = self._children[step_id]
        commands += child_commands
        if child.stopped_by_failure and self._stop_reason is None:  # fail_fast inside: stop everything now
            self._stop(f"stopped after step {step_id!r} failed (fail_fast)", RunStatus.FAILED, commands)
        if child.active or step_id not in self._children:  # still running, or settled by the stop just now
            return
        del self._children[step_id]
        result = child.result()
        self._subflows[i] = result
        if result.status == RunStatus.CANCELLED:
            self._cancel(i)
            return
        output, error = child_outcome(step_id, result, elements)
        status = AttemptStatus.SUCCEEDED if error is None else AttemptStatus.FAILED
        self._record(i, status, None, None, error)
        if error is None:
            self._outputs[i] = output
            self._succeed(i)
        elif elements is not None:  # the elements had the step's error policy already
            self._fail_the_run(i, error, commands)
        else:
            self._give_up(i, error, commands)
