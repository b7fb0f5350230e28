"""Benchmark 3: the critical path, proving eager dispatch (no level barriers).

A(10 ms) → C(100 ms) beside B(100 ms) → D(10 ms). Dispatching each step as soon as its own dependency
is done takes about 110 ms; running level by level ({A, B} then {C, D}) would take about 200 ms. Measured
on asyncio, trio and sync (``max_concurrency=None``: a thread pool), against the ideal 110 ms.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Literal

import trio
from _harness import Config, Row, Timer, log, median, repeat

from flowkernel import ExecutionResult, Flow, Input, Ref, Step, Tool, tool
from flowkernel_asyncio import AsyncioDriver
from flowkernel_sync import SyncDriver
from flowkernel_trio import TrioDriver

NAME = "critical_path"

SHORT, LONG = 0.010, 0.100
IDEAL = SHORT + LONG
TARGET = 1.1
LEVELLED = 2 * LONG


def _sleeper(seconds: float, kind: Literal["asyncio", "trio", "sync"]) -> Tool:
    """A tool that sleeps ``seconds`` in the given style and passes its input on."""
    if kind == "asyncio":

        async def nap_asyncio(x: int) -> int:
            await asyncio.sleep(seconds)
            return x + 1

        return tool(name=f"sleep{seconds * 1e3:g}ms", async_backend="asyncio")(nap_asyncio)
    if kind == "trio":

        async def nap_trio(x: int) -> int:
            await trio.sleep(seconds)
            return x + 1

        return tool(name=f"sleep{seconds * 1e3:g}ms", async_backend="trio")(nap_trio)

    def nap_sync(x: int) -> int:
        time.sleep(seconds)
        return x + 1

    return tool(name=f"sleep{seconds * 1e3:g}ms")(nap_sync)


def build_critical_path(kind: Literal["asyncio", "trio", "sync"]) -> Flow:
    short, long = _sleeper(SHORT, kind), _sleeper(LONG, kind)
    return Flow(
        name=f"critical-path-{kind}",
        steps=[
            Step(id="A", tool=short, arguments={"x": Input("x")}),
            Step(id="B", tool=long, arguments={"x": Input("x")}),
            Step(id="C", tool=long, arguments={"x": Ref("A")}),
            Step(id="D", tool=short, arguments={"x": Ref("B")}),
        ],
    )


def _check(result: ExecutionResult) -> None:
    if result.status != "succeeded" or result.outputs != {"C": 2, "D": 2}:
        raise AssertionError(f"critical path ended {result.status}: {result.outputs!r}")


def sample_asyncio(flow: Flow) -> float:
    async def main() -> float:
        start = time.perf_counter()
        result = await AsyncioDriver().run(flow, {"x": 0})
        elapsed = time.perf_counter() - start
        _check(result)
        return elapsed

    return asyncio.run(main())


def sample_trio(flow: Flow) -> float:
    async def main() -> float:
        start = time.perf_counter()
        result = await TrioDriver().run(flow, {"x": 0})
        elapsed = time.perf_counter() - start
        _check(result)
        return elapsed

    return trio.run(main)


def sample_sync(flow: Flow) -> float:
    driver = SyncDriver()
    start = time.perf_counter()
    result = driver.run(flow, {"x": 0}, max_concurrency=None)
    elapsed = time.perf_counter() - start
    _check(result)
    return elapsed


def run(config: Config) -> list[Row]:
    repeats = 1 if config.quick else config.repeats
    samplers: dict[str, tuple[Callable[[Flow], float], Literal["asyncio", "trio", "sync"], str]] = {
        "asyncio": (sample_asyncio, "asyncio", "asyncio"),
        "trio": (sample_trio, "trio", "trio"),
        "sync": (sample_sync, "sync", "sync, mc=None, thread pool"),
    }
    timers: dict[str, Timer] = {}
    for name, (sampler, kind, _) in samplers.items():
        timers[name] = partial(sampler, build_critical_path(kind))
        timers[name]()  # warm up
    log(f"critical path: {', '.join(timers)}")
    samples: dict[str, Any] = {key: [s * 1e3 for s in values] for key, values in repeat(timers, repeats).items()}
    rows: list[Row] = []
    for name, (_, _, label) in samplers.items():
        wall = median(samples[name])
        ratio = wall / (IDEAL * 1e3)
        rows.append(
            Row(
                f"critical path ({label})",
                wall,
                IDEAL * 1e3,
                "ms",
                ratio,
                f"{ratio:.2f}x of ideal",
                f"≤ {TARGET:g}x of {IDEAL * 1e3:g} ms",
                ratio <= TARGET,
                note=(
                    f"A(10ms)→C(100ms) beside B(100ms)→D(10ms); level barriers would take ~{LEVELLED * 1e3:g} ms; "
                    f"samples {min(samples[name]):.1f}..{max(samples[name]):.1f} ms"
                ),
                samples={"wall": samples[name]},
            )
        )
    return rows
