"""The sync driver: inline and pooled sync tools, async tools on one loop thread, errors, Ctrl-C."""

from __future__ import annotations

import asyncio
import contextvars
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from typing import Any

import pytest
from pydantic import BaseModel

from flowkernel import (
    AttemptStatus,
    ErrorKind,
    Flow,
    FlowInputError,
    Input,
    Item,
    Ref,
    RunStatus,
    Step,
    StepStatus,
    tool,
)
from flowkernel.events import StepStarted
from flowkernel.host import UnsupportedToolError, partial_result
from flowkernel_sync import SyncDriver, loop_thread, runs_inline

from .support import TIMEOUT, TOOL_ERRORS, Abort, Gauge, Point, Release, after, failing_flow, in_thread, raising


def run(flow: Flow, inputs: dict[str, Any] | None = None, *, timeout: float = TIMEOUT, **options: Any) -> Any:
    return in_thread(lambda: SyncDriver().run(flow, inputs, **options), timeout)


# ---- plain runs ---------------------------------------------------------------------------------


def test_sync_and_async_tools_with_nested_refs() -> None:
    @tool
    def load(n: int) -> dict[str, Any]:
        return {"rows": [{"id": i} for i in range(n)]}

    @tool
    async def double(ids: list[int]) -> list[int]:
        await asyncio.sleep(0)
        return [2 * i for i in ids]

    @tool
    def combine(parts: dict[str, Any]) -> dict[str, Any]:
        return parts

    flow = Flow(
        name="mixed",
        steps=[
            Step(id="load", tool=load, arguments={"n": Input("n")}),
            Step(id="double", tool=double, arguments={"ids": Ref("load", "rows[*].id")}),
            Step(
                id="combine",
                tool=combine,
                arguments={"parts": {"ids": Ref("load", "rows[*].id"), "doubled": [Ref("double"), "lit"]}},
            ),
        ],
    )
    for concurrency in (None, 1, 4):
        result = run(flow, {"n": 3}, run_id="r-1", max_concurrency=concurrency)
        assert result.status is RunStatus.SUCCEEDED
        assert result.run_id == "r-1"
        assert result.outputs == {"combine": {"ids": [0, 1, 2], "doubled": [[0, 2, 4], "lit"]}}
        assert result.step("double").input == {"ids": [0, 1, 2]}
        attempt = result.step("load").attempts[0]
        assert attempt.status is AttemptStatus.SUCCEEDED
        assert attempt.started is not None
        assert attempt.finished is not None
        assert attempt.started <= attempt.finished


def test_run_blocking_is_run() -> None:
    assert SyncDriver.run_blocking is SyncDriver.run
    assert SyncDriver.name == "sync"


def test_bad_inputs_raise_before_anything_runs() -> None:
    called: list[int] = []

    @tool
    def f(x: int) -> None:
        called.append(x)

    flow = Flow(name="f", steps=[Step(id="a", tool=f, arguments={"x": Input("x")})])
    with pytest.raises(FlowInputError):
        run(flow, {})
    assert called == []


# ---- where tools run ----------------------------------------------------------------------------


