"""What the asyncio and trio drivers must do alike: each test runs once on each of them."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from flowkernel import (
    ErrorKind,
    ExecutionResult,
    Flow,
    Input,
    Invoke,
    Ref,
    Resource,
    RetryPolicy,
    RunStatus,
    Step,
    StepStatus,
    tool,
)
from flowkernel.errors import AbandonedCallWarning
from flowkernel.host import AsyncDriver, UnsupportedToolError, partial_result
from flowkernel_asyncio import AsyncioDriver
from flowkernel_trio import TrioDriver

from .support import TOOL_ERRORS, Abort, Gauge, Point, after, failing_flow, in_thread, ok, raising


@pytest.fixture(params=[AsyncioDriver, TrioDriver], ids=["asyncio", "trio"])
def driver_class(request: pytest.FixtureRequest) -> type[AsyncDriver]:
    cls: type[AsyncDriver] = request.param
    return cls


def run(
    driver_class: type[AsyncDriver],
    flow: Flow,
    inputs: dict[str, Any] | None = None,
    *,
    sync_tools: str = "thread",
    **options: Any,
) -> ExecutionResult:
    """Run on a fresh loop of the driver's kind, in a thread the test gives up on if it hangs."""
    driver = driver_class(sync_tools=sync_tools)  # type: ignore[call-arg]
    result: ExecutionResult = in_thread(lambda: driver.run_blocking(flow, inputs, **options))
    return result


@pytest.mark.parametrize("sync_tools", ["thread", "inline"])
def test_sync_and_async_tools_with_nested_refs(driver_class: type[AsyncDriver], sync_tools: str) -> None:
    @tool
    def load(n: int) -> dict[str, Any]:
        return {"rows": [{"id": i} for i in range(n)]}

    @tool
    async def double(ids: list[int]) -> list[int]:
        await anyio.sleep(0)
        return [2 * i for i in ids]

    flow = Flow(
        name="mixed",
        steps=[
            Step(id="load", tool=load, arguments={"n": Input("n")}),
            Step(id="double", tool=double, arguments={"ids": Ref("load", "rows[*].id")}),
            Step(id="combine", tool=after, arguments={"v": {"d": [Ref("double"), Ref("load", "rows[0]")]}}),
        ],
    )
    for concurrency in (None, 1):
        result = run(driver_class, flow, {"n": 3}, sync_tools=sync_tools, run_id="r", max_concurrency=concurrency)
        assert result.status is RunStatus.SUCCEEDED
        assert result.run_id == "r"
        assert result.outputs == {"combine": {"d": [[0, 2, 4], {"id": 0}]}}
        started, finished = result.step("load").attempts[0][2:4]
        assert started <= finished


def test_a_tool_declared_for_the_other_loop_is_refused_before_the_run(driver_class: type[AsyncDriver]) -> None:
    called: list[str] = []
    other = "trio" if driver_class is AsyncioDriver else "asyncio"

    @tool(async_backend=other)
    async def foreign() -> None:
        called.append("foreign")

    @tool
    async def first() -> None:
        called.append("first")

    flow = Flow(name="f", steps=[Step(id="first", tool=first), Step(id="t", tool=foreign)])
    with pytest.raises(UnsupportedToolError) as excinfo:
        run(driver_class, flow)
    error = excinfo.value
    assert error.driver == driver_class.name
    assert [p.location for p in error.problems] == ["steps[1] (t)"]
    assert f"needs {other}" in error.problems[0].message
    assert "foreign" in str(error)
    assert called == []


@pytest.mark.parametrize(
    ("is_async", "sync_tools"),
    [(True, "thread"), (False, "thread"), (False, "inline")],
    ids=["async", "thread", "inline"],
)
@pytest.mark.parametrize(("exc", "type_name", "message"), TOOL_ERRORS)
def test_a_raising_tool_fails_its_step_and_independent_branches_run_on(
    driver_class: type[AsyncDriver], exc: BaseException, type_name: str, message: str, is_async: bool, sync_tools: str
) -> None:
    result = run(driver_class, failing_flow(raising(exc, is_async=is_async, sleep=anyio.sleep)), sync_tools=sync_tools)
    assert result.status is RunStatus.FAILED
    bad = result.step("bad")
    assert bad.status is StepStatus.FAILED
    assert bad.error is not None
    assert (bad.error.kind, bad.error.type, bad.error.message, bad.error.step) == (
        ErrorKind.TOOL,
        type_name,
        message,
        "bad",
    )
    assert bad.attempts[0].error == bad.error
    assert result.errors == (bad.error,)
    assert result.step("dependent").status is StepStatus.SKIPPED
    assert result.step("good2").output == "fine"


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_custom_base_exception_fails_only_its_step(driver_class: type[AsyncDriver], is_async: bool) -> None:
    result = run(driver_class, failing_flow(raising(Abort("abort"), is_async=is_async, sleep=anyio.sleep)))
    assert result.step("bad").status is StepStatus.FAILED
    assert result.step("good2").status is StepStatus.SUCCEEDED


