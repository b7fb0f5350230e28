"""Flows the MCP serving tests offer as tools, in-process and through ``flowkernel serve`` subprocesses."""

from __future__ import annotations

import anyio
from pydantic import BaseModel

from flowkernel import Flow, Input, Item, Ref, Step, tool


class Greeting(BaseModel):
    text: str
    length: int


@tool
def numbers(n: int) -> list[int]:
    return list(range(n))


@tool
async def square(x: int) -> int:
    await anyio.sleep(0)
    return x * x


@tool
def greet(name: str) -> Greeting:
    text = f"hello {name}"
    return Greeting(text=text, length=len(text))


@tool
async def wait_long(x: int) -> int:
    await anyio.sleep(600)  # until the run is cancelled
    return x


@tool
def explode(x: int) -> int:
    raise ValueError(f"cannot take {x}")


squares = Flow(
    name="squares",
    description="The squares of 0 .. n-1.",
    steps=[
        Step(id="list", tool=numbers, arguments={"n": Input("n")}),
        Step(id="each", tool=square, map=Ref("list"), arguments={"x": Item()}),
    ],
)

report = Flow(
    name="report",
    description="A greeting, and the squares below n computed by a sub-flow.",
    steps=[
        Step(id="hello", tool=greet, arguments={"name": Input("name")}),
        Step(id="squares", flow=squares, arguments={"n": Input("n")}),
    ],
)

slow = Flow(
    name="slow",
    description="Squares x, then waits (until it is cancelled).",
    steps=[
        Step(id="first", tool=square, arguments={"x": Input("x")}),
        Step(id="wait", tool=wait_long, arguments={"x": Ref("first")}),
    ],
)

broken = Flow(
    name="broken",
    description="Always fails.",
    steps=[Step(id="boom", tool=explode, arguments={"x": Input("x")})],
)


@tool
async def loop_name() -> str:
    import sniffio

    return sniffio.current_async_library()


where = Flow(name="where", description="The event loop the run is on.", steps=[Step(id="loop", tool=loop_name)])
