"""Benchmark 8: what watching a run costs per step, and the plain chain against an older revision.

A chain of n trivial steps (``inc``, each step feeding on the previous one) on the sync driver at
``max_concurrency=1`` (tools called inline), in four variants:

* ``plain``: nobody listening, no ``on_event`` and no middleware (the kernel then builds no events);
* ``events``: ``on_event`` set to a no-op listener (every event built by the kernel, stamped by the host);
* ``middleware``: ``middleware=[passthrough]``, ``def passthrough(call): return (yield call)``;
* ``both``: the no-op listener and the pass-through middleware.

Each variant runs in **its own clean process** (``--child``), one process per variant per round, the
variants' order rotated from round to round; within a process the chain is sampled ``repeats`` times
(``gc.collect()`` before each sample) and the process reports its median. Figures are medians over the
rounds, spreads the lowest and highest process median; the added cost of a variant over ``plain`` is
taken round by round (each round's processes ran side by side) and its median reported.

With ``--against REV`` (``run.py --against REV``), REV is checked out in a temporary git worktree and one
more process per round runs the plain chain on *that* code: its ``PYTHONPATH`` puts the worktree's
``src/`` and ``drivers/*/src`` first, as every child's puts this tree's (checked in the child: it reports
where ``flowkernel`` was imported from). The old and new plain processes run next to each other, old
first in even rounds and new first in odd ones; the ratio new/old is taken per round. The worktree is
removed at the end.

    python benchmarks/bench_world.py --child VARIANT N REPEATS MIN_SAMPLE_TIME   # one process's samples as JSON
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _harness import REPO, Config, Row, calibrate, child_main, in_clean_process, log, median, repeat, timed

NAME = "world"

WATCHED = ("events", "middleware", "both")
VARIANTS = ("plain", *WATCHED)
AGAINST_TARGET = 1.05
"""The plain chain on this tree against the older revision: new/old within 5 %."""
LABELS = {
    "plain": "plain chain, nobody listening",
    "events": "on_event no-op listener",
    "middleware": "one pass-through middleware",
    "both": "on_event no-op + one pass-through middleware",
}


# ---- the child: one variant, one clean process ---------------------------------------------------------
# Only names that every revision of flowkernel has are used here, so the same code times the old tree.


def inc(x: int) -> int:
    return x + 1


def _ignore(event: object) -> None:
    return None


def passthrough(call: Any) -> Generator[Any, Any, Any]:
    return (yield call)


def _settings(variant: str) -> dict[str, Any]:
    return {
        "plain": {},
        "events": {"on_event": _ignore},
        "middleware": {"middleware": [passthrough]},
        "both": {"on_event": _ignore, "middleware": [passthrough]},
    }[variant]


def child(variant: str, n: int, repeats: int, min_sample_time: float) -> dict[str, Any]:
    """µs/step samples of one variant in this (fresh) process, and where flowkernel came from."""
    import flowkernel
    import flowkernel_sync
    from flowkernel import Flow, Input, Ref, Step, tool
    from flowkernel_sync import SyncDriver

    step_tool = tool(validate=False)(inc)
    steps = [Step(id="s0", tool=step_tool, arguments={"x": Input("x")})]
    steps += [Step(id=f"s{i}", tool=step_tool, arguments={"x": Ref(f"s{i - 1}")}) for i in range(1, n)]
    flow = Flow(name=f"chain-{n}", steps=steps)
    driver = SyncDriver()
    settings = _settings(variant)

    def run() -> Any:
        return driver.run(flow, {"x": 0}, max_concurrency=1, **settings)

    result = run()
    if result.status != "succeeded" or result.outputs[f"s{n - 1}"] != n:
        raise AssertionError(f"chain of {n} ({variant}) ended {result.status}")
    samples = repeat({variant: timed(run, calibrate(run, min_sample_time))}, repeats)[variant]
    return {
        "samples": [s / n * 1e6 for s in samples],
        "flowkernel": flowkernel.__file__,
        "flowkernel_sync": flowkernel_sync.__file__,
    }


# ---- the parent ------------------------------------------------------------------------------------------


def _spawn(root: Path, variant: str, n: int, config: Config) -> dict[str, Any]:
    modules = ("flowkernel", "flowkernel_sync")
    args = (variant, n, config.repeats, config.min_sample_time)
    return in_clean_process(__file__, *args, root=root, check_modules=modules)


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True).stdout.strip()


@contextmanager
def worktree(rev: str) -> Iterator[tuple[Path, str]]:
    """A detached worktree of ``rev`` in a temporary directory (and its short hash), removed afterwards."""
    short = _git("rev-parse", "--short", f"{rev}^{{commit}}")
    parent = Path(tempfile.mkdtemp(prefix="fk-baseline-"))
    path = parent / "tree"
    _git("worktree", "add", "--detach", str(path), short)
    try:
        yield path, short
    finally:
        _git("worktree", "remove", "--force", str(path))
        shutil.rmtree(parent, ignore_errors=True)


def _order(round_: int, against: bool) -> list[str]:
    """This round's processes: the variants rotated; the old tree's next to ``plain``, alternately first."""
    shift = round_ % len(VARIANTS)
    order = list(VARIANTS[shift:] + VARIANTS[:shift])
    if against:
        at = order.index("plain")
        order.insert(at if round_ % 2 == 0 else at + 1, "old")
    return order


def _spread(values: Sequence[float], digits: int = 2) -> str:
    return f"{min(values):.{digits}f}..{max(values):.{digits}f}"


def _measure(n: int, rounds: int, config: Config, old_root: Path | None) -> dict[str, list[dict[str, Any]]]:
    reports: dict[str, list[dict[str, Any]]] = {name: [] for name in (*VARIANTS, *(["old"] if old_root else []))}
    for round_ in range(rounds):
        order = _order(round_, old_root is not None)
        log(f"  world n={n:,} round {round_ + 1}/{rounds}: {', '.join(order)}")
        for name in order:
            if name == "old":
                assert old_root is not None
                reports[name].append(_spawn(old_root, "plain", n, config))
            else:
                reports[name].append(_spawn(REPO, name, n, config))
    return reports


def _rows(n: int, reports: dict[str, list[dict[str, Any]]], against: str | None) -> list[Row]:
    per_process = {name: [median(r["samples"]) for r in runs] for name, runs in reports.items()}
    raw = {f"{name}_samples": [s for r in runs for s in r["samples"]] for name, runs in reports.items()}
    plain = per_process["plain"]
    plain_median = median(plain)
    rounds = len(plain)
    rows = [
        Row(
            f"world n={n:,} plain chain (sync, mc=1)",
            plain_median,
            None,
            "µs/step",
            None,
            f"spread {_spread(plain)} µs/step over {rounds} processes",
            "reported",
            None,
            note="no on_event, no middleware: the kernel builds no events; each process a fresh interpreter",
            samples={"plain": plain, "plain_samples": raw["plain_samples"]},
        )
    ]
    for name in WATCHED:
        values = per_process[name]
        added = [v - p for v, p in zip(values, plain, strict=True)]
        measured = median(values)
        rows.append(
            Row(
                f"world n={n:,} {LABELS[name]} (sync, mc=1)",
                measured,
                plain_median,
                "µs/step",
                measured / plain_median,
                f"{median(added):+.2f} µs/step (per round {_spread(added)}); spread {_spread(values)}",
                "reported",
                None,
                note=(
                    "added cost: the variant's process median less the plain process median of the same round, "
                    "median over rounds"
                    if name == WATCHED[-1]
                    else ""
                ),
                samples={name: values, "plain": plain, "added": added, f"{name}_samples": raw[f"{name}_samples"]},
            )
        )
    if against is not None:
        old = per_process["old"]
        old_median = median(old)
        ratios = [new / was for new, was in zip(plain, old, strict=True)]
        paired = median(ratios)
        best = min(r for run in reports["plain"] for r in run["samples"])
        best_old = min(r for run in reports["old"] for r in run["samples"])
        where = reports["old"][0]["flowkernel"]
        rows.append(
            Row(
                f"world n={n:,} plain chain, this tree vs {against} (sync, mc=1)",
                plain_median,
                old_median,
                "µs/step",
                plain_median / old_median,
                f"new/old per round {paired:.3f}x (spread {_spread(ratios, 3)}); old spread {_spread(old)}; "
                f"fastest samples {best:.2f} vs {best_old:.2f} ({best / best_old:.3f}x)",
                f"≤ {AGAINST_TARGET:g}x",
                paired <= AGAINST_TARGET,
                note=(
                    f"baseline: the same plain chain on {against} (a git worktree, flowkernel from {where}), "
                    "old and new processes side by side in every round, alternately first; judged on the "
                    "median of the per-round ratios"
                    " (the fastest samples, least disturbed by other processes, for comparison)"
                ),
                samples={"new": plain, "old": old, "ratio": ratios, "old_samples": raw["old_samples"]},
            )
        )
    return rows


def run(config: Config) -> list[Row]:
    n = 100 if config.quick else 1_000
    rounds = config.repeats
    started = time.perf_counter()
    against = config.against
    log(f"world: chain n={n:,}, {len(VARIANTS)} variants, each in its own process, {rounds} rounds"
        + (f", against {against}" if against else ""))  # fmt: skip
    if against:
        with worktree(against) as (root, short):
            log(f"  world: {against} ({short}) checked out at {root}")
            rows = _rows(n, _measure(n, rounds, config, root), short)
    else:
        rows = _rows(n, _measure(n, rounds, config, None), None)
    log(f"world: done in {time.perf_counter() - started:.0f} s")
    return rows


if __name__ == "__main__":
    child_main(child, str, int, int, float, usage="VARIANT N REPEATS MIN_SAMPLE_TIME")
