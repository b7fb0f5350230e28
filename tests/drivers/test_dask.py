"""The Dask driver: calls as tasks on a cluster, tools refused before the run when they cannot be shipped, runs
handed to the client's loop from other loops and threads, and, on a cluster of worker processes, work spread
over the workers and workers killed under a call."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed", reason="the Dask driver needs distributed (pip install -e ./drivers/dask)")

from flowkernel import (
    ErrorKind,
    ExecutionResult,
    Flow,
    Input,
    Ref,
    RetryPolicy,
    RunStatus,
    Step,
    StepStatus,
    tool,
)
from flowkernel.errors import AbandonedCallWarning
from flowkernel.events import RunFinished
from flowkernel.host import current_invoke, partial_result
from flowkernel_asyncio import AsyncioDriver
from flowkernel_dask import DaskDriver, UnshippableToolError
from flowkernel_sync import SyncDriver

from .support import TOOL_ERRORS, arun, failing_flow, in_thread, ok, raising

CLUSTER_TIMEOUT = 60.0  # a run on the process cluster may wait for a killed worker's replacement


@pytest.fixture(scope="module")
def driver() -> Iterator[DaskDriver]:
    """One driver, and so one in-process cluster and client, for the whole module (as a user would keep it)."""
    with DaskDriver() as dask:
        yield dask


@pytest.fixture(scope="module")
def process_driver() -> Iterator[DaskDriver]:
    """Two worker processes; a worker dying under a call fails it at once (``allowed_failures=0``), so the
    step's own policy decides what happens next."""
    with DaskDriver(
        processes=True, n_workers=2, threads_per_worker=2, scheduler_kwargs={"allowed_failures": 0}
    ) as dask:
        dask.loop  # noqa: B018  (start the cluster now, outside the timed runs)
        yield dask


def run(driver: DaskDriver, flow: Flow, inputs: dict[str, Any] | None = None, **settings: Any) -> ExecutionResult:
    result: ExecutionResult = in_thread(lambda: driver.run_blocking(flow, inputs, **settings))
    return result


# ---- the basics --------------------------------------------------------------------------------------


@tool
def inc(x: int) -> int:
    return x + 1


@tool
async def twice(x: int) -> dict[str, Any]:
    await asyncio.sleep(0)
    invoke = current_invoke()
    return {"value": 2 * x, "call": invoke.call_id, "attempt": invoke.attempt}


def test_sync_and_async_tools_run_and_read_their_call(driver: DaskDriver) -> None:
    flow = Flow(
        name="basic",
        steps=[
            Step(id="a", tool=inc, arguments={"x": Input("n")}),
            Step(id="b", tool=twice, arguments={"x": Ref("a")}),
            Step(id="c", tool=inc, arguments={"x": Ref("b", "value")}),
        ],
    )
    result = run(driver, flow, {"n": 1})
    assert result.status is RunStatus.SUCCEEDED
    assert result.step("b").output == {"value": 4, "call": "b@1", "attempt": 1}
    assert result.step("c").output == 5
    for step in result.steps:
        attempt = step.attempts[0]
        assert attempt.started is not None
        assert attempt.finished is not None
        assert attempt.started <= attempt.finished


def test_one_cluster_serves_every_run(driver: DaskDriver) -> None:
    client = driver.client
    flow = Flow(name="one", steps=[Step(id="a", tool=inc, arguments={"x": 1})])
    assert [run(driver, flow).outputs["a"] for _ in range(3)] == [2, 2, 2]
    assert driver.client is client


# On a worker, KeyboardInterrupt is never the user's Ctrl-C: it is the tool's error like any other.
WORKER_ERRORS = [*TOOL_ERRORS, (KeyboardInterrupt("on a worker"), "KeyboardInterrupt", "on a worker")]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(("exc", "type_name", "message"), WORKER_ERRORS)
def test_a_raising_tool_fails_its_step_and_independent_branches_run_on(
    driver: DaskDriver, exc: BaseException, type_name: str, message: str, is_async: bool
) -> None:
    result = run(driver, failing_flow(raising(exc, is_async=is_async, sleep=asyncio.sleep)))
    assert result.status is RunStatus.FAILED
    bad = result.step("bad")
    assert bad.error is not None
    assert (bad.error.kind, bad.error.type, bad.error.message) == (ErrorKind.TOOL, type_name, message)
    assert result.step("dependent").status is StepStatus.SKIPPED
    assert result.step("good2").output == "fine"