def test_keyboard_interrupt_in_a_worker_thread_fails_only_its_step(driver_class: type[AsyncDriver]) -> None:
    @tool
    def boom() -> None:
        raise KeyboardInterrupt("in a worker thread")

    result = run(driver_class, failing_flow(boom))
    assert result.step("bad").status is StepStatus.FAILED
    assert result.step("good2").status is StepStatus.SUCCEEDED


def test_input_and_output_validation_failures_become_errors(driver_class: type[AsyncDriver]) -> None:
    class In(BaseModel):
        n: int

    @tool
    async def src() -> dict[str, Any]:
        return {"n": "NaN"}

    @tool(input_model=In)
    async def needs_int(n: int) -> int:
        return n

    @tool(output_model=Point)
    async def bad_point() -> dict[str, int]:
        return {"x": 1}

    flow = Flow(
        name="v",
        steps=[
            Step(id="src", tool=src),
            Step(id="in_bad", tool=needs_int, arguments={"n": Ref("src", "n")}),
            Step(id="out_bad", tool=bad_point),
            Step(id="good", tool=ok),
        ],
    )
    result = run(driver_class, flow)
    in_bad, out_bad = result.step("in_bad"), result.step("out_bad")
    assert in_bad.error is not None
    assert in_bad.error.kind is ErrorKind.INPUT_VALIDATION
    assert in_bad.attempts == ()
    assert out_bad.error is not None
    assert out_bad.error.kind is ErrorKind.OUTPUT_VALIDATION
    assert result.step("good").output == "fine"
    assert [e.step for e in result.errors] == ["in_bad", "out_bad"]


def test_the_concurrency_limit_is_respected_for_sync_tools_in_threads(driver_class: type[AsyncDriver]) -> None:
    gauge = Gauge()

    @tool
    def busy() -> None:
        with gauge:
            gauge.wait_for_peak(2)
            time.sleep(0.005)

    run(driver_class, Flow(name="f", steps=[Step(id=f"s{i}", tool=busy) for i in range(6)]), max_concurrency=2)
    assert gauge.total == 6
    assert gauge.peak == 2


@pytest.mark.parametrize(("sync_tools", "same_thread"), [("thread", False), ("inline", True)])
def test_where_sync_tools_run(driver_class: type[AsyncDriver], sync_tools: str, same_thread: bool) -> None:
    seen: list[int] = []

    @tool
    def where() -> None:
        seen.append(threading.get_ident())

    flow = Flow(name="f", steps=[Step(id="a", tool=where), Step(id="b", tool=where)])
    driver = driver_class(sync_tools=sync_tools)  # type: ignore[call-arg]

    def main() -> int:  # run_blocking runs the event loop in this very thread
        driver.run_blocking(flow)
        return threading.get_ident()

    loop_thread = in_thread(main)
    assert len(seen) == 2
    assert all((ident == loop_thread) is same_thread for ident in seen)


