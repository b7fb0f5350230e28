"""Tools and flows the step cache tests share: each tool call appends a line to a file, so a test counts
the calls a run made, whichever thread, task or process (Dask worker) made them."""

from __future__ import annotations

from pathlib import Path

import anyio

from flowkernel import CachePolicy, Flow, Item, Ref, Step, tool


def count_call(log: str, what: str) -> None:
    with Path(log).open("a", encoding="utf-8") as file:
        file.write(what + "\n")


def calls(log: str | Path) -> list[str]:
    path = Path(log)
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


@tool(cache=CachePolicy(version="1"))
def square(x: int, log: str) -> int:
    """An expensive, idempotent sync tool."""
    count_call(log, f"square {x}")
    return x * x


@tool(cache=CachePolicy(version="1"))
async def describe(n: int, log: str) -> dict[str, object]:
    """An expensive, idempotent async tool returning JSON data."""
    await anyio.sleep(0)
    count_call(log, f"describe {n}")
    return {"n": n, "even": n % 2 == 0, "digits": [int(d) for d in str(n)]}


@tool
def plain(x: int, log: str) -> int:
    """A tool without a cache policy: called every time."""
    count_call(log, f"plain {x}")
    return x + 1


def cached_flow(log: str) -> Flow:
    """A sync and an async cached tool, a map step over a cached tool, and an uncached step."""
    return Flow(
        name="cached",
        steps=[
            Step(id="sq", tool=square, arguments={"x": 3, "log": log}),
            Step(id="about", tool=describe, arguments={"n": Ref("sq"), "log": log}),
            Step(id="each", tool=square, map=Ref("about", "digits"), arguments={"x": Item(), "log": log}),
            Step(id="bump", tool=plain, arguments={"x": Ref("sq"), "log": log}),
        ],
    )
