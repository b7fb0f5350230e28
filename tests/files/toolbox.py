"""Tools at module level, named in test flow files as ``tests.files.toolbox:NAME``."""

from __future__ import annotations

from typing import Any

from flowkernel import Flow, Input, Ref, RetryPolicy, Step, tool


@tool
def double(x: int) -> int:
    return 2 * x


@tool
def add(a: int, b: int) -> int:
    return a + b


@tool
def echo(value: Any = None) -> Any:
    return value


@tool(retry=RetryPolicy(max_attempts=2, initial_delay=0))
def fail(value: Any = None) -> Any:
    raise RuntimeError("failing on purpose")


def plain(value: Any = None) -> Any:
    """A plain function: a file may name it too (it becomes a tool)."""
    return value


NOT_A_TOOL = 42

increment = Flow(
    name="increment",
    steps=[Step(id="plus", tool=add, arguments={"a": Input("n"), "b": 1})],
    outputs={"n": Ref("plus")},
)
