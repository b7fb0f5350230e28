"""Flow's own methods: copies, and what building one compiles."""

from __future__ import annotations

import pytest

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
