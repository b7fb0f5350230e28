"""Benchmark 2: fan-out of many async tools that each sleep 10 ms, with unbounded concurrency.

One step per tool call, none depending on another, then one ``gather`` step summing every output. The
asyncio driver runs against a bare ``asyncio.TaskGroup`` running the same coroutines, the trio driver
against a bare trio nursery; both baselines gather the results the same way. Wall time is measured
inside the event loop (loop start-up excluded), flows are built outside the timed region.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Literal

import trio
from _harness import Config, GcActivity, Row, Timer, describe_gc, gc_disabled, gc_frozen, log, median, repeat

from flowkernel import ExecutionResult, Flow, Ref, Step, tool
from flowkernel_asyncio import AsyncioDriver
from flowkernel_trio import TrioDriver

NAME = "fanout"

SLEEP = 0.01
RATIO_TARGET = 1.2


async def nap_asyncio() -> int:
    await asyncio.sleep(SLEEP)
    return 1


async def nap_trio() -> int:
    await trio.sleep(SLEEP)
    return 1


async def total(xs: list[int]) -> int:
    return sum(xs)


def build_fanout(n: int, nap: Callable[[], Awaitable[int]], backend: Literal["asyncio", "trio"]) -> Flow:
    nap_tool = tool(name="nap", async_backend=backend)(nap)
    steps = [Step(id=f"s{i}", tool=nap_tool) for i in range(n)]
    steps.append(Step(id="gather", tool=tool(total), arguments={"xs": [Ref(f"s{i}") for i in range(n)]}))
    return Flow(name=f"fanout-{n}", steps=steps)


def _check(result: ExecutionResult, n: int) -> None:
    if result.status != "succeeded" or result.outputs.get("gather") != n:
        raise AssertionError(f"fan-out of {n} ended {result.status}: {result.outputs!r}"[:300])


# ---- asyncio ------------------------------------------------------------------------------------------


async def bare_asyncio(n: int) -> int:
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(nap_asyncio()) for _ in range(n)]
    return await total([task.result() for task in tasks])


def sample_asyncio_driver(flow: Flow, n: int) -> float:
    async def main() -> float:
        driver = AsyncioDriver()
        start = time.perf_counter()
        result = await driver.run(flow)
        elapsed = time.perf_counter() - start
        _check(result, n)
        return elapsed

    return asyncio.run(main())


def sample_asyncio_bare(n: int) -> float:
    async def main() -> float:
        start = time.perf_counter()
        value = await bare_asyncio(n)
        elapsed = time.perf_counter() - start
        assert value == n
        return elapsed

    return asyncio.run(main())


# ---- trio ---------------------------------------------------------------------------------------------


async def bare_trio(n: int) -> int:
    results = [0] * n

    async def one(i: int) -> None:
        results[i] = await nap_trio()

    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(one, i)
    return await total(results)


def sample_trio_driver(flow: Flow, n: int) -> float:
    async def main() -> float:
        driver = TrioDriver()
        start = time.perf_counter()
        result = await driver.run(flow)
        elapsed = time.perf_counter() - start
        _check(result, n)
        return elapsed

    return trio.run(main)


def sample_trio_bare(n: int) -> float:
    async def main() -> float:
        start = time.perf_counter()
        value = await bare_trio(n)
        elapsed = time.perf_counter() - start
        assert value == n
        return elapsed

    return trio.run(main)


# ---- entry point --------------------------------------------------------------------------------------


VARIANTS = {
    "": ("", "{n:,} x {sleep:g} ms sleeps + 1 gather step, unbounded, wall time inside the loop; "),
    "gc off": (" (gc disabled)", "gc.disable() around every sample (both sides), interleaved"),
    "gc frozen": (" (gc.freeze)", "gc.freeze() before every sample (both sides): the flows built beforehand are "
                  "out of the collector's reach; "),
}  # fmt: skip


def _rows(label: str, fk: Timer, bare: Timer, n: int, config: Config) -> list[Row]:
    fk(), bare()  # warm up: imports, first loop, caches
    timers: dict[str, Timer] = {}
    for variant in VARIANTS:
        wrap = {"": lambda t: t, "gc off": gc_disabled, "gc frozen": gc_frozen}[variant]
        timers[f"flowkernel {variant}".strip()] = wrap(fk)
        timers[f"bare {variant}".strip()] = wrap(bare)
    log(f"  fan-out {label} n={n:,}: {len(timers)} variants interleaved")
    gc_log: dict[str, list[GcActivity]] = {}
    samples = {key: [s * 1e3 for s in values] for key, values in repeat(timers, config.repeats, gc_log=gc_log).items()}
    rows: list[Row] = []
    for variant, (suffix, note) in VARIANTS.items():
        fk_key, bare_key = f"flowkernel {variant}".strip(), f"bare {variant}".strip()
        fk_ms, bare_ms = median(samples[fk_key]), median(samples[bare_key])
        per_task = (fk_ms - bare_ms) / n * 1e3
        ratio = fk_ms / bare_ms
        judged = not variant
        gc_text = f"flowkernel {describe_gc(gc_log[fk_key])}; bare {describe_gc(gc_log[bare_key])}"
        rows.append(
            Row(
                f"fan-out {label} n={n:,}{suffix}",
                fk_ms,
                bare_ms,
                "ms",
                ratio,
                f"ratio {ratio:.2f}x ({per_task:+.1f} µs/task)",
                f"≤ {RATIO_TARGET:g}x" if judged else "reported",
                ratio <= RATIO_TARGET if judged else None,
                note=note.format(n=n, sleep=SLEEP * 1e3) + ("" if variant == "gc off" else gc_text),
                samples={
                    "flowkernel": samples[fk_key],
                    "bare": samples[bare_key],
                    "flowkernel_gc_ms": [a.total * 1e3 for a in gc_log[fk_key]],
                    "bare_gc_ms": [a.total * 1e3 for a in gc_log[bare_key]],
                },
            )
        )
    return rows


def run(config: Config) -> list[Row]:
    n = 200 if config.quick else 10_000
    started = time.perf_counter()
    log("fan-out: building flows")
    asyncio_flow = build_fanout(n, nap_asyncio, "asyncio")
    trio_flow = build_fanout(n, nap_trio, "trio")
    rows = _rows("asyncio", partial(sample_asyncio_driver, asyncio_flow, n), partial(sample_asyncio_bare, n), n, config)
    rows += _rows("trio", partial(sample_trio_driver, trio_flow, n), partial(sample_trio_bare, n), n, config)
    log(f"fan-out: done in {time.perf_counter() - started:.0f} s")
    return rows
