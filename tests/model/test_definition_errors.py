"""Construction errors are flowkernel errors listing every problem (issue 10, item 13)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from flowkernel import Flow, FlowKernelError, FlowValidationError, Step, Tool, tool
from flowkernel.errors import DefinitionError, Problem
from flowkernel.model import ContextPolicy, Fallback, RetryPolicy


@tool
def echo(x: Any = None) -> Any:
    return x


def test_a_bad_step_lists_every_problem_at_once_as_a_flowkernel_error() -> None:
    with pytest.raises(DefinitionError) as caught:
        Step(id="bad id", retries=-1, timeout=math.nan)  # type: ignore[call-arg]
    error = caught.value
    assert isinstance(error, FlowKernelError)
    assert isinstance(error, ValueError)
    assert error.kind == "step"
    assert error.name == "bad id"
    assert [p.location for p in error.problems] == ["id", "timeout", "retries", "(the whole)"]
    messages = [p.message for p in error.problems]
    assert "finite number" in messages[1]
    assert messages[2] == "unknown field 'retries'; did you mean 'retry'?"
    assert "exactly one of tool= and flow=" in messages[3]
    assert str(error).startswith("invalid step 'bad id': 4 problems\n  - id: ")
    assert "errors.pydantic.dev" not in str(error)


@pytest.mark.parametrize("targets", [{}, {"tool": echo, "flow": Flow(name="c", steps=[Step(id="a", tool=echo)])}])
def test_neither_or_both_targets(targets: dict[str, Any]) -> None:
    with pytest.raises(DefinitionError) as caught:
        Step(id="s", **targets)
    assert caught.value.problems == (
        Problem("(the whole)", "a step runs a tool or a sub-flow: give exactly one of tool= and flow="),
    )


def test_nested_policy_problems_are_named_by_their_path() -> None:
    with pytest.raises(DefinitionError) as caught:
        Step(id="s", tool=echo, retry={"max_attempts": 0, "max_delay": math.inf}, on_error="ignore")  # type: ignore[arg-type]
    locations = [p.location for p in caught.value.problems]
    assert locations[:2] == ["retry.max_attempts", "retry.max_delay"]
    assert any(location.startswith("on_error") for location in locations)


@pytest.mark.parametrize(
    ("build", "kind"),
    [
        (lambda: RetryPolicy(max_attempts=-1), "retry policy"),
        (lambda: RetryPolicy(initial_delay=1e12), "retry policy"),
        (lambda: Fallback(value=1, tool=echo), "fallback"),
        (lambda: ContextPolicy(collision="explode"), "context policy"),
        (lambda: Tool(name="", fn=3, timeout=-1), "tool"),
        (lambda: tool(timeout=math.inf)(lambda: None), "tool"),
        (lambda: Step(id="s", tool=echo, timeout=1e12), "step"),
    ],
)
def test_every_model_raises_a_definition_error(build: Any, kind: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        build()
    assert caught.value.kind == kind
    assert caught.value.problems


def test_a_tool_lists_all_its_problems() -> None:
    with pytest.raises(DefinitionError) as caught:
        Tool(name="", fn=3, timeout=-1)
    assert [p.location for p in caught.value.problems] == ["name", "fn", "timeout"]


def test_steps_given_as_data_are_all_checked_with_the_flow() -> None:
    with pytest.raises(FlowValidationError) as caught:
        Flow(name="", steps=[{"id": "x y", "tool": echo}, {"id": "b"}])  # type: ignore[list-item]
    assert [p.location for p in caught.value.problems] == ["name", "steps.0.id", "steps.1"]


def test_durations_are_bounded_and_finite() -> None:
    assert Step(id="s", tool=echo, timeout=1e7).timeout == 1e7
    for bad in (math.inf, math.nan, 1e7 + 1):
        with pytest.raises(DefinitionError):
            Step(id="s", tool=echo, timeout=bad)
        with pytest.raises(DefinitionError):
            RetryPolicy(max_delay=bad)
