"""Benchmark 1: a chain of trivial tools on the sync driver, against a bare Python loop.

* ``inc`` chains of n steps (each step feeds on the previous step's output), ``max_concurrency=1`` so the
  sync driver calls the tools inline: µs per step, and the kernel's overhead per step over ``x = inc(x)``.
* The same chain with pydantic input/output models, against a bare validate → call → validate loop.
* Flow build time per step (outside every timed run), peak memory of the largest run (tracemalloc peak
  and RSS high-water delta, measured in a fresh subprocess), and the largest run with the garbage
  collector disabled or with the flow frozen out of its reach (``gc.freeze()``).

Run ``python benchmarks/bench_chain.py --memory-child N`` to get the memory figures of one run as JSON.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

from _harness import (
    Config,
    GcActivity,
    Row,
    Timer,
    calibrate,
    describe_gc,
    gc_disabled,
    gc_frozen,
    log,
    median,
    repeat,
    timed,
)
from pydantic import BaseModel

from flowkernel import (
    ExecutionResult,
    Flow,
    Input,
    Invoke,
    Ref,
    RetryPolicy,
    Returned,
    RunOptions,
    Step,
    Tool,
    run_flow,
    tool,
)
from flowkernel_sync import SyncDriver

NAME = "chain"

OVERHEAD_TARGET_US = 2.0
FLATNESS_TARGET = 1.2
PYDANTIC_TARGET = 1.5
VALIDATED_NOTE = (
    "X(x:int) in, Y(x:int) out, Ref(prev, 'x'); baseline: X.model_validate → call(**model_dump()) → Y.model_validate"
)


# ---- the tools and flows ----------------------------------------------------------------------------


def inc(x: int) -> int:
    return x + 1


class X(BaseModel):
    x: int


class Y(BaseModel):
    x: int


def inc_validated(x: int) -> dict[str, int]:
    return {"x": x + 1}


INC = tool(validate=False)(inc)  # the kernel's own cost: annotations are validated in the row of their own
INC_ANNOTATED = tool(name="inc")(inc)  # x: int in, int out, validated (issue 10, item 15)
INC_VALIDATED = tool(input_model=X, output_model=Y)(inc_validated)
# The same function with policies attached that never fire: a retry policy and an error policy.
INC_WITH_RETRY = tool(name="inc", validate=False, retry=RetryPolicy(max_attempts=5, initial_delay=0.1, jitter=0.2))(inc)
BUILD_TARGET_US = 10.0  # issue 12: building a Flow, per step (Step(...) for each step and Flow(...))
POLICY_TARGET = 1.05  # "nothing measurable": within 5 % (the medians' own noise here)


def build_chain(n: int, step_tool: Tool = INC, path: str = "") -> Flow:
    """``s0`` takes the flow input ``x``; every later step takes the previous step's output."""
    steps = [Step(id="s0", tool=step_tool, arguments={"x": Input("x")})]
    steps += [Step(id=f"s{i}", tool=step_tool, arguments={"x": Ref(f"s{i - 1}", path)}) for i in range(1, n)]
    return Flow(name=f"chain-{n}", steps=steps)


def bare_chain(n: int) -> int:
    x = 0
    for _ in range(n):
        x = inc(x)
    return x


def bare_validated_chain(n: int) -> int:
    """What the kernel does per validated step, by hand: validate the input, call, validate the output."""
    x = 0
    for _ in range(n):
        arguments = X.model_validate({"x": x}).model_dump()
        x = Y.model_validate(inc_validated(**arguments)).x
    return x


def run_chain(driver: SyncDriver, flow: Flow) -> ExecutionResult:
    return driver.run(flow, {"x": 0}, max_concurrency=1)


def run_kernel_only(flow: Flow) -> ExecutionResult:
    """The least any driver can do: drive the kernel generator by hand, calling each tool inline.

    No session, backend, clock or queue: what is left is the kernel's own cost per step (plus building
    one ``Returned`` and calling the tool with keyword arguments), a floor under every driver.
    """
    kernel = run_flow(flow, {"x": 0}, RunOptions("bench", 1))
    commands = kernel.send(None)  # type: ignore[arg-type]
    try:
        while True:
            command = commands[0]
            assert isinstance(command, Invoke)
            commands = kernel.send([Returned(command.call_id, command.tool.fn(**command.arguments), 0.0, 0.0)])
    except StopIteration as stop:
        result: ExecutionResult = stop.value
        return result


def _check(flow: Flow, driver: SyncDriver, n: int) -> None:
    result = run_chain(driver, flow)
    last = result.outputs[f"s{n - 1}"]
    value = last.x if isinstance(last, Y) else last
    if result.status != "succeeded" or value != n:
        raise AssertionError(f"chain of {n} ended {result.status} with {last!r}")


