"""Run events: one model from the kernel, delivered by every driver when they happen, with run id,
place, tool, call id and time; sub-flows and map elements report their own steps; stopping a stream
cancels the run."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import trio

from flowkernel import Flow, Input, Item, Ref, RetryPolicy, RunOptions, Step, tool
from flowkernel.events import (
    AttemptFailed,
    Event,
    RetryScheduled,
    RunFinished,
    RunStarted,
    StepCancelled,
    StepFinished,
    StepSkipped,
    StepStarted,
    wall_time_of,
    without_timing,
)
from flowkernel.host import Driver
from flowkernel.kernel import RunState
from flowkernel.kernel.inputs import prepare_inputs
from flowkernel.kernel.run import drive
from flowkernel_asyncio import AsyncioDriver
from flowkernel_sync import SyncDriver
from flowkernel_trio import TrioDriver

gate = threading.Event()
log: list[Any] = []
"""What the order tests see happen: events as delivered and tools as they run, in one list."""


@tool
def inc(x: int) -> int:
    return x + 1


@tool
def logged(x: int) -> int:
    log.append(f"run {x}")
    time.sleep(0.02)
    log.append(f"ran {x}")
    return x + 1


@tool(retry=RetryPolicy(max_attempts=2, initial_delay=0.001))
def always_fails(x: int) -> int:
    raise ValueError("no")


@tool
def waits(x: int) -> int:
    gate.wait(5)
    return x


@tool
def numbers(n: int) -> list[int]:
    return list(range(n))


FLOW = Flow(
    name="events",
    version="7",
    steps=[
        Step(id="a", tool=inc, arguments={"x": 1}),
        Step(id="b", tool=always_fails, arguments={"x": Ref("a")}),
        Step(id="c", tool=inc, arguments={"x": Ref("b")}),
    ],
)
ERROR = object()  # stands for the error in an expected event (its traceback differs between drivers)


def expected(run_id: str = "r") -> list[Any]:
    return [
        RunStarted(run_id, "", "events", "7"),
        StepStarted(run_id, "a", 1, "inc", "a@1", {"x": 1}),
        StepFinished(run_id, "a", "succeeded", 2),
        StepStarted(run_id, "b", 1, "always_fails", "b@1", {"x": 2}),
        AttemptFailed(run_id, "b", 1, "always_fails", "b@1", ERROR),  # type: ignore[arg-type]
        RetryScheduled(run_id, "b", 2, 0.001),
        StepStarted(run_id, "b", 2, "always_fails", "b@2", {"x": 2}),
        AttemptFailed(run_id, "b", 2, "always_fails", "b@2", ERROR),  # type: ignore[arg-type]
        StepFinished(run_id, "b", "failed", None, ERROR),  # type: ignore[arg-type]
        StepSkipped(run_id, "c", "dependency 'b' failed"),
        RunFinished,
    ]


def shape(events: list[Event]) -> list[Any]:
    """Events without timing; errors and the final result stand for themselves by type."""
    out: list[Any] = []
    for event in map(without_timing, events):
        if isinstance(event, RunFinished):
            out.append(RunFinished)
        elif isinstance(event, AttemptFailed | StepFinished) and event.error is not None:
            assert event.error.type == "ValueError"
            out.append(event._replace(error=ERROR))
        else:
            out.append(event)
    return out


def test_the_kernel_collects_events_beside_its_commands_only_when_asked() -> None:
    quiet = RunState(FLOW, prepare_inputs(FLOW, None), RunOptions("r"))
    drive(quiet).send(None)
    assert quiet.events == []
    state = RunState(FLOW, prepare_inputs(FLOW, None), RunOptions("r", events=True))
    commands = drive(state).send(None)
    assert [type(c).__name__ for c in commands] == ["Invoke"]
    assert state.events == [StepStarted("r", "a", 1, "inc", "a@1", {"x": 1})]


@pytest.mark.parametrize("driver", [SyncDriver(), AsyncioDriver(), TrioDriver()], ids=["sync", "asyncio", "trio"])
def test_every_driver_reports_the_same_events_through_on_event(driver: Driver) -> None:
    seen: list[Event] = []
    result = driver.run_blocking(FLOW, run_id="r", max_concurrency=1, on_event=seen.append)
    assert shape(seen) == expected()
    last = seen[-1]
    assert isinstance(last, RunFinished)
    assert last.result == result
    assert all(event.run_id == "r" for event in seen)


@pytest.mark.parametrize("driver", [SyncDriver(), AsyncioDriver(), TrioDriver()], ids=["sync", "asyncio", "trio"])
def test_event_times_are_on_the_driver_clock_and_map_to_epoch_time_through_the_anchor(driver: Driver) -> None:
    seen: list[Event] = []
    before = time.time()
    driver.run_blocking(FLOW, run_id="r", on_event=seen.append)
    after = time.time()
    anchor = seen[0]
    assert isinstance(anchor, RunStarted)
    times = [event.time for event in seen]
    assert times == sorted(times)
    assert before <= wall_time_of(seen[0], anchor) <= wall_time_of(seen[-1], anchor) <= after + 0.01


@pytest.mark.parametrize("threaded", [False, True], ids=["inline", "threaded"])
def test_the_sync_driver_delivers_a_start_before_the_tool_runs_and_the_finish_right_after(threaded: bool) -> None:
    """Two 20 ms steps: each step's start arrives before its tool runs, its finish before the next one starts."""
    flow = Flow(
        name="timely",
        steps=[Step(id="a", tool=logged, arguments={"x": 1}), Step(id="b", tool=logged, arguments={"x": Ref("a")})],
    )
    log.clear()

    def on_event(event: Event) -> None:
        if isinstance(event, StepStarted | StepFinished):
            log.append(f"{type(event).__name__} {event.path}")

    SyncDriver().run(flow, max_concurrency=None if threaded else 1, on_event=on_event)
    assert log == [
        "StepStarted a",
        "run 1",
        "ran 1",
        "StepFinished a",
        "StepStarted b",
        "run 2",
        "ran 2",
        "StepFinished b",
    ]


