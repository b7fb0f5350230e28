"""Benchmark 12: chains of async tools on the asyncio and trio drivers.

A chain of n steps calling ``inc(x) = x + 1`` as an async tool (unannotated, ``validate=False``: the
kernel's own cost), step *i* taking the output of step *i-1*.

* **asyncio against its floor.** The driver runs each call in a task of its own (that is what gives a
  call its own cancellation and timeout), so the floor is a bare loop doing the same:
  ``x = await asyncio.create_task(inc(x))`` n times. Target (issue 12): at most 1.5x the floor.
* **Growth with n**, asyncio and trio, 10,000 against 100,000 steps: the per-step cost should stay flat
  (at most 1.2x), as it does on the sync driver.

Every (variant, n) runs in **its own clean process** (``--child``); one round runs them all in rotating
order, ratios are taken round by round and judged on their median.

    python benchmarks/bench_async_chain.py --child VARIANT N REPEATS MIN_SAMPLE_TIME   # one process, JSON
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
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

NAME = "async_chain"

FLOOR_TARGET = 1.5
"""The asyncio chain within 1.5x of a bare loop creating (and awaiting) one task per step."""
GROWTH_TARGET = 1.2
"""µs/step at the larger size within 1.2x of the smaller: flat."""
VARIANTS = ("flowkernel asyncio", "floor asyncio", "flowkernel trio")


async def inc(x: int) -> int:
    return x + 1


def _runner(variant: str, n: int) -> Callable[[], object]:
    """One run of the variant's chain of n, checked, as a function of no arguments."""
    import asyncio

    import trio

    from flowkernel import Flow, Input, Ref, Step, tool

    side, _, backend = variant.partition(" ")
    if side == "floor":

        async def floor() -> int:
            x = 0
            for _ in range(n):
                x = await asyncio.create_task(inc(x))
            return x

        def run_floor() -> object:
            assert asyncio.run(floor()) == n
            return None

        return run_floor
    step_tool = tool(validate=False, async_backend="any")(inc)
    steps = [Step(id="s0", tool=step_tool, arguments={"x": Input("x")})]
    steps += [Step(id=f"s{i}", tool=step_tool, arguments={"x": Ref(f"s{i - 1}")}) for i in range(1, n)]
    flow = Flow(name=f"async-chain-{n}", steps=steps)
    if backend == "asyncio":
        from flowkernel_asyncio import AsyncioDriver

        driver: Any = AsyncioDriver()

        def start(run: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
            return asyncio.run(run())
    else:
        from flowkernel_trio import TrioDriver

        driver = TrioDriver()
        start = trio.run

    def run_flowkernel() -> object:
        result = start(lambda: driver.run(flow, {"x": 0}))
        if result.status != "succeeded" or result.outputs[f"s{n - 1}"] != n:
            raise AssertionError(f"{variant} n={n} ended {result.status}")
        return None

    return run_flowkernel


def child(variant: str, n: int, repeats: int, min_sample_time: float) -> dict[str, Any]:
    """µs/step samples of one variant at one size in this fresh process (event loop start included in both
    flowkernel and the floor: one ``asyncio.run``/``trio.run`` per sample, as a caller pays it)."""
    run = _runner(variant, n)
    loops = 1 if n >= 10_000 else calibrate(run, min_sample_time)
    run()  # warm up
    samples = repeat({variant: timed(run, loops)}, repeats)[variant]
    return {"samples": [s / n * 1e6 for s in samples]}


# ---- the parent ------------------------------------------------------------------------------------------


def _measure(sizes: tuple[int, ...], rounds: int, repeats: int, config: Config) -> dict[tuple[str, int], list[float]]:
    """Per (variant, n): the median µs/step of each round's process."""
    jobs = [(variant, n) for n in sizes for variant in VARIANTS if not (variant.startswith("floor") and n != sizes[0])]
    found: dict[tuple[str, int], list[float]] = {job: [] for job in jobs}
    for round_ in range(rounds):
        order = jobs[round_ % len(jobs) :] + jobs[: round_ % len(jobs)]
        log(f"  async chain round {round_ + 1}/{rounds}: {len(order)} processes")
        for variant, n in order:
            report = in_clean_process(__file__, variant, n, repeats, config.min_sample_time)
            found[variant, n].append(median(report["samples"]))
    return found


def _ratio_row(name: str, measured: list[float], baseline: list[float], target: float, judged: str) -> Row:
    note = "each side in its own clean process, every sample one asyncio.run/trio.run; ratio taken per round"
    return per_round_ratio_row(name, measured, baseline, target, judged, note)


def run(config: Config) -> list[Row]:
    sizes = (100, 1_000) if config.quick else (10_000, 100_000)
    rounds = 1 if config.quick else 3
    repeats = 1 if config.quick else 3
    started = time.perf_counter()
    log(f"async_chain: n={', '.join(f'{n:,}' for n in sizes)}, each variant in its own process, {rounds} round(s)")
    found = _measure(sizes, rounds, repeats, config)
    small, large = sizes
    rows = [
        _ratio_row(
            f"asyncio chain n={small:,} (async tool) vs a task per step",
            found["flowkernel asyncio", small], found["floor asyncio", small], FLOOR_TARGET, "floor",
        )
    ]  # fmt: skip
    for backend in ("asyncio", "trio"):
        rows.append(
            _ratio_row(
                f"{backend} chain growth n={small:,}→{large:,} (µs/step)",
                found[f"flowkernel {backend}", large], found[f"flowkernel {backend}", small], GROWTH_TARGET, "growth",
            )
        )  # fmt: skip
    log(f"async_chain: done in {time.perf_counter() - started:.0f} s")
    return rows


if __name__ == "__main__":
    child_main(child, str, int, int, float, usage="VARIANT N REPEATS MIN_SAMPLE_TIME")