# ---- measurements -----------------------------------------------------------------------------------


def _auto_timer(fn: Callable[[], object], config: Config) -> Timer:
    """A timer looping ``fn`` enough that a sample is long enough to time (one call for long runs)."""
    return timed(fn, calibrate(fn, config.min_sample_time))


def _us_per_step(samples: list[float], n: int) -> list[float]:
    return [s / n * 1e6 for s in samples]


def _build_rows(sizes: tuple[int, ...], config: Config) -> tuple[list[Row], dict[int, Flow]]:
    rows: list[Row] = []
    flows: dict[int, Flow] = {}
    for n in sizes:
        flows[n] = build_chain(n)
        build = partial(build_chain, n)
        big = n >= 50_000  # seconds per build: a few single builds are enough
        timer = timed(build) if big else _auto_timer(build, config)
        repeats = min(config.repeats, 3) if big else config.repeats
        samples = _us_per_step(repeat({"build": timer}, repeats)["build"], n)
        built = median(samples)
        rows.append(
            Row(
                f"chain build n={n:,}",
                built,
                None,
                "µs/step",
                None,
                f"{built:.1f} µs/step (spread {min(samples):.1f}-{max(samples):.1f})",
                f"≤ {BUILD_TARGET_US:g} µs/step",
                built <= BUILD_TARGET_US,
                note=""
                if n != sizes[-1]
                else "Step(...) for every step and Flow(...): validating and compiling it; outside every run",
                samples={"build": samples},
            )
        )
    return rows, flows


