"""Run inputs are checked against the flow before anything is dispatched."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from flowkernel import Flow, FlowInputError, Input, Step, tool
from flowkernel.kernel.inputs import prepare_inputs


@tool
def echo(x: object = None) -> object:
    return x


class Inputs(BaseModel):
    count: int
    name: str = "n"


def problems(flow: Flow, inputs: dict[str, object]) -> list[tuple[str, str]]:
    with pytest.raises(FlowInputError) as excinfo:
        prepare_inputs(flow, inputs)
    return [(p.location, p.message) for p in excinfo.value.problems]


def test_without_a_model_every_referenced_input_is_required_and_nothing_else_is_taken() -> None:
    flow = Flow(name="f", steps=[Step(id="a", tool=echo, arguments={"x": Input("count")})])
    assert prepare_inputs(flow, {"count": 1}) == {"count": 1}
    assert problems(flow, {"cuont": 1}) == [
        ("inputs.cuont", "unknown input 'cuont'; did you mean 'count'?"),
        ("inputs.count", "missing input"),
    ]


def test_with_a_model_inputs_are_validated_and_coerced_and_all_problems_listed() -> None:
    flow = Flow(name="f", input_model=Inputs, steps=[Step(id="a", tool=echo, arguments={"x": Input("count")})])
    assert prepare_inputs(flow, {"count": "3"}) == {"count": 3, "name": "n"}
    found = problems(flow, {"count": "many", "extra": 1})
    assert ("inputs.extra", "unknown input 'extra' (the flow takes: count, name)") in found
    assert any(location == "inputs.count" and "valid integer" in message for location, message in found)


class _CountedName(str):
    """An input name that counts how often it is compared for equality."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        _CountedName.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_checking_many_inputs_takes_time_linear_in_their_number() -> None:
    # Regression: the names were looked up in a tuple, so n inputs cost n² comparisons (a map step
    # of 20,000 elements, whose child flow took one input per element, spent 2.4 s here).
    n = 2_000
    flow = Flow(name="f", steps=[Step(id=f"s{k}", tool=echo, arguments={"x": Input(f"in{k}")}) for k in range(n)])
    given = {_CountedName(f"in{k}"): k for k in range(n)}
    _CountedName.compared = 0
    assert prepare_inputs(flow, given) == given
    assert _CountedName.compared <= 2 * n
