"""``Step(...)`` checks common values without pydantic (:mod:`flowkernel.model.prechecked`): a step built
that way must be the step pydantic builds, and a value pydantic rejects must never pass."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowkernel import Input, Ref, Step, tool
from flowkernel.errors import DefinitionError
from flowkernel.model.cache import CachePolicy
from flowkernel.model.policies import Fallback
from flowkernel.model.prechecked import prechecked_step_fields, valid_step_id
from flowkernel.model.retry import RetryPolicy
from flowkernel.model.step import STEP_ID_PATTERN


@tool(validate=False)
def inc(x: Any) -> Any:
    return x


ids = st.one_of(
    st.from_regex(STEP_ID_PATTERN, fullmatch=True),
    st.text(max_size=6),
    st.sampled_from(["a\n", "-a", ".a", "a.b-c", "_", "é", "a b", "", "1a", "class"]),
)
fields = {
    "id": ids | st.integers(),
    "tool": st.sampled_from([inc, None, "inc"]),
    "arguments": st.sampled_from([{}, {"x": Ref("a")}, {"x": 1, "y": [Input("i")]}, {1: 2}, None, [("x", 1)]]),
    "after": st.sampled_from([(), ["a"], ("a", "b"), "a", [1], None, ("a",)]),
    "retry": st.sampled_from([None, RetryPolicy(), {"max_attempts": 2}, 3]),
    "timeout": st.sampled_from([None, 1, 0, -1, 2.5, True, float("inf"), float("nan"), 10**8, 1e7, "3"]),
    "on_error": st.sampled_from(["fail", "continue", "other", Fallback(value=1), None]),
    "cache": st.sampled_from([None, False, True, 0, CachePolicy(), {"version": "2"}]),
    "when": st.sampled_from([None, "steps.a", 1]),
    "join": st.sampled_from(["all", "any", "none", None]),
    "max_concurrency": st.sampled_from([None, 2]),
    "map": st.sampled_from([None, Input("xs")]),
    "typo": st.just(1),
}
keywords = st.fixed_dictionaries({"id": fields["id"]}, optional={k: v for k, v in fields.items() if k != "id"})


def _pydantic_step(data: dict[str, Any]) -> Step | None:
    try:
        return Step.model_validate(data)  # pydantic's own validation, never the precheck
    except Exception:
        return None


@settings(max_examples=600, deadline=None)
@given(keywords)
def test_a_prechecked_step_is_the_step_pydantic_builds(data: dict[str, Any]) -> None:
    expected = _pydantic_step(data)
    prechecked = prechecked_step_fields(data)
    if expected is None:
        assert prechecked is None
        with pytest.raises(DefinitionError):
            Step(**data)
        return
    step = Step(**data)
    for built in (step, *([] if prechecked is None else [prechecked])):
        values = built if isinstance(built, dict) else built.__dict__
        assert list(values) == list(expected.__dict__)
        for name, value in expected.__dict__.items():
            assert type(values[name]) is type(value), name
            assert values[name] == value or value != value, name  # (nan never reaches a step)
    assert step.__pydantic_fields_set__ == expected.__pydantic_fields_set__
    assert step.__pydantic_extra__ is None
    assert step.__pydantic_private__ is None
    assert step == expected
    assert repr(step) == repr(expected)


def test_a_prechecked_step_owns_its_arguments_and_stays_frozen() -> None:
    arguments = {"x": Ref("a")}
    step = Step(id="s", tool=inc, arguments=arguments)
    arguments["y"] = 2
    assert step.arguments == {"x": Ref("a")}
    with pytest.raises(Exception, match="frozen"):
        step.id = "t"  # type: ignore[misc]


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=8) | st.from_regex(STEP_ID_PATTERN, fullmatch=True))
def test_step_ids_are_checked_as_pydantic_checks_them(step_id: str) -> None:
    assert valid_step_id(step_id) == (_pydantic_step({"id": step_id, "tool": inc}) is not None)
