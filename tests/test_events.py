"""Progress events: one model from the kernel, streamed by every driver; stopping a stream cancels."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import trio

from flowkernel import Flow, Invoke, Ref, RetryPolicy, RunOptions, StartTimer, Step, tool
from flowkernel.events import (
    AttemptFailed,
    Event,
    RetryScheduled,
    RunFinished,
    StepCancelled,
    StepFinished,
    StepSkipped,
    StepStarted,
)
from flowkernel.host import Driver
from flowkernel.kernel import run_flow
from flowkernel_asyncio import AsyncioDriver
from flowkernel_sync import SyncDriver
from flowkernel_trio import TrioDriver

gate = threading.Event()


@tool
def inc(x: int) -> int:
    return x + 1


@tool(retry=RetryPolicy(max_attempts=2, initial_delay=0.001))
def always_fails(x: int) -> int:
    raise ValueError("no")


@tool
def waits(x: int) -> int:
    gate.wait(5)
    return x


FLOW = Flow(
    name="events",
    steps=[
        Step(id="a", tool=inc, arguments={"x": 1}),
        Step(id="b", tool=always_fails, arguments={"x": Ref("a")}),
        Step(id="c", tool=inc, arguments={"x": Ref("b")}),
    ],
)
EXPECTED = [
    StepStarted("a", 1),
    StepFinished("a", "succeeded"),
    StepStarted("b", 1),
    AttemptFailed,
    RetryScheduled("b", 2, 0.001),
    StepStarted("b", 2),
    AttemptFailed,
    StepFinished("b", "failed"),
    StepSkipped("c", "dependency 'b' failed"),
    RunFinished,
]


def shape(events: list[Event]) -> list[Any]:
    return [type(e) if isinstance(e, AttemptFailed | RunFinished) else e for e in events]


def test_the_kernel_emits_no_events_unless_asked() -> None:
    kernel = run_flow(FLOW, None, RunOptions("r"))
    assert all(isinstance(c, Invoke | StartTimer) for c in kernel.send(None))  # type: ignore[arg-type]
    kernel = run_flow(FLOW, None, RunOptions("r", events=True))
    assert kernel.send(None)[1] == StepStarted("a", 1)  # type: ignore[arg-type, comparison-overlap]


@pytest.mark.parametrize("driver", [SyncDriver(), AsyncioDriver(), TrioDriver()], ids=["sync", "asyncio", "trio"])
def test_every_driver_reports_the_same_events_through_on_event(driver: Driver) -> None:
    seen: list[Event] = []
    result = driver.run_blocking(FLOW, run_id="r", max_concurrency=1, on_event=seen.append)
    assert shape(seen) == EXPECTED
    assert seen[-1] == RunFinished(result)
    assert seen[3].error.type == "ValueError"  # type: ignore[union-attr]


def test_the_sync_stream_yields_events_as_they_happen() -> None:
    with SyncDriver().stream(FLOW, run_id="r") as events:
        seen = list(events)
    assert shape(seen) == EXPECTED
    assert events.result is not None
    assert events.result.status == "failed"


def test_closing_a_sync_stream_cancels_the_run_with_a_partial_result() -> None:
    flow = Flow(
        name="f", steps=[Step(id="a", tool=inc, arguments={"x": 1}), Step(id="b", tool=inc, arguments={"x": Ref("a")})]
    )
    with SyncDriver().stream(flow, max_concurrency=1) as events:
        assert next(events) == StepStarted("a", 1)
    assert events.result is not None
    assert events.result.status == "cancelled"
    assert [s.status for s in events.result.steps] == ["succeeded", "cancelled"]


@pytest.mark.parametrize("library", ["asyncio", "trio"])
def test_async_streams_and_leaving_early_cancels(library: str) -> None:
    driver = AsyncioDriver() if library == "asyncio" else TrioDriver()

    @tool
    async def forever(x: int) -> int:
        await (asyncio.sleep(60) if library == "asyncio" else trio.sleep(60))
        return x

    stuck = Flow(
        name="g",
        steps=[Step(id="a", tool=inc, arguments={"x": 1}), Step(id="b", tool=forever, arguments={"x": Ref("a")})],
    )

    async def main() -> tuple[list[Event], Any, Any]:
        async with driver.stream(FLOW, run_id="r", max_concurrency=1) as events:
            seen = [event async for event in events]
        async with driver.stream(stuck, run_id="r") as stopped:
            async for event in stopped:
                if event == StepStarted("b", 1):
                    break
        return seen, events.result, stopped.result

    seen, finished, partial = asyncio.run(main()) if library == "asyncio" else trio.run(main)
    assert shape(seen) == EXPECTED
    assert finished.status == "failed"
    assert partial.status == "cancelled"
    assert [s.status for s in partial.steps] == ["succeeded", "cancelled"]
    assert StepCancelled("b") not in seen


def test_a_stop_reports_the_steps_it_cancels() -> None:
    gate.clear()
    flow = Flow(
        name="f",
        steps=[Step(id="w", tool=waits, arguments={"x": 1}), Step(id="n", tool=inc, arguments={"x": Ref("w")})],
    )
    seen: list[Event] = []
    result = SyncDriver().run(flow, deadline=0.05, on_event=seen.append)
    gate.set()
    assert result.status == "timed_out"
    assert StepCancelled("n") in seen
    assert StepCancelled("w") in seen