def test_a_tool_raising_cancelled_error_itself_is_a_failed_step(driver: DaskDriver) -> None:
    @tool
    async def gives_up() -> None:
        raise asyncio.CancelledError("gave up")

    result = run(driver, failing_flow(gives_up))
    bad = result.step("bad")
    assert bad.status is StepStatus.FAILED
    assert bad.error is not None
    assert bad.error.type == "CancelledError"  # one record on every driver (issue 10.8)
    assert result.step("good2").status is StepStatus.SUCCEEDED


def test_arguments_that_cannot_be_sent_fail_the_step_not_the_run(driver: DaskDriver) -> None:
    @tool
    def take(value: Any) -> str:
        return "got it"

    flow = Flow(
        name="unsendable",
        steps=[Step(id="lock", tool=take, arguments={"value": Input("lock")}), Step(id="fine", tool=ok)],
    )
    result = run(driver, flow, {"lock": threading.Lock()})
    error = result.step("lock").error
    assert error is not None
    assert error.kind is ErrorKind.DRIVER
    assert "cannot send the call to the Dask cluster" in error.message
    assert result.step("fine").output == "fine"


# ---- shipping tools ----------------------------------------------------------------------------------


def test_a_tool_that_cannot_be_pickled_is_refused_before_the_run_naming_it(driver: DaskDriver) -> None:
    lock = threading.Lock()
    calls: list[str] = []

    @tool
    def first() -> str:
        calls.append("first")
        return "first"

    @tool
    def locked(value: str) -> str:
        with lock:
            return value

    flow = Flow(
        name="unshippable",
        steps=[
            Step(id="a", tool=first),
            Step(id="b", tool=locked, arguments={"value": Ref("a")}),
            Step(id="c", tool=locked, arguments={"value": Ref("a")}),
        ],
    )
    with pytest.raises(UnshippableToolError) as raised:
        run(driver, flow)
    assert calls == []  # refused before anything ran
    [problem] = raised.value.problems
    assert problem.location == "steps[1] (b)"
    assert "tool 'locked' cannot be pickled" in problem.message
    assert "lock" in problem.message
    assert "(and 1 other place in the flow)" in problem.message
    assert "the dask driver cannot run these tools" in str(raised.value)


def test_a_fallback_tool_is_checked_too(driver: DaskDriver) -> None:
    from flowkernel import Fallback

    lock = threading.Lock()

    @tool
    def locked() -> bool:
        return lock.locked()

    flow = Flow(name="fallback", steps=[Step(id="a", tool=ok, on_error=Fallback(tool=locked))])
    with pytest.raises(UnshippableToolError) as raised:
        run(driver, flow)
    assert [p.location for p in raised.value.problems] == ["steps[0] (a).on_error"]


def test_an_asyncio_tool_is_accepted_and_a_trio_tool_refused(driver: DaskDriver) -> None:
    @tool(async_backend="trio")
    async def trio_tool() -> None:
        pass

    from flowkernel.host import UnsupportedToolError

    with pytest.raises(UnsupportedToolError, match="trio_tool"):
        run(driver, Flow(name="t", steps=[Step(id="t", tool=trio_tool)]))

    @tool(async_backend="asyncio")
    async def aio() -> str:
        await asyncio.sleep(0)
        return "asyncio"

    assert run(driver, Flow(name="a", steps=[Step(id="a", tool=aio)])).outputs == {"a": "asyncio"}


# ---- timeouts and cancellation -------------------------------------------------------------------------


