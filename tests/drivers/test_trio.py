"""The trio driver: async tools in a nursery, sync tools in threads or inline, MockClock, cancellation."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, TypeVar

import pytest

from flowkernel import AttemptStatus, ErrorKind, ExecutionResult, Flow, Ref, RunStatus, Step, StepStatus, tool
from flowkernel.host import partial_result

from .support import (
    TIMEOUT,
    Gauge,
    Release,
    after,
    failing_flow,
    ok,
    trun,
)

trio = pytest.importorskip("trio")
pytest.importorskip("trio.testing")
from flowkernel_trio import TrioDriver  # noqa: E402

T = TypeVar("T")


def run(flow: Flow, inputs: dict[str, Any] | None = None, *, sync_tools: str = "thread", **options: Any) -> Any:
    return trun(lambda: TrioDriver(sync_tools=sync_tools).run(flow, inputs, **options))  # type: ignore[arg-type]


# ---- plain runs ---------------------------------------------------------------------------------


def test_run_blocking_starts_its_own_trio_run() -> None:
    result = TrioDriver().run_blocking(Flow(name="f", steps=[Step(id="a", tool=ok)]), run_id="blocking")
    assert isinstance(result, ExecutionResult)
    assert result.outputs == {"a": "fine"}
    assert result.run_id == "blocking"


# ---- where tools run ----------------------------------------------------------------------------


def test_async_tools_run_inside_the_callers_trio_run() -> None:
    seen: list[object] = []

    @tool
    async def where() -> None:
        seen.append(trio.lowlevel.current_root_task())

    async def main() -> object:
        await TrioDriver().run(Flow(name="f", steps=[Step(id="a", tool=where), Step(id="b", tool=where)]))
        return trio.lowlevel.current_root_task()

    root = trun(main)
    assert seen == [root, root]


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_the_concurrency_limit_is_respected_for_async_tools(limit: int) -> None:
    gauge = Gauge()

    @tool
    async def busy() -> None:
        with gauge:
            await trio.sleep(1)

    flow = Flow(name="f", steps=[Step(id=f"s{i}", tool=busy) for i in range(7)])

    async def main() -> tuple[ExecutionResult, float]:
        result = await TrioDriver().run(flow, max_concurrency=limit)
        return result, trio.current_time()

    result, elapsed = trun(main, mock_clock=True)
    assert result.status is RunStatus.SUCCEEDED
    assert gauge.total == 7
    assert gauge.peak == limit
    assert elapsed == -(-7 // limit)  # ceil(7 / limit) waves of one virtual second


def sleeper(name: str, seconds: float) -> Any:
    async def fn(x: Any = None) -> str:
        await trio.sleep(seconds)
        return name

    return tool(name=name)(fn)


def test_dispatch_is_eager_in_virtual_time() -> None:
    """A(10 ms) -> C(100 ms) beside B(100 ms) -> D(10 ms) takes 110 ms, not 200."""
    flow = Flow(
        name="eager",
        steps=[
            Step(id="a", tool=sleeper("a", 0.01)),
            Step(id="b", tool=sleeper("b", 0.1)),
            Step(id="c", tool=sleeper("c", 0.1), arguments={"x": Ref("a")}),
            Step(id="d", tool=sleeper("d", 0.01), arguments={"x": Ref("b")}),
        ],
    )

    async def main() -> tuple[ExecutionResult, float]:
        start = trio.current_time()
        result = await TrioDriver().run(flow)
        return result, trio.current_time() - start

    result, elapsed = trun(main, mock_clock=True)
    assert result.status is RunStatus.SUCCEEDED
    assert elapsed == pytest.approx(0.11)
    timing = {s.id: (s.attempts[0].started, s.attempts[0].finished) for s in result.steps}
    assert timing["c"][0] == pytest.approx(0.01)  # c started as soon as a finished, while b still ran
    assert timing["d"][0] == pytest.approx(0.1)
    assert timing["c"][1] == pytest.approx(0.11)


def test_timestamps_come_from_the_trio_clock() -> None:
    flow = Flow(
        name="f",
        steps=[Step(id="a", tool=sleeper("a", 2.5)), Step(id="b", tool=sleeper("b", 1), arguments={"x": Ref("a")})],
    )
    result = trun(lambda: TrioDriver().run(flow), mock_clock=True)
    assert [(s.attempts[0].started, s.attempts[0].finished) for s in result.steps] == [(0.0, 2.5), (2.5, 3.5)]


# ---- errors -------------------------------------------------------------------------------------


# ---- tools written for asyncio ------------------------------------------------------------------


@pytest.mark.parametrize("delay", [0.01, 0], ids=["sleep", "sleep0"])
def test_an_asyncio_only_tool_gives_a_helpful_driver_error(delay: float) -> None:
    @tool
    async def asyncio_tool() -> None:
        await asyncio.sleep(delay)

    result = run(failing_flow(asyncio_tool))
    error = result.step("bad").error
    assert error.kind is ErrorKind.DRIVER
    assert error.step == "bad"
    assert "tool 'asyncio_tool' cannot run on trio" in error.message
    assert "asyncio" in error.message
    assert "anyio" in error.message
    assert result.step("good2").output == "fine"
    assert result.status is RunStatus.FAILED


def test_sync_tools_declared_for_asyncio_are_not_refused() -> None:
    @tool(async_backend="asyncio")
    def plain() -> str:
        return "plain"

    assert run(Flow(name="f", steps=[Step(id="p", tool=plain)])).outputs == {"p": "plain"}


# ---- caller cancellation ------------------------------------------------------------------------


def cancellable_flow(log: list[str]) -> Flow:
    @tool
    async def fast() -> int:
        return 1

    @tool
    async def slow(x: int) -> str:
        try:
            await trio.sleep(100)
            return "too late"
        except trio.Cancelled:
            log.append("cancelled")
            raise
        finally:
            log.append("finally")

    return Flow(
        name="cancel",
        steps=[
            Step(id="fast", tool=fast),
            Step(id="slow", tool=slow, arguments={"x": Ref("fast")}),
            Step(id="slow2", tool=slow, arguments={"x": Ref("fast")}),
            Step(id="queued", tool=after, arguments={"v": Ref("fast")}),  # waits for a slot
            Step(id="after_slow", tool=after, arguments={"v": Ref("slow")}),
        ],
    )


def check_cancelled_result(result: ExecutionResult | None, log: list[str]) -> None:
    assert log == ["cancelled", "finally", "cancelled", "finally"]  # the tools really were cancelled
    assert result is not None
    assert result.status is RunStatus.CANCELLED
    assert result.run_id == "c"
    assert result.reason == "cancelled: Cancelled in the caller"
    assert result.step("fast").status is StepStatus.SUCCEEDED
    for step in ("slow", "slow2"):
        assert result.step(step).status is StepStatus.CANCELLED
        assert [a.status for a in result.step(step).attempts] == [AttemptStatus.CANCELLED]
    queued = result.step("queued")
    assert queued.status is StepStatus.CANCELLED
    assert queued.attempts == ()
    assert queued.reason == "the run stopped (cancelled: Cancelled in the caller)"
    assert result.step("after_slow").reason == "dependency 'slow' was cancelled"
    assert result.errors == ()


def test_cancelling_the_scope_cancels_the_run_with_a_partial_result() -> None:
    log: list[str] = []
    flow = cancellable_flow(log)

    async def main() -> tuple[list[ExecutionResult], bool, float]:
        found: list[ExecutionResult] = []
        with trio.move_on_after(5) as scope:
            try:
                await TrioDriver().run(flow, run_id="c", max_concurrency=2)
            except* trio.Cancelled as group:
                found.extend(r for r in map(partial_result, group.exceptions) if r is not None)
                raise
        return found, scope.cancelled_caught, trio.current_time()

    found, caught, now = trun(main, mock_clock=True)
    assert caught
    assert now == 5.0  # cancelled at the deadline, long before the slow tools' 100 s
    assert len(found) == 1
    check_cancelled_result(found[0], log)


def test_the_partial_result_is_on_a_plain_cancelled_as_documented() -> None:
    log: list[str] = []
    flow = cancellable_flow(log)

    async def main() -> tuple[ExecutionResult | None, BaseException | None]:
        result: ExecutionResult | None = None
        escaped: BaseException | None = None
        with trio.move_on_after(5):
            try:
                await TrioDriver().run(flow, run_id="c", max_concurrency=2)
            except trio.Cancelled as exc:
                result = partial_result(exc)
                raise
            except BaseException as exc:
                escaped = exc
                raise
        return result, escaped

    result, escaped = trun(main, mock_clock=True)
    assert escaped is None, f"the run raised {escaped!r}, not trio.Cancelled"
    check_cancelled_result(result, log)


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

    async def main() -> list[ExecutionResult]:
        found: list[ExecutionResult] = []
        async with trio.open_nursery() as nursery:

            async def cancel_when_started() -> None:
                await trio.to_thread.run_sync(started.wait, TIMEOUT)
                nursery.cancel_scope.cancel()

            nursery.start_soon(cancel_when_started)
            try:
                await TrioDriver().run(flow)
            except* trio.Cancelled as group:
                found.extend(r for r in map(partial_result, group.exceptions) if r is not None)
                raise
        return found

    try:
        found = trun(main)
        tool_returned_first = release.passed.is_set()
    finally:
        release.set()
    assert not tool_returned_first  # the run was cancelled while the tool still waits
    assert len(found) == 1
    assert found[0].step("blocking").status is StepStatus.CANCELLED
    assert found[0].step("next").status is StepStatus.CANCELLED
