"""Typed errors: problem lists, messages, the hierarchy; ToolError, the one raised by tools."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest

import flowkernel
from flowkernel import (
    DriverNotFoundError,
    ErrorInfo,
    ErrorKind,
    FlowInputError,
    FlowKernelError,
    FlowValidationError,
    Problem,
    ProtocolError,
    ToolError,
)


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


def test_tool_error_carries_a_message_and_a_copy_of_its_details() -> None:
    details = {"code": -32602, "data": {"field": "q"}}
    error = ToolError("the server refused the call", details=details)
    details["code"] = 0
    assert str(error) == "the server refused the call"
    assert error.message == "the server refused the call"
    assert error.details == {"code": -32602, "data": {"field": "q"}}
    assert ToolError("no details").details is None
    with pytest.raises(TypeError):
        ToolError("details are keyword-only", {"code": 1})  # type: ignore[call-arg]


def test_tool_error_is_a_plain_exception_not_a_flowkernel_error() -> None:
    assert issubclass(ToolError, Exception)
    assert not issubclass(ToolError, FlowKernelError)  # `except FlowKernelError` must not catch what tools raise
    assert flowkernel.ToolError is ToolError
    assert "ToolError" in flowkernel.__all__
    assert "ToolError" in flowkernel.errors.__all__


def test_tool_error_pickles_with_its_details() -> None:
    back = pickle.loads(pickle.dumps(ToolError("remote", details={"code": 7})))  # as Dask ships it back
    assert type(back) is ToolError
    assert (str(back), back.details) == ("remote", {"code": 7})


def test_a_tool_errors_details_reach_its_error_record() -> None:
    class RateLimited(ToolError):
        pass

    try:
        raise RateLimited("slow down", details={"retry_after": 2.5})
    except ToolError as exc:
        record = ErrorInfo.from_exception(exc)
    assert record.kind is ErrorKind.TOOL
    assert record.type == f"{__name__}.{RateLimited.__qualname__}"
    assert record.message == "slow down"
    assert record.details == {"retry_after": 2.5}
    assert record.traceback is not None
    assert "test_a_tool_errors_details_reach_its_error_record" in record.traceback


def test_misuse_errors_are_typed_problem_lists_and_still_value_errors() -> None:
    from flowkernel.errors import DefinitionError, JournalError, ResumeError, RunOptionsError

    problems = (Problem("a", "one"), Problem("b", "two"))
    for error in (DefinitionError("step", "s", problems), RunOptionsError("f", problems), ResumeError("r", problems)):
        assert isinstance(error, FlowKernelError)
        assert isinstance(error, ValueError)  # what pydantic's ValidationError and the old errors were
        assert error.problems == problems
        assert str(error).endswith("2 problems\n  - a: one\n  - b: two")
    assert str(DefinitionError("retry policy", None, problems[:1])) == "invalid retry policy: 1 problem\n  - a: one"
    assert str(RunOptionsError("f", problems[:1])).startswith("bad run options for flow 'f': 1 problem")
    assert issubclass(ResumeError, JournalError)


def test_resuming_with_inputs_or_other_options_is_a_resume_error(tmp_path: Any) -> None:
    from flowkernel import Flow, Input, Step, tool
    from flowkernel.errors import ResumeError
    from flowkernel.host.journal import SqliteJournal
    from flowkernel_sync import SyncDriver

    @tool
    def one(n: int) -> int:
        return n

    flow = Flow(name="f", steps=[Step(id="a", tool=one, arguments={"n": Input("n")})])
    with SqliteJournal(tmp_path / "runs.db") as journal:
        SyncDriver().run(flow, {"n": 1}, journal=journal, run_id="r", max_concurrency=2)
        with pytest.raises(ResumeError) as caught:
            SyncDriver().run(flow, {"n": 2}, journal=journal, run_id="r", resume=True)
        assert [p.location for p in caught.value.problems] == ["inputs"]
        with pytest.raises(ResumeError) as caught:
            SyncDriver().run(flow, journal=journal, run_id="r", resume=True, max_concurrency=3)
        assert [p.location for p in caught.value.problems] == ["max_concurrency"]
        assert caught.value.run_id == "r"


def test_a_resume_error_lists_every_problem_at_once(tmp_path: Any) -> None:
    """Issue 10.13: the first differing option hid the others."""
    from flowkernel import Flow, Input, Step, tool
    from flowkernel.errors import ResumeError
    from flowkernel.host.journal import SqliteJournal
    from flowkernel_sync import SyncDriver

    @tool
    def one(n: int) -> int:
        return n

    flow = Flow(name="f", steps=[Step(id="a", tool=one, arguments={"n": Input("n")})])
    with SqliteJournal(tmp_path / "runs.db") as journal:
        SyncDriver().run(flow, {"n": 1}, journal=journal, run_id="r", max_concurrency=2)
        with pytest.raises(ResumeError) as caught:
            SyncDriver().run(
                flow, {"n": 2}, journal=journal, run_id="r", resume=True, max_concurrency=3, fail_fast=True
            )
        assert [p.location for p in caught.value.problems] == ["inputs", "max_concurrency", "fail_fast"]


def test_a_missing_bundled_driver_says_which_extra_installs_it() -> None:
    error = DriverNotFoundError("trio", ("sync",))
    assert str(error) == (
        "no driver named 'trio' is installed (installed: sync); install it with pip install \"flowkernel[trio]\""
    )
    assert "pip install" not in str(DriverNotFoundError("mine", ("sync",)))  # not one flowkernel releases
