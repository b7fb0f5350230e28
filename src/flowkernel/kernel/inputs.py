"""Checking a run's inputs against the flow before anything is dispatched."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ..errors import FlowInputError, Problem
from ..model.flow import Flow

__all__ = ("prepare_inputs",)


def prepare_inputs(flow: Flow, inputs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The inputs the run will use, validated by the flow's input model when it has one.

    Raises :class:`FlowInputError` listing every problem: schema violations, inputs the flow does not
    take (a typo would otherwise be ignored), and (without a model) inputs the steps reference but the
    caller did not give.
    """
    model = flow.input_model
    if not inputs and model is None and not flow.plan.input_names:  # a flow that takes no inputs, given none
        return {}
    given = dict(inputs or {})
    if model is None and given.keys() == frozenset(flow.plan.input_names):  # exactly the inputs it takes
        return given
    known = flow.plan.input_names if model is None else tuple(model.model_fields)
    problems = []
    if model is None or model.model_config.get("extra") != "allow":
        taken = frozenset(known)  # not the tuple: n inputs would cost n² comparisons
        problems = [Problem(f"inputs.{name}", _unknown_input(name, known)) for name in given if name not in taken]
    if model is None:
        problems += [Problem(f"inputs.{name}", "missing input") for name in known if name not in given]
        validated = given
    else:
        try:
            validated = dict(model.model_validate(given))
        except ValidationError as exc:
            problems += [
                Problem("inputs." + ".".join(map(str, e["loc"])) if e["loc"] else "inputs", e["msg"])
                for e in exc.errors(include_url=False)
                if not (e["type"] == "extra_forbidden" and e["loc"] and e["loc"][0] not in known)
            ]
    if problems:
        raise FlowInputError(flow.name, tuple(problems))
    return validated


def _unknown_input(name: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return (
        f"unknown input {name!r}"
        + (f"; did you mean {close[0]!r}?" if close else "")
        + (f" (the flow takes: {', '.join(known)})" if known and not close else "")
    )