def test_cancelling_the_caller_closes_resources_once_after_the_calls_and_runs_middleware_cleanup(
    driver_class: type[AsyncDriver],
) -> None:
    """The caller's cancellation (an asyncio task cancelled, a trio scope cancelled) cancels the async tool,
    whose middleware's ``finally`` runs, and closes the run's async resource exactly once, after that."""
    trail: list[str] = []

    @asynccontextmanager
    async def open_client() -> AsyncIterator[str]:
        trail.append("open")
        try:
            yield "client"
        finally:
            await anyio.sleep(0)  # a real await while the run is being cancelled: shielded
            trail.append("close")

    client = Resource("client", open_client)

    @tool
    async def hangs(x: int) -> int:
        trail.append(f"call with {client.get()}")
        await anyio.sleep(60)
        return x

    def watch(call: Invoke) -> Generator[Invoke, Any, Any]:
        try:
            return (yield call)
        finally:
            trail.append("middleware cleanup")

    flow = Flow(name="hanging", steps=[Step(id="h", tool=hangs, arguments={"x": 1})], resources=[client])
    driver = driver_class()

    async def main() -> Any:
        with anyio.move_on_after(0.2):
            return await driver.run(flow, middleware=[watch])
        return None

    assert in_thread(lambda: anyio.run(main, backend=driver.name)) is None  # the run was cancelled
    assert trail == ["open", "call with client", "middleware cleanup", "close"]


def test_a_caller_stop_while_a_retryable_failure_waits_gives_the_partial_result(
    driver_class: type[AsyncDriver],
) -> None:
    """Issue 10.1: the failure and the stop reach the kernel in one batch; the backoff timer the kernel
    starts and cancels at once must not leave the abort waiting for an answer (it raised ProtocolError)."""
    stop: list[Any] = []

    @tool(retry=RetryPolicy(max_attempts=3, initial_delay=30))
    async def fails_and_stops(x: int) -> int:
        stop[0]()  # the caller cancels the run as the failure is reported
        raise ValueError("flaky")

    flow = Flow(name="flaky", steps=[Step(id="f", tool=fails_and_stops, arguments={"x": 1})])
    driver = driver_class()

    async def main() -> Any:
        with anyio.CancelScope() as scope:
            stop.append(scope.cancel)
            try:
                await driver.run(flow)
            except driver.cancellation as exc:
                return partial_result(exc)
        return None

    partial = in_thread(lambda: anyio.run(main, backend=driver.name))
    assert partial is not None
    assert partial.status == RunStatus.CANCELLED
    (attempt,) = partial.step("f").attempts
    assert attempt.error is not None
    assert attempt.error.message == "flaky"


def test_a_tool_raising_keyboard_interrupt_itself_stops_the_run_with_the_partial_result(
    driver_class: type[AsyncDriver],
) -> None:
    """Issue 10.3: in the caller's thread a KeyboardInterrupt is the user's Ctrl-C, wherever it is raised;
    trio used to give a BaseExceptionGroup with no partial result."""

    @tool
    async def interrupts(x: str) -> int:
        raise KeyboardInterrupt

    flow = Flow(
        name="interrupted",
        steps=[Step(id="ok", tool=ok), Step(id="i", tool=interrupts, arguments={"x": Ref("ok")})],
    )
    driver = driver_class()
    with pytest.raises(KeyboardInterrupt) as raised:
        in_thread(lambda: driver.run_blocking(flow, max_concurrency=1))
    partial = partial_result(raised.value)
    assert partial is not None
    assert partial.status == RunStatus.CANCELLED
    assert partial.step("ok").status == StepStatus.SUCCEEDED


def test_a_tool_that_ignores_cancellation_is_abandoned_after_the_grace_period(
    driver_class: type[AsyncDriver],
) -> None:
    """Issue 10.5: the run waited forever for a tool's task that ignores cancellation; now it returns within
    the timeout plus the grace period, the step timed out, and the abandoned call is reported."""
    released = threading.Event()

    @tool
    async def stubborn(x: int) -> int:
        while not released.is_set():
            try:
                with anyio.CancelScope(shield=True):  # trio's cancellation never reaches it
                    await anyio.sleep(0.02)
            except anyio.get_cancelled_exc_class():  # asyncio's does, and is swallowed
                continue
        return x

    flow = Flow(name="stubborn", steps=[Step(id="s", tool=stubborn, arguments={"x": 1}, timeout=0.1)])
    driver = driver_class()

    async def main() -> tuple[ExecutionResult, bool]:
        result = await driver.run(flow, run_id="r1")
        still_running = not released.is_set()
        released.set()  # now let the abandoned call end, so the event loop can close
        return result, still_running

    with pytest.warns(AbandonedCallWarning, match=r"run r1: abandoned call s@1 "):
        result, returned_while_it_ran = in_thread(lambda: anyio.run(main, backend=driver.name), timeout=5)
    assert returned_while_it_ran
    error = result.step("s").error
    assert error is not None
    assert error.kind == ErrorKind.TIMEOUT
