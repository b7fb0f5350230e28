"""The model and enum classes a flow declares: the JSON codec's allowlist for its runs.

Walking a flow for them resolves its tools' annotations (``typing.get_type_hints``, which compiles
string annotations). Done for every step of every run, that was ~156k instructions a step (callgrind,
``benchmarks/instructions.py --journal``), twice what recording the step costs. So a tool shared by many
steps is resolved once per walk, and :func:`declared_classes` keeps the walk's result per flow object (a
flow, its steps and tools are frozen once built): a run of a flow seen before skips it, as
:func:`~.recorder.fingerprint_of` skips hashing it.
"""

from __future__ import annotations

import typing
from typing import Any

from ...model.flow import Flow
from ..per_flow import per_flow

__all__ = ("declared_classes", "flow_classes")


def flow_classes(flow: Flow) -> list[Any]:
    """The model and enum classes ``flow`` declares: its input model, its tools' (and fallback tools')
    input and output models and annotations, its context model, and those of its sub-flows (types that
    are not classes, such as ``list[Model]``, are given as they are: :meth:`JsonCodec.allow` unpacks them).
    Each flow and each tool is visited once, however many steps share it."""
    found: list[Any] = []
    seen: set[int] = set()

    def visit(flow: Flow) -> None:
        if id(flow) in seen:
            return
        seen.add(id(flow))
        for value in (flow.input_model, getattr(getattr(flow, "context", None), "model", None)):
            if isinstance(value, type):
                found.append(value)
        for step in flow.steps:
            for tool in (step.tool, getattr(step.on_error, "tool", None)):
                if tool is None or id(tool) in seen:
                    continue
                seen.add(id(tool))  # the flows and tools seen are alive until the walk ends: ids are not reused
                for model in (getattr(tool, "input_model", None), getattr(tool, "output_model", None)):
                    if isinstance(model, type):
                        found.append(model)
                found.extend(_annotated(getattr(tool, "fn", None)))
            if step.flow is not None:
                visit(step.flow)

    visit(flow)
    return found


@per_flow
def declared_classes(flow: Flow) -> tuple[Any, ...]:
    """:func:`flow_classes`, walked once per flow object (what a run passes to ``Journal.allow``)."""
    return tuple(flow_classes(flow))


def _annotated(fn: Any) -> list[Any]:
    """A tool function's annotations (its parameters' and return's types), resolved in its own module."""
    if fn is None:
        return []
    try:
        return list(typing.get_type_hints(fn).values())
    except Exception:  # an annotation that does not resolve: the tool's own business
        return []
