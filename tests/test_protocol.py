"""Protocol messages: immutable, typed equality, hashable, pattern-matchable."""

from __future__ import annotations

import operator
from typing import Any

import pytest

from flowkernel import (
    Cancel,
    Cancelled,
    Command,
    Completion,
    ErrorInfo,
    ErrorKind,
    Flow,
    Invoke,
    ProtocolError,
    Raised,
    Returned,
    RunStatus,
    StartTimer,
    Step,
    StepStatus,
    StopRun,
    TimerFired,
    tool,
)

from .kernel.support import finish, start

ERROR = ErrorInfo(ErrorKind.TOOL, "ValueError", "boom", "s")


@tool
def noop() -> Any:  # the tests answer anything for it: no return annotation to check
    pass


def test_messages_are_immutable() -> None:
    returned = Returned("a@1", 1, 0.0, 1.0)
    with pytest.raises(AttributeError):
        returned.value = 2  # type: ignore[misc]
    invoke = Invoke("a@1", "a", noop, {"x": 1}, 1)
    with pytest.raises(AttributeError):
        invoke.attempt = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        returned[0] = "b@1"  # type: ignore[index]


def test_equal_fields_of_different_message_types_are_not_equal() -> None:
    returned = Returned("a@1", ERROR, 0.0, 1.0)
    raised = Raised("a@1", ERROR, 0.0, 1.0)
    assert tuple(returned)[:4] == tuple(raised)  # the same fields (a Returned also says whether it was cached)
    assert returned != raised
    assert operator.eq(returned, raised) is False
    assert Cancel("a@1") != Cancelled("a@1")
    assert Cancelled("a@1") != TimerFired("a@1")
    assert TimerFired("a@1") != StopRun("a@1")


def test_messages_never_equal_plain_tuples_either_way() -> None:
    assert Cancelled("a@1") != ("a@1",)
    # the plain tuple on the left: Python tries the subclass's reflected __eq__ first
    assert operator.eq(("a@1",), Cancelled("a@1")) is False
    assert operator.ne(("a@1",), Cancelled("a@1")) is True
    assert Returned("a@1", 1, 0.0, 1.0) != ("a@1", 1, 0.0, 1.0)
    assert StartTimer("t", 1.0) != ("t", 1.0)


def test_messages_of_the_same_type_compare_by_value() -> None:
    assert Returned("a@1", [1], 0.0, 1.0) == Returned("a@1", [1], 0.0, 1.0)
    assert Returned("a@1", [1], 0.0, 1.0) != Returned("a@1", [2], 0.0, 1.0)
    assert StartTimer("t", 1.5) == StartTimer(call_id="t", seconds=1.5)


def test_messages_are_hashable_and_hash_by_type() -> None:
    messages = {Cancel("x"), Cancelled("x"), TimerFired("x"), StopRun("x"), Cancel("x"), Raised("x", ERROR, 0.0, 1.0)}
    assert len(messages) == 5
    assert hash(Cancel("x")) == hash(Cancel("x"))
    assert {Cancel("x"): 1}[Cancel("x")] == 1
    assert Cancel("x") not in {Cancelled("x")}


def test_pattern_matching_on_completions() -> None:
    def describe(completion: Completion) -> str:
        match completion:
            case Returned(call_id, value, started, finished):
                return f"returned {call_id} {value} in {finished - started}"
            case Raised(call_id=call_id, error=ErrorInfo(type=kind)):
                return f"raised {call_id} {kind}"
            case Cancelled(call_id):
                return f"cancelled {call_id}"
            case TimerFired(call_id):
                return f"timer {call_id}"
            case StopRun(reason=reason):
                return f"stop {reason}"
        return "unknown"

    assert describe(Returned("a@1", 42, 1.0, 3.0)) == "returned a@1 42 in 2.0"
    assert describe(Raised("a@1", ERROR, 0.0, 1.0)) == "raised a@1 ValueError"
    assert describe(Cancelled("b@1")) == "cancelled b@1"
    assert describe(TimerFired("t")) == "timer t"
    assert describe(StopRun("ctrl-c")) == "stop ctrl-c"


