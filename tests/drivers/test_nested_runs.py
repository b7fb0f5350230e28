"""Sub-flows and map steps on real drivers: the same canonical result on every driver and at every limit,
elements really running concurrently up to the map's limit (and never beyond), tools for another event
loop refused however deep they are nested, and stops, deadlines and timeouts reaching into children.

Every run is bounded (a real timeout around it), so a regression fails instead of hanging; no test waits
for real longer than a fraction of a second when it passes.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from typing import Any

import anyio
import pytest

from flowkernel import (
    ErrorInfo,
    ErrorKind,
    ExecutionResult,
    Flow,
    Input,
    Item,
    Ref,
    RunStatus,
    Step,
    StepStatus,
    tool,
)
from flowkernel.host import Driver, UnsupportedToolError, current_invoke, partial_result
from flowkernel.model import Fallback, RetryPolicy
from flowkernel.model.tool import AsyncBackend
from flowkernel_asyncio import AsyncioDriver
from flowkernel_sync import SyncDriver

from .support import Release, arun, in_thread

RUN_ID = "nested-run"
# The event loop each bundled driver runs async tools on (the sync driver: asyncio, in a helper thread).
# (dask: the workers' asyncio loops.)
LOOP_OF: dict[str, AsyncBackend] = {"sync": "asyncio", "asyncio": "asyncio", "trio": "trio", "dask": "asyncio"}
# Drivers that pickle tools to send them elsewhere: a tool closing over a lock or an event cannot go.
SHIPS_TOOLS = frozenset({"dask"})


def loop_of(driver: Driver) -> AsyncBackend:
    if driver.name not in LOOP_OF:
        pytest.skip(f"which event loop driver {driver.name!r} runs async tools on is unknown here")
    return LOOP_OF[driver.name]


def in_shared_memory(driver: Driver) -> None:
    """Skip a test whose tools share a gauge or an event with it through closures on a driver that ships tools."""
    if driver.name in SHIPS_TOOLS:
        pytest.skip(
            f"driver {driver.name!r} pickles tools, and this test's tools close over a lock or an event "
            "(the parity suite checks its results on dask; tests/drivers/test_dask.py its timeouts)"
        )


# ---- every driver, the same result -------------------------------------------------------------


@tool
def numbers(n: int) -> list[int]:
    return list(range(n))


@tool
def square(n: int) -> int:
    """Fails for every seventh number (from 3): tolerated by the map step's ``continue``."""
    if n % 7 == 3:
        raise ValueError(f"no square for {n}")
    return n * n


@tool
async def flaky_double(n: int) -> int:
    """Fails the first attempt for multiples of 5, then doubles."""
    await anyio.sleep(0)
    if n % 5 == 0 and current_invoke().attempt == 1:
        raise ConnectionError(f"refused {n}")
    return 2 * n


@tool
def label(n: int, tag: str) -> str:
    return f"{tag}-{n}"


@tool
async def shout(text: str) -> str:
    return text.upper()


@tool
def total(squares: list[int | None], doubles: list[int]) -> int:
    return sum(s for s in squares if s is not None) + sum(doubles)


LABEL = Flow(
    name="label",
    steps=[
        Step(id="name", tool=label, arguments={"n": Input("n"), "tag": Input("tag")}),
        Step(id="loud", tool=shout, arguments={"text": Ref("name")}),
    ],
    outputs={"loud": Ref("loud")},
)

FAN_OUT = Flow(
    name="fan_out",
    steps=[
        Step(id="numbers", tool=numbers, arguments={"n": Input("n")}),
        Step(
            id="squares",
            tool=square,
            map=Ref("numbers"),
            arguments={"n": Item()},
            max_concurrency=5,
            on_error="continue",
        ),
        Step(
            id="doubles",
            tool=flaky_double,
            map=Ref("numbers"),
            arguments={"n": Item()},
            retry=RetryPolicy(max_attempts=2, initial_delay=0.001, jitter=0.5),
        ),
        Step(id="labels", flow=LABEL, map=Ref("numbers", "[?@ < `6`]"), arguments={"n": Item(), "tag": Input("tag")}),
        Step(id="total", tool=total, arguments={"squares": Ref("squares"), "doubles": Ref("doubles")}),
    ],
)
FAN_OUT_INPUTS = {"n": 20, "tag": "t"}


@functools.cache
def reference() -> dict[str, Any]:
    """The canonical result, computed one call at a time on the sync driver."""
    result = in_thread(lambda: SyncDriver().run(FAN_OUT, FAN_OUT_INPUTS, run_id=RUN_ID, max_concurrency=1))
    return result.canonical()


def test_the_reference_result_says_what_the_map_steps_mean() -> None:
    canonical = reference()
    assert canonical["status"] == "succeeded"
    steps = {s["id"]: s for s in canonical["steps"]}
    squares = [None if n % 7 == 3 else n * n for n in range(20)]
    assert steps["squares"]["output"] == squares
    assert steps["doubles"]["output"] == [2 * n for n in range(20)]
    assert steps["labels"]["output"] == [{"loud": f"T-{n}"} for n in range(6)]
    assert steps["total"]["output"] == sum(s for s in squares if s is not None) + sum(2 * n for n in range(20))
    elements = {s["id"]: s for s in steps["doubles"]["subflow"]["steps"]}
    assert [len(elements[f"item{n}"]["attempts"]) for n in range(20)] == [2 if n % 5 == 0 else 1 for n in range(20)]
    assert [s["status"] for s in steps["squares"]["subflow"]["steps"]] == [
        "failed" if n % 7 == 3 else "succeeded" for n in range(20)
    ]