def test_sub_flows_and_map_elements_report_their_own_steps_under_their_paths() -> None:
    inner = Flow(name="inner", steps=[Step(id="bump", tool=inc, arguments={"x": Input("x")})])
    report = Flow(
        name="report",
        steps=[
            Step(id="list", tool=numbers, arguments={"n": Input("n")}),
            Step(id="each", tool=inc, map=Ref("list"), arguments={"x": Item()}),
            Step(id="deep", flow=inner, map=Ref("list"), arguments={"x": Item()}, after=["each"]),
        ],
    )
    outer = Flow(name="outer", steps=[Step(id="report", flow=report, arguments={"n": 2})])
    seen: list[Event] = []
    SyncDriver().run(outer, run_id="r", max_concurrency=1, on_event=seen.append)
    started = [(e.path, e.call_id) for e in seen if isinstance(e, StepStarted)]
    assert started == [
        ("report", None),
        ("report/list", "report/list@1"),
        ("report/each", None),
        ("report/each[0]", "report/each/item0@1"),
        ("report/each[1]", "report/each/item1@1"),
        ("report/deep", None),
        ("report/deep[0]", None),
        ("report/deep[0]/bump", "report/deep/item0/bump@1"),
        ("report/deep[1]", None),
        ("report/deep[1]/bump", "report/deep/item1/bump@1"),
    ]
    finished = {e.path: e.output for e in seen if isinstance(e, StepFinished)}
    assert finished["report/each[1]"] == 2
    assert finished["report/each"] == [1, 2]
    assert finished["report/deep[1]/bump"] == 2
    assert finished["report"] == {"deep": [{"bump": 1}, {"bump": 2}]}
    assert {e.run_id for e in seen} == {"r"}
    assert [type(e) for e in seen].count(RunStarted) == 1


def test_the_sync_stream_yields_events_as_they_happen() -> None:
    with SyncDriver().stream(FLOW, run_id="r") as events:
        seen = list(events)
    assert shape(seen) == expected()
    assert events.result is not None
    assert events.result.status == "failed"


def test_closing_a_sync_stream_cancels_the_run_with_a_partial_result() -> None:
    flow = Flow(
        name="f", steps=[Step(id="a", tool=inc, arguments={"x": 1}), Step(id="b", tool=inc, arguments={"x": Ref("a")})]
    )
    with SyncDriver().stream(flow, max_concurrency=1, run_id="r") as events:
        assert isinstance(next(events), RunStarted)
        assert without_timing(next(events)) == StepStarted("r", "a", 1, "inc", "a@1", {"x": 1})
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

    async def main() -> tuple[list[Event], Any, Any, list[Event]]:
        async with driver.stream(FLOW, run_id="r", max_concurrency=1) as events:
            seen = [event async for event in events]
        stopped_seen: list[Event] = []
        async with driver.stream(stuck, run_id="r") as stopped:
            async for event in stopped:
                stopped_seen.append(event)
                if isinstance(event, StepStarted) and event.path == "b":
                    break
        return seen, events.result, stopped.result, stopped_seen

    seen, finished, partial, stopped_seen = asyncio.run(main()) if library == "asyncio" else trio.run(main)
    assert shape(seen) == expected()
    assert finished.status == "failed"
    assert partial.status == "cancelled"
    assert [s.status for s in partial.steps] == ["succeeded", "cancelled"]
    assert not any(isinstance(e, StepCancelled) for e in stopped_seen)


def test_a_stop_reports_the_steps_it_cancels() -> None:
    gate.clear()
    flow = Flow(
        name="f",
        steps=[Step(id="w", tool=waits, arguments={"x": 1}), Step(id="n", tool=inc, arguments={"x": Ref("w")})],
    )
    seen: list[Event] = []
    result = SyncDriver().run(flow, deadline=0.05, on_event=seen.append, run_id="r")
    gate.set()
    assert result.status == "timed_out"
    cancelled = [without_timing(e) for e in seen if isinstance(e, StepCancelled)]
    assert StepCancelled("r", "n") in cancelled
    assert StepCancelled("r", "w") in cancelled