def test_async_tools_share_one_long_lived_loop_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[asyncio.AbstractEventLoop, int]] = []

    @tool
    async def where() -> None:
        seen.append((asyncio.get_running_loop(), threading.get_ident()))

    flow = Flow(name="f", steps=[Step(id="a", tool=where), Step(id="b", tool=where)])
    run(flow)  # warm up: the shared loop starts lazily, once per process

    def no_new_loops(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a new event loop was created for a call")

    monkeypatch.setattr(asyncio, "new_event_loop", no_new_loops)
    monkeypatch.setattr(asyncio, "run", no_new_loops)
    seen.clear()
    run(flow)
    run(flow, max_concurrency=1)
    assert len(seen) == 4
    loops = {id(loop) for loop, _ in seen}
    threads = {ident for _, ident in seen}
    assert len(loops) == 1
    assert len(threads) == 1
    assert seen[0][0] is loop_thread.shared_loop_thread().loop
    assert threading.main_thread().ident not in threads


def test_concurrency_one_runs_sync_tools_inline_in_the_callers_thread() -> None:
    seen: list[int] = []

    @tool
    def where() -> None:
        seen.append(threading.get_ident())

    flow = Flow(name="f", steps=[Step(id="a", tool=where), Step(id="b", tool=where)])
    caller: list[int] = []

    def go() -> Any:
        caller.append(threading.get_ident())
        return SyncDriver().run(flow, max_concurrency=1)

    assert in_thread(go).status is RunStatus.SUCCEEDED
    assert seen == [caller[0], caller[0]]


def test_concurrency_one_runs_map_and_sub_flow_elements_inline_too() -> None:
    # The run's limit bounds every call of the tree (a map's own limit nests inside it), so a map step
    # or a sub-flow needs no thread; with a timeout anywhere in the tree the calls still need one.
    seen: list[int] = []

    @tool
    def where(x: Any = None) -> None:
        seen.append(threading.get_ident())

    child = Flow(name="child", steps=[Step(id="a", tool=where)])
    steps = [
        Step(id="m", tool=where, map=Input("xs"), arguments={"x": Item()}, max_concurrency=4),
        Step(id="s", flow=child),
        Step(id="e", flow=child, map=Input("xs"), arguments={}),
    ]
    caller: list[int] = []

    def go(flow: Flow) -> Any:
        caller.append(threading.get_ident())
        return SyncDriver().run(flow, {"xs": [1, 2, 3]}, max_concurrency=1)

    assert in_thread(partial(go, Flow(name="f", steps=steps))).status is RunStatus.SUCCEEDED
    assert seen == [caller[0]] * 7
    timed_child = Flow(name="child", steps=[Step(id="a", tool=where, arguments={"x": Input("xs")}, timeout=60)])
    timed_sub_flow = Step(id="s", flow=timed_child, arguments={"xs": Input("xs")})
    for slow in (steps[0].model_copy(update={"timeout": 60}), timed_sub_flow):
        seen.clear()
        assert in_thread(partial(go, Flow(name="f", steps=[slow]))).status is RunStatus.SUCCEEDED
        assert caller[-1] not in seen


@pytest.mark.parametrize(
    ("calls", "others_in_flight", "completions_waiting", "inline"),
    [
        (1, 0, False, True),  # a chain's step: alone in flight
        (2, 0, False, False),  # two calls at once: concurrency needs threads
        (1, 1, False, False),  # its own timeout timer, the deadline's, a backoff, or another call
        (1, 0, True, False),  # a completion the kernel has not seen may start another call
        (0, 0, False, False),
    ],
)
def test_a_sync_call_runs_inline_only_when_it_is_alone_in_flight(
    calls: int, others_in_flight: int, completions_waiting: bool, inline: bool
) -> None:
    assert runs_inline(calls, others_in_flight, completions_waiting) is inline


def _threads_of(flow: Flow, driver: SyncDriver | None = None, **options: Any) -> dict[str, str]:
    """Which thread ran each step's tool: ``caller`` or ``pool`` (tools return their thread's name)."""
    caller: list[str] = []

    def go() -> Any:
        caller.append(threading.current_thread().name)
        return (driver or SyncDriver()).run(flow, **options)

    result = in_thread(go)
    assert result.status is RunStatus.SUCCEEDED, result.errors
    names = {step.id: step.output for step in result.steps}
    assert all(name == caller[0] or name.startswith("flowkernel-tool") for name in names.values()), names
    return {step: "caller" if name == caller[0] else "pool" for step, name in names.items()}


@tool
def thread_name(x: Any = None) -> str:
    return threading.current_thread().name


LONE_AND_CONCURRENT = Flow(
    name="lone-and-concurrent",
    steps=[
        Step(id="a", tool=thread_name),
        Step(id="b", tool=thread_name, arguments={"x": Ref("a")}, timeout=TIMEOUT),
        Step(id="c", tool=thread_name, arguments={"x": Ref("b")}),
        Step(id="d", tool=thread_name, arguments={"x": Ref("c")}),
        Step(id="e", tool=thread_name, arguments={"x": Ref("c")}),
    ],
)


@pytest.mark.parametrize("limit", [None, 1, 3])
def test_a_call_alone_in_flight_runs_in_the_callers_thread_the_rest_in_threads(limit: int | None) -> None:
    """Issue 12: at default settings a chain's calls cost a thread hand-off each; now a call runs inline
    when nothing else is in flight, and in a thread when it has a timeout or runs beside another call."""
    wide = "pool" if limit != 1 else "caller"  # d and e run one at a time at max_concurrency=1
    expected = {"a": "caller", "b": "pool", "c": "caller", "d": wide, "e": wide}
    assert _threads_of(LONE_AND_CONCURRENT, max_concurrency=limit) == expected


def test_with_a_deadline_or_without_inline_lone_calls_every_sync_call_gets_a_thread() -> None:
    everywhere = dict.fromkeys("abcde", "pool")
    assert _threads_of(LONE_AND_CONCURRENT, deadline=TIMEOUT) == everywhere
    assert _threads_of(LONE_AND_CONCURRENT, SyncDriver(inline_lone_calls=False), max_concurrency=1) == everywhere


def test_a_lone_call_with_a_timeout_is_still_released_at_its_timeout(release: Release) -> None:
    @tool
    def hangs(x: int) -> int:
        release.wait(TIMEOUT)
        return x

    flow = Flow(
        name="f",
        steps=[
            Step(id="a", tool=thread_name),
            Step(id="hangs", tool=hangs, arguments={"x": 1}, after=["a"], timeout=0.05),
        ],
    )
    result = run(flow)
    assert not release.passed.is_set()  # released while the tool still waits
    assert result.step("hangs").error.type == "TimeoutError"


marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")


@pytest.mark.parametrize("limit", [None, 1, 2])
def test_a_contextvar_a_tool_sets_stays_in_its_call(limit: int | None) -> None:
    """docs/world.md promises it; inline calls (``max_concurrency=1``) ran in the caller's own context, so
    the next tool and the caller saw the value."""

    @tool
    def sets() -> str:
        marker.set("set by a tool")
        return marker.get()

    @tool
    def reads(x: str) -> str:
        return marker.get()

    flow = Flow(
        name="f", steps=[Step(id="sets", tool=sets), Step(id="reads", tool=reads, arguments={"x": Ref("sets")})]
    )

    def go() -> tuple[Any, str]:
        return SyncDriver().run(flow, max_concurrency=limit), marker.get()

    result, after_the_run = in_thread(go)
    assert result.step("sets").output == "set by a tool"
    assert result.step("reads").output == "unset"
    assert after_the_run == "unset"


@pytest.mark.parametrize("concurrency", [None, 2])
def test_higher_concurrency_runs_sync_tools_in_pool_threads(concurrency: int | None) -> None:
    seen: list[tuple[int, str]] = []

    @tool
    def where() -> None:
        seen.append((threading.get_ident(), threading.current_thread().name))

    flow = Flow(name="f", steps=[Step(id="a", tool=where), Step(id="b", tool=where)])
    caller: list[int] = []

    def go() -> Any:
        caller.append(threading.get_ident())
        return SyncDriver().run(flow, max_concurrency=concurrency)

    in_thread(go)
    assert len(seen) == 2
    for ident, name in seen:
        assert ident != caller[0]
        assert name.startswith("flowkernel-tool")


@pytest.mark.parametrize("limit", [2, 3])
def test_the_concurrency_limit_is_respected(limit: int) -> None:
    gauge = Gauge()

    @tool
    def busy() -> None:
        with gauge:
            gauge.wait_for_peak(limit)
            time.sleep(0.005)

    flow = Flow(name="f", steps=[Step(id=f"s{i}", tool=busy) for i in range(7)])
    result = run(flow, max_concurrency=limit)
    assert result.status is RunStatus.SUCCEEDED
    assert gauge.total == 7
    assert gauge.peak == limit


def test_the_concurrency_limit_applies_to_async_tools_too() -> None:
    gauge = Gauge()

    @tool
    async def busy() -> None:
        with gauge:
            await asyncio.sleep(0.02)

    flow = Flow(name="f", steps=[Step(id=f"s{i}", tool=busy) for i in range(6)])
    run(flow, max_concurrency=2)
    assert gauge.total == 6
    assert gauge.peak == 2


def test_max_workers_caps_the_pool() -> None:
    gauge = Gauge()

    @tool
    def busy() -> None:
        with gauge:
            gauge.wait_for_peak(2)
            time.sleep(0.005)

    flow = Flow(name="f", steps=[Step(id=f"s{i}", tool=busy) for i in range(5)])
    in_thread(lambda: SyncDriver(max_workers=2).run(flow))
    assert gauge.peak == 2


def test_dispatch_is_eager() -> None:
    """a -> c beside b -> d: c starts while b is still running (no level barrier)."""
    c_started = threading.Event()

    @tool
    def a() -> int:
        return 1

    @tool
    def b() -> bool:
        return c_started.wait(2.0)  # only true if c starts before b finishes

    @tool
    def c(x: int) -> int:
        c_started.set()
        return x

    @tool
    def d(ok: bool) -> bool:
        return ok

    flow = Flow(
        name="eager",
        steps=[
            Step(id="a", tool=a),
            Step(id="b", tool=b),
            Step(id="c", tool=c, arguments={"x": Ref("a")}),
            Step(id="d", tool=d, arguments={"ok": Ref("b")}),
        ],
    )
    result = run(flow)
    assert result.outputs == {"c": 1, "d": True}


# ---- errors -------------------------------------------------------------------------------------


def shut_down(thread: loop_thread.LoopThread) -> None:
    if thread.loop.is_running():
        thread.loop.call_soon_threadsafe(thread.loop.stop)
    else:
        thread.loop.close()


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("concurrency", [None, 1])
@pytest.mark.parametrize(("exc", "type_name", "message"), TOOL_ERRORS)
def test_a_raising_tool_fails_its_step_and_independent_branches_run_on(
    exc: BaseException, type_name: str, message: str, is_async: bool, concurrency: int | None
) -> None:
    result = run(failing_flow(raising(exc, is_async=is_async), indirect=True), max_concurrency=concurrency)
    assert result.status is RunStatus.FAILED
    bad = result.step("bad")
    assert bad.status is StepStatus.FAILED
    assert (bad.error.kind, bad.error.type, bad.error.message, bad.error.step) == (
        ErrorKind.TOOL,
        type_name,
        message,
        "bad",
    )
    assert bad.attempts[0].status is AttemptStatus.FAILED
    assert bad.attempts[0].error == bad.error
    assert result.errors == (bad.error,)
    assert result.step("good2").output == "fine"
    assert result.step("dependent").status is StepStatus.SKIPPED
    assert result.step("dependent").reason == "dependency 'bad' failed"
    assert result.step("indirect").reason == "dependency 'dependent' was skipped"
    assert result.outputs == {"good2": "fine"}


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("exc", [KeyboardInterrupt("in a worker"), Abort("abort")], ids=["KeyboardInterrupt", "Abort"])
def test_a_base_exception_in_a_worker_thread_fails_only_its_step(exc: BaseException) -> None:
    @tool
    def boom() -> None:
        time.sleep(0.05)  # make sure the done-callback runs in the worker thread
        raise exc

    result = run(failing_flow(boom, indirect=True), timeout=0.5)  # run() fails the test if the driver hangs
    assert result.step("bad").status is StepStatus.FAILED
    assert result.step("bad").error.type.endswith(type(exc).__qualname__)
    assert result.step("good2").status is StepStatus.SUCCEEDED


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_an_async_tool_raising_keyboard_interrupt_does_not_kill_the_shared_loop(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    sacrificial = loop_thread.LoopThread()
    monkeypatch.setattr(loop_thread, "_shared", sacrificial)
    request.addfinalizer(lambda: shut_down(sacrificial))

    @tool
    async def boom() -> None:
        raise KeyboardInterrupt("inside an async tool")

    @tool
    async def fine() -> str:
        return "fine"

    run(Flow(name="f", steps=[Step(id="a", tool=boom)]), timeout=0.5)
    assert run(Flow(name="g", steps=[Step(id="b", tool=fine)]), timeout=0.5).outputs == {"b": "fine"}


def test_input_and_output_validation_failures_become_errors() -> None:
    class In(BaseModel):
        n: int

    @tool
    def src() -> dict[str, Any]:
        return {"n": "not a number", "good": 2}

    @tool(input_model=In)
    def needs_int(n: int) -> int:
        return n

    @tool(output_model=Point)
    def bad_point() -> dict[str, int]:
        return {"x": 1}

    @tool(output_model=Point)
    def good_point() -> dict[str, Any]:
        return {"x": 1, "y": "2"}

    flow = Flow(
        name="v",
        steps=[
            Step(id="src", tool=src),
            Step(id="in_bad", tool=needs_int, arguments={"n": Ref("src", "n")}),
            Step(id="in_good", tool=needs_int, arguments={"n": Ref("src", "good")}),
            Step(id="out_bad", tool=bad_point),
            Step(id="out_good", tool=good_point),
            Step(id="uses_bad", tool=after, arguments={"v": Ref("out_bad", "x")}),
        ],
    )
    result = run(flow)
    assert result.status is RunStatus.FAILED
    in_bad = result.step("in_bad")
    assert in_bad.status is StepStatus.FAILED
    assert in_bad.error.kind is ErrorKind.INPUT_VALIDATION
    assert in_bad.error.type == "ValidationError"
    assert in_bad.error.step == "in_bad"
    assert "n:" in in_bad.error.message
    assert in_bad.attempts == ()  # the tool was never called
    assert in_bad.input == {"n": "not a number"}
    out_bad = result.step("out_bad")
    assert out_bad.error.kind is ErrorKind.OUTPUT_VALIDATION
    assert "y:" in out_bad.error.message
    assert out_bad.attempts[0].status is AttemptStatus.FAILED
    assert result.step("uses_bad").status is StepStatus.SKIPPED
    assert result.step("in_good").output == 2
    assert result.step("out_good").output == Point(x=1, y=2)
    assert [e.step for e in result.errors] == ["in_bad", "out_bad"]


def test_a_path_failing_at_run_time_is_an_argument_error() -> None:
    @tool
    def number() -> int:
        return 5

    flow = Flow(
        name="f", steps=[Step(id="n", tool=number), Step(id="len", tool=after, arguments={"v": Ref("n", "length(@)")})]
    )
    result = run(flow)
    error = result.step("len").error
    assert error.kind is ErrorKind.ARGUMENT
    assert error.type == "PathError"
    assert error.step == "len"


def test_a_trio_declared_tool_is_refused_before_the_run() -> None:
    trio = pytest.importorskip("trio")

    @tool(async_backend="trio")
    async def trio_tool() -> None:
        await trio.sleep(0)

    flow = Flow(name="f", steps=[Step(id="t", tool=trio_tool)])
    for _ in range(2):  # the check is kept with the flow after its first run: it still refuses
        with pytest.raises(UnsupportedToolError):
            run(flow)


def test_a_trio_only_tool_gives_a_driver_error() -> None:
    trio = pytest.importorskip("trio")

    @tool
    async def trio_tool() -> None:
        await trio.sleep(0.01)

    result = run(Flow(name="f", steps=[Step(id="t", tool=trio_tool)]))
    assert result.step("t").error.kind is ErrorKind.DRIVER


# ---- Ctrl-C -------------------------------------------------------------------------------------


def test_ctrl_c_cancels_the_run_and_releases_the_caller_promptly(release: Release) -> None:
    assert threading.current_thread() is threading.main_thread()
    main = threading.main_thread().ident
    assert main is not None
    slow_started = threading.Event()

    @tool
    def fast() -> int:
        return 1

    @tool
    def slow(x: int) -> str:
        slow_started.set()
        release.wait(TIMEOUT)
        return "too late"

    @tool
    def interrupter(x: int) -> str:
        slow_started.wait(TIMEOUT)
        time.sleep(0.05)  # let the caller block waiting for completions
        signal.pthread_kill(main, signal.SIGINT)  # Ctrl-C, delivered to the caller's thread
        release.wait(TIMEOUT)
        return "too late"

    flow = Flow(
        name="ctrl-c",
        steps=[
            Step(id="fast", tool=fast),
            Step(id="slow", tool=slow, arguments={"x": Ref("fast")}),
            Step(id="interrupter", tool=interrupter, arguments={"x": Ref("fast")}),
            Step(id="after_slow", tool=after, arguments={"v": Ref("slow")}),
        ],
    )
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt) as excinfo:
            SyncDriver().run(flow, run_id="ctrl-c")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not release.passed.is_set()  # released without waiting for the slow threads
    result = partial_result(excinfo.value)
    assert result is not None
    assert result.run_id == "ctrl-c"
    assert result.status is RunStatus.CANCELLED
    assert result.reason == "cancelled: KeyboardInterrupt in the caller"
    assert result.step("fast").status is StepStatus.SUCCEEDED
    for in_flight in ("slow", "interrupter"):
        record = result.step(in_flight)
        assert record.status is StepStatus.CANCELLED
        assert [a.status for a in record.attempts] == [AttemptStatus.CANCELLED]
    assert result.step("after_slow").status is StepStatus.CANCELLED
    assert result.step("after_slow").attempts == ()
    assert result.step("after_slow").reason == "dependency 'slow' was cancelled"


def _own_handler(signum: int, frame: Any) -> None:
    pass


@pytest.mark.parametrize("found", [signal.default_int_handler, signal.SIG_IGN, signal.SIG_DFL, _own_handler])
def test_a_run_puts_back_exactly_the_sigint_handler_it_found(found: Any) -> None:
    """The driver swaps SIGINT's handler without ``signal.signal`` (whose enum conversion is slow): the
    handler the caller had is back after the run, and the run's own was in place during it."""
    during: list[Any] = []

    @tool
    def look() -> None:
        during.append(signal.getsignal(signal.SIGINT))

    previous = signal.signal(signal.SIGINT, found)
    try:
        SyncDriver().run(Flow(name="f", steps=[Step(id="a", tool=look)]))  # in the main thread: it swaps
        assert signal.getsignal(signal.SIGINT) == found
    finally:
        signal.signal(signal.SIGINT, previous)
    assert len(during) == 1
    assert during[0] not in (found, signal.default_int_handler)
    assert callable(during[0])


def test_ctrl_c_whose_signal_reaches_a_tool_thread_still_stops_the_run_at_once(release: Release) -> None:
    """Issue 10.4: the OS may deliver SIGINT to any thread; Python runs the handler in the caller's thread
    only when that thread next runs bytecode, which it did not while it slept in a queue with no timeout:
    the stop waited for the tool, and the step was recorded succeeded in a cancelled run."""

    @tool
    def signals_itself() -> str:
        time.sleep(0.05)  # the caller is asleep waiting for completions by now
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # lands in this (the tool's) thread
        release.wait(TIMEOUT)
        return "too late"

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt) as excinfo:
            # A lone call would run inline in the caller's thread: this test is about a tool's thread.
            SyncDriver(inline_lone_calls=False).run(Flow(name="f", steps=[Step(id="t", tool=signals_itself)]))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not release.passed.is_set()  # the run ended while the tool still waited
    result = partial_result(excinfo.value)
    assert result is not None
    assert result.step("t").status is StepStatus.CANCELLED