# Tools are pickled even for an in-process cluster: these reach the test through module globals (pickled by
# reference, so the worker, in this process, finds the same objects), never through closures.
RELEASE = threading.Event()
RELEASE_AFTER = 2.0


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Blocking tools wait on :data:`RELEASE` (with a timeout); set at teardown, so no worker thread stays stuck."""
    RELEASE.clear()
    yield RELEASE
    RELEASE.set()


@tool
async def hang() -> None:
    await asyncio.sleep(RELEASE_AFTER)


@tool
def stuck() -> None:
    RELEASE.wait(10)


@tool
def slow(x: int) -> int:
    RELEASE.wait(10)
    return x


def test_a_timeout_answers_at_once_while_the_worker_finishes_the_call(driver: DaskDriver) -> None:
    """Dask cannot stop a task that is executing (its worker lets it finish and drops the result); the
    kernel is answered at once all the same, so the step times out on time."""
    started = time.monotonic()
    result = run(driver, Flow(name="hang", steps=[Step(id="h", tool=hang, timeout=0.2), Step(id="fine", tool=ok)]))
    assert time.monotonic() - started < 3
    error = result.step("h").error
    assert error is not None
    assert error.kind is ErrorKind.TIMEOUT
    assert result.step("fine").output == "fine"


@pytest.mark.usefixtures("release")
def test_a_hanging_sync_tool_times_out_and_the_run_ends(driver: DaskDriver) -> None:
    started = time.monotonic()
    result = run(driver, Flow(name="stuck", steps=[Step(id="s", tool=stuck, timeout=0.2)]))
    assert time.monotonic() - started < 3
    assert result.step("s").status is StepStatus.FAILED


def test_run_awaited_from_another_loop_delivers_events_there(driver: DaskDriver) -> None:
    flow = Flow(
        name="events",
        steps=[Step(id="a", tool=inc, arguments={"x": 1}), Step(id="b", tool=twice, arguments={"x": Ref("a")})],
    )
    threads: set[int] = set()

    def listen(event: object) -> None:
        threads.add(threading.get_ident())
        seen.append(event)

    seen: list[object] = []

    async def main() -> ExecutionResult:
        return await driver.run(flow, on_event=listen)

    result = arun(main)
    assert result.outputs == {"b": {"value": 4, "call": "b@1", "attempt": 1}}
    assert threads == {threading.get_ident()}  # the caller's loop, not the client's thread
    assert isinstance(seen[-1], RunFinished)


def test_stream_from_another_loop(driver: DaskDriver) -> None:
    flow = Flow(name="stream", steps=[Step(id="a", tool=inc, arguments={"x": 1})])

    async def main() -> tuple[list[object], ExecutionResult | None]:
        async with driver.stream(flow) as events:
            seen = [event async for event in events]
        return seen, events.result

    seen, result = arun(main)
    assert result is not None
    assert result.outputs == {"a": 2}
    assert isinstance(seen[-1], RunFinished)


@pytest.mark.usefixtures("release")
def test_cancelling_the_awaiting_task_cancels_the_run_with_a_partial_result(driver: DaskDriver) -> None:
    flow = Flow(
        name="cancel",
        steps=[Step(id="a", tool=inc, arguments={"x": 1}), Step(id="b", tool=slow, arguments={"x": Ref("a")})],
    )

    async def main() -> BaseException:
        task = asyncio.create_task(driver.run(flow))
        await asyncio.sleep(1.0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError as exc:
            return exc
        raise AssertionError("the run was not cancelled")

    cancelled = arun(main, timeout=10)
    partial = partial_result(cancelled)
    assert partial is not None
    assert partial.status is RunStatus.CANCELLED
    assert partial.step("a").status is StepStatus.SUCCEEDED
    assert partial.step("b").status is StepStatus.CANCELLED


def test_run_blocking_from_the_clients_own_loop_is_refused(driver: DaskDriver) -> None:
    flow = Flow(name="one", steps=[Step(id="a", tool=inc, arguments={"x": 1})])

    async def inside() -> None:
        driver.run_blocking(flow)

    with pytest.raises(RuntimeError, match="own loop"):
        asyncio.run_coroutine_threadsafe(inside(), driver.loop).result(timeout=10)


def test_close_then_run_again_starts_a_new_cluster() -> None:
    flow = Flow(name="one", steps=[Step(id="a", tool=inc, arguments={"x": 1})])
    dask = DaskDriver(n_workers=1, threads_per_worker=1)
    try:
        assert run(dask, flow).outputs == {"a": 2}
        first = dask.client
        dask.close()
        assert run(dask, flow).outputs == {"a": 2}
        assert dask.client is not first
    finally:
        dask.close()
    dask.close()  # closing twice is harmless


def test_a_scheduler_address_takes_no_cluster_options() -> None:
    with pytest.raises(ValueError, match="embedded LocalCluster"):
        DaskDriver("tcp://127.0.0.1:8786", n_workers=2)


# ---- a cluster of worker processes -------------------------------------------------------------------------


@tool
def square_where(x: int, log: str) -> int:
    """Square ``x`` after a short nap, noting the process it ran in (one line per call, appended)."""
    time.sleep(0.05)
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}\n")
    return x * x


@tool
def total(xs: list[int]) -> int:
    return sum(xs)


@tool
async def pid_async() -> int:
    await asyncio.sleep(0)
    return os.getpid()


@tool
def die_on_first_attempt() -> int:
    """Kill the worker process running it on attempt 1 (as an OOM killer would); return its pid after."""
    if current_invoke().attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


def spread_flow(n: int, log: Path) -> Flow:
    steps = [Step(id=f"s{i}", tool=square_where, arguments={"x": i, "log": str(log)}) for i in range(n)]
    steps.append(Step(id="total", tool=total, arguments={"xs": [Ref(f"s{i}") for i in range(n)]}))
    return Flow(name="spread", steps=steps)


def test_work_spreads_over_both_worker_processes_with_the_same_result(
    process_driver: DaskDriver, tmp_path: Path
) -> None:
    logs = {name: tmp_path / f"{name}.log" for name in ("dask", "sync", "asyncio")}
    results = {
        "dask": in_thread(
            lambda: process_driver.run_blocking(spread_flow(16, logs["dask"]), run_id="r"), CLUSTER_TIMEOUT
        ),
        "sync": SyncDriver().run_blocking(spread_flow(16, logs["sync"]), run_id="r"),
        "asyncio": AsyncioDriver().run_blocking(spread_flow(16, logs["asyncio"]), run_id="r"),
    }
    assert results["dask"].outputs == {"total": sum(i * i for i in range(16))}
    canonical = {name: result.canonical() for name, result in results.items()}
    for name in canonical:  # the same but for the log file each run wrote to
        for step in canonical[name]["steps"]:
            step["input"].pop("log", None)
    assert canonical["dask"] == canonical["sync"] == canonical["asyncio"]
    pids = set(logs["dask"].read_text().split())
    assert len(pids) == 2, f"16 calls ran in {pids}, not on both workers"
    assert str(os.getpid()) not in pids
    assert in_thread(lambda: process_driver.run_blocking(Flow(name="a", steps=[Step(id="p", tool=pid_async)])),
                     CLUSTER_TIMEOUT).outputs["p"] != os.getpid()  # fmt: skip


def test_a_killed_worker_fails_the_call_and_the_steps_retry_runs_it_elsewhere(process_driver: DaskDriver) -> None:
    flow = Flow(
        name="killed",
        steps=[
            Step(id="dies", tool=die_on_first_attempt, retry=RetryPolicy(max_attempts=2, initial_delay=0)),
            Step(id="fine", tool=inc, arguments={"x": 1}),
        ],
    )
    result = in_thread(lambda: process_driver.run_blocking(flow), CLUSTER_TIMEOUT)
    assert result.status is RunStatus.SUCCEEDED
    first, second = result.step("dies").attempts
    assert first.error is not None
    assert first.error.type == "distributed.scheduler.KilledWorker"
    assert second.status == "succeeded"
    assert result.step("dies").output != os.getpid()


def test_a_killed_worker_without_a_retry_fails_the_step_and_never_hangs(process_driver: DaskDriver) -> None:
    flow = Flow(
        name="killed",
        steps=[
            Step(id="dies", tool=die_on_first_attempt),
            # A call that shared the dying worker fails too (allowed_failures=0): its retry runs it again.
            Step(id="fine", tool=inc, arguments={"x": 1}, retry=RetryPolicy(max_attempts=2, initial_delay=0)),
        ],
    )
    result = in_thread(lambda: process_driver.run_blocking(flow), CLUSTER_TIMEOUT)
    assert result.status is RunStatus.FAILED
    error = result.step("dies").error
    assert error is not None
    assert (error.kind, error.type) == (ErrorKind.TOOL, "distributed.scheduler.KilledWorker")
    assert result.step("fine").output == 2


def test_a_tool_the_workers_cannot_import_is_refused_before_the_run(process_driver: DaskDriver) -> None:
    module = types.ModuleType("flowkernel_only_in_this_process")
    exec("def hello():\n    return 'hello'\n", module.__dict__)
    sys.modules[module.__name__] = module  # importable here, so pickled by reference; not on the workers
    try:
        local = tool(module.hello)
        with pytest.raises(UnshippableToolError) as raised:
            in_thread(lambda: process_driver.run_blocking(Flow(name="m", steps=[Step(id="h", tool=local)])),
                      CLUSTER_TIMEOUT)  # fmt: skip
    finally:
        del sys.modules[module.__name__]
    [problem] = raised.value.problems
    assert problem.location == "steps[0] (h)"
    assert "tool 'hello' cannot be loaded on a Dask worker" in problem.message
    assert "flowkernel_only_in_this_process" in problem.message


@tool
def hangs_for_a_while(x: int) -> int:
    time.sleep(8)  # ignores cancellation, like a blocking call with no timeout of its own
    return x


def test_close_abandons_a_call_that_ignores_cancellation_with_a_warning() -> None:
    """Issue 10.7: close() raised a bare TimeoutError after 30 s once a hung tool had been timed out."""
    dask = DaskDriver(close_timeout=0.5)
    flow = Flow(name="hung", steps=[Step(id="h", tool=hangs_for_a_while, arguments={"x": 1}, timeout=0.1)])
    try:
        result = run(dask, flow)
    finally:
        with pytest.warns(AbandonedCallWarning, match="did not close within 0.5 s"):
            in_thread(dask.close)
    error = result.step("h").error
    assert error is not None
    assert error.kind == "timeout"


@tool
def cancels_its_own_task(x: int) -> int:
    """The cluster cancels this call's task while it runs (as a lost key would), not the kernel."""
    from distributed import Future, get_client, get_worker

    key = get_worker().get_current_task()
    get_client().cancel([Future(key)])
    time.sleep(2)
    return x