def _run_rows(flows: dict[int, Flow], config: Config) -> list[Row]:
    """Every size interleaved in one loop (plus a one-step run and the kernel alone), so that a noisy
    phase of the machine hits every size alike and the flatness check compares like with like."""
    driver = SyncDriver()
    sizes = sorted(flows)
    mid = sizes[len(sizes) // 2]
    one_step = build_chain(1)
    timers: dict[str, Timer] = {}
    for n in sizes:
        _check(flows[n], driver, n)
        timers[f"flowkernel {n}"] = _auto_timer(partial(run_chain, driver, flows[n]), config)
        timers[f"bare {n}"] = _auto_timer(partial(bare_chain, n), config)
    timers["kernel"] = _auto_timer(partial(run_kernel_only, flows[mid]), config)
    timers["one step"] = _auto_timer(partial(run_chain, driver, one_step), config)
    log(f"  chain n={', '.join(f'{n:,}' for n in sizes)} interleaved, with the kernel alone and a one-step run")
    raw = repeat(timers, config.repeats)
    samples = {
        key: _us_per_step(values, int(key.split()[-1]) if key[-1].isdigit() else mid) for key, values in raw.items()
    }
    samples["one step"] = [s * 1e6 for s in raw["one step"]]
    per_step = {n: median(samples[f"flowkernel {n}"]) for n in sizes}
    rows: list[Row] = []
    for n in sizes:
        fk, bare = per_step[n], median(samples[f"bare {n}"])
        overhead = fk - bare
        rows.append(
            Row(
                f"chain n={n:,} (sync, mc=1)",
                fk,
                bare,
                "µs/step",
                fk / bare,
                f"overhead {overhead:.2f} µs/step",
                f"overhead ≤ {OVERHEAD_TARGET_US:g} µs/step",
                overhead <= OVERHEAD_TARGET_US,
                samples={"flowkernel": samples[f"flowkernel {n}"], "bare": samples[f"bare {n}"]},
            )
        )
    high, low = max(per_step.values()), min(per_step.values())
    spread = high / low
    one = median(samples["one step"])
    fixed = one - per_step[mid]
    rows.append(
        Row(
            f"chain per-step flatness n={sizes[0]:,}..{sizes[-1]:,}",
            high,
            low,
            "µs/step",
            spread,
            f"max/min {spread:.2f}x",
            f"≤ {FLATNESS_TARGET:g}x",
            spread <= FLATNESS_TARGET,
            note="per-step µs by n: " + ", ".join(f"{n:,}: {per_step[n]:.2f}" for n in sizes),
        )
    )
    bare_mid = median(samples[f"bare {mid}"])
    kernel = median(samples["kernel"])
    rows += [
        Row(
            f"chain n={mid:,} kernel alone (minimal driver)",
            kernel,
            bare_mid,
            "µs/step",
            kernel / bare_mid,
            f"overhead {kernel - bare_mid:.2f} µs/step",
            "reported",
            None,
            note=(
                "run_flow driven by hand, tools called inline, no session/backend/clock: the floor under any "
                f"driver; the sync driver adds {per_step[mid] - kernel:.2f} µs/step to it"
            ),
            samples={"kernel": samples["kernel"], "bare": samples[f"bare {mid}"]},
        ),
        Row(
            "chain one-step run (fixed cost)",
            one,
            None,
            "µs/run",
            None,
            f"≈ {fixed:.1f} µs per run beyond the step",
            "reported",
            None,
            note=(
                f"a 1-step flow, less one step's cost at n={mid:,} ({per_step[mid]:.2f} µs): the per-run cost "
                "(run id, session, RunState, result) that small flows spread over their steps"
            ),
            samples={"one step": samples["one step"]},
        ),
    ]
    return rows


def _validated_rows(sizes: tuple[int, ...], config: Config) -> list[Row]:
    driver = SyncDriver()
    timers: dict[str, Timer] = {}
    for n in sizes:
        flow = build_chain(n, INC_VALIDATED, "x")
        _check(flow, driver, n)
        timers[f"flowkernel {n}"] = _auto_timer(partial(run_chain, driver, flow), config)
        timers[f"bare {n}"] = _auto_timer(partial(bare_validated_chain, n), config)
    log(f"  validated chain n={', '.join(f'{n:,}' for n in sizes)} interleaved")
    samples = {
        key: _us_per_step(values, int(key.split()[-1])) for key, values in repeat(timers, config.repeats).items()
    }
    rows: list[Row] = []
    for n in sizes:
        fk, bare = median(samples[f"flowkernel {n}"]), median(samples[f"bare {n}"])
        rows.append(
            Row(
                f"chain+pydantic n={n:,} (sync, mc=1)",
                fk,
                bare,
                "µs/step",
                fk / bare,
                f"ratio {fk / bare:.2f}x",
                f"≤ {PYDANTIC_TARGET:g}x",
                fk / bare <= PYDANTIC_TARGET,
                note="" if n != sizes[-1] else VALIDATED_NOTE,
                samples={"flowkernel": samples[f"flowkernel {n}"], "bare": samples[f"bare {n}"]},
            )
        )
    return rows


def _policy_rows(n: int, config: Config) -> list[Row]:
    """A chain whose steps carry retry and error policies that never fire, against the plain chain."""
    plain = build_chain(n)
    steps = [s.model_copy(update={"tool": INC_WITH_RETRY, "on_error": "continue"}) for s in plain.steps]
    with_policies = Flow(name=f"chain-policies-{n}", steps=steps)
    row = _against_plain(n, config, with_policies, f"chain n={n:,} with retry + error policies (not firing)")
    ratio = row.measured / (row.baseline or 1.0)
    return [
        replace(
            row,
            judged=f"ratio {ratio:.2f}x",
            target=f"≤ {POLICY_TARGET:g}x",
            met=ratio <= POLICY_TARGET,
            note="RetryPolicy(max_attempts=5, jitter=0.2) on the tool, on_error='continue' on every step; "
            "baseline: the same chain without them",
        )
    ]


def _annotation_rows(n: int, config: Config) -> list[Row]:
    """The chain of ``inc(x: int) -> int`` with its annotations validated, against the same chain without."""
    row = _against_plain(n, config, build_chain(n, INC_ANNOTATED), f"chain n={n:,} with annotations validated")
    added = row.measured - (row.baseline or 0.0)
    return [
        replace(
            row,
            judged=f"+{added:.2f} µs/step",
            note="inc(x: int) -> int, validated in and out (the default); baseline: validate=False",
        )
    ]


def _against_plain(n: int, config: Config, flow: Flow, name: str) -> Row:
    """``flow`` (a chain of ``n`` steps) against the plain chain, interleaved, as an informational row."""
    driver = SyncDriver()
    plain = build_chain(n)
    _check(flow, driver, n)
    timers = {
        "measured": _auto_timer(partial(run_chain, driver, flow), config),
        "plain": _auto_timer(partial(run_chain, driver, plain), config),
    }
    log(f"  {name} vs the plain chain, interleaved")
    samples = {key: _us_per_step(values, n) for key, values in repeat(timers, config.repeats).items()}
    measured, baseline = median(samples["measured"]), median(samples["plain"])
    return Row(name, measured, baseline, "µs/step", measured / baseline, "", "reported", None, samples=samples)


def _gc_rows(flow: Flow, n: int, config: Config) -> list[Row]:
    driver = SyncDriver()
    timer = timed(partial(run_chain, driver, flow))
    log(f"  chain n={n:,}: gc enabled / disabled / frozen, interleaved")
    gc_log: dict[str, list[GcActivity]] = {}
    timers = {"enabled": timer, "disabled": gc_disabled(timer), "frozen": gc_frozen(timer)}
    samples = {key: _us_per_step(values, n) for key, values in repeat(timers, config.repeats, gc_log=gc_log).items()}
    gc_ms = {f"{key}_gc_ms": [a.total * 1e3 for a in log] for key, log in gc_log.items()}
    on, off, frozen = (median(samples[key]) for key in ("enabled", "disabled", "frozen"))
    # The collector's own time inside each enabled run (gc.callbacks), as a share of that run: steadier
    # than the difference of two noisy medians.
    share = median([a.total / (t * n / 1e6) for a, t in zip(gc_log["enabled"], samples["enabled"], strict=True)])
    return [
        Row(
            f"chain n={n:,} gc enabled vs disabled",
            on,
            off,
            "µs/step",
            on / off,
            f"GC {share:.0%} of run time (on vs off: {(on - off) / on:+.0%})",
            "reported",
            None,
            note=f"{describe_gc(gc_log['enabled'])}; baseline: the same run under gc.disable(), interleaved",
            samples={"enabled": samples["enabled"], "disabled": samples["disabled"], **gc_ms},
        ),
        Row(
            f"chain n={n:,} gc.freeze() after build",
            frozen,
            off,
            "µs/step",
            frozen / off,
            f"frozen vs off: {(frozen - off) / frozen:+.0%}",
            "reported",
            None,
            note="gc.freeze() before each run puts the flow out of the collector's reach; "
            + describe_gc(gc_log["frozen"]),
            samples={"frozen": samples["frozen"], "disabled": samples["disabled"]},
        ),
    ]


# ---- memory, in a fresh process so the RSS high-water mark means something ---------------------------


def peak_rss_bytes() -> int:
    """This process's peak resident set size.

    ``VmHWM`` from ``/proc/self/status`` where there is one: ``resource.getrusage``'s ``ru_maxrss`` is
    carried over ``execve`` from the process that spawned us, so in a child of a big parent it starts at
    the parent's peak and a delta reads 0. Elsewhere ``ru_maxrss`` (KiB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024


def memory_child(n: int) -> dict[str, float]:
    """Memory of one n-step run, in this (fresh) process: call through ``--memory-child``."""
    driver = SyncDriver()
    run_chain(driver, build_chain(10))  # warm up imports and caches
    gc.collect()
    rss_start = peak_rss_bytes()
    flow = build_chain(n)
    gc.collect()
    rss_built = peak_rss_bytes()
    result = run_chain(driver, flow)
    rss_run = peak_rss_bytes()
    del result
    gc.collect()
    tracemalloc.start()
    result = run_chain(driver, flow)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return {
        "n": n,
        "tracemalloc_peak": peak,
        "tracemalloc_retained": current,
        "rss_flow": rss_built - rss_start,
        "rss_run": rss_run - rss_built,
        "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def _memory_rows(n: int) -> list[Row]:
    log(f"  chain n={n:,}: memory (subprocess)")
    script = Path(__file__).resolve()
    out = subprocess.run(
        [sys.executable, str(script), "--memory-child", str(n)], check=True, capture_output=True, text=True
    ).stdout
    mem = json.loads(out)
    return [
        Row(
            f"chain n={n:,} tracemalloc peak",
            mem["tracemalloc_peak"] / n,
            None,
            "B/step",
            None,
            f"{mem['tracemalloc_peak'] / 2**20:.1f} MiB total",
            "reported",
            None,
            note=(
                f"Python allocations during the run; {mem['tracemalloc_retained'] / n:.0f} B/step still held "
                "at the end (the ExecutionResult); the flow itself is built before tracing starts"
            ),
        ),
        Row(
            f"chain n={n:,} peak RSS delta",
            mem["rss_run"] / n,
            None,
            "B/step",
            None,
            f"{mem['rss_run'] / 2**20:.1f} MiB total",
            "reported",
            None,
            note=(
                f"peak-RSS (VmHWM) growth during the run in a fresh process; building the flow took "
                f"{mem['rss_flow'] / n:.0f} B/step ({mem['rss_flow'] / 2**20:.1f} MiB)"
            ),
        ),
    ]


# ---- entry point --------------------------------------------------------------------------------------


def run(config: Config) -> list[Row]:
    sizes = (10, 100, 1_000) if config.quick else (10, 1_000, 100_000)
    log("chain: building flows")
    started = time.perf_counter()
    build_rows, flows = _build_rows(sizes, config)
    run_rows = _run_rows(flows, config)
    largest = sizes[-1]
    gc_rows = _gc_rows(flows[largest], largest, config)
    flows.clear()
    gc.collect()
    policy_rows = _policy_rows(sizes[1], config) + _annotation_rows(sizes[1], config)
    rows = run_rows + policy_rows + _validated_rows(sizes, config) + gc_rows + build_rows + _memory_rows(largest)
    log(f"chain: done in {time.perf_counter() - started:.0f} s")
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--memory-child":
        print(json.dumps(memory_child(int(sys.argv[2]))))
    else:
        sys.exit("usage: bench_chain.py --memory-child N   (run the benchmarks with benchmarks/run.py)")
