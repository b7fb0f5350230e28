"""Flow's own methods: copies, and what building one compiles."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter

from flowkernel import Flow, Ref, Step, tool
from flowkernel.errors import FlowValidationError


def test_a_copy_with_other_steps_is_built_anew_with_its_own_plan() -> None:
    """pydantic's model_copy kept the original's compiled plan: a copy with other steps (or another limit
    on a map step) ran as the original did."""
    double = tool(lambda x: 2 * x, name="double")
    original = Flow(name="f", steps=[Step(id="a", tool=double, arguments={"x": 1})])
    copied = original.model_copy(update={"steps": [Step(id="b", tool=double, arguments={"x": 2})]})
    assert copied.plan.step_ids == ("b",)
    assert original.plan.step_ids == ("a",)
    with pytest.raises(FlowValidationError, match="unknown step 'zz'"):
        original.model_copy(update={"outputs": {"out": Ref("zz")}})
    assert original.model_copy() is not original


def test_built_steps_are_taken_as_they_are_and_anything_else_goes_through_pydantic() -> None:
    @tool(validate=False)
    def echo(x: object = None) -> object:
        return x

    built = [Step(id="a", tool=echo), Step(id="b", tool=echo)]
    flow = Flow(name="f", steps=built)
    general = TypeAdapter(tuple[Step, ...]).validate_python(built)  # what pydantic gives without the fast path
    assert flow.steps == general
    assert all(mine is theirs for mine, theirs in zip(flow.steps, general, strict=True))
    from_dicts = Flow(name="g", steps=[{"id": "a", "tool": echo}])
    assert isinstance(from_dicts.steps[0], Step)
    with pytest.raises(FlowValidationError) as caught:
        Flow(name="h", steps=[built[0], "not a step"])
    assert [p.location for p in caught.value.problems] == ["steps.1"]
