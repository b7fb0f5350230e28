"""Policies in the kernel, driven by hand with exact commands: retries and backoff timers, timeouts, the
run deadline, fail_fast, error policies (continue, fallback value or tool), conditions and join="any"."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from flowkernel import (
    AttemptRecord,
    AttemptStatus,
    Cancel,
    Cancelled,
    Completion,
    ErrorInfo,
    ErrorKind,
    Flow,
    Input,
    Invoke,
    ProtocolError,
    Raised,
    Ref,
    Returned,
    RunOptions,
    RunStatus,
    StartTimer,
    Step,
    StepStatus,
    StopRun,
    TimerFired,
    tool,
)
from flowkernel.model import Fallback, RetryPolicy
from flowkernel.model.retry import jitter_unit

from .support import RUN_ID, backup, echo, error, fail, finish, invoke, ok, start, statuses, step


def retry(max_attempts: int = 3, initial_delay: float = 0.5, **more: Any) -> RetryPolicy:
    return RetryPolicy(max_attempts=max_attempts, initial_delay=initial_delay, **more)


# ---- retries -----------------------------------------------------------------------------------


def test_a_failed_attempt_waits_for_its_backoff_timer_then_retries_with_the_same_arguments() -> None:
    policy = retry(max_attempts=3, initial_delay=0.5, multiplier=2)
    flow = Flow(name="f", steps=[Step(id="s", tool=echo, arguments={"x": Input("k"), "y": [1, 2]}, retry=policy)])
    kernel, first = start(flow, {"k": "K"})
    arguments = {"x": "K", "y": [1, 2]}
    assert first == [invoke("s@1", arguments)]
    assert kernel.send([fail("s@1")]) == [StartTimer("s@1/backoff", 0.5)]
    assert kernel.send([TimerFired("s@1/backoff")]) == [invoke("s@2", arguments)]
    assert kernel.send([fail("s@2")]) == [StartTimer("s@2/backoff", 1.0)]
    assert kernel.send([TimerFired("s@2/backoff")]) == [invoke("s@3", arguments)]
    result = finish(kernel, [ok("s@3", "third time")])
    record = result.step("s")
    assert record.status == StepStatus.SUCCEEDED
    assert record.output == "third time"
    assert record.error is None
    assert record.input == arguments
    err = error().for_step("s")
    assert record.attempts == (
        AttemptRecord(1, AttemptStatus.FAILED, 0.0, 1.0, err, 0.5),
        AttemptRecord(2, AttemptStatus.FAILED, 0.0, 1.0, err, 1.0),
        AttemptRecord(3, AttemptStatus.SUCCEEDED, 0.0, 1.0, None, None),
    )
    assert result.status == RunStatus.SUCCEEDED


def test_the_last_attempt_is_not_followed_by_a_backoff() -> None:
    flow = Flow(name="f", steps=[step("s", retry=retry(max_attempts=2, initial_delay=0.25))])
    kernel, _ = start(flow)
    assert kernel.send([fail("s@1")]) == [StartTimer("s@1/backoff", 0.25)]
    assert kernel.send([TimerFired("s@1/backoff")]) == [invoke("s@2")]
    result = finish(kernel, [fail("s@2")])
    record = result.step("s")
    assert record.status == StepStatus.FAILED
    assert [a.retry_in for a in record.attempts] == [0.25, None]
    assert [a.status for a in record.attempts] == [AttemptStatus.FAILED, AttemptStatus.FAILED]
    assert record.error == error().for_step("s")
    assert result.status == RunStatus.FAILED


def test_the_backoff_delay_includes_the_deterministic_jitter() -> None:
    policy = retry(max_attempts=3, initial_delay=1.0, multiplier=3, jitter=0.5)
    flow = Flow(name="f", steps=[step("fetch", retry=policy)])
    kernel, _ = start(flow)
    first = policy.delay(1, jitter_unit(RUN_ID, "fetch", 1))
    second = policy.delay(2, jitter_unit(RUN_ID, "fetch", 2))
    assert first != 1.0
    assert second != first * 3
    assert kernel.send([fail("fetch@1")]) == [StartTimer("fetch@1/backoff", first)]
    kernel.send([TimerFired("fetch@1/backoff")])
    assert kernel.send([fail("fetch@2")]) == [StartTimer("fetch@2/backoff", second)]
    kernel.send([TimerFired("fetch@2/backoff")])
    result = finish(kernel, [ok("fetch@3")])
    assert [a.retry_in for a in result.step("fetch").attempts] == [first, second, None]


def test_the_tool_retry_policy_applies_unless_the_step_overrides_it() -> None:
    flaky = tool(lambda x=None: x, name="flaky", retry=retry(max_attempts=2, initial_delay=0.75))
    flow = Flow(
        name="f",
        steps=[
            Step(id="a", tool=flaky),
            Step(id="b", tool=flaky, retry=retry(max_attempts=2, initial_delay=0.125)),
        ],
    )
    kernel, _ = start(flow)
    assert kernel.send([fail("a@1"), fail("b@1")]) == [
        StartTimer("a@1/backoff", 0.75),
        StartTimer("b@1/backoff", 0.125),
    ]


def test_a_zero_initial_delay_retries_at_once() -> None:
    flow = Flow(name="f", steps=[step("s", retry=retry(max_attempts=3, initial_delay=0))])
    kernel, _ = start(flow)
    assert kernel.send([fail("s@1")]) == [invoke("s@2")]
    assert kernel.send([fail("s@2")]) == [invoke("s@3")]
    result = finish(kernel, [ok("s@3")])
    assert [a.retry_in for a in result.step("s").attempts] == [0.0, 0.0, None]


def test_a_retry_waits_for_a_free_slot_and_keeps_its_declaration_order() -> None:
    flow = Flow(name="f", steps=[step("a", retry=retry(initial_delay=0)), step("b"), step("c")])
    kernel, first = start(flow, max_concurrency=2)
    assert first == [invoke("a@1"), invoke("b@1")]
    # a's retry is ready at once, ahead of c (declared later), and takes the slot a freed.
    assert kernel.send([fail("a@1")]) == [invoke("a@2")]
    assert kernel.send([ok("b@1")]) == [invoke("c@1")]


def test_error_types_outside_retry_on_are_not_retried() -> None:
    policy = retry(retry_on=("ConnectionError", "Transient"))
    flow = Flow(name="f", steps=[step("a", retry=policy), step("b", retry=policy), step("c", retry=policy)])
    kernel, _ = start(flow)
    commands = kernel.send(
        [fail("a@1", "ValueError"), fail("b@1", "ConnectionError"), fail("c@1", "pkg.mod.Transient")]
    )
    assert commands == [StartTimer("b@1/backoff", 0.5), StartTimer("c@1/backoff", 0.5)]
    assert kernel.send([TimerFired("b@1/backoff"), TimerFired("c@1/backoff")]) == [invoke("b@2"), invoke("c@2")]
    result = finish(kernel, [ok("b@2"), ok("c@2")])
    a = result.step("a")
    assert a.status == StepStatus.FAILED
    assert a.attempts == (AttemptRecord(1, AttemptStatus.FAILED, 0.0, 1.0, error().for_step("a"), None),)
    assert statuses(result) == {"a": "failed", "b": "succeeded", "c": "succeeded"}


def test_driver_errors_are_not_retried() -> None:
    flow = Flow(name="f", steps=[step("s", retry=retry())])
    kernel, _ = start(flow)
    result = finish(kernel, [fail("s@1", "ForeignLoopError", kind=ErrorKind.DRIVER)])
    assert len(result.step("s").attempts) == 1
    assert result.step("s").error.kind == ErrorKind.DRIVER  # type: ignore[union-attr]


def test_invalid_output_is_retried() -> None:
    class Out(BaseModel):
        n: int

    typed = tool(lambda: None, name="typed", output_model=Out)
    flow = Flow(name="f", steps=[Step(id="s", tool=typed, retry=retry(initial_delay=0))])
    kernel, first = start(flow)
    assert first == [Invoke("s@1", "s", typed, {}, 1, RUN_ID)]
    assert kernel.send([ok("s@1", {"n": "x"})]) == [Invoke("s@2", "s", typed, {}, 2, RUN_ID)]
    result = finish(kernel, [ok("s@2", {"n": 3})])
    record = result.step("s")
    assert record.output == Out(n=3)
    assert record.attempts[0].error.kind == ErrorKind.OUTPUT_VALIDATION  # type: ignore[union-attr]
    assert record.attempts[0].retry_in == 0.0


def test_input_validation_errors_are_not_retried() -> None:
    class Args(BaseModel):
        x: int

    typed = tool(lambda x: x, name="typed", input_model=Args)
    flow = Flow(
        name="f",
        steps=[step("a"), Step(id="b", tool=typed, arguments={"x": Ref("a")}, retry=retry(max_attempts=5))],
    )
    kernel, _ = start(flow)
    result = finish(kernel, [ok("a@1", "not a number")])
    record = result.step("b")
    assert record.status == StepStatus.FAILED
    assert record.attempts == ()
    assert record.error.kind == ErrorKind.INPUT_VALIDATION  # type: ignore[union-attr]


def test_argument_errors_are_not_retried() -> None:
    flow = Flow(name="f", steps=[step("a"), step("b", Ref("a", "length(@)"), retry=retry(max_attempts=5))])
    kernel, _ = start(flow)
    result = finish(kernel, [ok("a@1", 5)])
    assert result.step("b").error.kind == ErrorKind.ARGUMENT  # type: ignore[union-attr]
    assert result.step("b").attempts == ()


def test_a_retry_scheduled_before_a_stop_is_cancelled_with_its_timer() -> None:
    flow = Flow(name="f", steps=[step("s", retry=retry())])
    kernel, _ = start(flow)
    kernel.send([fail("s@1")])
    assert kernel.send([StopRun("user")]) == [Cancel("s@1/backoff")]
    result = finish(kernel, [Cancelled("s@1/backoff")])
    record = result.step("s")
    assert record.status == StepStatus.CANCELLED
    assert [a.retry_in for a in record.attempts] == [0.5]
    assert result.status == RunStatus.CANCELLED


def test_an_attempt_failing_after_a_stop_is_not_retried() -> None:
    """It would have been retried, so the stop cut the step short: cancelled, not failed (nor fallen back)."""
    flow = Flow(name="f", steps=[step("s", retry=retry(), on_error=Fallback(value=0))])
    kernel, _ = start(flow)
    assert kernel.send([StopRun("user")]) == [Cancel("s@1")]
    result = finish(kernel, [fail("s@1")])  # the failure raced the cancellation
    assert result.step("s").status == StepStatus.CANCELLED
    assert not result.step("s").fallback
    assert [a.retry_in for a in result.step("s").attempts] == [None]
    assert result.status == RunStatus.CANCELLED


# ---- timeouts ----------------------------------------------------------------------------------


def test_a_timeout_is_a_timer_started_with_the_invoke() -> None:
    slow = tool(lambda x=None: x, name="slow", timeout=9)
    flow = Flow(name="f", steps=[step("a", timeout=5), Step(id="b", tool=slow), step("c")])
    _, first = start(flow)
    assert first == [
        invoke("a@1", timeout=5),
        StartTimer("a@1/timeout", 5),
        Invoke("b@1", "b", slow, {}, 1, RUN_ID, timeout=9),
        StartTimer("b@1/timeout", 9),
        invoke("c@1"),
    ]


def test_a_timed_out_call_is_cancelled_and_its_attempt_fails_with_kind_timeout() -> None:
    flow = Flow(name="f", steps=[step("s", timeout=5), step("t", Ref("s"))])
    kernel, _ = start(flow)
    assert kernel.send([TimerFired("s@1/timeout")]) == [Cancel("s@1")]
    result = finish(kernel, [Cancelled("s@1")])
    record = result.step("s")
    timeout = ErrorInfo(ErrorKind.TIMEOUT, "TimeoutError", "attempt 1 timed out after 5 s", "s")
    assert record.status == StepStatus.FAILED
    assert record.error == timeout
    assert record.attempts == (AttemptRecord(1, AttemptStatus.FAILED, None, None, timeout, None),)
    assert result.step("t").status == StepStatus.SKIPPED
    assert result.step("t").reason == "dependency 's' failed"
    assert result.status == RunStatus.FAILED
    assert result.errors == (timeout,)


def test_a_timed_out_attempt_is_retried_when_the_policy_allows() -> None:
    flow = Flow(name="f", steps=[step("s", timeout=0.5, retry=retry(max_attempts=3, initial_delay=2))])
    kernel, _ = start(flow)
    assert kernel.send([TimerFired("s@1/timeout")]) == [Cancel("s@1"), StartTimer("s@1/backoff", 2)]
    assert kernel.send([Cancelled("s@1")]) == []
    assert kernel.send([TimerFired("s@1/backoff")]) == [invoke("s@2", timeout=0.5), StartTimer("s@2/timeout", 0.5)]
    assert kernel.send([TimerFired("s@2/timeout")]) == [Cancel("s@2"), StartTimer("s@2/backoff", 4)]
    kernel.send([TimerFired("s@2/backoff"), Cancelled("s@2")])
    assert kernel.send([ok("s@3", "made it", 0.0, 0.2)]) == [Cancel("s@3/timeout")]
    result = finish(kernel, [Cancelled("s@3/timeout")])
    record = result.step("s")
    assert record.status == StepStatus.SUCCEEDED
    assert record.output == "made it"
    assert [a.error.message if a.error else None for a in record.attempts] == [
        "attempt 1 timed out after 0.5 s",
        "attempt 2 timed out after 0.5 s",
        None,
    ]
    assert [a.retry_in for a in record.attempts] == [2, 4, None]


def test_a_call_that_outlasted_its_timeout_is_a_timeout_even_if_its_timer_never_fired() -> None:
    """Issue 10.6: an async tool blocking the event loop returns before its timer can fire."""
    flow = Flow(name="f", steps=[step("s", timeout=0.2)])
    kernel, _ = start(flow)
    assert kernel.send([ok("s@1", "late", 10.0, 13.0)]) == [Cancel("s@1/timeout")]
    result = finish(kernel, [Cancelled("s@1/timeout")])
    record = result.step("s")
    assert record.status == StepStatus.FAILED
    assert record.error is not None
    assert (record.error.kind, record.error.message) == ("timeout", "attempt 1 timed out after 0.2 s")
    assert (record.attempts[0].started, record.attempts[0].finished) == (10.0, 13.0)


def test_a_timed_out_attempt_is_not_retried_without_retry_on_timeout() -> None:
    flow = Flow(name="f", steps=[step("s", timeout=1, retry=retry(retry_on_timeout=False))])
    kernel, _ = start(flow)
    assert kernel.send([TimerFired("s@1/timeout")]) == [Cancel("s@1")]
    result = finish(kernel, [Cancelled("s@1")])
    assert result.step("s").error.kind == ErrorKind.TIMEOUT  # type: ignore[union-attr]
    assert len(result.step("s").attempts) == 1


def test_retry_on_does_not_decide_about_timeouts() -> None:
    flow = Flow(name="f", steps=[step("s", timeout=1, retry=retry(initial_delay=0, retry_on=("ConnectionError",)))])
    kernel, _ = start(flow)
    assert kernel.send([TimerFired("s@1/timeout")]) == [
        Cancel("s@1"),
        invoke("s@2", timeout=1),
        StartTimer("s@2/timeout", 1),
    ]


def test_a_call_that_beats_its_timeout_cancels_the_timer_and_a_late_firing_is_ignored() -> None:
    flow = Flow(name="f", steps=[step("s", timeout=5), step("t", Ref("s"))])
    kernel, _ = start(flow)
    assert kernel.send([ok("s@1", 1)]) == [Cancel("s@1/timeout"), invoke("t@1", {"x": 1})]
    assert kernel.send([ok("t@1", 2)]) == []  # still waiting for the timer's answer
    result = finish(kernel, [TimerFired("s@1/timeout")])  # it fired before the Cancel landed
    assert statuses(result) == {"s": "succeeded", "t": "succeeded"}
    assert result.step("s").error is None
    assert result.status == RunStatus.SUCCEEDED


def test_a_cancelled_timeout_timer_ends_the_run_once_answered() -> None:
    flow = Flow(name="f", steps=[step("s", timeout=5)])
    kernel, _ = start(flow)
    assert kernel.send([ok("s@1")]) == [Cancel("s@1/timeout")]
    result = finish(kernel, [Cancelled("s@1/timeout")])
    assert result.status == RunStatus.SUCCEEDED


def test_a_result_and_its_timeout_in_one_batch_result_first() -> None:
    flow = Flow(name="f", steps=[step("s", timeout=5)])
    kernel, _ = start(flow)
    # The timer has answered already: nothing is outstanding, the run ends with this batch.
    result = finish(kernel, [ok("s@1"), TimerFired("s@1/timeout")])
    assert result.step("s").status == StepStatus.SUCCEEDED
    assert result.status == RunStatus.SUCCEEDED


def test_a_timeout_and_its_result_in_one_batch_timeout_first() -> None:
    flow = Flow(name="f", steps=[step("s", timeout=5)])
    kernel, _ = start(flow)
    result = finish(kernel, [TimerFired("s@1/timeout"), ok("s@1")])  # the result stands for the Cancel's answer
    assert result.step("s").status == StepStatus.FAILED
    assert result.step("s").error.kind == ErrorKind.TIMEOUT  # type: ignore[union-attr]


def test_a_late_result_of_a_timed_out_call_is_ignored() -> None:
    flow = Flow(name="f", steps=[step("s", timeout=5)])
    kernel, _ = start(flow)
    assert kernel.send([TimerFired("s@1/timeout")]) == [Cancel("s@1")]
    result = finish(kernel, [ok("s@1", "too late")])  # the result raced the Cancel
    record = result.step("s")
    assert record.status == StepStatus.FAILED
    assert record.output is None
    assert record.error.kind == ErrorKind.TIMEOUT  # type: ignore[union-attr]
    assert len(record.attempts) == 1


def test_a_late_result_of_a_timed_out_call_does_not_count_for_its_retry() -> None:
    flow = Flow(name="f", steps=[step("s", timeout=5, retry=retry(initial_delay=0))])
    kernel, _ = start(flow)
    assert kernel.send([TimerFired("s@1/timeout"), ok("s@1", "late")]) == [
        Cancel("s@1"),
        invoke("s@2", timeout=5),
        StartTimer("s@2/timeout", 5),
    ]
    kernel.send([ok("s@2", "second")])
    result = finish(kernel, [Cancelled("s@2/timeout")])
    assert result.step("s").output == "second"
    assert len(result.step("s").attempts) == 2


def test_a_timed_out_call_frees_its_concurrency_slot_at_once() -> None:
    flow = Flow(name="f", steps=[step("a", timeout=1), step("b")])
    kernel, first = start(flow, max_concurrency=1)
    assert first == [invoke("a@1", timeout=1), StartTimer("a@1/timeout", 1)]
    # b starts before the driver confirms that a was cancelled.
    assert kernel.send([TimerFired("a@1/timeout")]) == [Cancel("a@1"), invoke("b@1")]
    kernel.send([ok("b@1")])
    result = finish(kernel, [Cancelled("a@1")])
    assert statuses(result) == {"a": "failed", "b": "succeeded"}


# ---- the deadline ------------------------------------------------------------------------------


def test_the_deadline_is_a_timer_started_first() -> None:
    _, first = start(Flow(name="f", steps=[step("a")]), deadline=10)
    assert first == [StartTimer("@deadline", 10), invoke("a@1")]


def test_the_deadline_stops_the_run_and_cancels_everything_outstanding() -> None:
    flow = Flow(
        name="f",
        steps=[
            step("done"),
            step("slow", timeout=30),
            step("waiting", retry=retry(initial_delay=5)),
            step("later", Ref("slow")),
            step("queued"),
        ],
        outputs={"done": Ref("done"), "slow": Ref("slow")},
    )
    kernel, first = start(flow, deadline=10, max_concurrency=3)
    assert first == [
        StartTimer("@deadline", 10),
        invoke("done@1"),
        invoke("slow@1", timeout=30),
        StartTimer("slow@1/timeout", 30),
        invoke("waiting@1"),
    ]
    assert kernel.send([ok("done@1", "D"), fail("waiting@1")]) == [
        StartTimer("waiting@1/backoff", 5),
        invoke("queued@1"),
    ]
    assert kernel.send([TimerFired("@deadline")]) == [
        Cancel("slow@1"),
        Cancel("queued@1"),
        Cancel("slow@1/timeout"),
        Cancel("waiting@1/backoff"),
    ]
    assert kernel.send([Cancelled("slow@1"), Cancelled("slow@1/timeout")]) == []
    result = finish(kernel, [Cancelled("queued@1"), Cancelled("waiting@1/backoff")])
    assert result.status == RunStatus.TIMED_OUT
    assert result.reason == "deadline of 10 s exceeded"
    assert statuses(result) == {
        "done": "succeeded",
        "slow": "cancelled",
        "waiting": "cancelled",
        "later": "cancelled",
        "queued": "cancelled",
    }
    assert result.outputs == {"done": "D"}  # the partial result
    assert result.step("slow").attempts == (AttemptRecord(1, AttemptStatus.CANCELLED),)
    assert [a.retry_in for a in result.step("waiting").attempts] == [5]
    assert result.step("later").reason == "dependency 'slow' was cancelled"
    assert result.step("queued").reason is None  # it was invoked: its attempt says what happened
    assert result.step("later").attempts == ()
    assert result.errors == ()


def test_the_deadline_cancels_steps_still_waiting_for_a_slot() -> None:
    flow = Flow(name="f", steps=[step("a"), step("b"), step("c")])
    kernel, first = start(flow, deadline=10, max_concurrency=1)
    assert first == [StartTimer("@deadline", 10), invoke("a@1")]
    assert kernel.send([TimerFired("@deadline")]) == [Cancel("a@1")]
    result = finish(kernel, [Cancelled("a@1")])
    assert result.status == RunStatus.TIMED_OUT
    assert statuses(result) == {"a": "cancelled", "b": "cancelled", "c": "cancelled"}
    assert result.step("b").attempts == ()
    assert result.step("b").reason == "the run stopped (deadline of 10 s exceeded)"
    assert result.outputs == {}


def test_after_the_deadline_a_call_that_still_returns_counts_and_nothing_new_starts() -> None:
    flow = Flow(name="f", steps=[step("a"), step("b", Ref("a"))])
    kernel, _ = start(flow, deadline=1.5)
    assert kernel.send([TimerFired("@deadline")]) == [Cancel("a@1")]
    result = finish(kernel, [ok("a@1", "raced")])
    assert result.status == RunStatus.TIMED_OUT
    assert result.reason == "deadline of 1.5 s exceeded"
    assert statuses(result) == {"a": "succeeded", "b": "cancelled"}


def test_when_the_work_finishes_first_the_deadline_timer_is_cancelled() -> None:
    flow = Flow(name="f", steps=[step("a"), step("b", Ref("a"))])
    kernel, _ = start(flow, deadline=10)
    assert kernel.send([ok("a@1")]) == [invoke("b@1", {"x": "v"})]
    assert kernel.send([ok("b@1")]) == [Cancel("@deadline")]
    result = finish(kernel, [Cancelled("@deadline")])
    assert result.status == RunStatus.SUCCEEDED
    assert result.reason is None


def test_a_deadline_firing_after_its_cancel_is_ignored() -> None:
    kernel, _ = start(Flow(name="f", steps=[step("a")]), deadline=10)
    assert kernel.send([ok("a@1")]) == [Cancel("@deadline")]
    result = finish(kernel, [TimerFired("@deadline")])
    assert result.status == RunStatus.SUCCEEDED


def test_the_deadline_is_kept_while_a_backoff_or_a_timeout_is_pending() -> None:
    flow = Flow(name="f", steps=[step("a", retry=retry(initial_delay=1)), step("b", timeout=3)])
    kernel, _ = start(flow, deadline=10)
    assert kernel.send([fail("a@1")]) == [StartTimer("a@1/backoff", 1)]
    assert kernel.send([ok("b@1")]) == [Cancel("b@1/timeout")]
    assert kernel.send([Cancelled("b@1/timeout")]) == []
    assert kernel.send([TimerFired("a@1/backoff")]) == [invoke("a@2")]
    assert kernel.send([ok("a@2")]) == [Cancel("@deadline")]
    assert finish(kernel, [Cancelled("@deadline")]).status == RunStatus.SUCCEEDED


def test_a_run_that_fails_at_once_still_answers_for_its_deadline() -> None:
    class Args(BaseModel):
        x: int

    typed = tool(lambda x: x, name="typed", input_model=Args)
    flow = Flow(name="f", steps=[Step(id="a", tool=typed, arguments={"x": Input("n")})])
    kernel, first = start(flow, {"n": "nope"}, deadline=10)
    assert first == [StartTimer("@deadline", 10), Cancel("@deadline")]
    result = finish(kernel, [Cancelled("@deadline")])
    assert result.status == RunStatus.FAILED


@pytest.mark.parametrize("bad", [0, -1.0])
def test_the_deadline_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="deadline must be a positive number"):
        RunOptions(RUN_ID, deadline=bad)


# ---- fail_fast ---------------------------------------------------------------------------------


def test_fail_fast_cancels_everything_on_the_first_failure() -> None:
    flow = Flow(name="f", steps=[step("a"), step("b", timeout=5), step("c", Ref("b")), step("d")])
    kernel, first = start(flow, fail_fast=True, max_concurrency=2)
    assert first == [invoke("a@1"), invoke("b@1", timeout=5), StartTimer("b@1/timeout", 5)]
    assert kernel.send([fail("a@1")]) == [Cancel("b@1"), Cancel("b@1/timeout")]
    result = finish(kernel, [Cancelled("b@1"), Cancelled("b@1/timeout")])
    assert result.status == RunStatus.FAILED
    assert result.reason == "stopped after step 'a' failed (fail_fast)"
    assert statuses(result) == {"a": "failed", "b": "cancelled", "c": "cancelled", "d": "cancelled"}
    assert [e.step for e in result.errors] == ["a"]
    assert result.step("d").reason == "the run stopped (stopped after step 'a' failed (fail_fast))"


def test_without_fail_fast_the_other_branches_run_on() -> None:
    flow = Flow(name="f", steps=[step("a"), step("b")])
    kernel, _ = start(flow)
    assert kernel.send([fail("a@1")]) == []
    result = finish(kernel, [ok("b@1")])
    assert statuses(result) == {"a": "failed", "b": "succeeded"}
    assert result.reason is None


def test_fail_fast_waits_for_the_retries_to_run_out() -> None:
    flow = Flow(name="f", steps=[step("a", retry=retry(max_attempts=2, initial_delay=0)), step("b")])
    kernel, _ = start(flow, fail_fast=True)
    assert kernel.send([fail("a@1")]) == [invoke("a@2")]
    assert kernel.send([fail("a@2")]) == [Cancel("b@1")]
    assert finish(kernel, [Cancelled("b@1")]).status == RunStatus.FAILED


def test_fail_fast_on_a_failure_before_the_invoke() -> None:
    class Args(BaseModel):
        x: int

    typed = tool(lambda x: x, name="typed", input_model=Args)
    flow = Flow(name="f", steps=[step("a"), Step(id="b", tool=typed, arguments={"x": Ref("a")}), step("c")])
    kernel, first = start(flow, fail_fast=True)
    assert first == [invoke("a@1"), invoke("c@1")]
    assert kernel.send([ok("a@1", "nan")]) == [Cancel("c@1")]
    result = finish(kernel, [Cancelled("c@1")])
    assert result.reason == "stopped after step 'b' failed (fail_fast)"
    assert result.step("b").error.kind == ErrorKind.INPUT_VALIDATION  # type: ignore[union-attr]


def test_fail_fast_ignores_failures_that_do_not_fail_the_run() -> None:
    flow = Flow(
        name="f",
        steps=[step("a", on_error="continue"), step("b", on_error=Fallback(value=0)), step("c")],
    )
    kernel, _ = start(flow, fail_fast=True)
    assert kernel.send([fail("a@1"), fail("b@1")]) == []
    result = finish(kernel, [ok("c@1")])
    assert result.status == RunStatus.SUCCEEDED
    assert statuses(result) == {"a": "failed", "b": "succeeded", "c": "succeeded"}


def test_fail_fast_stops_the_run_when_a_fallback_tool_fails() -> None:
    flow = Flow(name="f", steps=[step("a", on_error=Fallback(tool=backup)), step("b")])
    kernel, _ = start(flow, fail_fast=True)
    assert kernel.send([fail("a@1")]) == [Invoke("a@fallback", "a", backup, {"x": None}, 1, RUN_ID)]
    assert kernel.send([fail("a@fallback")]) == [Cancel("b@1")]
    result = finish(kernel, [Cancelled("b@1")])
    assert result.reason == "stopped after step 'a' failed (fail_fast)"
    assert statuses(result) == {"a": "failed", "b": "cancelled"}


# ---- on_error ----------------------------------------------------------------------------------


def test_continue_records_the_failure_but_the_run_succeeds() -> None:
    flow = Flow(name="f", steps=[step("a", on_error="continue"), step("b", Ref("a")), step("c")])
    kernel, first = start(flow)
    assert first == [invoke("a@1"), invoke("c@1")]
    assert kernel.send([fail("a@1")]) == []
    result = finish(kernel, [ok("c@1")])
    a = result.step("a")
    assert a.status == StepStatus.FAILED
    assert a.tolerated is True
    assert a.fallback is False
    assert a.error == error().for_step("a")
    assert result.step("b").status == StepStatus.SKIPPED
    assert result.step("b").reason == "dependency 'a' failed"
    assert result.status == RunStatus.SUCCEEDED
    assert result.errors == (error().for_step("a"),)  # still listed


def test_continue_after_the_retries_run_out() -> None:
    flow = Flow(name="f", steps=[step("a", on_error="continue", retry=retry(max_attempts=2, initial_delay=0))])
    kernel, _ = start(flow)
    assert kernel.send([fail("a@1")]) == [invoke("a@2")]
    result = finish(kernel, [fail("a@2")])
    assert result.step("a").tolerated
    assert len(result.step("a").attempts) == 2
    assert result.status == RunStatus.SUCCEEDED


def test_a_fallback_value_takes_the_failed_steps_place() -> None:
    flow = Flow(name="f", steps=[step("a", on_error=Fallback(value={"rows": []})), step("b", Ref("a", "rows"))])
    kernel, _ = start(flow)
    assert kernel.send([fail("a@1")]) == [invoke("b@1", {"x": []})]
    result = finish(kernel, [ok("b@1", "B")])
    a = result.step("a")
    assert a.status == StepStatus.SUCCEEDED
    assert a.output == {"rows": []}
    assert a.fallback is True
    assert a.tolerated is False
    assert a.error == error().for_step("a")  # what failed is kept
    assert a.attempts[0].status == AttemptStatus.FAILED
    assert result.status == RunStatus.SUCCEEDED
    assert result.errors == ()


def test_a_fallback_value_after_a_timeout_and_retries() -> None:
    flow = Flow(
        name="f",
        steps=[step("a", timeout=2, retry=retry(max_attempts=2, initial_delay=0), on_error=Fallback(value=-1))],
    )
    kernel, _ = start(flow)
    assert kernel.send([TimerFired("a@1/timeout")]) == [
        Cancel("a@1"),
        invoke("a@2", timeout=2),
        StartTimer("a@2/timeout", 2),
    ]
    assert kernel.send([TimerFired("a@2/timeout")]) == [Cancel("a@2")]
    kernel.send([Cancelled("a@1")])
    result = finish(kernel, [Cancelled("a@2")])
    assert result.step("a").output == -1
    assert result.step("a").error.kind == ErrorKind.TIMEOUT  # type: ignore[union-attr]
    assert result.outputs == {"a": -1}


def test_a_fallback_value_applies_to_failures_before_the_invoke() -> None:
    flow = Flow(name="f", steps=[step("a"), step("b", Ref("a", "length(@)"), on_error=Fallback(value=0))])
    kernel, _ = start(flow)
    result = finish(kernel, [ok("a@1", 5)])
    assert result.step("b").status == StepStatus.SUCCEEDED
    assert result.step("b").output == 0
    assert result.step("b").error.kind == ErrorKind.ARGUMENT  # type: ignore[union-attr]


def test_a_fallback_tool_is_invoked_with_the_steps_arguments() -> None:
    flow = Flow(name="f", steps=[step("a", "arg", on_error=Fallback(tool=backup)), step("b", Ref("a"))])
    kernel, _ = start(flow)
    assert kernel.send([fail("a@1")]) == [Invoke("a@fallback", "a", backup, {"x": "arg"}, 1, RUN_ID)]
    assert kernel.send([ok("a@fallback", "from backup")]) == [invoke("b@1", {"x": "from backup"})]
    result = finish(kernel, [ok("b@1")])
    a = result.step("a")
    assert a.status == StepStatus.SUCCEEDED
    assert a.output == "from backup"
    assert a.fallback is True
    assert a.error == error().for_step("a")
    assert len(a.attempts) == 1  # the fallback call is not an attempt of the step's tool
    assert result.status == RunStatus.SUCCEEDED


def test_a_failing_fallback_tool_fails_the_step() -> None:
    flow = Flow(name="f", steps=[step("a", on_error=Fallback(tool=backup)), step("b", Ref("a"))])
    kernel, _ = start(flow)
    kernel.send([fail("a@1")])
    result = finish(kernel, [fail("a@fallback", "KeyError")])
    a = result.step("a")
    assert a.status == StepStatus.FAILED
    assert a.error == error("KeyError").for_step("a")  # the fallback's error
    assert result.step("b").status == StepStatus.SKIPPED
    assert result.status == RunStatus.FAILED


def test_a_fallback_tools_output_is_validated() -> None:
    class Out(BaseModel):
        n: int

    typed_backup = tool(lambda x=None: {"n": 1}, name="typed_backup", output_model=Out)
    flow = Flow(name="f", steps=[step("a", on_error=Fallback(tool=typed_backup))])
    kernel, _ = start(flow)
    kernel.send([fail("a@1")])
    result = finish(kernel, [ok("a@fallback", {"n": "x"})])
    assert result.step("a").status == StepStatus.FAILED
    assert result.step("a").error.kind == ErrorKind.OUTPUT_VALIDATION  # type: ignore[union-attr]


def test_a_fallback_tool_in_flight_when_the_run_stops_is_cancelled() -> None:
    flow = Flow(name="f", steps=[step("a", on_error=Fallback(tool=backup))])
    kernel, _ = start(flow)
    kernel.send([fail("a@1")])
    assert kernel.send([StopRun("user")]) == [Cancel("a@fallback")]
    result = finish(kernel, [Cancelled("a@fallback")])
    assert result.step("a").status == StepStatus.CANCELLED
    assert result.status == RunStatus.CANCELLED


def test_a_fallback_tool_answered_with_a_timer_event_is_a_protocol_error() -> None:
    flow = Flow(name="f", steps=[step("a", on_error=Fallback(tool=backup))])
    kernel, _ = start(flow)
    kernel.send([fail("a@1")])
    with pytest.raises(ProtocolError, match="answered fallback 'a@fallback'"):
        kernel.send([TimerFired("a@fallback")])


def test_a_fallback_tools_input_model_is_applied() -> None:
    class Args(BaseModel):
        x: int

    typed_backup = tool(lambda x: x, name="typed_backup", input_model=Args)
    flow = Flow(name="f", steps=[step("a", "5", on_error=Fallback(tool=typed_backup))])
    kernel, _ = start(flow)
    assert kernel.send([fail("a@1")]) == [Invoke("a@fallback", "a", typed_backup, {"x": 5}, 1, RUN_ID)]


# ---- conditions --------------------------------------------------------------------------------


def test_a_true_condition_runs_the_step() -> None:
    flow = Flow(name="f", steps=[step("a"), step("b", Ref("a", "n"), when="steps.a.ok && inputs.go")])
    kernel, first = start(flow, {"go": True})
    assert first == [invoke("a@1")]
    assert kernel.send([ok("a@1", {"ok": True, "n": 3})]) == [invoke("b@1", {"x": 3})]
    result = finish(kernel, [ok("b@1")])
    assert result.step("b").status == StepStatus.SUCCEEDED
    assert result.step("b").reason is None


def test_a_false_condition_skips_the_step_and_its_dependents() -> None:
    flow = Flow(
        name="f",
        steps=[step("a"), step("b", when="steps.a.ok"), step("c", Ref("b")), step("d", Ref("c")), step("e", Ref("a"))],
    )
    kernel, _ = start(flow)
    assert kernel.send([ok("a@1", {"ok": False})]) == [invoke("e@1", {"x": {"ok": False}})]
    result = finish(kernel, [ok("e@1")])
    assert statuses(result) == {"a": "succeeded", "b": "skipped", "c": "skipped", "d": "skipped", "e": "succeeded"}
    assert result.step("b").reason == "condition 'steps.a.ok' is false"
    assert result.step("b").attempts == ()
    assert result.step("b").input is None
    assert result.step("c").reason == "dependency 'b' was skipped"
    assert result.step("d").reason == "dependency 'c' was skipped"
    assert result.status == RunStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("value", "runs"),
    [(0, True), ("x", True), ([0], True), (False, False), (None, False), ("", False), ([], False), ({}, False)],
)
def test_conditions_use_jmespath_truth(value: Any, runs: bool) -> None:
    flow = Flow(name="f", steps=[step("a"), step("b", when="steps.a")])
    kernel, _ = start(flow)
    if runs:
        assert kernel.send([ok("a@1", value)]) == [invoke("b@1")]
    else:
        assert finish(kernel, [ok("a@1", value)]).step("b").status == StepStatus.SKIPPED


def test_a_condition_on_inputs_only_is_decided_at_the_start() -> None:
    flow = Flow(name="f", steps=[step("a", when="inputs.mode == 'full'"), step("b")])
    _, first = start(flow, {"mode": "full"})
    assert first == [invoke("a@1"), invoke("b@1")]
    kernel, first = start(flow, {"mode": "quick"})
    assert first == [invoke("b@1")]
    result = finish(kernel, [ok("b@1")])
    assert result.step("a").reason == "condition \"inputs.mode == 'full'\" is false"


def test_a_condition_that_cannot_be_evaluated_fails_the_step_with_kind_condition() -> None:
    flow = Flow(
        name="f",
        steps=[step("a"), step("b", when="length(steps.a) > `1`", retry=retry(max_attempts=3)), step("c", Ref("b"))],
    )
    kernel, _ = start(flow)
    result = finish(kernel, [ok("a@1", 5)])  # length() of a number
    b = result.step("b")
    assert b.status == StepStatus.FAILED
    assert b.error is not None
    assert b.error.kind == ErrorKind.CONDITION
    assert b.error.step == "b"
    assert "length" in b.error.message
    assert b.attempts == ()  # never invoked, never retried
    assert result.step("c").reason == "dependency 'b' failed"
    assert result.status == RunStatus.FAILED


def test_a_condition_error_follows_the_error_policy() -> None:
    flow = Flow(name="f", steps=[step("a"), step("b", when="length(steps.a) > `1`", on_error=Fallback(value="fb"))])
    kernel, _ = start(flow)
    result = finish(kernel, [ok("a@1", 5)])
    assert result.step("b").output == "fb"
    assert result.step("b").fallback
    assert result.step("b").error.kind == ErrorKind.CONDITION  # type: ignore[union-attr]


def test_a_condition_sees_validated_outputs_as_their_fields() -> None:
    class Out(BaseModel):
        ok: bool

    typed = tool(lambda: None, name="typed", output_model=Out)
    flow = Flow(name="f", steps=[Step(id="a", tool=typed), step("b", when="steps.a.ok")])
    kernel, _ = start(flow)
    assert kernel.send([ok("a@1", {"ok": True})]) == [invoke("b@1")]


# ---- join="any" --------------------------------------------------------------------------------


def test_join_any_runs_once_every_dependency_settled_if_one_succeeded() -> None:
    flow = Flow(
        name="f",
        steps=[step("a"), step("b"), step("c"), step("d", after=("a", "b", "c"), join="any")],
    )
    kernel, _ = start(flow)
    assert kernel.send([fail("a@1")]) == []
    assert kernel.send([ok("b@1")]) == []  # c is still running
    assert kernel.send([fail("c@1")]) == [invoke("d@1")]
    result = finish(kernel, [ok("d@1")])
    assert result.step("d").status == StepStatus.SUCCEEDED
    assert result.status == RunStatus.FAILED  # a and c still failed the run


def test_join_any_after_a_condition_skipped_one_branch() -> None:
    flow = Flow(
        name="f",
        steps=[
            step("a"),
            step("fast", when="steps.a.fast"),
            step("slow", when="!(steps.a.fast)"),
            step("merge", {"f": Ref("fast"), "s": Ref("slow")}, join="any"),
            step("strict", {"f": Ref("fast"), "s": Ref("slow")}),
        ],
    )
    kernel, _ = start(flow)
    assert kernel.send([ok("a@1", {"fast": True})]) == [invoke("fast@1")]
    assert kernel.send([ok("fast@1", "F")]) == [invoke("merge@1", {"x": {"f": "F", "s": None}})]
    result = finish(kernel, [ok("merge@1", "M")])
    assert statuses(result) == {
        "a": "succeeded",
        "fast": "succeeded",
        "slow": "skipped",
        "merge": "succeeded",
        "strict": "skipped",
    }
    assert result.step("slow").reason == "condition '!(steps.a.fast)' is false"
    assert result.step("strict").reason == "dependency 'slow' was skipped"
    assert result.status == RunStatus.SUCCEEDED


def test_join_any_is_skipped_when_no_dependency_succeeded() -> None:
    flow = Flow(
        name="f",
        steps=[step("a"), step("b"), step("c", after=("a", "b"), join="any"), step("d", Ref("c"))],
    )
    kernel, _ = start(flow)
    assert kernel.send([fail("b@1")]) == []
    result = finish(kernel, [fail("a@1")])
    assert statuses(result) == {"a": "failed", "b": "failed", "c": "skipped", "d": "skipped"}
    assert result.step("c").reason == "dependency 'a' failed"  # the first in declaration order
    assert result.step("d").reason == "dependency 'c' was skipped"


def test_join_any_waits_for_a_dependency_skipped_further_up() -> None:
    flow = Flow(
        name="f",
        steps=[step("a"), step("b", Ref("a")), step("c"), step("d", after=("b", "c"), join="any")],
    )
    kernel, _ = start(flow)
    assert kernel.send([ok("c@1")]) == []  # b has not settled yet
    assert kernel.send([fail("a@1")]) == [invoke("d@1")]  # a failing skips b, which settles d
    result = finish(kernel, [ok("d@1")])
    assert statuses(result) == {"a": "failed", "b": "skipped", "c": "succeeded", "d": "succeeded"}


def test_join_any_with_a_fallback_counts_as_success() -> None:
    flow = Flow(
        name="f",
        steps=[step("a", on_error=Fallback(value=1)), step("b"), step("c", after=("a", "b"))],
    )
    kernel, _ = start(flow)
    assert kernel.send([fail("a@1")]) == []
    assert kernel.send([ok("b@1")]) == [invoke("c@1")]


# ---- protocol --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flow_kwargs", "options", "setup", "answer", "message"),
    [
        ({"timeout": 5}, {}, [], Returned("s@1/timeout", 1, 0.0, 1.0), "answered timer 's@1/timeout'"),
        ({"timeout": 5}, {}, [], Cancelled("s@1/timeout"), "answered timer 's@1/timeout'"),
        ({}, {"deadline": 3}, [], Returned("@deadline", 1, 0.0, 1.0), "answered timer '@deadline'"),
        ({}, {"deadline": 3}, [], Cancelled("@deadline"), "answered timer '@deadline'"),
        (
            {"retry": RetryPolicy()},
            {},
            [Raised("s@1", ErrorInfo(ErrorKind.TOOL, "E", "m"), 0.0, 1.0)],
            Raised("s@1/backoff", ErrorInfo(ErrorKind.TOOL, "E", "m"), 0.0, 1.0),
            "answered timer 's@1/backoff'",
        ),
        ({"timeout": 5}, {}, [], TimerFired("s@1"), "answered invoke 's@1'"),
        ({}, {}, [], TimerFired("s@1/timeout"), "never issued"),
    ],
)
def test_timers_answered_with_the_wrong_completion_are_protocol_errors(
    flow_kwargs: dict[str, Any], options: dict[str, Any], setup: list[Completion], answer: Completion, message: str
) -> None:
    kernel, _ = start(Flow(name="f", steps=[step("s", **flow_kwargs)]), **options)
    if setup:
        kernel.send(setup)
    with pytest.raises(ProtocolError, match=message):
        kernel.send([answer])


def test_a_timer_fired_twice_is_a_protocol_error() -> None:
    kernel, _ = start(Flow(name="f", steps=[step("s", retry=retry()), step("t")]))
    kernel.send([fail("s@1")])
    kernel.send([TimerFired("s@1/backoff")])
    with pytest.raises(ProtocolError, match="never issued"):
        kernel.send([TimerFired("s@1/backoff")])


def test_a_backoff_timer_that_fires_as_the_run_stops_does_not_keep_the_run_waiting() -> None:
    """Found by the fail_fast property: the timer's step became ready after the stop had cleared the
    ready steps, and the run counted it as still active, so it waited for a call it would never make."""
    flow = Flow(name="f", steps=[step("s", retry=retry(max_attempts=3, initial_delay=1))])
    kernel, _ = start(flow)
    assert kernel.send([fail("s@1")]) == [StartTimer("s@1/backoff", 1)]
    result = finish(kernel, [StopRun("stopped"), TimerFired("s@1/backoff")])
    assert result.status == "cancelled"
    assert result.step("s").status == "cancelled"