@pytest.mark.parametrize("limit", [None, 3])
def test_a_map_over_20_elements_gives_the_same_result_on_every_driver_and_limit(
    flowkernel_driver: Driver, limit: int | None
) -> None:
    result = in_thread(
        lambda: flowkernel_driver.run_blocking(FAN_OUT, FAN_OUT_INPUTS, run_id=RUN_ID, max_concurrency=limit)
    )
    assert result.canonical() == reference()


# ---- real concurrency --------------------------------------------------------------------------

HOLD = 0.01  # how long a call stays in once the peak was reached, so calls started together overlap


class Gauge:
    """Counts the calls running at once. Each call waits (at most ``patience``) until ``limit`` calls have
    been in at once, then holds on a moment: the peak reaches the limit whenever the driver really runs
    that many at once, and passes it if the driver runs more."""

    def __init__(self, limit: int, patience: float) -> None:
        self.limit = limit
        self.patience = patience
        self.running = 0
        self.peak = 0
        self.lock = threading.Lock()

    def enter(self) -> None:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)

    def leave(self) -> None:
        with self.lock:
            self.running -= 1

    def full(self) -> bool:
        with self.lock:
            return self.peak >= self.limit

    def tools(self) -> dict[str, Any]:
        @tool
        def sync_count(x: int) -> int:
            self.enter()
            try:
                deadline = time.monotonic() + self.patience
                while not self.full() and time.monotonic() < deadline:
                    time.sleep(0.001)
                time.sleep(HOLD)
                return x
            finally:
                self.leave()

        @tool
        async def async_count(x: int) -> int:
            self.enter()
            try:
                deadline = time.monotonic() + self.patience
                while not self.full() and time.monotonic() < deadline:
                    await anyio.sleep(0.001)
                await anyio.sleep(HOLD)
                return x
            finally:
                self.leave()

        return {"sync": sync_count, "async": async_count}


def counting_map(fn: Any, limit: int) -> Flow:
    return Flow(
        name="count", steps=[Step(id="m", tool=fn, map=Input("xs"), arguments={"x": Item()}, max_concurrency=limit)]
    )


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_map_elements_really_run_concurrently_up_to_the_limit_and_never_beyond(
    flowkernel_driver: Driver, kind: str
) -> None:
    in_shared_memory(flowkernel_driver)
    gauge = Gauge(limit=4, patience=1.0)  # only waited out if the driver runs fewer than 4 at once
    flow = counting_map(gauge.tools()[kind], 4)
    result = in_thread(lambda: flowkernel_driver.run_blocking(flow, {"xs": list(range(8))}, run_id=RUN_ID))
    assert result.outputs == {"m": list(range(8))}
    assert gauge.peak == 4


@pytest.mark.parametrize("run_limit", [1, 2])
def test_a_map_limit_above_the_run_limit_is_bounded_by_the_run_limit(flowkernel_driver: Driver, run_limit: int) -> None:
    """Issue 10.16: the run's limit bounds every call of the run; a step's own limit only nests inside it."""
    in_shared_memory(flowkernel_driver)
    gauge = Gauge(limit=4, patience=0.05)
    flow = counting_map(gauge.tools()["sync"], 4)
    result = in_thread(
        lambda: flowkernel_driver.run_blocking(flow, {"xs": list(range(4))}, run_id=RUN_ID, max_concurrency=run_limit)
    )
    assert result.outputs == {"m": list(range(4))}
    assert gauge.peak == run_limit


# ---- tools for another loop, however deep ------------------------------------------------------


def test_a_tool_for_another_loop_nested_in_sub_flows_is_refused_before_anything_runs(
    flowkernel_driver: Driver,
) -> None:
    other: AsyncBackend = "trio" if loop_of(flowkernel_driver) == "asyncio" else "asyncio"
    calls: list[str] = []

    @tool
    def witness() -> str:
        calls.append("witness")
        return "ran"

    @tool(async_backend=other)
    async def foreign(x: Any = None) -> Any:
        return x

    @tool
    async def portable(x: Any = None) -> Any:
        return x

    inner = Flow(
        name="inner",
        steps=[
            Step(id="ok", tool=portable),
            Step(id="each", tool=foreign, map=Input("xs"), arguments={"x": Item()}),
            Step(id="guarded", tool=portable, on_error=Fallback(tool=foreign)),
        ],
    )
    middle = Flow(name="middle", steps=[Step(id="deeper", flow=inner, arguments={"xs": Input("xs")})])
    top = Flow(name="top", steps=[Step(id="first", tool=witness), Step(id="outer", flow=middle, arguments={"xs": [1]})])
    with pytest.raises(UnsupportedToolError) as excinfo:
        in_thread(lambda: flowkernel_driver.run_blocking(top, run_id=RUN_ID))
    loop = loop_of(flowkernel_driver)
    message = f"tool 'foreign' needs {other}, not {loop}; use the {other} driver, or write the tool with anyio"
    assert [(p.location, p.message) for p in excinfo.value.problems] == [
        ("steps[1] (outer).flow.steps[0] (deeper).flow.steps[1] (each)", message),
        ("steps[1] (outer).flow.steps[0] (deeper).flow.steps[2] (guarded).on_error", message),
    ]
    assert calls == []


