"""Where a run's time went: each step's time span, and the critical path through the run.

The critical path is the chain of steps that ended last: the step that finished last, then the
dependency it waited for (the one of its dependencies that finished last, no later than it started),
and so on back to a step that waited for none. A sub-flow or map step on the path adds the path through
its own run (for a map: the element that ended last). Steps are named by their path from the top run
(``("enrich", "item2", "fetch")``). Without the flow, a step is taken to have waited for whichever step
finished last before it started.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..model.flow import Flow
from ..model.validation import dependencies_of
from ..result import ExecutionResult, StepRecord

__all__ = ("StepPath", "critical_path", "span_of")

StepPath = tuple[str, ...]
"""A step's place: the ids from the top run's step down through sub-flows and map elements."""

_SLACK = 1e-6
"""Seconds a dependency's end may pass its dependent's start and still count as waited for (clock rounding)."""


def span_of(record: StepRecord) -> tuple[float, float] | None:
    """When the step started and ended: its timed attempts and its sub-flow's steps; ``None`` if it never ran."""
    starts = [a.started for a in record.attempts if a.started is not None]
    ends = [a.finished for a in record.attempts if a.finished is not None]
    if record.subflow is not None:
        for child in record.subflow.steps:
            child_span = span_of(child)
            if child_span is not None:
                starts.append(child_span[0])
                ends.append(child_span[1])
    if not starts or not ends:
        return None
    return min(starts), max(ends)


def critical_path(result: ExecutionResult, flow: Flow | None = None) -> frozenset[StepPath]:
    """The steps on the run's critical path (see the module's docstring); ``flow`` gives the dependencies."""
    shape: _Shape = _FlowShape(flow) if flow is not None else _TimesShape()
    return frozenset(_chain(result, shape, ()))


@dataclass(frozen=True, slots=True)
class _TimesShape:
    """A run whose flow is unknown: dependencies guessed from the times."""

    def waits_on(self, step_id: str, spans: Mapping[str, tuple[float, float]]) -> list[str]:
        start = spans[step_id][0]
        return [other for other, (_, end) in spans.items() if other != step_id and end <= start + _SLACK]

    def child(self, step_id: str) -> _Shape:
        return self


@dataclass(frozen=True, slots=True)
class _FlowShape:
    """A run of ``flow``: dependencies as the kernel waits on them."""

    flow: Flow

    def waits_on(self, step_id: str, spans: Mapping[str, tuple[float, float]]) -> list[str]:
        step = next((s for s in self.flow.steps if s.id == step_id), None)
        return list(dependencies_of(step)) if step is not None else _TimesShape().waits_on(step_id, spans)

    def child(self, step_id: str) -> _Shape:
        step = next((s for s in self.flow.steps if s.id == step_id), None)
        if step is None:
            return _TimesShape()
        if step.map is not None:
            return _ElementsShape(step.flow)
        return _FlowShape(step.flow) if step.flow is not None else _TimesShape()


@dataclass(frozen=True, slots=True)
class _ElementsShape:
    """A map step's elements: independent of one another, each a call or a run of ``flow``."""

    flow: Flow | None

    def waits_on(self, step_id: str, spans: Mapping[str, tuple[float, float]]) -> list[str]:
        return []

    def child(self, step_id: str) -> _Shape:
        return _FlowShape(self.flow) if self.flow is not None else _TimesShape()


_Shape = _TimesShape | _FlowShape | _ElementsShape


def _chain(result: ExecutionResult, shape: _Shape, prefix: StepPath) -> list[StepPath]:
    order = {record.id: position for position, record in enumerate(result.steps)}
    spans = {r.id: s for r in result.steps if (s := span_of(r)) is not None}
    path: list[StepPath] = []
    seen: set[str] = set()  # guessed dependencies of instant steps could go round in a circle
    current = max(spans, key=lambda i: (spans[i][1], order[i]), default=None)
    while current is not None:
        seen.add(current)
        here = (*prefix, current)
        path.append(here)
        subflow = result.step(current).subflow
        if subflow is not None:
            path.extend(_chain(subflow, shape.child(current), here))
        start = spans[current][0]
        waited = [
            d for d in shape.waits_on(current, spans) if d in spans and d not in seen and spans[d][1] <= start + _SLACK
        ]
        current = max(waited, key=lambda i: (spans[i][1], order[i]), default=None)
    return path
