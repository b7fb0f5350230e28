"""Policies on real drivers: timeouts, deadlines and backoff in trio's virtual time, real cancellation on
asyncio and the sync driver, and the same canonical results on every driver for retries, fallbacks,
``continue``, conditions and ``join="any"``.

Every run is bounded (a virtual or real timeout around it), so a regression fails instead of hanging;
no test sleeps for real longer than a fraction of a second.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest

from flowkernel import (
    AttemptStatus,
    Cancel,
    Cancelled,
    Completion,
    ErrorInfo,
    ErrorKind,
    ExecutionResult,
    Flow,
    Input,
    Invoke,
    Ref,
    RunOptions,
    RunStatus,
    StartTimer,
    Step,
    StepStatus,
    TimerFired,
    run_flow,
    tool,
)
from flowkernel.host import Driver, call_async, call_sync, current_invoke
from flowkernel.model import Fallback, RetryPolicy
from flowkernel.model.retry import jitter_unit
from flowkernel_asyncio import AsyncioDriver
from flowkernel_sync import SyncDriver

from .support import TIMEOUT, Release, arun, in_thread, trun

trio = pytest.importorskip("trio")
pytest.importorskip("trio.testing")
from flowkernel_trio import TrioDriver  # noqa: E402

T = TypeVar("T")
RUN_ID = "timing-run"


def virtual(fn: Callable[[], Awaitable[T]]) -> tuple[T, float]:
    """Run ``fn()`` in trio on a ``MockClock`` that jumps whenever every task is blocked; returns its value
    and the virtual time at the end. A generous virtual deadline fails a hanging run at once."""

    async def timed() -> tuple[T, float]:
        value = await fn()
        return value, trio.current_time()

    return trun(timed, mock_clock=True)


def timeout_error(step: str, seconds: str, attempt: int = 1) -> ErrorInfo:
    return ErrorInfo(ErrorKind.TIMEOUT, "TimeoutError", f"attempt {attempt} timed out after {seconds} s", step)


# ---- trio, in virtual time ---------------------------------------------------------------------


def test_trio_a_call_past_its_timeout_is_cancelled_at_exactly_the_timeout_then_retried() -> None:
    starts: list[tuple[int, float]] = []
    finalized: list[float] = []

    @tool
    async def hang() -> str:
        attempt = current_invoke().attempt
        starts.append((attempt, trio.current_time()))
        if attempt == 1:
            try:
                await trio.sleep_forever()
            finally:
                finalized.append(trio.current_time())
        await trio.sleep(0.5)
        return "second"

    policy = RetryPolicy(max_attempts=2, initial_delay=1.5)
    flow = Flow(name="f", steps=[Step(id="s", tool=hang, timeout=5, retry=policy)])
    result, now = virtual(lambda: TrioDriver().run(flow, run_id=RUN_ID))
    assert starts == [(1, 0.0), (2, 6.5)]
    assert finalized == [5.0]  # the tool was really cancelled, at the timeout
    assert now == 7.0
    record = result.step("s")
    assert record.status == StepStatus.SUCCEEDED
    assert record.output == "second"
    first, second = record.attempts
    assert first.status == AttemptStatus.FAILED
    assert first.error == timeout_error("s", "5")
    assert first.retry_in == 1.5
    assert (second.status, second.started, second.finished) == (AttemptStatus.SUCCEEDED, 6.5, 7.0)
    assert result.status == RunStatus.SUCCEEDED


def test_trio_every_attempt_timing_out_fails_the_step_after_exact_virtual_time() -> None:
    finalized: list[float] = []

    @tool
    async def hang() -> None:
        try:
            await trio.sleep_forever()
        finally:
            finalized.append(trio.current_time())

    policy = RetryPolicy(max_attempts=3, initial_delay=1, multiplier=2)
    flow = Flow(name="f", steps=[Step(id="s", tool=hang, timeout=2, retry=policy)])
    result, now = virtual(lambda: TrioDriver().run(flow, run_id=RUN_ID))
    # attempt 1: 0..2, wait 1, attempt 2: 3..5, wait 2, attempt 3: 7..9
    assert finalized == [2.0, 5.0, 9.0]
    assert now == 9.0
    record = result.step("s")
    assert record.status == StepStatus.FAILED
    assert record.error == timeout_error("s", "2", attempt=3)
    assert [a.retry_in for a in record.attempts] == [1, 2, None]
    assert result.status == RunStatus.FAILED


def test_trio_the_deadline_times_the_run_out_with_a_partial_result() -> None:
    finalized: list[float] = []

    @tool
    async def quick() -> int:
        await trio.sleep(2)
        return 1

    @tool
    async def forever() -> None:
        try:
            await trio.sleep_forever()
        finally:
            finalized.append(trio.current_time())

    @tool
    def never(x: int) -> int:
        raise AssertionError("must not start")

    flow = Flow(
        name="f",
        steps=[
            Step(id="a", tool=quick),
            Step(id="b", tool=forever),
            Step(id="c", tool=never, arguments={"x": Ref("a")}, after=("b",)),
        ],
        outputs={"a": Ref("a"), "b": Ref("b"), "c": Ref("c")},
    )
    result, now = virtual(lambda: TrioDriver().run(flow, run_id=RUN_ID, deadline=10))
    assert now == 10.0
    assert finalized == [10.0]
    assert result.status == RunStatus.TIMED_OUT
    assert result.reason == "deadline of 10 s exceeded"
    assert result.outputs == {"a": 1}
    assert [s.status for s in result.steps] == [StepStatus.SUCCEEDED, StepStatus.CANCELLED, StepStatus.CANCELLED]
    assert result.step("b").attempts[0].status == AttemptStatus.CANCELLED
    assert result.step("c").attempts == ()


def test_trio_a_deadline_that_is_not_reached_does_not_delay_the_end() -> None:
    @tool
    async def quick() -> int:
        await trio.sleep(3)
        return 1

    flow = Flow(name="f", steps=[Step(id="a", tool=quick)])
    result, now = virtual(lambda: TrioDriver().run(flow, run_id=RUN_ID, deadline=100))
    assert now == 3.0
    assert result.status == RunStatus.SUCCEEDED


def test_trio_backoff_delays_are_exact_in_virtual_time() -> None:
    times: list[float] = []

    @tool
    async def flaky() -> str:
        times.append(trio.current_time())
        if current_invoke().attempt < 4:
            raise ConnectionError("try again")
        return "ok"

    policy = RetryPolicy(max_attempts=4, initial_delay=1, multiplier=3, max_delay=5)
    flow = Flow(name="f", steps=[Step(id="s", tool=flaky, retry=policy)])
    result, now = virtual(lambda: TrioDriver().run(flow, run_id=RUN_ID))
    assert times == [0.0, 1.0, 4.0, 9.0]  # waits of 1, 3, then 9 capped at 5
    assert now == 9.0
    assert [a.retry_in for a in result.step("s").attempts] == [1, 3, 5, None]
    assert [a.started for a in result.step("s").attempts] == times


def test_trio_jittered_backoff_is_exact_and_replays_identically() -> None:
    policy = RetryPolicy(max_attempts=3, initial_delay=2, multiplier=2, jitter=0.5)

    def run(run_id: str) -> list[float]:
        times: list[float] = []

        @tool
        async def flaky() -> str:
            times.append(trio.current_time())
            if current_invoke().attempt < 3:
                raise ConnectionError("try again")
            return "ok"

        flow = Flow(name="f", steps=[Step(id="fetch", tool=flaky, retry=policy)])
        result, _ = virtual(lambda: TrioDriver().run(flow, run_id=run_id))
        assert [a.retry_in for a in result.step("fetch").attempts] == [
            policy.delay(1, jitter_unit(run_id, "fetch", 1)),
            policy.delay(2, jitter_unit(run_id, "fetch", 2)),
            None,
        ]
        return times

    times = run("run-a")
    first = policy.delay(1, jitter_unit("run-a", "fetch", 1))
    second = policy.delay(2, jitter_unit("run-a", "fetch", 2))
    assert times == pytest.approx([0.0, first, first + second], abs=1e-9)
    assert 1.0 <= first < 3.0
    assert 2.0 <= second < 6.0
    assert run("run-a") == times  # a replay waits the same
    assert run("run-b") != times  # another run id spreads differently


def test_trio_a_sync_tool_in_a_thread_is_abandoned_at_its_timeout(release: Release) -> None:
    @tool
    def blocking() -> str:
        release.wait(TIMEOUT)
        return "late"

    flow = Flow(name="f", steps=[Step(id="s", tool=blocking, timeout=3)])
    result, now = virtual(lambda: TrioDriver().run(flow, run_id=RUN_ID))
    assert not release.passed.is_set()  # the caller was not held by the thread
    assert now == 3.0
    assert result.step("s").error == timeout_error("s", "3")


# ---- asyncio -----------------------------------------------------------------------------------


def test_asyncio_a_call_past_its_timeout_is_really_cancelled() -> None:
    cancelled: list[str] = []

    @tool
    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(current_invoke().call_id)
            raise

    flow = Flow(name="f", steps=[Step(id="s", tool=forever, timeout=0.05)])
    started = time.monotonic()
    result = arun(lambda: AsyncioDriver().run(flow, run_id=RUN_ID))
    elapsed = time.monotonic() - started
    assert 0.04 <= elapsed < 1.0
    assert cancelled == ["s@1"]  # the task saw its cancellation before run() returned
    record = result.step("s")
    assert record.status == StepStatus.FAILED
    assert record.error == timeout_error("s", "0.05")
    assert record.attempts[0].status == AttemptStatus.FAILED
    assert result.status == RunStatus.FAILED


def test_asyncio_a_timed_out_attempt_is_retried() -> None:
    cancelled: list[int] = []

    @tool
    async def slow_then_fast() -> str:
        attempt = current_invoke().attempt
        if attempt == 1:
            try:
                await asyncio.Event().wait()
            finally:
                cancelled.append(attempt)
        return f"attempt {attempt}"

    policy = RetryPolicy(max_attempts=2, initial_delay=0.01)
    flow = Flow(name="f", steps=[Step(id="s", tool=slow_then_fast, timeout=0.05, retry=policy)])
    result = arun(lambda: AsyncioDriver().run(flow, run_id=RUN_ID))
    assert cancelled == [1]
    assert result.step("s").output == "attempt 2"
    assert [a.status for a in result.step("s").attempts] == [AttemptStatus.FAILED, AttemptStatus.SUCCEEDED]
    assert result.step("s").attempts[0].retry_in == 0.01


def test_asyncio_the_deadline_times_the_run_out_with_a_partial_result() -> None:
    cancelled: list[str] = []

    @tool
    async def quick() -> int:
        return 7

    @tool
    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.append("forever")

    flow = Flow(
        name="f",
        steps=[Step(id="a", tool=quick), Step(id="b", tool=forever), Step(id="c", tool=quick, after=("b",))],
        outputs={"a": Ref("a"), "b": Ref("b")},
    )
    started = time.monotonic()
    result = arun(lambda: AsyncioDriver().run(flow, run_id=RUN_ID, deadline=0.1))
    assert 0.09 <= time.monotonic() - started < 1.0
    assert cancelled == ["forever"]
    assert result.status == RunStatus.TIMED_OUT
    assert result.reason == "deadline of 0.1 s exceeded"
    assert result.outputs == {"a": 7}
    assert [s.status for s in result.steps] == [StepStatus.SUCCEEDED, StepStatus.CANCELLED, StepStatus.CANCELLED]


def test_asyncio_a_sync_tool_in_a_thread_is_released_at_its_timeout(release: Release) -> None:
    @tool
    def blocking() -> str:
        release.wait(TIMEOUT)
        return "late"

    flow = Flow(name="f", steps=[Step(id="s", tool=blocking, timeout=0.05)])
    result = arun(lambda: AsyncioDriver().run(flow, run_id=RUN_ID))
    assert not release.passed.is_set()  # released while the tool still waits
    assert result.step("s").error == timeout_error("s", "0.05")


# ---- the sync driver ---------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [None, 1])
def test_sync_a_blocked_tool_releases_the_caller_at_its_timeout(release: Release, limit: int | None) -> None:
    threads: list[int] = []

    @tool
    def blocking() -> str:
        threads.append(threading.get_ident())
        release.wait(TIMEOUT)
        return "late"

    flow = Flow(name="f", steps=[Step(id="s", tool=blocking, timeout=0.05)])
    caller: list[int] = []

    def go() -> ExecutionResult:
        caller.append(threading.get_ident())
        return SyncDriver().run(flow, run_id=RUN_ID, max_concurrency=limit)

    started = time.monotonic()
    result = in_thread(go)
    assert time.monotonic() - started >= 0.04
    assert not release.passed.is_set()  # released while the tool still waits
    assert threads
    assert threads != caller  # with a timeout, even at concurrency 1 the tool runs in a worker thread
    record = result.step("s")
    assert record.status == StepStatus.FAILED
    assert record.error == timeout_error("s", "0.05")
    assert record.output is None
    assert result.status == RunStatus.FAILED


def test_sync_a_blocked_tool_is_retried_after_its_timeout(release: Release) -> None:
    @tool
    def blocking_once() -> str:
        attempt = current_invoke().attempt
        if attempt == 1:
            release.wait(TIMEOUT)
        return f"attempt {attempt}"

    policy = RetryPolicy(max_attempts=2, initial_delay=0.01)
    flow = Flow(name="f", steps=[Step(id="s", tool=blocking_once, timeout=0.05, retry=policy)])
    result = in_thread(lambda: SyncDriver().run(flow, run_id=RUN_ID))
    assert result.step("s").output == "attempt 2"  # the late "attempt 1" never reaches the result
    assert result.step("s").attempts[0].error == timeout_error("s", "0.05")


def test_sync_the_deadline_times_the_run_out(release: Release) -> None:
    @tool
    def blocking() -> str:
        release.wait(TIMEOUT)
        return "late"

    @tool
    def quick() -> int:
        return 3

    flow = Flow(
        name="f",
        steps=[Step(id="a", tool=quick), Step(id="b", tool=blocking), Step(id="c", tool=quick, after=("b",))],
        outputs={"a": Ref("a"), "b": Ref("b")},
    )
    started = time.monotonic()
    result = in_thread(lambda: SyncDriver().run(flow, run_id=RUN_ID, deadline=0.1))
    assert 0.09 <= time.monotonic() - started < 1.0
    assert result.status == RunStatus.TIMED_OUT
    assert result.reason == "deadline of 0.1 s exceeded"
    assert result.outputs == {"a": 3}
    assert [s.status for s in result.steps] == [StepStatus.SUCCEEDED, StepStatus.CANCELLED, StepStatus.CANCELLED]


def test_sync_an_async_tool_past_its_timeout_is_really_cancelled() -> None:
    cancelled = threading.Event()

    @tool
    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    flow = Flow(name="f", steps=[Step(id="s", tool=forever, timeout=0.05)])
    result = in_thread(lambda: SyncDriver().run(flow, run_id=RUN_ID))
    assert result.step("s").error == timeout_error("s", "0.05")
    assert cancelled.wait(2.0)  # cancelled on the driver's loop thread, right after the caller was released


def test_sync_the_deadline_is_enforced_at_concurrency_one(release: Release) -> None:
    @tool
    def blocking() -> str:
        release.wait(TIMEOUT)
        return "late"

    flow = Flow(name="f", steps=[Step(id="s", tool=blocking)])
    result = in_thread(lambda: SyncDriver().run(flow, run_id=RUN_ID, max_concurrency=1, deadline=0.05))
    assert not release.passed.is_set()  # the run ended at its deadline, while the tool still waits
    assert result.status == RunStatus.TIMED_OUT
    assert result.step("s").status == StepStatus.CANCELLED  # once: succeeded, after the tool's whole wait


class _ScriptedClock:
    """Stands in for the ``time`` module of the sync driver: the caller's thread reads the scripted
    values in turn (then the last one forever); tool threads always read 0."""

    def __init__(self, values: list[float]) -> None:
        self._values = values

    def monotonic(self) -> float:
        if threading.current_thread().name.startswith("flowkernel-tool"):
            return 0.0
        return self._values.pop(0) if len(self._values) > 1 else self._values[0]


def test_sync_a_timer_falling_due_while_the_driver_looks_is_fired_not_a_crash(
    release: Release, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flowkernel_sync

    # start_timer reads 0 (the deadline is due at 1); wait() reads 0.5 (not due yet), then 1.5 for its
    # queue timeout: the deadline fell due in between, so the timeout would be -0.5.
    monkeypatch.setattr(flowkernel_sync, "time", _ScriptedClock([0.0, 0.5, 1.5, 2.0]))

    @tool
    def blocking() -> str:
        release.wait(TIMEOUT)
        return "late"

    flow = Flow(name="f", steps=[Step(id="s", tool=blocking)])
    result = in_thread(lambda: SyncDriver().run(flow, run_id=RUN_ID, deadline=1.0))
    assert result.status == RunStatus.TIMED_OUT


@pytest.mark.parametrize("driver", ["sync", "asyncio"])
def test_a_timed_out_threads_slot_is_free_for_the_next_call(release: Release, driver: str) -> None:
    @tool
    def blocking() -> str:
        release.wait(TIMEOUT)
        return "late"

    @tool
    def quick() -> str:
        return "quick"

    flow = Flow(name="f", steps=[Step(id="a", tool=blocking, timeout=0.05), Step(id="b", tool=quick, timeout=0.3)])
    runner = SyncDriver() if driver == "sync" else AsyncioDriver()
    result = in_thread(lambda: runner.run_blocking(flow, run_id=RUN_ID, max_concurrency=1))
    assert result.step("a").error == timeout_error("a", "0.05")
    assert result.step("b").status == StepStatus.SUCCEEDED  # b never got a thread: it timed out too


# ---- every driver, the same result -------------------------------------------------------------


@tool
def flaky_fetch(n: int) -> dict[str, Any]:
    """Fails twice with a retryable error, then returns."""
    if current_invoke().attempt < 3:
        raise ConnectionError(f"attempt {current_invoke().attempt} refused")
    return {"rows": list(range(n))}


@tool
async def flaky_count(rows: list[int]) -> int:
    """Fails once, then counts."""
    if current_invoke().attempt == 1:
        raise TimeoutError("slow backend")
    return len(rows)


@tool
def broken(x: Any = None) -> Any:
    raise ValueError("broken on purpose")


@tool
async def broken_async(x: Any = None) -> Any:
    raise KeyError("missing")


@tool
def backup(x: Any = None) -> str:
    return f"backup for {x}"


@tool
def echo(x: Any = None, y: Any = None) -> Any:
    return x if y is None else [x, y]


@tool
async def aecho(x: Any = None, y: Any = None) -> Any:
    return x if y is None else [x, y]


FAST_RETRY = RetryPolicy(max_attempts=3, initial_delay=0.01, multiplier=1.5, jitter=0.5)

SCENARIOS: dict[str, tuple[Flow, dict[str, Any] | None]] = {
    "retry": (
        Flow(
            name="retry",
            steps=[
                Step(id="fetch", tool=flaky_fetch, arguments={"n": 3}, retry=FAST_RETRY),
                Step(id="count", tool=flaky_count, arguments={"rows": Ref("fetch", "rows")}, retry=FAST_RETRY),
                Step(
                    id="picky",
                    tool=flaky_fetch,
                    arguments={"n": 1},
                    retry=RetryPolicy(max_attempts=3, initial_delay=0.01, retry_on=("TimeoutError",)),
                    on_error="continue",
                ),
            ],
        ),
        None,
    ),
    "fallback": (
        Flow(
            name="fallback",
            steps=[
                Step(id="primary", tool=broken, arguments={"x": 1}, on_error=Fallback(value={"rows": []})),
                Step(id="rows", tool=echo, arguments={"x": Ref("primary", "rows")}),
                Step(id="secondary", tool=broken_async, arguments={"x": "k"}, on_error=Fallback(tool=backup)),
                Step(id="both", tool=aecho, arguments={"x": Ref("rows"), "y": Ref("secondary")}),
                Step(
                    id="retried",
                    tool=broken,
                    retry=RetryPolicy(max_attempts=2, initial_delay=0.01),
                    on_error=Fallback(value=0),
                ),
            ],
        ),
        None,
    ),
    "continue": (
        Flow(
            name="continue",
            steps=[
                Step(id="optional", tool=broken_async, on_error="continue"),
                Step(id="needs_it", tool=echo, arguments={"x": Ref("optional")}),
                Step(id="independent", tool=aecho, arguments={"x": "fine"}),
                Step(id="last", tool=echo, arguments={"x": Ref("independent")}),
            ],
        ),
        None,
    ),
    "conditions": (
        Flow(
            name="conditions",
            steps=[
                Step(id="probe", tool=echo, arguments={"x": {"fast": True, "n": 2}}),
                Step(id="fast", tool=aecho, arguments={"x": "fast path"}, when="steps.probe.fast"),
                Step(id="slow", tool=echo, arguments={"x": "slow path"}, when="!(steps.probe.fast)"),
                Step(id="merge", tool=echo, arguments={"x": Ref("fast"), "y": Ref("slow")}, join="any"),
                Step(id="strict", tool=echo, arguments={"x": Ref("fast"), "y": Ref("slow")}),
                Step(id="full", tool=aecho, arguments={"x": Input("mode")}, when="inputs.mode == 'full'"),
                Step(id="big", tool=echo, when="steps.probe.n > `5`"),
                Step(id="after_big", tool=echo, arguments={"x": Ref("big")}),
                Step(id="either", tool=aecho, after=("big", "full"), join="any"),
                Step(id="neither", tool=echo, after=("big", "slow"), join="any"),
                Step(id="bad_condition", tool=echo, when="length(steps.probe.n) > `0`", on_error="continue"),
            ],
        ),
        {"mode": "full"},
    ),
}


def _finish_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (the scenario's async tools await nothing)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise AssertionError("a scenario tool suspended")


@functools.cache
def reference(name: str) -> dict[str, Any]:
    """The scenario's canonical result, computed once by driving the kernel by hand: tools called inline,
    timers fired in order of a virtual clock."""
    flow, inputs = SCENARIOS[name]
    kernel = run_flow(flow, inputs, RunOptions(RUN_ID))
    timers: dict[str, float] = {}
    now = 0.0

    def clock() -> float:
        return now

    commands = kernel.send(None)  # type: ignore[arg-type]
    while True:
        answers: list[Completion] = []
        for command in commands:
            if isinstance(command, Invoke):
                if command.tool.is_async:
                    answers.append(_finish_coroutine(call_async(command, clock, "", ())))
                else:
                    answers.append(call_sync(command, clock))
            elif isinstance(command, StartTimer):
                timers[command.call_id] = now + command.seconds
            elif isinstance(command, Cancel) and timers.pop(command.call_id, None) is not None:
                answers.append(Cancelled(command.call_id))
        if not answers:
            due = min(timers, key=lambda call_id: (timers[call_id], call_id))
            now = timers.pop(due)
            answers.append(TimerFired(due))
        try:
            commands = kernel.send(answers)
        except StopIteration as stop:
            return stop.value.canonical()  # type: ignore[no-any-return]


def test_the_reference_results_say_what_the_policies_mean() -> None:
    retry = reference("retry")
    assert retry["status"] == "succeeded"
    steps = {s["id"]: s for s in retry["steps"]}
    assert steps["fetch"]["output"] == {"rows": [0, 1, 2]}
    assert [a["status"] for a in steps["fetch"]["attempts"]] == ["failed", "failed", "succeeded"]
    assert [a["retry_in"] for a in steps["fetch"]["attempts"]] == [
        FAST_RETRY.delay(1, jitter_unit(RUN_ID, "fetch", 1)),
        FAST_RETRY.delay(2, jitter_unit(RUN_ID, "fetch", 2)),
        None,
    ]
    assert steps["count"]["output"] == 3
    assert len(steps["count"]["attempts"]) == 2
    assert (steps["picky"]["status"], steps["picky"]["tolerated"], len(steps["picky"]["attempts"])) == (
        "failed",
        True,
        1,
    )

    fallback = reference("fallback")
    steps = {s["id"]: s for s in fallback["steps"]}
    assert fallback["status"] == "succeeded"
    assert (steps["primary"]["output"], steps["primary"]["fallback"]) == ({"rows": []}, True)
    assert steps["rows"]["output"] == []
    assert (steps["secondary"]["output"], steps["secondary"]["fallback"]) == ("backup for k", True)
    assert steps["secondary"]["error"]["type"] == "KeyError"
    assert steps["both"]["output"] == [[], "backup for k"]
    assert (steps["retried"]["output"], len(steps["retried"]["attempts"])) == (0, 2)

    cont = reference("continue")
    steps = {s["id"]: s for s in cont["steps"]}
    assert cont["status"] == "succeeded"
    assert (steps["optional"]["status"], steps["optional"]["tolerated"]) == ("failed", True)
    assert steps["needs_it"]["status"] == "skipped"
    assert steps["last"]["output"] == "fine"

    conditions = reference("conditions")
    steps = {s["id"]: s for s in conditions["steps"]}
    assert {name: s["status"] for name, s in steps.items()} == {
        "probe": "succeeded",
        "fast": "succeeded",
        "slow": "skipped",
        "merge": "succeeded",
        "strict": "skipped",
        "full": "succeeded",
        "big": "skipped",
        "after_big": "skipped",
        "either": "succeeded",
        "neither": "skipped",
        "bad_condition": "failed",
    }
    assert steps["merge"]["output"] == "fast path"  # slow was skipped: its output is None
    assert steps["slow"]["reason"] == "condition '!(steps.probe.fast)' is false"
    assert steps["neither"]["reason"] == "dependency 'slow' was skipped"  # first in declaration order
    assert steps["bad_condition"]["error"]["kind"] == "condition"
    assert conditions["status"] == "succeeded"


@pytest.mark.parametrize("limit", [None, 1])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_driver_gives_the_reference_result(flowkernel_driver: Driver, name: str, limit: int | None) -> None:
    flow, inputs = SCENARIOS[name]
    result = in_thread(lambda: flowkernel_driver.run_blocking(flow, inputs, run_id=RUN_ID, max_concurrency=limit))
    assert result.canonical() == reference(name)
