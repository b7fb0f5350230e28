"""Benchmark 6: many runs at once.

asyncio: 10,000 concurrent runs of a small flow (three steps: two async tools side by side, then one
reading both) in one process, one ``driver.run`` task per run, against the same 10,000 x 3 coroutines
in bare tasks; and the memory each run holds while all are in flight (tracemalloc, in a fresh
subprocess, every run parked on an event so all 10,000 are alive at once).

Dask: many runs of the same small flow (sync tools) against one cluster from one client (one
``DaskDriver``), all at once, against the same calls through raw ``client.submit``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from _harness import Config, Row, log, median, repeat

from flowkernel import Flow, Ref, Step, tool
from flowkernel_asyncio import AsyncioDriver

NAME = "many_runs"


async def fetch(x: int) -> int:
    await asyncio.sleep(0)
    return x + 1


async def combine(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


def small_flow() -> Flow:
    fetch_tool, combine_tool = tool(validate=False)(fetch), tool(validate=False)(combine)
    return Flow(
        name="small",
        steps=[
            Step(id="a", tool=fetch_tool, arguments={"x": 1}),
            Step(id="b", tool=fetch_tool, arguments={"x": 2}),
            Step(id="c", tool=combine_tool, arguments={"a": Ref("a"), "b": Ref("b")}),
        ],
    )


def sample_asyncio_runs(flow: Flow, runs: int) -> float:
    async def main() -> float:
        driver = AsyncioDriver()
        start = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(driver.run(flow, run_id=f"r{i}")) for i in range(runs)]
        elapsed = time.perf_counter() - start
        assert all(task.result().outputs == {"c": 5} for task in tasks)
        return elapsed

    return asyncio.run(main())


def sample_asyncio_bare(runs: int) -> float:
    async def one() -> int:
        a, b = await asyncio.gather(fetch(1), fetch(2))
        return await combine(a, b)

    async def main() -> float:
        start = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one()) for _ in range(runs)]
        elapsed = time.perf_counter() - start
        assert all(task.result() == 5 for task in tasks)
        return elapsed

    return asyncio.run(main())


MEMORY_CHILD = """
import asyncio, json, sys, tracemalloc
from flowkernel import Flow, Ref, Step, tool
from flowkernel_asyncio import AsyncioDriver

RUNS = {runs}
gate = None
parked_calls = 0

async def parked(x: int) -> int:
    global parked_calls
    parked_calls += 1
    await gate.wait()
    return x + 1

async def main():
    global gate
    gate = asyncio.Event()
    park = tool(parked)
    flow = Flow(name="parked", steps=[Step(id="a", tool=park, arguments={{"x": 1}}),
                                      Step(id="b", tool=park, arguments={{"x": 2}}),
                                      Step(id="c", tool=park, arguments={{"x": Ref("a")}})])
    driver = AsyncioDriver()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tasks = [asyncio.create_task(driver.run(flow, run_id=f"r{{i}}")) for i in range(RUNS)]
    while parked_calls < 2 * RUNS:  # steps a and b of every run are inside their tool
        await asyncio.sleep(0.01)
    during = tracemalloc.get_traced_memory()[0]
    gate.set()
    results = await asyncio.gather(*tasks)
    assert all(r.status == "succeeded" for r in results)
    print(json.dumps({{"bytes_per_run": (during - before) / RUNS}}))

