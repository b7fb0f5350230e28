"""Tools that raise or return anything, on every driver: each outcome becomes a record of the step, the
run ends with its result, and the record names the real exception type (issue 10, items 2, 3, 8, 10)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from flowkernel import Flow, RunStatus, Step, tool
from flowkernel.host import Driver


class RaisingStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


class RaisingRepr(Exception):
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    def __str__(self) -> str:
        raise RuntimeError("no str either")


class Unpicklable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = __import__("threading").Lock()


@tool
def raises_str() -> None:
    raise RaisingStr()


@tool
async def async_raises_str() -> None:
    raise RaisingStr()


@tool
def raises_repr() -> None:
    raise RaisingRepr()


@tool
def raises_huge() -> None:
    raise ValueError("x" * 10_000_000)


@tool
def raises_unpicklable() -> None:
    raise Unpicklable("holds a lock")


@tool
def raises_cyclic() -> None:
    first, second = ValueError("first"), ValueError("second")
    first.__cause__, second.__cause__ = second, first
    raise first


HOSTILE = Flow(
    name="hostile",
    steps=[
        Step(id="str", tool=raises_str),
        Step(id="async_str", tool=async_raises_str),
        Step(id="repr", tool=raises_repr),
        Step(id="huge", tool=raises_huge),
        Step(id="unpicklable", tool=raises_unpicklable),
        Step(id="cyclic", tool=raises_cyclic),
    ],
)
TYPES = {
    "str": f"{__name__}.RaisingStr",
    "async_str": f"{__name__}.RaisingStr",
    "repr": f"{__name__}.RaisingRepr",
    "huge": "ValueError",
    "unpicklable": f"{__name__}.Unpicklable",
    "cyclic": "ValueError",
}


@pytest.mark.parametrize("limit", [1, None])
def test_any_exception_a_tool_raises_becomes_its_steps_error_record(flowkernel_driver: Driver, limit: Any) -> None:
    result = flowkernel_driver.run_blocking(HOSTILE, max_concurrency=limit)
    assert result.status == RunStatus.FAILED
    for step in result.steps:
        assert step.error is not None, step.id
        assert step.error.type == TYPES[step.id], step.id
        assert len(step.error.message) <= 10_000, step.id
    assert "unprintable" in result.step("str").error.message  # type: ignore[union-attr]
    assert result.step("unpicklable").error.message == "holds a lock"  # type: ignore[union-attr]


@tool
def returns_a_coroutine() -> Any:
    return asyncio.sleep(0)


async def _numbers() -> Any:
    yield 1


@tool
def returns_an_async_generator() -> Any:
    return _numbers()


@tool
async def cancels_itself() -> None:
    raise asyncio.CancelledError("gave up")


LYING = Flow(
    name="lying",
    steps=[
        Step(id="coroutine", tool=returns_a_coroutine),
        Step(id="agen", tool=returns_an_async_generator),
        Step(id="cancels", tool=cancels_itself),
    ],
)


@pytest.mark.parametrize("limit", [1, None])
def test_sync_tools_returning_coroutines_and_tools_cancelling_themselves_are_one_record_everywhere(
    flowkernel_driver: Driver, limit: Any
) -> None:
    """Issue 10.8 and 10.10."""
    result = flowkernel_driver.run_blocking(LYING, max_concurrency=limit)
    assert result.status == RunStatus.FAILED
    for step_id, kind in (("coroutine", "coroutine"), ("agen", "async_generator")):
        error = result.step(step_id).error
        assert error is not None
        assert error.type == "flowkernel.errors.AsyncResultError"
        assert (
            error.message
            == f"sync tool {step_id_tool(step_id)!r} returned {kind}: declare it async (async def, or is_async=True)"
        )
    cancelled = result.step("cancels").error
    assert cancelled is not None
    assert (cancelled.type, cancelled.message) == (
        "CancelledError",
        "the tool raised CancelledError itself (it was not cancelled): gave up",
    )


def step_id_tool(step_id: str) -> str:
    return {"coroutine": "returns_a_coroutine", "agen": "returns_an_async_generator"}[step_id]


@tool
async def blocks_its_loop() -> str:
    time.sleep(0.4)  # no await: the event loop stops for as long
    return "late"


def test_a_call_that_blocks_past_its_timeout_is_a_timeout_on_every_driver(flowkernel_driver: Driver) -> None:
    """Issue 10.6: it was `succeeded` on asyncio and trio (the timer could not fire) and timed out elsewhere."""
    flow = Flow(name="blocking", steps=[Step(id="b", tool=blocks_its_loop, timeout=0.1)])
    result = flowkernel_driver.run_blocking(flow)
    error = result.step("b").error
    assert error is not None
    assert (error.kind, error.message) == ("timeout", "attempt 1 timed out after 0.1 s")


@tool
def basket() -> dict[str, Any]:
    return {"items": [1]}


@tool
def grabs(b: dict[str, Any]) -> int:
    b["items"].append(2)  # mutates its argument: another step's output
    return len(b["items"])


@tool
def looks(b: dict[str, Any]) -> list[int]:
    return list(b["items"])


def test_a_tool_mutating_its_argument_changes_nothing_outside_its_call(flowkernel_driver: Driver) -> None:
    """Issue 10.9: the mutation showed in another step's recorded output and in what later steps got, on
    the local drivers only, so the live result differed from its replay and from Dask."""
    from flowkernel import Ref
    from flowkernel.host.journal import SqliteJournal, replay

    flow = Flow(
        name="mutation",
        steps=[
            Step(id="a", tool=basket),
            Step(id="b", tool=grabs, arguments={"b": Ref("a")}),
            Step(id="c", tool=looks, arguments={"b": Ref("a")}, after=["b"]),
        ],
    )
    with SqliteJournal(":memory:") as journal:
        live = flowkernel_driver.run_blocking(flow, run_id="m", max_concurrency=1, journal=journal)
        replayed = replay(flow, journal, "m")
    assert live.step("a").output == {"items": [1]}
    assert live.step("b").output == 2
    assert live.step("c").output == [1]
    assert live.canonical() == replayed.canonical()