def test_ctrl_c_during_an_inline_tool_gives_a_partial_result() -> None:
    @tool
    def fast() -> int:
        return 1

    @tool
    def interrupted(x: int) -> None:
        raise KeyboardInterrupt  # what Ctrl-C looks like inside a tool running in the caller's thread

    flow = Flow(
        name="f",
        steps=[Step(id="fast", tool=fast), Step(id="interrupted", tool=interrupted, arguments={"x": Ref("fast")})],
    )
    try:
        run(flow, max_concurrency=1)
    except KeyboardInterrupt as exc:
        result = partial_result(exc)
        assert result is not None
        assert result.step("fast").status is StepStatus.SUCCEEDED
        assert result.step("interrupted").status is StepStatus.CANCELLED
    except Exception as exc:
        pytest.fail(f"expected KeyboardInterrupt with a partial result, got {exc!r}")
    else:
        pytest.fail("expected KeyboardInterrupt")


@pytest.mark.parametrize("limit", [None, 1])
def test_ctrl_c_that_an_inline_tool_swallows_still_stops_the_run(limit: int | None) -> None:
    """Inline, Ctrl-C lands in the tool as KeyboardInterrupt; a tool that catches it (``except
    BaseException``) kept the run going at max_concurrency=1, where threads would have stopped it."""
    main = threading.main_thread().ident
    assert main is not None
    ran: list[str] = []

    @tool
    def swallows() -> str:
        try:
            signal.pthread_kill(main, signal.SIGINT)  # Ctrl-C, in the caller's thread: this one
            time.sleep(TIMEOUT)
        except BaseException:
            return "swallowed"
        return "not interrupted"

    @tool
    def later(x: str) -> None:
        ran.append(x)

    flow = Flow(
        name="f",
        steps=[Step(id="swallows", tool=swallows), Step(id="later", tool=later, arguments={"x": Ref("swallows")})],
    )
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt) as excinfo:
            SyncDriver().run(flow, max_concurrency=limit)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert ran == []
    result = partial_result(excinfo.value)
    assert result is not None
    assert result.status is RunStatus.CANCELLED
    assert result.step("swallows").output == "swallowed"
    assert result.step("later").status is StepStatus.CANCELLED


