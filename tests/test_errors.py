"""Typed errors: problem lists, messages, the hierarchy."""

from __future__ import annotations

import dataclasses

import pytest

from flowkernel import DriverNotFoundError, FlowInputError, FlowKernelError, FlowValidationError, Problem, ProtocolError


def test_problem_is_immutable_and_prints_location_first() -> None:
    problem = Problem("steps[0] (a).arguments.x", "bad")
    assert str(problem) == "steps[0] (a).arguments.x: bad"
    with pytest.raises(dataclasses.FrozenInstanceError):
        problem.message = "other"  # type: ignore[misc]


def test_problem_list_errors_carry_and_print_every_problem() -> None:
    problems = (Problem("a", "one"), Problem("b", "two"))
    error = FlowValidationError("flow", problems)
    assert error.problems == problems
    assert error.name == "flow"
    assert str(error) == "invalid flow 'flow': 2 problems\n  - a: one\n  - b: two"
    single = FlowInputError("flow", problems[:1])
    assert str(single) == "bad inputs for flow 'flow': 1 problem\n  - a: one"


def test_hierarchy() -> None:
    for cls in (FlowValidationError, FlowInputError, ProtocolError, DriverNotFoundError):
        assert issubclass(cls, FlowKernelError)
    assert not issubclass(FlowValidationError, FlowInputError)
    assert not issubclass(FlowInputError, FlowValidationError)


def test_driver_not_found_names_the_installed_drivers() -> None:
    error = DriverNotFoundError("nope", ("asyncio", "sync"))
    assert error.name == "nope"
    assert error.installed == ("asyncio", "sync")
    assert str(error) == "no driver named 'nope' is installed (installed: asyncio, sync)"
    assert str(DriverNotFoundError("x", ())) == "no driver named 'x' is installed (installed: none)"
