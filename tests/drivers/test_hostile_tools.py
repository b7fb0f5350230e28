"""Tools that raise or return anything, on every driver: each outcome becomes a record of the step, the
run ends with its result, and the record names the real exception type (issue 10, items 2, 3, 8, 10)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowkernel import Flow, RunStatus, Step, tool
from flowkernel.host import Driver, partial_result


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