def test_pattern_matching_on_commands() -> None:
    def describe(command: Invoke | StartTimer | Cancel) -> str:
        match command:
            case Invoke(call_id, step_id, tool=t, arguments={"x": x}):
                return f"invoke {call_id} {step_id} {t.name} x={x}"
            case StartTimer(call_id, seconds):
                return f"timer {call_id} {seconds}"
            case Cancel(call_id):
                return f"cancel {call_id}"
        return "unknown"

    assert describe(Invoke("a@1", "a", noop, {"x": 3}, 1)) == "invoke a@1 a noop x=3"
    assert describe(StartTimer("t", 0.5)) == "timer t 0.5"
    assert describe(Cancel("a@1")) == "cancel a@1"


def test_fields_are_named_and_ordered() -> None:
    assert Invoke._fields == ("call_id", "step_id", "tool", "arguments", "attempt", "run_id", "cache", "timeout")
    assert Returned._fields == ("call_id", "value", "started", "finished", "cached")
    assert Raised._fields == ("call_id", "error", "started", "finished")
    assert Returned("a", 1, 0.0, 1.0)._replace(value=2) == Returned("a", 2, 0.0, 1.0)


# ---- a driver breaking the protocol gets a ProtocolError from the kernel ------------------------


def two_step_kernel() -> tuple[Any, list[Command]]:
    return start(Flow(name="f", steps=[Step(id="a", tool=noop), Step(id="b", tool=noop)]), run_id="r")


def test_the_kernel_issues_deterministic_call_ids() -> None:
    _, commands = two_step_kernel()
    assert commands == [Invoke("a@1", "a", noop, {}, 1, "r"), Invoke("b@1", "b", noop, {}, 1, "r")]


def test_completing_a_call_twice_is_a_protocol_error() -> None:
    gen, _ = two_step_kernel()
    assert gen.send([Returned("a@1", 1, 0.0, 1.0)]) == []
    with pytest.raises(ProtocolError, match=r"completed call 'a@1' twice"):
        gen.send([Returned("a@1", 1, 0.0, 1.0)])


def test_completing_a_call_twice_in_one_batch_is_a_protocol_error() -> None:
    gen, _ = two_step_kernel()
    with pytest.raises(ProtocolError, match="twice"):
        gen.send([Raised("a@1", ERROR, 0.0, 1.0), Returned("a@1", 1, 0.0, 1.0)])


def test_a_completion_for_an_unknown_call_is_a_protocol_error() -> None:
    gen, _ = two_step_kernel()
    with pytest.raises(ProtocolError, match=r"'zzz@1', which the kernel never issued"):
        gen.send([Returned("zzz@1", 1, 0.0, 1.0)])


def test_sending_no_completions_is_a_protocol_error() -> None:
    gen, _ = two_step_kernel()
    with pytest.raises(ProtocolError, match=r"no completions while 2 call\(s\) are outstanding \(a@1, b@1\)"):
        gen.send([])


def test_cancelled_without_a_cancel_is_a_protocol_error() -> None:
    gen, _ = two_step_kernel()
    with pytest.raises(ProtocolError, match=r"answered invoke 'a@1' with Cancelled"):
        gen.send([Cancelled("a@1")])


def test_timer_fired_for_an_invoke_is_a_protocol_error() -> None:
    gen, _ = two_step_kernel()
    with pytest.raises(ProtocolError, match="does not fit"):
        gen.send([TimerFired("a@1")])


def test_stop_run_cancels_in_flight_calls_and_returns_a_partial_result() -> None:
    gen, _ = two_step_kernel()
    commands = gen.send([Returned("a@1", "A", 0.0, 1.0), StopRun("test")])
    assert commands == [Cancel("b@1")]
    assert gen.send([StopRun("again")]) == []  # a second stop changes nothing
    result = finish(gen, [Cancelled("b@1")])
    assert result.status is RunStatus.CANCELLED
    assert result.reason == "cancelled: test"
    assert result.step("a").output == "A"
    assert result.step("b").status is StepStatus.CANCELLED
