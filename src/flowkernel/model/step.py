"""Steps: one tool call each, with arguments drawn from literals, flow inputs and earlier outputs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import ConfigDict, Field, model_validator

from ..errors import Problem
from .cache import CachePolicy
from .checked import MAX_SECONDS, WHOLE, CheckedModel
from .policies import ErrorPolicy
from .prechecked import prechecked_step_fields
from .refs import ElementInput, Input, Item, Ref
from .retry import RetryPolicy
from .scan import walk
from .tool import Tool

if TYPE_CHECKING:
    from .flow import Flow

__all__ = ("STEP_ID_PATTERN", "Step", "element_step", "holds", "holds_item", "in_force", "walk_sources")

STEP_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]*$"
"""Step ids are identifiers (dots and dashes allowed), so call ids built from them stay unambiguous."""


T = TypeVar("T")

_set = object.__setattr__

_ONE_TARGET = "a step runs a tool or a sub-flow: give exactly one of tool= and flow="
_CACHE_IS_FOR_TOOLS = "cache= is for a step that calls a tool; a sub-flow's own steps (or tools) opt in to the cache"


class Step(CheckedModel):
    """One step of a flow: call ``tool`` (or run the sub-flow ``flow``) with ``arguments``.

    With ``map``, a list found at run time, the step calls its tool (or sub-flow) once per element, with
    :class:`Item` in its arguments standing for the element; at most ``max_concurrency`` at once; the
    output is the list of results in element order, and each element follows the step's retry, timeout
    and error policies. A sub-flow gets the arguments as its inputs and gives its outputs as the output.

    ``after`` adds dependencies beyond the steps the arguments reference (ordering without data).
    ``retry`` and ``timeout`` override the tool's; ``on_error`` says what a failure means for the run.
    ``cache`` overrides the tool's cache policy (``False``: never served from a cache).
    ``when`` is a JMESPath condition over ``{"inputs": ..., "steps": {id: output}}``: when it is false
    the step is skipped, and so are its dependents, unless a dependent has ``join="any"`` (it runs once
    every dependency is settled, if at least one succeeded).
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")
    _kind = "step"
    _name_field = "id"

    id: str = Field(pattern=STEP_ID_PATTERN)
    tool: Tool | None = None
    flow: Flow | None = None
    map: Ref | Input | None = None
    max_concurrency: int | None = Field(default=None, ge=1)
    arguments: dict[str, Any] = Field(default_factory=dict)
    after: tuple[str, ...] = ()
    retry: RetryPolicy | None = None
    timeout: float | None = Field(default=None, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    on_error: ErrorPolicy = "fail"
    cache: CachePolicy | Literal[False] | None = None
    when: str | None = None
    join: Literal["all", "any"] = "all"

    def __init__(self, /, **data: Any) -> None:
        """Validate the fields; the common, valid values are checked here without pydantic (see
        :mod:`~flowkernel.model.prechecked`: a third of a flow's build), anything else by pydantic."""
        fields = prechecked_step_fields(data) if type(self) is Step else None
        if fields is None:
            super().__init__(**data)
            return
        # What pydantic's validation leaves (``model_construct`` does the same): the fields, the names
        # given, no extras, no private attributes. _one_target holds: a tool, no sub-flow.
        _set(self, "__dict__", fields)
        _set(self, "__pydantic_fields_set__", set(data))
        _set(self, "__pydantic_extra__", None)
        _set(self, "__pydantic_private__", None)

    @model_validator(mode="after")
    def _one_target(self) -> Step:
        if (self.tool is None) == (self.flow is None):
            raise ValueError(_ONE_TARGET)
        if self.flow is not None and isinstance(self.cache, CachePolicy):
            raise ValueError(_CACHE_IS_FOR_TOOLS)
        return self

    @classmethod
    def _raw_problems(cls, data: Mapping[str, Any]) -> Iterable[Problem]:
        if (data.get("tool") is None) == (data.get("flow") is None):
            yield Problem(WHOLE, _ONE_TARGET)
        elif data.get("flow") is not None and isinstance(data.get("cache"), CachePolicy):
            yield Problem(WHOLE, _CACHE_IS_FOR_TOOLS)

    @property
    def retry_policy(self) -> RetryPolicy | None:
        """The retry policy in force: the step's, else the tool's."""
        return in_force(self.retry, self.tool, "retry")

    @property
    def timeout_seconds(self) -> float | None:
        """The timeout in force: the step's, else the tool's."""
        return in_force(self.timeout, self.tool, "timeout")

    @property
    def cache_policy(self) -> CachePolicy | None:
        """The cache policy in force: the step's, else the tool's; ``None`` for a sub-flow or ``cache=False``."""
        if self.cache is False or self.tool is None:
            return None
        return self.cache if self.cache is not None else self.tool.cache

    @property
    def target_name(self) -> str:
        """The name of what the step runs: its tool's, or ``flow:<name>``."""
        return self.tool.name if self.tool is not None else f"flow:{self.flow.name}"  # type: ignore[union-attr]

    def sources(self) -> Iterator[tuple[str, Ref | Input]]:
        """Every reference in the arguments (and the map source) with its location (``arguments.rows[1].id``)."""
        if self.map is not None:
            yield "map", self.map
        for name, value in self.arguments.items():
            yield from walk_sources(value, f"arguments.{name}")


def in_force(own: T | None, tool: Tool | None, name: str) -> T | None:
    """A setting in force for a step: its own ``name`` (``retry``, ``timeout``), else its tool's."""
    if own is not None or tool is None:
        return own
    value: T | None = getattr(tool, name)
    return value


def walk_sources(value: Any, location: str) -> Iterator[tuple[str, Ref | Input]]:
    """Yield ``(location, source)`` for every :class:`Ref` or :class:`Input` nested in ``value``."""
    found: list[Ref | Input] = []
    locations: list[str] = []
    walk(value, found, locations, location)
    return zip(locations, found, strict=True)


def holds_item(value: Any) -> bool:
    """Whether :class:`Item` appears anywhere in ``value``."""
    return holds(value, Item)


def holds(value: Any, kind: type) -> bool:
    """Whether an instance of ``kind`` appears anywhere in ``value``."""
    if isinstance(value, kind):
        return True
    if isinstance(value, dict):
        return any(holds(v, kind) for v in value.values())
    if isinstance(value, list | tuple):
        return any(holds(v, kind) for v in value)
    return False


def element_step(step: Step, name: str) -> Step:
    """The step that runs one element of map step ``step``, as step ``name`` of the elements' flow.

    It calls the map step's tool (or sub-flow) with the same retry, timeout and error policies; an
    argument holding :class:`Item` reads the element from the input ``name``, every other argument the
    input ``arg_<argument>`` (the map step resolves those once, for all its elements).
    """
    return Step(
        id=name,
        tool=step.tool,
        flow=step.flow,
        arguments={
            argument: _with_element(value, name) if holds_item(value) else Input(f"arg_{argument}")
            for argument, value in step.arguments.items()
        },
        retry=step.retry,
        timeout=step.timeout,
        on_error=step.on_error,
        cache=step.cache,
    )


def _with_element(value: Any, name: str) -> Any:
    if isinstance(value, Item):
        return ElementInput(name, value.path, default=value.default)
    if isinstance(value, dict):
        return {key: _with_element(item, name) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_with_element(item, name) for item in value)
    return value
