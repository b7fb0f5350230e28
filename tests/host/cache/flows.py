"""Tools and flows the step cache tests share: each tool call appends a line to a file, so a test counts
the calls a run made, whichever thread, task or process (Dask worker) made them."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import anyio

from flowkernel import CachePolicy, Flow, Invoke, Item, Ref, Step, tool
from flowkernel.host import current_invoke


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


LATE = threading.Event()
"""What :func:`late_square` waits for (up to 5 s); a test sets it once the run that timed the call out returned."""


@tool(cache=CachePolicy(version="1"))
def late_square(x: int, log: str) -> int:
    """A sync tool that ignores its timeout: held, it runs on until :data:`LATE` is set and it has run longer
    than its timeout (the kernel's timer starts when the call is sent, a little before the tool starts)."""
    began = time.monotonic()
    if not LATE.is_set():
        LATE.wait(5)
        time.sleep(max(0.0, began + (current_invoke().timeout or 0.0) + 0.05 - time.monotonic()))
    count_call(log, f"late_square {x}")
    return x * x


def note_leaving(call: Invoke) -> Generator[Invoke, Any, Any]:
    """Run middleware (outside the step cache, which is innermost): logs each call once the cache is done
    with it, on whichever thread or worker the call ran."""
    value = yield call
    count_call(call.arguments["log"], f"left {call.step_id}")
    return value


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
