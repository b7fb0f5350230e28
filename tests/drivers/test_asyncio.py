"""The asyncio driver: async tools on the running loop, sync tools in threads or inline, cancellation."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import warnings
from typing import Any

import pytest

from flowkernel import AttemptStatus, ErrorKind, ExecutionResult, Flow, Ref, RunStatus, Step, StepStatus, tool
from flowkernel.errors import AbandonedCallWarning
from flowkernel.host import partial_result
from flowkernel_asyncio import AsyncioDriver

from .support import TIMEOUT, Gauge, Release, after, arun, failing_flow, ok


def run(flow: Flow, inputs: dict[str, Any] | None = None, *, sync_tools: str = "thread", **options: Any) -> Any:
    return arun(lambda: AsyncioDriver(sync_tools=sync_tools).run(flow, inputs, **options))  # type: ignore[arg-type]


# ---- plain runs ---------------------------------------------------------------------------------


def test_run_blocking_starts_its_own_loop() -> None:
    flow = Flow(name="f", steps=[Step(id="a", tool=ok)])
    result = AsyncioDriver().run_blocking(flow, run_id="blocking")
    assert isinstance(result, ExecutionResult)
    assert result.outputs == {"a": "fine"}
    assert result.run_id == "blocking"


# ---- where tools run ----------------------------------------------------------------------------


def test_async_tools_run_on_the_callers_loop() -> None:
    seen: list[asyncio.AbstractEventLoop] = []

    @tool
    async def where() -> None:
        seen.append(asyncio.get_running_loop())

    async def main() -> asyncio.AbstractEventLoop:
        await AsyncioDriver().run(Flow(name="f", steps=[Step(id="a", tool=where), Step(id="b", tool=where)]))
        return asyncio.get_running_loop()

    loop = arun(main)
    assert seen == [loop, loop]


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_the_concurrency_limit_is_respected_for_async_tools(limit: int) -> None:
    gauge = Gauge()

    @tool
    async def busy() -> None:
        with gauge:
            await asyncio.sleep(0.01)

    flow = Flow(name="f", steps=[Step(id=f"s{i}", tool=busy) for i in range(7)])
    assert run(flow, max_concurrency=limit).status is RunStatus.SUCCEEDED
    assert gauge.total == 7
    assert gauge.peak == limit


def test_unbounded_runs_every_ready_step_at_once() -> None:
    gauge = Gauge()

    @tool
    async def busy() -> None:
        with gauge:
            await asyncio.sleep(0.02)

    run(Flow(name="f", steps=[Step(id=f"s{i}", tool=busy) for i in range(5)]))
    assert gauge.peak == 5


def test_dispatch_is_eager() -> None:
    """a -> c beside b -> d: c starts while b is still running (no level barrier)."""
    events: dict[str, asyncio.Event] = {}

    @tool
    async def a() -> int:
        return 1

    @tool
    async def b() -> bool:
        try:
            await asyncio.wait_for(events["c"].wait(), 2.0)
        except TimeoutError:
            return False
        return True

    @tool
    async def c(x: int) -> int:
        events["c"].set()
        return x

    flow = Flow(
        name="eager",
        steps=[
            Step(id="a", tool=a),
            Step(id="b", tool=b),
            Step(id="c", tool=c, arguments={"x": Ref("a")}),
            Step(id="d", tool=after, arguments={"v": Ref("b")}),
        ],
    )

    async def main() -> ExecutionResult:
        events["c"] = asyncio.Event()
        return await AsyncioDriver().run(flow)

    assert arun(main).outputs == {"c": 1, "d": True}


# ---- errors -------------------------------------------------------------------------------------


def test_a_tool_raising_cancelled_error_itself_is_a_failed_step() -> None:
    @tool
    async def gives_up() -> None:
        raise asyncio.CancelledError("gave up")

    result = run(failing_flow(gives_up))
    bad = result.step("bad")
    assert bad.status is StepStatus.FAILED
    assert bad.error.type == "CancelledError"  # one record on every driver (issue 10.8)
    assert result.step("good2").output == "fine"
    assert result.status is RunStatus.FAILED


# ---- tools written for trio ---------------------------------------------------------------------


def test_a_trio_only_tool_gives_a_helpful_driver_error() -> None:
    trio = pytest.importorskip("trio")

    @tool
    async def trio_tool() -> None:
        await trio.sleep(0.01)

    result = run(failing_flow(trio_tool))
    error = result.step("bad").error
    assert error.kind is ErrorKind.DRIVER
    assert error.step == "bad"
    assert "cannot run on asyncio" in error.message
    assert "trio" in error.message
    assert "anyio" in error.message
    assert result.step("good2").output == "fine"


def test_a_trio_tool_that_checkpoints_gives_a_driver_error() -> None:
    trio = pytest.importorskip("trio")

    @tool
    async def trio_tool() -> None:
        await trio.lowlevel.checkpoint()

    result = run(failing_flow(trio_tool))
    assert result.step("bad").error.kind is ErrorKind.DRIVER


def test_an_asyncio_declared_tool_is_accepted() -> None:
    @tool(async_backend="asyncio")
    async def aio() -> str:
        await asyncio.sleep(0)
        return "aio"

    assert run(Flow(name="f", steps=[Step(id="a", tool=aio)])).outputs == {"a": "aio"}


# ---- caller cancellation ------------------------------------------------------------------------


def test_cancelling_the_task_cancels_the_run_with_a_partial_result() -> None:
    log: list[str] = []
    in_flight = 0
    both_started: asyncio.Event | None = None

    @tool
    async def fast() -> int:
        return 1

    @tool
    async def slow(x: int) -> str:
        nonlocal in_flight
        try:
            in_flight += 1
            if in_flight == 2:
                assert both_started is not None
                both_started.set()
            await asyncio.sleep(10)
            return "too late"
        except asyncio.CancelledError:
            log.append("cancelled")
            raise
        finally:
            log.append("finally")

    flow = Flow(
        name="cancel",
        steps=[
            Step(id="fast", tool=fast),
            Step(id="slow", tool=slow, arguments={"x": Ref("fast")}),
            Step(id="slow2", tool=slow, arguments={"x": Ref("fast")}),
            Step(id="queued", tool=after, arguments={"v": Ref("fast")}),  # waits for a slot
            Step(id="after_slow", tool=after, arguments={"v": Ref("slow")}),
        ],
    )

    async def main() -> BaseException:
        nonlocal both_started
        both_started = asyncio.Event()
        task = asyncio.create_task(AsyncioDriver().run(flow, run_id="c", max_concurrency=2))
        await both_started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as excinfo:
            await task
        assert task.cancelled()
        return excinfo.value

    exc = arun(main)
    assert log == ["cancelled", "finally", "cancelled", "finally"]  # the tools really were cancelled
    result = partial_result(exc)
    assert result is not None
    assert result.status is RunStatus.CANCELLED
    assert result.run_id == "c"
    assert result.reason == "cancelled: CancelledError in the caller"
    assert result.step("fast").status is StepStatus.SUCCEEDED
    assert result.step("fast").output == 1
    for step in ("slow", "slow2"):
        assert result.step(step).status is StepStatus.CANCELLED
        assert [a.status for a in result.step(step).attempts] == [AttemptStatus.CANCELLED]
    queued = result.step("queued")
    assert queued.status is StepStatus.CANCELLED
    assert queued.attempts == ()
    assert queued.reason == "the run stopped (cancelled: CancelledError in the caller)"
    assert result.step("after_slow").status is StepStatus.CANCELLED
    assert result.step("after_slow").reason == "dependency 'slow' was cancelled"
    assert result.errors == ()


def test_cancelling_abandons_a_sync_tool_in_its_thread() -> None:
    release = Release()
    started = threading.Event()

    @tool
    def blocking() -> str:
        started.set()
        release.wait(TIMEOUT)
        return "too late"

    flow = Flow(
        name="f",
        steps=[Step(id="blocking", tool=blocking), Step(id="next", tool=after, arguments={"v": Ref("blocking")})],
    )

    async def main() -> tuple[BaseException, bool]:
        task = asyncio.create_task(AsyncioDriver().run(flow))
        await asyncio.to_thread(started.wait, TIMEOUT)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError as exc:
            return exc, release.passed.is_set()
        finally:
            release.set()  # let the abandoned thread end, so the loop can shut its executor down
        raise AssertionError("not cancelled")

    exc, tool_returned_first = arun(main)
    assert not tool_returned_first  # the run was cancelled while the tool still waits
    result = partial_result(exc)
    assert result is not None
    assert result.step("blocking").status is StepStatus.CANCELLED
    assert result.step("next").status is StepStatus.CANCELLED


def test_calls_cancelled_before_their_tasks_ran_are_not_reported_abandoned() -> None:
    """A call's task takes itself out of the running table when it ends; one cancelled before it ran
    never does. fail_fast stops this run before the tasks started beside the inline failure ran: none is
    reported as a call that ignored cancellation, and none ran."""
    ran: list[str] = []

    @tool
    def fails() -> int:
        raise ValueError("first")

    @tool
    async def later(name: str) -> str:
        ran.append(name)
        return name

    steps = [Step(id="fail", tool=fails)]
    steps += [Step(id=f"a{k}", tool=later, arguments={"name": f"a{k}"}) for k in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", AbandonedCallWarning)
        result = run(Flow(name="stopped", steps=steps), sync_tools="inline", fail_fast=True)
    assert result.status == RunStatus.FAILED
    assert [result.step(f"a{k}").status for k in range(3)] == [StepStatus.CANCELLED] * 3
    assert ran == []


def test_a_sync_tool_that_outlives_its_run_and_loop_ends_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sync tool in a pool thread times out, the run ends and ``asyncio.run`` closes its loop; when the
    tool returns at last, its result has nowhere to go. It is dropped without an error, and the pool's
    thread is free for the next run."""
    reported: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    release, returned = threading.Event(), threading.Event()

    @tool
    def slow() -> str:
        release.wait(TIMEOUT)
        returned.set()
        return "too late"

    flow = Flow(name="f", steps=[Step(id="slow", tool=slow, timeout=0.05)])
    result = arun(lambda: AsyncioDriver().run(flow))
    assert result.step("slow").error.kind is ErrorKind.TIMEOUT
    release.set()  # the loop is closed by now
    assert returned.wait(TIMEOUT)
    time.sleep(0.1)  # the thread hands the result on (and drops it) after the tool returns
    assert reported == []
    again = arun(lambda: AsyncioDriver().run(Flow(name="g", steps=[Step(id="ok", tool=ok)])))
    assert again.status is RunStatus.SUCCEEDED
