"""A flow whose timeline shows everything, with a critical path known by construction.

``source`` (0.1 s) feeds a map of three elements (the last the slowest), whose list a sub-flow sums in
two steps, then ``finish``: that chain is the longest by far. Beside it, ``flaky`` fails twice (then
succeeds) with backoff waits between its attempts, and ``broken`` always fails (tolerated); ``finish``
also waits for ``flaky``, which ends long before the sub-flow does. The tests read the timings from the
run's result; the sleeps only make the critical path unambiguous.
"""

from __future__ import annotations

import time
from pathlib import Path

from flowkernel import Flow, Input, Item, Ref, RetryPolicy, Step, tool

__all__ = ("CRITICAL", "build", "flow")

CRITICAL = {"source", "squares", "squares/item2", "nested", "nested/first", "nested/total", "finish"}
"""The steps on the critical path, by construction."""


@tool
def numbers(n: int) -> list[int]:
    time.sleep(0.1)
    return list(range(n))


@tool
def square(x: int) -> int:
    time.sleep(0.05 + 0.1 * x)  # item2 is the slowest by 0.1 s
    return x * x


@tool
def flaky(marker: str) -> str:
    """Fails on its first two calls (counted in the file ``marker``), then succeeds."""
    path = Path(marker)
    count = int(path.read_text()) if path.exists() else 0
    path.write_text(str(count + 1))
    time.sleep(0.02)
    if count < 2:
        raise ConnectionError(f"call {count + 1}: <refused> & dropped")
    return "ok"


@tool
def broken() -> None:
    time.sleep(0.02)
    raise ValueError("always broken")


@tool
def first(values: list[int]) -> list[int]:
    time.sleep(0.1)
    return values


@tool
def total(values: list[int]) -> int:
    time.sleep(0.1)
    return sum(values)


@tool
def finish(value: int, flaky: str) -> str:
    time.sleep(0.05)
    return f"{value} {flaky}"


def build() -> Flow:
    inner = Flow(
        name="summing",
        steps=[
            Step(id="first", tool=first, arguments={"values": Input("values")}),
            Step(id="total", tool=total, arguments={"values": Ref("first")}),
        ],
        outputs={"total": Ref("total")},
    )
    return Flow(
        name="pictured",
        version="2",
        steps=[
            Step(id="source", tool=numbers, arguments={"n": Input("n")}),
            Step(
                id="flaky",
                tool=flaky,
                arguments={"marker": Input("marker")},
                retry=RetryPolicy(max_attempts=3, initial_delay=0.03, multiplier=2),
            ),
            Step(id="broken", tool=broken, on_error="continue"),
            Step(id="squares", tool=square, map=Ref("source"), arguments={"x": Item()}),
            Step(id="nested", flow=inner, arguments={"values": Ref("squares")}),
            Step(id="finish", tool=finish, arguments={"value": Ref("nested", "total"), "flaky": Ref("flaky")}),
        ],
    )


flow = build()