CTRL_C_SCRIPT = """
import signal, threading, time
from flowkernel import Flow, Step, tool
from flowkernel_sync import SyncDriver

@tool
def stuck() -> None:
    time.sleep(4)  # a tool that ignores cancellation, like a blocking network call

@tool
def ctrl_c() -> None:
    time.sleep(0.1)
    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

try:
    SyncDriver().run(Flow(name="f", steps=[Step(id="stuck", tool=stuck), Step(id="ctrl_c", tool=ctrl_c)]))
except KeyboardInterrupt as exc:
    print(exc.partial_result.status)
"""


def test_after_ctrl_c_the_process_exits_without_waiting_for_abandoned_tools() -> None:
    started = time.monotonic()
    process = subprocess.run([sys.executable, "-c", CTRL_C_SCRIPT], capture_output=True, text=True, timeout=30)
    elapsed = time.monotonic() - started
    assert process.stdout.strip() == "cancelled", process.stderr
    assert elapsed < 3.0, f"the process took {elapsed:.1f} s to exit"


def test_ctrl_c_between_inline_steps_stops_the_run_cleanly_with_the_partial_result() -> None:
    """Ctrl-C that arrives while the kernel (not a tool) runs must not kill the kernel: the sync driver
    turns it into a clean stop, then raises KeyboardInterrupt carrying the partial result."""
    reached = threading.Event()

    @tool
    def inc(x: int) -> int:
        if x == 100:
            reached.set()
        return x + 1

    steps = [Step(id="s0", tool=inc, arguments={"x": 0})]
    steps += [Step(id=f"s{i}", tool=inc, arguments={"x": Ref(f"s{i - 1}")}) for i in range(1, 30_000)]
    flow = Flow(name="long", steps=steps)
    main = threading.main_thread().ident
    assert main is not None

    def interrupt() -> None:
        if reached.wait(TIMEOUT):
            signal.pthread_kill(main, signal.SIGINT)

    interrupter = threading.Thread(target=interrupt, daemon=True)
    interrupter.start()

    def slow_down(event: object) -> None:
        """Once the signal is on its way, make each further step take a while (outside any tool), so that a
        loaded machine cannot finish the run before the signal lands."""
        if reached.is_set() and isinstance(event, StepStarted):
            time.sleep(0.0005)

    with pytest.raises(KeyboardInterrupt) as excinfo:
        SyncDriver().run(flow, max_concurrency=1, on_event=slow_down)
    interrupter.join(TIMEOUT)
    result = partial_result(excinfo.value)
    assert result is not None
    assert result.status == "cancelled"
    statuses = [s.status for s in result.steps]
    done = statuses.index("cancelled")
    assert 100 < done < 30_000  # stopped after the signal, long before the end...
    assert set(statuses[:done]) == {"succeeded"}  # ...every step before it finished, in order
    assert set(statuses[done:]) == {"cancelled"}