def test_portable_async_tools_nested_in_sub_flows_run_on_every_driver(flowkernel_driver: Driver) -> None:
    @tool(async_backend=loop_of(flowkernel_driver))
    async def native(x: Any = None) -> Any:
        await anyio.sleep(0)
        return x

    inner = Flow(name="inner", steps=[Step(id="each", tool=native, map=Input("xs"), arguments={"x": Item()})])
    top = Flow(name="top", steps=[Step(id="outer", flow=inner, arguments={"xs": [1, 2]})])
    result = in_thread(lambda: flowkernel_driver.run_blocking(top, run_id=RUN_ID))
    assert result.outputs == {"outer": {"each": [1, 2]}}


# ---- timeouts, deadlines and stops reach into children -----------------------------------------


def test_a_timeout_inside_a_sub_flow_is_enforced_one_call_at_a_time(
    flowkernel_driver: Driver, release: Release
) -> None:
    in_shared_memory(flowkernel_driver)

    @tool
    def blocking(x: Any = None) -> str:
        release.wait(0.5)
        return "late"

    child = Flow(name="child", steps=[Step(id="a", tool=blocking, timeout=0.05)])
    flow = Flow(name="f", steps=[Step(id="s", flow=child, on_error="continue")])
    result = in_thread(lambda: flowkernel_driver.run_blocking(flow, run_id=RUN_ID, max_concurrency=1))
    assert result.step("s").error == ErrorInfo(
        ErrorKind.TIMEOUT, "TimeoutError", "step 'a' failed: attempt 1 timed out after 0.05 s", "s"
    )


def test_the_run_deadline_cancels_the_elements_of_a_map_inside_a_sub_flow(flowkernel_driver: Driver) -> None:
    @tool
    async def hang(x: Any = None) -> Any:
        await anyio.sleep(10)
        return x  # never: in_thread fails the test after 5 s

    @tool
    def quick(x: Any = None) -> Any:
        return x

    inner = Flow(
        name="inner",
        steps=[
            Step(id="done", tool=quick, arguments={"x": "early"}),
            Step(id="each", tool=hang, map=Input("xs"), arguments={"x": Item()}),
        ],
    )
    flow = Flow(name="f", steps=[Step(id="s", flow=inner, arguments={"xs": [1, 2, 3]})])
    result: ExecutionResult = in_thread(lambda: flowkernel_driver.run_blocking(flow, run_id=RUN_ID, deadline=0.1))
    assert (result.status, result.reason) == (RunStatus.TIMED_OUT, "deadline of 0.1 s exceeded")
    assert result.step("s").status == StepStatus.CANCELLED
    nested = result.step("s").subflow
    assert nested is not None
    assert nested.status == RunStatus.CANCELLED
    assert nested.step("done").output == "early"
    assert nested.step("each").status == StepStatus.CANCELLED
    elements = nested.step("each").subflow
    assert elements is not None
    assert [s.status for s in elements.steps] == [StepStatus.CANCELLED] * 3


def test_cancelling_the_caller_cancels_the_nested_calls_with_a_partial_result() -> None:
    log: list[str] = []
    started = 0
    all_started: asyncio.Event | None = None

    @tool
    async def slow(x: int) -> str:
        nonlocal started
        try:
            started += 1
            if started == 2:
                assert all_started is not None
                all_started.set()
            await asyncio.sleep(10)
            return "too late"
        except asyncio.CancelledError:
            log.append(f"cancelled {x}")
            raise

    inner = Flow(name="inner", steps=[Step(id="each", tool=slow, map=Input("xs"), arguments={"x": Item()})])
    flow = Flow(name="f", steps=[Step(id="s", flow=inner, arguments={"xs": [1, 2]})])

    async def main() -> BaseException:
        nonlocal all_started
        all_started = asyncio.Event()
        task = asyncio.create_task(AsyncioDriver().run(flow, run_id="c"))
        await all_started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as excinfo:
            await task
        return excinfo.value

    exc = arun(main)
    assert sorted(log) == ["cancelled 1", "cancelled 2"]  # the nested tools really were cancelled
    result = partial_result(exc)
    assert result is not None
    assert (result.status, result.reason) == (RunStatus.CANCELLED, "cancelled: CancelledError in the caller")
    nested = result.step("s").subflow
    assert nested is not None
    assert nested.step("each").status == StepStatus.CANCELLED
    assert [s.status for s in nested.step("each").subflow.steps] == [StepStatus.CANCELLED] * 2  # type: ignore[union-attr]
