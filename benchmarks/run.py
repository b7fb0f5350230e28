"""Run the flowkernel benchmarks and print one table; also write it as JSON.

    python benchmarks/run.py                 # the full suite (a few minutes on 2 cores)
    python benchmarks/run.py --quick         # smoke mode: tiny sizes, 1-2 repeats, a few seconds
    python benchmarks/run.py --only chain    # one benchmark (repeat --only for several)
    python benchmarks/run.py --only journal  # the journal's cost per step (about 2.5 minutes)
    python benchmarks/run.py --only otel     # OpenTelemetry tracing's cost per step
    python benchmarks/run.py --only mcp_serve   # a served flow's MCP round trip vs a plain tool's
    python benchmarks/run.py --only startup  # import flowkernel and flowkernel run, fresh processes (~30 s)
    python benchmarks/run.py --only map      # a map step's cost per element against a chain step
    python benchmarks/run.py --only sync_default   # the sync driver at default settings vs inline (~1 minute)
    python benchmarks/run.py --only world --against b363cf6   # events/middleware per step; plain chain vs a revision

Every figure is a median over repeated samples; every ratio compares against a baseline measured in the
same run. Results go to stdout as a table and to ``benchmarks/results/latest.json`` (or ``--json PATH``).
The exit status is 0 even when targets are missed, unless ``--strict`` is given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # importable as a module too (a test may import it)
    sys.path.insert(0, str(HERE))

import bench_async_chain  # noqa: E402
import bench_chain  # noqa: E402
import bench_critical_path  # noqa: E402
import bench_dask  # noqa: E402
import bench_fanout  # noqa: E402
import bench_journal  # noqa: E402
import bench_many_runs  # noqa: E402
import bench_map  # noqa: E402
import bench_mcp  # noqa: E402
import bench_mcp_serve  # noqa: E402
import bench_otel  # noqa: E402
import bench_peer  # noqa: E402
import bench_startup  # noqa: E402
import bench_sync_default  # noqa: E402
import bench_world  # noqa: E402
from _harness import Config, Row, format_table, log  # noqa: E402

BENCHMARKS: dict[str, Callable[[Config], list[Row]]] = {
    bench_chain.NAME: bench_chain.run,
    bench_fanout.NAME: bench_fanout.run,
    bench_critical_path.NAME: bench_critical_path.run,
    bench_dask.NAME: bench_dask.run,
    bench_many_runs.NAME: bench_many_runs.run,
    bench_journal.NAME: bench_journal.run,
    bench_otel.NAME: bench_otel.run,
    bench_world.NAME: bench_world.run,
    bench_mcp.NAME: bench_mcp.run,
    bench_mcp_serve.NAME: bench_mcp_serve.run,
    bench_startup.NAME: bench_startup.run,
    bench_map.NAME: bench_map.run,
    bench_sync_default.NAME: bench_sync_default.run,
    bench_async_chain.NAME: bench_async_chain.run,
    bench_peer.NAME: bench_peer.run,
}
DEFAULT_JSON = HERE / "results" / "latest.json"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the flowkernel benchmarks.")
    parser.add_argument("--quick", action="store_true", help="smoke mode: tiny sizes, 1-2 repeats")
    parser.add_argument(
        "--only", action="append", choices=sorted(BENCHMARKS), metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=None, help="samples per measurement (default 7, quick 2)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write JSON (default {DEFAULT_JSON})")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument(
        "--against", metavar="REV", default=None,
        help="world: also time the plain chain on git revision REV (a temporary worktree), interleaved",
    )  # fmt: skip
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target is not met")
    return parser.parse_args(argv)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def environment() -> dict[str, Any]:
    status = _git("status", "--porcelain", "--", "../src", "../drivers")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = Config.make(quick=args.quick, repeats=args.repeats, against=args.against)
    names = args.only or list(BENCHMARKS)
    env = environment()
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    started = time.perf_counter()
    rows: list[Row] = []
    for name in names:
        rows += BENCHMARKS[name](config)
    duration = time.perf_counter() - started

    mode = "quick (smoke: sizes too small for the targets to mean anything)" if config.quick else "full"
    print(f"flowkernel benchmarks: {mode}; {config.repeats} repeats, medians; Python {env['python']}, "
          f"{env['cpus']} CPUs, load {env['load_average_at_start'][0]:.2f}; {duration:.0f} s")  # fmt: skip
    print()
    print(format_table(rows, markdown=args.markdown))
    judged = [row for row in rows if row.met is not None]
    met = sum(1 for row in judged if row.met)
    print()
    print(f"targets met: {met} of {len(judged)}")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "mode": "quick" if config.quick else "full",
        "repeats": config.repeats,
        "against": config.against,
        "benchmarks": names,
        "started": started_at,
        "duration_s": duration,
        "environment": env,
        "load_average_at_end": os.getloadavg(),
        "targets_met": met,
        "targets_judged": len(judged),
        "rows": [row.to_json() for row in rows],
    }
    args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log(f"wrote {args.json}")
    return 1 if args.strict and met < len(judged) else 0


if __name__ == "__main__":
    sys.exit(main())
