"""Flows: named, versioned sets of steps. A chain and a DAG are the same model."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from ..errors import FlowKernelError, FlowValidationError, Problem
from .checked import CheckedModel
from .plan import FlowPlan, compile_plan
from .policies import ContextPolicy, Fallback
from .refs import Ref
from .resource import Resource
from .scan import scan_steps
from .schemas import flow_input_schema, flow_output_schema
from .step import Step, element_step
from .tool import Tool
from .validation import find_problems

__all__ = ("ELEMENT", "Flow")

ELEMENT = "item"
"""The id of the step in a map step's element flow, and the input holding its element."""


class Flow(CheckedModel):
    """A named, versioned flow of steps; dependencies come from references and ``after``.

    Building a flow validates it: every structural problem (duplicate ids, unknown references, cycles,
    arguments that cannot fit a tool) is reported at once in one :class:`FlowValidationError`.
    ``outputs`` names the flow's results; by default each step nothing depends on is an output.
    ``context`` turns on accumulated context (:class:`Context` arguments; see :class:`ContextPolicy`).
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    name: str = Field(min_length=1)
    version: str = "1"
    description: str = ""
    """What the flow does, for people and for callers it is offered to (an MCP tool's description)."""
    steps: tuple[Step, ...]
    input_model: type[BaseModel] | None = None
    outputs: dict[str, Ref] | None = None
    context: ContextPolicy | None = None
    resources: tuple[Resource[Any], ...] = ()
    """Resources the run opens when it starts and closes when it ends (see :class:`Resource`)."""
    _plan: FlowPlan = PrivateAttr()
    _elements: dict[int, Flow] = PrivateAttr()

    @classmethod
    def _error(cls, data: Mapping[str, Any], problems: tuple[Problem, ...]) -> FlowKernelError:
        name = data.get("name")
        return FlowValidationError(name if isinstance(name, str) else "?", problems)

    @field_validator("steps", mode="wrap")
    @classmethod
    def _steps_as_built(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """Steps already built are taken as they are, into a tuple: a fast path. They were validated when
        built and are frozen; pydantic would give back the same objects, after running each one's
        model validators again, twice (~3k instructions a step). Anything else (dicts, a subclass, a
        wrong type) goes through pydantic, errors and all (tests/model/test_flow.py)."""
        if isinstance(value, list | tuple) and all(type(step) is Step for step in value):
            return tuple(value)
        return handler(value)

    @model_validator(mode="after")
    def _validate_structure(self) -> Flow:
        scans = scan_steps(self.steps)  # each step's references walked once, for the checks and the plan
        problems = find_problems(self.steps, self.input_model, self.outputs, self.context is not None, scans)
        if problems:
            raise FlowValidationError(self.name, tuple(problems))
        self._plan = compile_plan(self.steps, self.outputs, scans)
        self._elements = {
            i: Flow(
                name=f"{self.name}.{step.id}",
                version=self.version,
                steps=[element_step(step, ELEMENT)],
                outputs={ELEMENT: Ref(ELEMENT)},
            )
            for i, step in enumerate(self.steps)
            if step.map is not None
        }
        return self

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Flow:
        """A copy; with ``update``, a flow built anew from this one's fields and the update, so it is
        validated and its plan compiled again (pydantic's copy would keep the old plan: a copy with other
        steps, or other limits on them, would run as the original)."""
        if not update:
            return super().model_copy(deep=deep)
        fields = {name: getattr(self, name) for name in type(self).model_fields}
        return type(self)(**{**fields, **update})

    @property
    def plan(self) -> FlowPlan:
        """The compiled structure the kernel executes (read from pydantic's store of private attributes:
        ``self._plan`` goes through ``BaseModel.__getattr__``, 1.5 µs against 0.05, and every run reads it)."""
        plan: FlowPlan = self.__pydantic_private__["_plan"]  # type: ignore[index]
        return plan

    def map_element(self, i: int) -> Flow:
        """The flow that one element of map step ``i`` runs: its one step ``item`` calls the map step's
        tool (or sub-flow) on the input ``item`` (see :func:`~flowkernel.model.step.element_step`).

        Built and validated once, with this flow; a run expands its plan to all the elements
        (:func:`flowkernel.kernel.children.element_plan`) rather than building a flow per element.
        """
        return self._elements[i]

    def tools(self) -> Iterator[tuple[str, Tool]]:
        """Every tool the flow may call, with where it is: steps, fallbacks, sub-flows (depth first)."""
        for where, tool, _ in self.calls():
            yield where, tool

    def calls(self) -> Iterator[tuple[str, Tool, Step]]:
        """:meth:`tools`, each with the step whose arguments it is called with (a fallback tool gets its
        step's): what checking calls against their tools' schemas needs."""
        for i, step in enumerate(self.steps):
            where = f"steps[{i}] ({step.id})"
            if step.tool is not None:
                yield where, step.tool, step
            if isinstance(step.on_error, Fallback) and step.on_error.tool is not None:
                yield f"{where}.on_error", step.on_error.tool, step
            if step.flow is not None:
                for inner, tool, inner_step in step.flow.calls():
                    yield f"{where}.flow.{inner}", tool, inner_step

    @property
    def depth(self) -> int:
        """How deep sub-flows nest in this flow (1 without sub-flows)."""
        return 1 + max((step.flow.depth for step in self.steps if step.flow is not None), default=0)

    def input_schema(self) -> dict[str, Any]:
        """The JSON Schema of the inputs a run takes (from ``input_model``, else from the ``Input``
        references and the tool fields they feed); a new dict on every call."""
        return flow_input_schema(self)

    def output_schema(self) -> dict[str, Any]:
        """The JSON Schema of a run's ``outputs``: one property per output, typed by the output model of
        the step giving it (``{}`` where nothing says); a new dict on every call."""
        return flow_output_schema(self)

    def step(self, step_id: str) -> Step:
        """The step with this id."""
        return self.steps[self._plan.step_ids.index(step_id)]

    def __repr__(self) -> str:
        return f"Flow({self.name!r}, version={self.version!r}, steps={len(self.steps)})"

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: Any) -> bool:
        return self is other


Step.model_rebuild(_types_namespace={"Flow": Flow})