@pytest.mark.parametrize("with_another", [False, True])
def test_a_call_cancelled_in_the_batch_that_started_it_is_never_called(with_another: bool) -> None:
    """A batch can start a sub-run's call and cancel it (fail_fast stopping the run as the sub-run starts).
    The sync backend holds a batch's calls until the batch is dispatched; it started the cancelled one
    anyway, and the kernel got a second completion for it (ProtocolError, found by the parity suite)."""
    from flowkernel import Cancel, Cancelled, Invoke
    from flowkernel_sync import _SyncBackend

    called: list[str] = []

    @tool
    def records(name: str) -> str:
        called.append(name)
        return name

    backend = _SyncBackend(max_workers=2)
    backend.start_invoke(Invoke("x@1", "x", records, {"name": "x"}, 1, "run"))
    if with_another:
        backend.start_invoke(Invoke("y@1", "y", records, {"name": "y"}, 1, "run"))
    backend.cancel(Cancel("x@1"))
    backend.start_sync_calls()
    answers = backend.wait()
    while with_another and len(answers) < 2:
        answers += backend.wait()
    time.sleep(0.05)  # what a started x would have answered by now
    answers += backend.take()
    backend.close()
    assert [a for a in answers if a.call_id == "x@1"] == [Cancelled("x@1")]
    assert called == (["y"] if with_another else [])


def test_cancelled_timers_do_not_pile_up_in_the_sync_backend() -> None:
    """Issue 10.12: every step's timeout timer stayed in the heap until its time came, even once cancelled."""
    from flowkernel import Cancel, StartTimer
    from flowkernel_sync import _SyncBackend

    backend = _SyncBackend(max_workers=1)
    for k in range(200):
        backend.start_timer(StartTimer(f"s{k}@1/timeout", 1e6))
        backend.cancel(Cancel(f"s{k}@1/timeout"))
    assert len(backend.wait()) == 200  # the Cancelled answers
    assert backend._timers == []
