"""Checking a run's inputs against the flow before anything is dispatched."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ..errors import FlowInputError, Problem
from ..model.flow import Flow

__all__ = ("prepare_inputs",)


def prepare_inputs(flow: Flow, inputs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The inputs the run will use, validated by the flow's input model when it has one.

    Raises :class:`FlowInputError` listing every problem: schema violations, or (without a model)
    inputs the steps reference but the caller did not give.
    """
    given = dict(inputs or {})
    if flow.input_model is not None:
        try:
            return dict(flow.input_model.model_validate(given))
        except ValidationError as exc:
            problems = tuple(
                Problem("inputs." + ".".join(map(str, e["loc"])) if e["loc"] else "inputs", e["msg"])
                for e in exc.errors(include_url=False)
            )
            raise FlowInputError(flow.name, problems) from None
    missing = [name for name in flow.plan.input_names if name not in given]
    if missing:
        raise FlowInputError(flow.name, tuple(Problem(f"inputs.{name}", "missing input") for name in missing))
    return given
