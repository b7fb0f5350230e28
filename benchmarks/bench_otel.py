"""Benchmark 5: what OpenTelemetry tracing (``flowkernel.otel.Tracing``) costs per step.

A chain of n trivial steps (``bench_chain``'s ``inc`` chain) on the sync driver at ``max_concurrency=1``,
run interleaved (A, B, C, ...) in this process:

* ``plain``: no listener, no middleware (the kernel then builds no events at all);
* ``events``: a do-nothing ``on_event`` and a pass-through middleware, the floor under any listener
  (events built and delivered, every call through the middleware chain);
* ``no-op``: ``Tracing(trace.NoOpTracerProvider())``, the cost with tracing wired in but no SDK;
* ``sdk``: ``Tracing`` with an SDK ``TracerProvider`` and no span processor (real spans, exported
  nowhere), when ``opentelemetry-sdk`` is installed.

The plain baseline is also measured in a fresh process that never imports OpenTelemetry
(``--baseline-child N REPEATS`` prints its samples as JSON), to show that loading the extra changes
nothing for runs that do not use it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Generator
from functools import partial
from pathlib import Path
from typing import Any

from _harness import Config, Row, Timer, calibrate, log, median, repeat, timed
from bench_chain import build_chain, run_chain

from flowkernel import ExecutionResult, Flow
from flowkernel.events import Event
from flowkernel.protocol import Invoke
from flowkernel_sync import SyncDriver

NAME = "otel"

NOOP_TARGET_US = 15.0
"""Tracing with a no-op provider: at most this many µs per step over the plain chain."""


def _check(result: ExecutionResult, n: int) -> None:
    if result.status != "succeeded" or result.outputs[f"s{n - 1}"] != n:
        raise AssertionError(f"chain of {n} ended {result.status}")


def _ignore(event: Event) -> None:
    return None


def _through(call: Invoke) -> Generator[Invoke, Any, Any]:
    return (yield call)


def _run_with(driver: SyncDriver, flow: Flow, settings: dict[str, Any]) -> ExecutionResult:
    return driver.run(flow, {"x": 0}, max_concurrency=1, **settings)


def _auto_timer(fn: Callable[[], object], config: Config) -> Timer:
    return timed(fn, calibrate(fn, config.min_sample_time))


def _variants() -> dict[str, dict[str, Any]]:
    from opentelemetry import trace

    from flowkernel.otel import Tracing

    variants: dict[str, dict[str, Any]] = {
        "plain": {},
        "events": {"on_event": _ignore, "middleware": [_through]},
        "no-op": dict(Tracing(trace.NoOpTracerProvider()).settings()),
    }
    try:
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        log("  otel: opentelemetry-sdk is not installed: no 'sdk' row")
    else:
        variants["sdk"] = dict(Tracing(TracerProvider()).settings())
    return variants


def baseline_child(n: int, repeats: int, min_sample_time: float) -> dict[str, Any]:
    """The plain chain's µs/step samples in this (fresh) process, without OpenTelemetry loaded."""
    driver = SyncDriver()
    flow = build_chain(n)
    fn = partial(run_chain, driver, flow)
    _check(fn(), n)
    samples = repeat({"plain": timed(fn, calibrate(fn, min_sample_time))}, repeats)["plain"]
    return {"samples": [s / n * 1e6 for s in samples], "otel_loaded": "opentelemetry" in sys.modules}


def _baseline_in_a_fresh_process(n: int, config: Config) -> tuple[list[float], bool]:
    script = Path(__file__).resolve()
    out = subprocess.run(
        [sys.executable, str(script), "--baseline-child", str(n), str(config.repeats), str(config.min_sample_time)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    child = json.loads(out)
    return child["samples"], child["otel_loaded"]


def run(config: Config) -> list[Row]:
    n = 100 if config.quick else 1_000
    started = time.perf_counter()
    log(f"otel: chain n={n:,} in a fresh process without OpenTelemetry (baseline)")
    fresh, loaded = _baseline_in_a_fresh_process(n, config)
    driver = SyncDriver()
    flow = build_chain(n)
    variants = _variants()
    timers: dict[str, Timer] = {}
    for name, settings in variants.items():
        fn = partial(_run_with, driver, flow, settings)
        _check(fn(), n)
        timers[name] = _auto_timer(fn, config)
    log(f"  otel n={n:,}: {', '.join(variants)}, interleaved; {config.repeats} repeats")
    samples = {key: [s / n * 1e6 for s in values] for key, values in repeat(timers, config.repeats).items()}
    plain = median(samples["plain"])
    rows: list[Row] = []

    def spread(values: list[float]) -> str:
        return f"spread {min(values):.2f}-{max(values):.2f}"

    fresh_plain = median(fresh)
    rows.append(
        Row(
            f"otel n={n:,} plain chain, fresh process vs here",
            fresh_plain,
            plain,
            "µs/step",
            fresh_plain / plain,
            f"ratio {fresh_plain / plain:.2f}x ({spread(fresh)})",
            "reported",
            None,
            note=(
                "the same plain chain (no tracing) in a fresh process"
                + (" that never loaded OpenTelemetry" if not loaded else " (OpenTelemetry loaded there too)")
                + ": loading the extra costs untraced runs nothing"
            ),
            samples={"fresh": fresh, "plain": samples["plain"]},
        )
    )
    events = median(samples["events"])
    rows.append(
        Row(
            f"otel n={n:,} events + middleware, no tracing (sync, mc=1)",
            events,
            plain,
            "µs/step",
            events / plain,
            f"overhead {events - plain:.2f} µs/step ({spread(samples['events'])})",
            "reported",
            None,
            note="a do-nothing on_event and a pass-through middleware: the floor under any listener",
            samples={"events": samples["events"], "plain": samples["plain"]},
        )
    )
    noop = median(samples["no-op"])
    rows.append(
        Row(
            f"otel n={n:,} Tracing, no-op provider (sync, mc=1)",
            noop,
            plain,
            "µs/step",
            noop / plain,
            f"overhead {noop - plain:.2f} µs/step ({noop - events:.2f} over the floor)",
            f"overhead ≤ {NOOP_TARGET_US:g} µs/step",
            noop - plain <= NOOP_TARGET_US,
            note="Tracing(trace.NoOpTracerProvider()): on_event + middleware, non-recording spans; "
            "baseline: the plain chain, interleaved",
            samples={"no-op": samples["no-op"], "plain": samples["plain"]},
        )
    )
    if "sdk" in samples:
        sdk = median(samples["sdk"])
        rows.append(
            Row(
                f"otel n={n:,} Tracing, SDK provider without exporter (sync, mc=1)",
                sdk,
                plain,
                "µs/step",
                sdk / plain,
                f"overhead {sdk - plain:.2f} µs/step ({spread(samples['sdk'])})",
                "reported",
                None,
                note="opentelemetry-sdk TracerProvider() with no span processor: two recording spans per step "
                "(step, attempt), exported nowhere; an exporter adds its own cost",
                samples={"sdk": samples["sdk"], "plain": samples["plain"]},
            )
        )
    log(f"otel: done in {time.perf_counter() - started:.0f} s")
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--baseline-child":
        print(json.dumps(baseline_child(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))))
    else:
        sys.exit("usage: bench_otel.py --baseline-child N REPEATS MIN_SAMPLE_TIME   (run benchmarks/run.py)")
