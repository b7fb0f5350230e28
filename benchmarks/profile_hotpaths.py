"""Profile the benchmarked hot paths with cProfile, to name where the time goes.

    python benchmarks/profile_hotpaths.py chain            # 1,000-step inc chain, sync driver, mc=1
    python benchmarks/profile_hotpaths.py validated        # the same with pydantic input/output models
    python benchmarks/profile_hotpaths.py startup          # one-step flows: the fixed cost of a run
    python benchmarks/profile_hotpaths.py fanout-asyncio   # 10,000 x 10 ms sleeps on the asyncio driver
    python benchmarks/profile_hotpaths.py fanout-trio      # the same on trio

cProfile inflates the cost of every Python call, so read the shares, not the absolute times; the
benchmarks themselves (``run.py``) give the real figures.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_chain import INC_VALIDATED, build_chain, run_chain
from bench_fanout import build_fanout, nap_asyncio, nap_trio

from flowkernel import Flow
from flowkernel_asyncio import AsyncioDriver
from flowkernel_sync import SyncDriver
from flowkernel_trio import TrioDriver


def _repeat(fn: Callable[[], object], times: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(times):
            fn()

    return run


def _asyncio_fanout(flow: Flow) -> None:
    asyncio.run(AsyncioDriver().run(flow))


def _trio_fanout(flow: Flow) -> None:
    trio.run(partial(TrioDriver().run, flow))


def workload(name: str) -> Callable[[], None]:
    driver = SyncDriver()
    if name == "chain":
        return _repeat(partial(run_chain, driver, build_chain(1_000)), 50)
    if name == "validated":
        return _repeat(partial(run_chain, driver, build_chain(1_000, INC_VALIDATED, "x")), 20)
    if name == "startup":
        return _repeat(partial(run_chain, driver, build_chain(1)), 20_000)
    if name == "fanout-asyncio":
        return _repeat(partial(_asyncio_fanout, build_fanout(10_000, nap_asyncio, "asyncio")), 3)
    if name == "fanout-trio":
        return _repeat(partial(_trio_fanout, build_fanout(10_000, nap_trio, "trio")), 3)
    raise SystemExit(f"unknown workload {name!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=["chain", "validated", "startup", "fanout-asyncio", "fanout-trio"])
    parser.add_argument("--top", type=int, default=25, help="how many functions to list")
    parser.add_argument("--sort", default="tottime", help="pstats sort key (tottime, cumulative, ...)")
    parser.add_argument("--gc", action="store_true", help="leave the garbage collector on while profiling")
    args = parser.parse_args()
    run = workload(args.workload)
    run()  # warm up
    gc.collect()
    if not args.gc:
        gc.disable()  # otherwise collections are charged to whichever function happened to allocate
    profiler = cProfile.Profile()
    profiler.runcall(run)
    gc.enable()
    pstats.Stats(profiler).strip_dirs().sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
