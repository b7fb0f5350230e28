"""Benchmark 11: a map step's cost per element, against a plain chain's cost per step.

A map step of n elements calling ``inc`` (``x + 1``, unannotated: the kernel's own cost) over the flow
input ``xs = list(range(n))``, against a chain of n ``inc`` steps (each feeding on the previous one): the
same number of calls of the same tool, so per element and per step compare the kernel's work around one
call. Both on the sync driver, at ``max_concurrency=1`` (calls inline, one at a time: the map's elements
and the chain's steps go through the same backend) for n = 10, 1,000 and 100,000, and at default settings
(no limit: threads, the map's elements all dispatched at once) for n = 1,000. Target: a map element costs
at most twice a plain step (issue 12).

Every variant runs in **its own clean process** (``--child``), so a 100,000-element run's heap is never
walked by a baseline's collections, nor the other way round; a size's map and chain processes run side by
side in every round, alternately first. A process samples its run ``repeats`` times (``gc.collect()``
before each; two samples at 100,000) and reports its median. Figures are medians over the rounds, spreads
the lowest and highest process median; the ratio is taken round by round (map / chain of that round) and
the target judged on the median of those ratios. The 100,000-element process also reports what the run
takes: its first run's wall time and the growth of the process's peak RSS (``VmHWM``) during it.

    python benchmarks/bench_map.py --child VARIANT N REPEATS MIN_SAMPLE_TIME   # one process's samples as JSON
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from _harness import Config, Row, calibrate, child_main, in_clean_process, log, median, repeat, timed

NAME = "map"

TARGET = 2.0
"""A map element against a plain chain step: at most twice its cost."""
SETTINGS = {"mc=1": {"max_concurrency": 1}, "default settings": {}}


# ---- the child: one variant, one clean process ---------------------------------------------------------


def inc(x: int) -> int:
    return x + 1


def child(variant: str, n: int, repeats: int, min_sample_time: float) -> dict[str, Any]:
    """µs per element (map) or per step (chain) of one variant in this fresh process, and where
    flowkernel came from. ``variant`` is ``map`` or ``chain``, then ``mc=1`` or ``default settings``."""
    from bench_chain import build_chain, peak_rss_bytes

    import flowkernel
    from flowkernel import Flow, Input, Item, Step, tool
    from flowkernel_sync import SyncDriver

    kind, _, mode = variant.partition(" ")
    step_tool = tool(validate=False)(inc)
    driver = SyncDriver()
    settings: dict[str, Any] = SETTINGS[mode]
    run: Callable[[], Any]
    if kind == "map":
        flow = Flow(name="map", steps=[Step(id="each", tool=step_tool, map=Input("xs"), arguments={"x": Item()})])
        xs = list(range(n))

        def run() -> Any:
            return driver.run(flow, {"xs": xs}, **settings)

        expected = ("each", [x + 1 for x in xs])
    else:
        chain = build_chain(n, step_tool)

        def run() -> Any:
            return driver.run(chain, {"x": 0}, **settings)

        expected = (f"s{n - 1}", n)
    rss_before = peak_rss_bytes()
    started = time.perf_counter()
    result = run()
    first_run = time.perf_counter() - started
    rss_growth = peak_rss_bytes() - rss_before
    if result.status != "succeeded" or result.outputs[expected[0]] != expected[1]:
        raise AssertionError(f"{variant} n={n} ended {result.status}")
    del result
    loops = 1 if n >= 100_000 else calibrate(run, min_sample_time)
    samples = repeat({variant: timed(run, loops)}, min(repeats, 2) if n >= 100_000 else repeats)[variant]
    return {
        "samples": [s / n * 1e6 for s in samples],
        "first_run_s": first_run,
        "rss_growth": rss_growth,
        "flowkernel": flowkernel.__file__,
    }


# ---- the parent ------------------------------------------------------------------------------------------


def _spawn(variant: str, n: int, repeats: int, config: Config) -> dict[str, Any]:
    return in_clean_process(__file__, variant, n, repeats, config.min_sample_time)


def _spread(values: Sequence[float], digits: int = 2) -> str:
    return f"{min(values):.{digits}f}..{max(values):.{digits}f}"


def _pair(n: int, mode: str, rounds: int, config: Config) -> list[Row]:
    """The map and the chain of ``n`` at ``mode``, side by side in ``rounds`` rounds; their rows."""
    reports: dict[str, list[dict[str, Any]]] = {"map": [], "chain": []}
    for round_ in range(rounds):
        order = ["map", "chain"] if round_ % 2 == 0 else ["chain", "map"]
        log(f"  map n={n:,} ({mode}) round {round_ + 1}/{rounds}: {', '.join(order)}")
        for kind in order:
            reports[kind].append(_spawn(f"{kind} {mode}", n, config.repeats, config))
    per_process = {kind: [median(r["samples"]) for r in runs] for kind, runs in reports.items()}
    maps, chains = per_process["map"], per_process["chain"]
    ratios = [m / c for m, c in zip(maps, chains, strict=True)]
    paired, measured, baseline = median(ratios), median(maps), median(chains)
    rows = [
        Row(
            f"map n={n:,} per element (sync, {mode})",
            measured,
            baseline,
            "µs/element",
            measured / baseline,
            f"map/chain per round {paired:.2f}x ({_spread(ratios)}); spread {_spread(maps)} vs {_spread(chains)}",
            f"≤ {TARGET:g}x a chain step",
            paired <= TARGET,
            note=(
                f"baseline: a chain of {n:,} inc steps (µs/step), in its own process beside the map's, "
                f"{rounds} round(s); judged on the median of the per-round ratios"
            ),
            samples={
                "map": maps,
                "chain": chains,
                "ratio": ratios,
                "map_samples": [s for r in reports["map"] for s in r["samples"]],
                "chain_samples": [s for r in reports["chain"] for s in r["samples"]],
            },
        )
    ]
    if n >= 100_000:
        growth = median([r["rss_growth"] for r in reports["map"]])
        chain_growth = median([r["rss_growth"] for r in reports["chain"]])
        seconds = median([r["first_run_s"] for r in reports["map"]])
        rows.append(
            Row(
                f"map n={n:,} in one step: peak RSS growth (sync, {mode})",
                growth / n,
                chain_growth / n,
                "B/element",
                growth / chain_growth if chain_growth else None,
                f"{growth / 2**20:.1f} MiB, first run {seconds:.2f} s (chain of {n:,}: {chain_growth / 2**20:.1f} MiB)",
                "reported",
                None,
                note=(
                    "VmHWM growth during each process's first run (the result included, the flow and its "
                    "inputs built before); baseline: the chain of the same length"
                ),
                samples={
                    "map_rss_growth": [r["rss_growth"] for r in reports["map"]],
                    "chain_rss_growth": [r["rss_growth"] for r in reports["chain"]],
                    "map_first_run_s": [r["first_run_s"] for r in reports["map"]],
                },
            )
        )
    return rows


def run(config: Config) -> list[Row]:
    sizes = (10, 100, 1_000) if config.quick else (10, 1_000, 100_000)
    rounds = 1 if config.quick else config.repeats
    started = time.perf_counter()
    log(f"map: map step vs chain, n={', '.join(f'{n:,}' for n in sizes)}, each in its own process")
    rows: list[Row] = []
    for n in sizes:
        rows += _pair(n, "mc=1", min(rounds, 3) if n >= 100_000 else rounds, config)
    rows += _pair(sizes[1], "default settings", rounds, config)
    log(f"map: done in {time.perf_counter() - started:.0f} s")
    return rows


if __name__ == "__main__":
    child_main(child, str, int, int, float, usage="VARIANT N REPEATS MIN_SAMPLE_TIME")
