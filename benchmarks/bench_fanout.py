"""Benchmark 2: fan-out of many async tools that each sleep 10 ms, with unbounded concurrency.

One step per tool call, none depending on another, then one ``gather`` step summing every output. The
asyncio driver runs against a bare ``asyncio.TaskGroup`` running the same coroutines, the trio driver
against a bare trio nursery; both baselines gather the results the same way. Wall time is measured
inside the event loop (loop start-up excluded), flows are built outside the timed region.

**Every side runs in its own clean process** (``--child``): a baseline never shares its heap with the
10,000-step flows, so its collections walk only what it made itself (the first version measured both in
one process, which flattered the ratio). One round runs the four processes (flowkernel and bare, on
asyncio and trio) in rotating order; inside each, the sample plain, with the collector disabled and after
``gc.freeze()`` are interleaved. Ratios are taken round by round (flowkernel / bare of that round) and
judged on their median.

    python benchmarks/bench_fanout.py --child SIDE BACKEND N REPEATS   # one process's samples as JSON
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Literal

import trio
from _harness import (
    Config,
    GcActivity,
    Row,
    Timer,
    child_main,
    describe_gc,
    gc_disabled,
    gc_frozen,
    in_clean_process,
    log,
    median,
    repeat,
)

from flowkernel import ExecutionResult, Flow, Ref, Step, tool
from flowkernel_asyncio import AsyncioDriver
from flowkernel_trio import TrioDriver

NAME = "fanout"

SLEEP = 0.01
RATIO_TARGET = 1.3
"""Issue 12: flowkernel's fan-out within 1.3x of the bare task group / nursery, baselines in clean processes."""


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


# ---- one clean process ---------------------------------------------------------------------------------

MODES: dict[str, Callable[[Timer], Timer]] = {"": lambda t: t, "gc off": gc_disabled, "gc frozen": gc_frozen}
MODE_NOTES = {
    "": "{n:,} x {sleep:g} ms sleeps + 1 gather step, unbounded, wall time inside the loop; ",
    "gc off": "gc.disable() around every sample (both sides), interleaved",
    "gc frozen": "gc.freeze() before every sample (both sides): the flow built beforehand is out of the "
    "collector's reach; ",
}


def _timer(side: str, backend: str, n: int) -> Timer:
    if side == "bare":
        return partial(sample_asyncio_bare if backend == "asyncio" else sample_trio_bare, n)
    if backend == "asyncio":
        return partial(sample_asyncio_driver, build_fanout(n, nap_asyncio, "asyncio"), n)
    return partial(sample_trio_driver, build_fanout(n, nap_trio, "trio"), n)


def child(side: str, backend: str, n: int, repeats: int) -> dict[str, Any]:
    """One side on one backend in this fresh process: ms per sample in each GC mode, and the collections."""
    timer = _timer(side, backend, n)
    timer()  # warm up: imports, first loop, caches
    gc_log: dict[str, list[GcActivity]] = {}
    samples = repeat({mode: wrap(timer) for mode, wrap in MODES.items()}, repeats, gc_log=gc_log)
    return {
        "samples": {mode: [s * 1e3 for s in values] for mode, values in samples.items()},
        "gc": {mode: [[list(a.counts), list(a.seconds)] for a in log] for mode, log in gc_log.items()},
    }


# ---- the parent ------------------------------------------------------------------------------------------


def _gc_text(reports: list[dict[str, Any]], mode: str) -> str:
    log = [GcActivity((c[0], c[1], c[2]), (s[0], s[1], s[2])) for r in reports for c, s in r["gc"][mode]]
    return describe_gc(log)


def _rows(backend: str, reports: dict[str, list[dict[str, Any]]], n: int) -> list[Row]:
    rows: list[Row] = []
    for mode, note in MODE_NOTES.items():
        fk = [median(r["samples"][mode]) for r in reports["flowkernel"]]
        bare = [median(r["samples"][mode]) for r in reports["bare"]]
        ratios = [f / b for f, b in zip(fk, bare, strict=True)]
        ratio, fk_ms, bare_ms = median(ratios), median(fk), median(bare)
        per_task = (fk_ms - bare_ms) / n * 1e3
        judged = not mode
        gc_text = f"flowkernel {_gc_text(reports['flowkernel'], mode)}; bare {_gc_text(reports['bare'], mode)}"
        rows.append(
            Row(
                f"fan-out {backend} n={n:,}{f' ({mode})' if mode else ''}",
                fk_ms, bare_ms, "ms", ratio,
                f"ratio {ratio:.2f}x per round ({min(ratios):.2f}..{max(ratios):.2f}; {per_task:+.1f} µs/task); "
                f"spread {min(fk):.0f}..{max(fk):.0f} vs {min(bare):.0f}..{max(bare):.0f} ms",
                f"≤ {RATIO_TARGET:g}x" if judged else "reported", ratio <= RATIO_TARGET if judged else None,
                note=note.format(n=n, sleep=SLEEP * 1e3) + ("" if mode == "gc off" else gc_text)
                + "; each side in its own clean process, ratio per round",
                samples={"flowkernel": fk, "bare": bare, "ratio": ratios},
            )
        )  # fmt: skip
    return rows


def run(config: Config) -> list[Row]:
    n = 200 if config.quick else 10_000
    rounds = 1 if config.quick else config.repeats
    repeats = 2 if config.quick else 3
    started = time.perf_counter()
    sides = [(side, backend) for backend in ("asyncio", "trio") for side in ("flowkernel", "bare")]
    log(f"fan-out: n={n:,}, {len(sides)} clean processes a round, {rounds} round(s), {repeats} samples per mode each")
    reports: dict[str, dict[str, list[dict[str, Any]]]] = {
        b: {"flowkernel": [], "bare": []} for b in ("asyncio", "trio")
    }
    for round_ in range(rounds):
        order = sides[round_ % len(sides) :] + sides[: round_ % len(sides)]
        log(f"  fan-out round {round_ + 1}/{rounds}: {', '.join(f'{s} {b}' for s, b in order)}")
        for side, backend in order:
            reports[backend][side].append(in_clean_process(__file__, side, backend, n, repeats))
    rows = _rows("asyncio", reports["asyncio"], n) + _rows("trio", reports["trio"], n)
    log(f"fan-out: done in {time.perf_counter() - started:.0f} s")
    return rows


if __name__ == "__main__":
    child_main(child, str, str, int, int, usage="SIDE BACKEND N REPEATS")
