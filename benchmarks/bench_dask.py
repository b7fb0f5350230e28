"""Benchmark 5: the Dask driver against raw ``client.map`` of the same function, on the same client.

Fan-out: n independent steps of a trivial sync tool, unbounded, against ``client.map(work, range(n))``
followed by ``client.gather``: throughput ratio (raw time / flowkernel time; target at least 0.9x).
Latency: a chain of steps, each waiting for the one before, against the same number of sequential
``await client.submit(work, i)``: milliseconds per call. Dask's client sends to the scheduler on a 10 ms
timer (``BatchedSend(interval="10ms")``): a call sent less than 10 ms after the previous send waits for
the timer, so sequential calls cost about 10 ms each on both sides, whatever the tool does.

Both sides run on the driver's embedded in-process cluster and its client, timed on the client's loop,
interleaved (A, B, A, B, ...).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

from _harness import Config, Row, Timer, log, median, repeat

from flowkernel import Flow, Ref, Step, tool
from flowkernel_dask import DaskDriver

NAME = "dask"
RATIO_TARGET = 0.9


def work(i: int) -> int:
    return i


work_tool = tool(name="work")(work)


def fanout_flow(n: int) -> Flow:
    return Flow(name=f"dask-fanout-{n}", steps=[Step(id=f"s{i}", tool=work_tool, arguments={"i": i}) for i in range(n)])


def chain_flow(n: int) -> Flow:
    steps = [Step(id="s0", tool=work_tool, arguments={"i": 0})]
    steps += [Step(id=f"s{i}", tool=work_tool, arguments={"i": Ref(f"s{i - 1}")}) for i in range(1, n)]
    return Flow(name=f"dask-chain-{n}", steps=steps)


def on_loop(driver: DaskDriver, coroutine: Coroutine[Any, Any, float]) -> float:
    return asyncio.run_coroutine_threadsafe(coroutine, driver.loop).result()


def timers(driver: DaskDriver, fanout: Flow, chain: Flow, n: int, k: int) -> dict[str, Timer]:
    client = driver.client

    async def flowkernel_fanout() -> float:
        start = time.perf_counter()
        result = await driver.run(fanout)
        elapsed = time.perf_counter() - start
        assert result.status == "succeeded", result.errors
        return elapsed

    async def raw_fanout() -> float:
        start = time.perf_counter()
        values = await client.gather(client.map(work, range(n), pure=False))
        elapsed = time.perf_counter() - start
        assert len(values) == n
        return elapsed

    async def flowkernel_chain() -> float:
        start = time.perf_counter()
        result = await driver.run(chain, max_concurrency=1)
        elapsed = time.perf_counter() - start
        assert result.status == "succeeded", result.errors
        return elapsed / k

    async def raw_chain() -> float:
        start = time.perf_counter()
        value = 0
        for _ in range(k):
            value = await client.submit(work, value, pure=False)
        return (time.perf_counter() - start) / k

    return {
        "flowkernel fan-out": lambda: on_loop(driver, flowkernel_fanout()),
        "raw fan-out": lambda: on_loop(driver, raw_fanout()),
        "flowkernel chain": lambda: on_loop(driver, flowkernel_chain()),
        "raw chain": lambda: on_loop(driver, raw_chain()),
    }


def run(config: Config) -> list[Row]:
    n, k = (50, 5) if config.quick else (1000, 30)
    started = time.perf_counter()
    log(f"dask: fan-out n={n:,} and chain k={k} against raw client.map / client.submit")
    fanout, chain = fanout_flow(n), chain_flow(k)
    with DaskDriver() as driver:
        clocks = timers(driver, fanout, chain, n, k)
        for timer in clocks.values():  # warm up: cluster, imports, the tool-shipping check
            timer()
        samples = repeat(clocks, config.repeats)
    fk_ms, raw_ms = median(samples["flowkernel fan-out"]) * 1e3, median(samples["raw fan-out"]) * 1e3
    throughput = raw_ms / fk_ms
    fk_call, raw_call = median(samples["flowkernel chain"]) * 1e3, median(samples["raw chain"]) * 1e3
    log(f"dask: done in {time.perf_counter() - started:.0f} s")
    return [
        Row(
            f"dask fan-out n={n:,} (in-process cluster)",
            fk_ms,
            raw_ms,
            "ms",
            fk_ms / raw_ms,
            f"throughput {throughput:.2f}x of raw ({n / fk_ms * 1e3:,.0f} vs {n / raw_ms * 1e3:,.0f} calls/s)",
            f"≥ {RATIO_TARGET:g}x of raw client.map",
            throughput >= RATIO_TARGET,
            note=f"{n:,} independent steps of a trivial sync tool, unbounded, against client.map + gather of the same "
            "function on the same client",
            samples={"flowkernel": samples["flowkernel fan-out"], "raw": samples["raw fan-out"]},
        ),
        Row(
            f"dask per-call latency, chain k={k}",
            fk_call,
            raw_call,
            "ms/call",
            fk_call / raw_call,
            f"{fk_call - raw_call:+.2f} ms/call over raw",
            "reported",
            None,
            note="each call waits for the one before; the client's 10 ms send timer dominates both sides",
            samples={"flowkernel": samples["flowkernel chain"], "raw": samples["raw chain"]},
        ),
    ]
