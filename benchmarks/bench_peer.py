"""Benchmark 13: the asyncio chain of async tools with pydantic models, against the best-known peer.

The peer is LangGraph (a ``StateGraph`` whose state is a pydantic model, one node per step, each node
an ``async def`` returning ``{"x": state.x + 1}``, compiled once, run with ``ainvoke``). flowkernel runs
the same chain on the asyncio driver: an async tool with ``input_model=X`` and ``output_model=Y``, step
*i* taking ``Ref(step i-1, "x")``. Both sides validate each step's input and output with pydantic, build
their graph before timing, and pay one ``asyncio.run`` per sample. Target (issue 12): flowkernel at most
0.6x the peer's time.

Each (side, n) runs in **its own clean process** (``--child``), rounds interleaved in rotating order,
the ratio taken round by round and judged on its median. Without LangGraph installed the row says so.

    python benchmarks/bench_peer.py --child SIDE N REPEATS MIN_SAMPLE_TIME   # one process, JSON
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from typing import Any

from _harness import (
    Config,
    Row,
    calibrate,
    child_main,
    in_clean_process,
    log,
    median,
    per_round_ratio_row,
    repeat,
    timed,
)

NAME = "peer"
PEER_TARGET = 0.6
"""flowkernel's time at most 0.6x the peer's on the chain with pydantic models (issue 12)."""
SIDES = ("flowkernel", "langgraph")


def _flowkernel(n: int) -> Callable[[], object]:
    import asyncio

    from pydantic import BaseModel

    from flowkernel import Flow, Input, Ref, Step, tool
    from flowkernel_asyncio import AsyncioDriver

    class X(BaseModel):
        x: int

    class Y(BaseModel):
        x: int

    async def inc(x: int) -> dict[str, int]:
        return {"x": x + 1}

    step_tool = tool(name="inc", input_model=X, output_model=Y)(inc)
    steps = [Step(id="s0", tool=step_tool, arguments={"x": Input("x")})]
    steps += [Step(id=f"s{i}", tool=step_tool, arguments={"x": Ref(f"s{i - 1}", "x")}) for i in range(1, n)]
    flow = Flow(name=f"peer-chain-{n}", steps=steps)
    driver = AsyncioDriver()

    def run() -> object:
        result = asyncio.run(driver.run(flow, {"x": 0}))
        if result.status != "succeeded" or result.outputs[f"s{n - 1}"].x != n:
            raise AssertionError(f"flowkernel chain n={n} ended {result.status}: {result.outputs}")
        return None

    return run


def _langgraph(n: int) -> Callable[[], object]:
    import asyncio

    from langgraph.graph import END, START, StateGraph
    from pydantic import BaseModel

    class State(BaseModel):
        x: int

    async def inc(state: State) -> dict[str, int]:
        return {"x": state.x + 1}

    graph = StateGraph(State)
    for i in range(n):
        graph.add_node(f"s{i}", inc)
    graph.add_edge(START, "s0")
    for i in range(1, n):
        graph.add_edge(f"s{i - 1}", f"s{i}")
    graph.add_edge(f"s{n - 1}", END)
    app = graph.compile()
    config = {"recursion_limit": n + 10}

    def run() -> object:
        result = asyncio.run(app.ainvoke({"x": 0}, config))
        if result["x"] != n:
            raise AssertionError(f"langgraph chain n={n} ended with {result}")
        return None

    return run


def child(side: str, n: int, repeats: int, min_sample_time: float) -> dict[str, Any]:
    """µs/step samples of one side at one size in this fresh process."""
    run = _flowkernel(n) if side == "flowkernel" else _langgraph(n)
    loops = calibrate(run, min_sample_time)
    run()  # warm up
    samples = repeat({side: timed(run, loops)}, repeats)[side]
    return {"samples": [s / n * 1e6 for s in samples]}


def peer_installed() -> bool:
    return importlib.util.find_spec("langgraph") is not None


def run(config: Config) -> list[Row]:
    sizes = (10,) if config.quick else (100, 1_000)
    rounds = 1 if config.quick else 5
    repeats = 1 if config.quick else 3
    if not peer_installed():
        log("peer: skipped, langgraph is not installed (pip install langgraph; nox -s bench installs it)")
        return []
    started = time.perf_counter()
    jobs = [(side, n) for n in sizes for side in SIDES]
    found: dict[tuple[str, int], list[float]] = {job: [] for job in jobs}
    for round_ in range(rounds):
        order = jobs[round_ % len(jobs) :] + jobs[: round_ % len(jobs)]
        log(f"  peer round {round_ + 1}/{rounds}: {len(order)} processes")
        for side, n in order:
            checked = ("flowkernel",) if side == "flowkernel" else ()  # the peer's process never imports it
            report = in_clean_process(__file__, side, n, repeats, config.min_sample_time, check_modules=checked)
            found[side, n].append(median(report["samples"]))
    note = "each side in its own clean process, one asyncio.run per sample; ratio taken per round"
    rows = [
        per_round_ratio_row(
            f"asyncio chain n={n:,} with pydantic models vs LangGraph",
            found["flowkernel", n], found["langgraph", n], PEER_TARGET, "peer", note,
        )
        for n in sizes
    ]  # fmt: skip
    log(f"peer: done in {time.perf_counter() - started:.0f} s")
    return rows


if __name__ == "__main__":
    child_main(child, str, int, int, float, usage="SIDE N REPEATS MIN_SAMPLE_TIME")