asyncio.run(main())
"""


def memory_per_run(runs: int) -> float:
    code = MEMORY_CHILD.format(runs=runs)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True)
    bytes_per_run: float = json.loads(done.stdout.strip().splitlines()[-1])["bytes_per_run"]
    return bytes_per_run


def dask_rows(config: Config, runs: int) -> list[Row]:
    from flowkernel_dask import DaskDriver

    def inc(x: int) -> int:
        return x + 1

    def add(a: int, b: int) -> int:
        return a + b

    inc_tool, add_tool = tool(inc), tool(add)
    flow = Flow(
        name="small-dask",
        steps=[
            Step(id="a", tool=inc_tool, arguments={"x": 1}),
            Step(id="b", tool=inc_tool, arguments={"x": 2}),
            Step(id="c", tool=add_tool, arguments={"a": Ref("a"), "b": Ref("b")}),
        ],
    )
    with DaskDriver() as driver:
        client = driver.client

        async def flowkernel_runs() -> float:
            start = time.perf_counter()
            results = await asyncio.gather(*(driver.run(flow, run_id=f"r{i}") for i in range(runs)))
            elapsed = time.perf_counter() - start
            assert all(r.outputs == {"c": 5} for r in results)
            return elapsed

        async def raw_runs() -> float:
            async def one() -> int:
                a, b = client.submit(inc, 1, pure=False), client.submit(inc, 2, pure=False)
                return int(await client.submit(add, await a, await b, pure=False))

            start = time.perf_counter()
            values = await asyncio.gather(*(one() for _ in range(runs)))
            elapsed = time.perf_counter() - start
            assert values == [5] * runs
            return elapsed

        def on_loop(make: Callable[[], Coroutine[Any, Any, float]]) -> float:
            return asyncio.run_coroutine_threadsafe(make(), driver.loop).result()

        clocks = {"flowkernel": lambda: on_loop(flowkernel_runs), "raw": lambda: on_loop(raw_runs)}
        for timer in clocks.values():
            timer()
        samples = repeat(clocks, config.repeats)
    note = (
        "3-step flow (two sync calls side by side, then one reading both) per run, all runs awaited at once on "
        "the driver's client; raw: the same calls through client.submit"
    )
    return [runs_row(f"dask {runs:,} concurrent runs, one client", runs, samples, "raw", note)]


def runs_row(name: str, runs: int, samples: dict[str, list[float]], baseline: str, note: str) -> Row:
    """A row of runs against a baseline: medians in ms, the ratio, the cost per run and the runs per second."""
    fk_ms, base_ms = median(samples["flowkernel"]) * 1e3, median(samples[baseline]) * 1e3
    return Row(
        name,
        fk_ms,
        base_ms,
        "ms",
        fk_ms / base_ms,
        f"ratio {fk_ms / base_ms:.2f}x ({(fk_ms - base_ms) / runs * 1e3:+.0f} µs/run, "
        f"{runs / fk_ms * 1e3:,.0f} runs/s)",
        "reported",
        None,
        note=note,
        samples={"flowkernel": samples["flowkernel"], baseline: samples[baseline]},
    )


def run(config: Config) -> list[Row]:
    runs, dask_runs = (200, 20) if config.quick else (10_000, 200)
    started = time.perf_counter()
    log(f"many runs: {runs:,} concurrent asyncio runs, {dask_runs} dask runs")
    flow = small_flow()
    clocks = {"flowkernel": lambda: sample_asyncio_runs(flow, runs), "bare": lambda: sample_asyncio_bare(runs)}
    for timer in clocks.values():
        timer()
    samples = repeat(clocks, config.repeats)
    per_run = memory_per_run(runs)
    note = (
        "3-step flow per run (two async tools side by side, then one reading both), one driver.run task per run "
        "in one TaskGroup; bare: the same coroutines in tasks"
    )
    rows = [
        runs_row(f"asyncio {runs:,} concurrent runs", runs, samples, "bare", note),
        Row(
            f"asyncio {runs:,} concurrent runs: memory per run in flight",
            per_run / 1024,
            None,
            "KiB/run",
            None,
            f"{per_run * runs / 2**20:.1f} MiB for all {runs:,}",
            "reported",
            None,
            note="tracemalloc in a fresh process, every run parked inside its tools so all are alive at once "
            "(kernel state, session, backend, tasks)",
        ),
    ]
    rows += dask_rows(config, dask_runs)
    log(f"many runs: done in {time.perf_counter() - started:.0f} s")
    return rows