def test_a_task_the_cluster_cancels_is_a_driver_error_naming_its_key() -> None:
    """Issue 10.11: such a call was recorded as the tool raising CancelledError (distributed's
    FutureCancelledError is a concurrent.futures.CancelledError, which the generic branch took)."""
    flow = Flow(name="lost", steps=[Step(id="l", tool=cancels_its_own_task, arguments={"x": 1})])
    with DaskDriver() as own:  # its own cluster: the tool's get_client() is this driver's
        result = run(own, flow)
    error = result.step("l").error
    assert error is not None
    assert (error.kind, error.type) == ("driver", "CancelledError")
    assert error.message.startswith("the Dask cluster cancelled or lost the call's task (key 'cancels_its_own_task-")


# ---- a cancellation while a result comes back (issue 10, item 11) ------------------------------------------

_returned = threading.Event()


@tool
def signals_its_return(x: int) -> int:
    _returned.set()
    return x


def test_cancelling_a_run_while_a_result_comes_back_leaves_the_client_working() -> None:
    """A run cancelled at any moment while a call's result travels back must leave the client able to
    fetch later results. distributed shares one pending gather among all of a client's fetches; cancelling
    the task that started it before it ran left that gather cancelled for good, and every later result on
    the client raised ``CancelledError`` (a trivial call recorded as lost: item 11's intermittent failure)."""
    flow = Flow(name="one", steps=[Step(id="s", tool=signals_its_return, arguments={"x": 1})])
    with DaskDriver() as dask:

        async def cancelled_after(iterations: int) -> None:
            _returned.clear()
            run = asyncio.ensure_future(dask.run(flow))
            while not _returned.is_set():
                await asyncio.sleep(0)
            for _ in range(iterations):
                await asyncio.sleep(0)
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run
            after = await dask.run(flow)
            assert after.status is RunStatus.SUCCEEDED, (iterations, after.errors)

        for iterations in range(40):
            asyncio.run_coroutine_threadsafe(cancelled_after(iterations), dask.loop).result(timeout=CLUSTER_TIMEOUT)
