"""Benchmark 11: the sync driver at default settings (no ``max_concurrency``) on a chain, against its inline mode.

The path a new user takes is ``SyncDriver().run(flow)``. On a chain each step is the only call in flight,
so the driver runs it inline in the caller's thread (``flowkernel_sync.runs_inline``), as it does at
``max_concurrency=1``; before issue 12 every step was a thread hand-off, in a pool built per run. Three
variants, on chains of ``inc`` steps (step *i* takes ``Ref(step i-1)``), at 10 and 1,000 steps:

* ``inline``: ``max_concurrency=1`` (the baseline: the sync driver's own floor);
* ``default``: no ``max_concurrency`` (judged: within ``TARGET`` of ``inline``);
* ``threads``: default settings with ``SyncDriver(inline_lone_calls=False)``, every call in a pool
  thread, the pool built per run: what default settings cost before the fast path (informational).

Each (variant, size) runs in **its own clean process** (``--child``), one process per variant and size per
round, the variants' order rotated from round to round; a process samples ``repeats`` times (each sample
runs the chain often enough to last ``min_sample_time``) and reports its median per step. Figures are
medians over the rounds, spreads the lowest and highest process median; a variant's ratio to ``inline``
is taken round by round (those processes ran one after the other) and its median reported; the ratio of
the processes' CPU time is shown beside it (steadier when other work holds the cores).

    python benchmarks/bench_sync_default.py --child VARIANT N REPEATS MIN_SAMPLE_TIME   # one process, JSON
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from _harness import Config, Row, child_main, in_clean_process, log, median

NAME = "sync_default"

VARIANTS = ("inline", "default", "threads")
TARGET = 1.2
"""Default settings on a chain: within 1.2x of the driver's inline mode per step (issue 12)."""
BEFORE = "default settings before issue 12: a thread hand-off per step, a pool per run"


def child(variant: str, n: int, repeats: int, min_sample_time: float) -> dict[str, Any]:
    """One process's measurement: ``repeats`` samples of the chain on one variant, µs per step."""
    from _harness import calibrate, repeat, timed

    from flowkernel import Flow, Ref, Step, tool
    from flowkernel_sync import SyncDriver

    @tool
    def inc(x: int) -> int:
        return x + 1

    steps = [Step(id="s0", tool=inc, arguments={"x": 0})]
    steps += [Step(id=f"s{i}", tool=inc, arguments={"x": Ref(f"s{i - 1}")}) for i in range(1, n)]
    flow = Flow(name="chain", steps=steps)
    driver = SyncDriver(inline_lone_calls=variant != "threads")
    limit = 1 if variant == "inline" else None

    def once() -> None:
        result = driver.run(flow, max_concurrency=limit)
        assert result.status == "succeeded", result.errors

    loops = calibrate(once, min_sample_time)
    cpu: list[float] = []

    def sample() -> float:
        """Wall time per run (what is judged), noting the process's CPU time beside it."""
        started_cpu = time.process_time()
        wall = timed(once, loops)()
        cpu.append((time.process_time() - started_cpu) / loops)
        return wall

    samples = repeat({variant: sample}, repeats)[variant]
    return {"samples": [s / n * 1e6 for s in samples], "cpu": [s / n * 1e6 for s in cpu], "loops": loops}


def _spawn(variant: str, n: int, repeats: int, min_sample_time: float) -> tuple[float, float]:
    """(wall, CPU) medians of one process, µs per step."""
    measured = in_clean_process(__file__, variant, n, repeats, min_sample_time)
    return float(statistics.median(measured["samples"])), float(statistics.median(measured["cpu"]))


def run(config: Config) -> list[Row]:
    sizes = (10, 100) if config.quick else (10, 1000)
    rounds = 1 if config.quick else 7
    repeats = 1 if config.quick else config.repeats
    log(
        f"sync_default: chains of {' and '.join(map(str, sizes))} steps, {len(VARIANTS)} variants each in its own "
        f"process, {rounds} rounds"
    )
    started = time.perf_counter()
    per_round: dict[int, list[dict[str, tuple[float, float]]]] = {n: [] for n in sizes}
    for r in range(rounds):
        order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
        for n in sizes:
            per_round[n].append({variant: _spawn(variant, n, repeats, config.min_sample_time) for variant in order})
    log(f"sync_default: {time.perf_counter() - started:.0f} s")
    rows = []
    for n in sizes:
        inline = [round_["inline"][0] for round_ in per_round[n]]
        inline_cpu = [round_["inline"][1] for round_ in per_round[n]]
        for variant in VARIANTS:
            values = [round_[variant][0] for round_ in per_round[n]]
            cpu = [round_[variant][1] for round_ in per_round[n]]
            spread = f"spread {min(values):.1f}-{max(values):.1f}"
            if variant == "inline":
                rows.append(Row(f"sync chain n={n}, inline (max_concurrency=1)", median(values), None, "µs/step",
                                None, f"{spread}; CPU time {median(cpu):.1f}", "", None,
                                samples={"per_round": values, "cpu_per_round": cpu}))  # fmt: skip
                continue
            ratios = [v / b for v, b in zip(values, inline, strict=True)]
            ratio = median(ratios)
            # CPU time leaves out the time the process waited for a core: steadier on a busy machine, and
            # blind to a thread hand-off's wake-up latency (so only the wall-clock ratio is judged).
            cpu_ratio = median([v / b for v, b in zip(cpu, inline_cpu, strict=True)])
            judged = variant == "default"
            name = (
                f"sync chain n={n}, default settings"
                if judged
                else f"sync chain n={n}, a thread per call (inline_lone_calls=False)"
            )
            rows.append(
                Row(
                    name, median(values), median(inline), "µs/step", ratio,
                    f"{ratio:.2f}x inline (rounds {min(ratios):.2f}-{max(ratios):.2f}); {spread}; "
                    f"CPU time {cpu_ratio:.2f}x",
                    f"<= {TARGET:.1f}x" if judged else "", ratio <= TARGET if judged else None,
                    note="" if judged else BEFORE,
                    samples={"per_round": values, "ratios": ratios, "cpu_per_round": cpu},
                )
            )  # fmt: skip
    return rows


if __name__ == "__main__":
    child_main(child, str, int, int, float, usage="VARIANT N REPEATS MIN_SAMPLE_TIME")
