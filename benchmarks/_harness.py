"""Shared timing, statistics and reporting helpers for the flowkernel benchmarks.

Every figure is a median over repeated samples, and every ratio compares against a baseline measured in
the same run, interleaved with the measured code (A, B, A, B, ...) so that drift on a noisy shared
machine hits both sides alike. ``gc.collect()`` runs before every sample, outside the timed region.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = (
    "Config",
    "Row",
    "Timer",
    "REPO",
    "calibrate",
    "child_main",
    "in_clean_process",
    "source_paths",
    "GcActivity",
    "GcRecorder",
    "describe_gc",
    "format_table",
    "gc_disabled",
    "gc_frozen",
    "log",
    "median",
    "repeat",
    "timed",
)

Timer = Callable[[], float]
"""Takes one sample and returns its duration in seconds (per operation, if it loops)."""


@dataclass(frozen=True, slots=True)
class Config:
    """How hard to measure: ``quick`` is a smoke mode (tiny sizes, 1-2 repeats) that a test can run."""

    quick: bool = False
    repeats: int = 7
    min_sample_time: float = 0.05
    """Small cases loop until one sample takes at least this long (seconds), like ``timeit.autorange``."""
    against: str | None = None
    """A git revision to compare against, where a benchmark supports it (``bench_world``); none by default."""

    @classmethod
    def make(cls, *, quick: bool, repeats: int | None = None, against: str | None = None) -> Config:
        if quick:
            return cls(quick=True, repeats=repeats or 2, min_sample_time=0.002, against=against)
        return cls(quick=False, repeats=repeats or 7, min_sample_time=0.05, against=against)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the results table.

    ``measured`` and ``baseline`` are medians in ``unit``; ``ratio`` is measured / baseline. ``judged`` is
    the figure the target is checked against (an overhead, a ratio, a spread), written out; ``met`` is
    ``None`` for informational rows without a target.
    """

    name: str
    measured: float
    baseline: float | None
    unit: str
    ratio: float | None
    judged: str
    target: str
    met: bool | None
    note: str = ""
    samples: Mapping[str, Sequence[float]] = field(default_factory=dict)
    """Raw per-sample values (in ``unit``; keys ending ``_gc_ms``: milliseconds of garbage collection inside
    each sample), kept in the JSON so medians can be checked."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "measured": self.measured,
            "baseline": self.baseline,
            "unit": self.unit,
            "ratio": self.ratio,
            "judged": self.judged,
            "target": self.target,
            "met": self.met,
            "note": self.note,
            "samples": {key: list(values) for key, values in self.samples.items()},
        }


def per_round_ratio_row(
    name: str, measured: list[float], baseline: list[float], target: float, judged: str, note: str
) -> Row:
    """A row judged on the median of per-round ratios (``measured[i] / baseline[i]``, each pair measured in
    the same round), in µs/step, met when that median is at most ``target``."""
    ratios = [m / b for m, b in zip(measured, baseline, strict=True)]
    ratio = median(ratios)
    return Row(
        name, median(measured), median(baseline), "µs/step", ratio,
        f"{judged} {ratio:.2f}x per round ({min(ratios):.2f}..{max(ratios):.2f}); "
        f"spread {min(measured):.1f}..{max(measured):.1f} vs {min(baseline):.1f}..{max(baseline):.1f}",
        f"≤ {target:g}x", ratio <= target, note=note,
        samples={"measured": measured, "baseline": baseline, "ratio": ratios},
    )  # fmt: skip


def log(message: str) -> None:
    """Progress goes to stderr, so stdout carries only the results table."""
    print(message, file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def timed(fn: Callable[[], object], loops: int = 1) -> Timer:
    """A timer calling ``fn`` ``loops`` times per sample; it reports seconds per call."""

    def sample() -> float:
        counter = time.perf_counter
        start = counter()
        for _ in range(loops):
            fn()
        return (counter() - start) / loops

    return sample


def calibrate(fn: Callable[[], object], min_time: float) -> int:
    """How many calls of ``fn`` make one sample last at least ``min_time`` seconds (1, 2, 5, 10, ...)."""
    fn()  # warm up (imports, caches, first-call costs)
    loops = 1
    while True:
        for factor in (1, 2, 5):
            n = loops * factor
            start = time.perf_counter()
            for _ in range(n):
                fn()
            if time.perf_counter() - start >= min_time:
                return n
        loops *= 10


def repeat(
    timers: Mapping[str, Timer], repeats: int, *, gc_log: dict[str, list[GcActivity]] | None = None
) -> dict[str, list[float]]:
    """Take ``repeats`` samples of every timer, interleaved; a full collection runs before each sample.

    With ``gc_log``, the collections inside every sample (and the time they took) are recorded there too.
    """
    samples: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(repeats):
        for name, timer in timers.items():
            gc.collect()
            with GcRecorder() as recorder:
                samples[name].append(timer())
            if gc_log is not None:
                gc_log.setdefault(name, []).append(recorder.activity())
    return samples


def gc_disabled(timer: Timer) -> Timer:
    """The same timer with the cyclic garbage collector off during the sample."""

    def sample() -> float:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return timer()
        finally:
            if was_enabled:
                gc.enable()

    return sample


def gc_frozen(timer: Timer) -> Timer:
    """The same timer with everything alive before the sample (the flow, too) moved out of the collector's reach."""

    def sample() -> float:
        gc.freeze()
        try:
            return timer()
        finally:
            gc.unfreeze()

    return sample


@dataclass(frozen=True, slots=True)
class GcActivity:
    """Collections of each generation (0, 1, 2) during one sample, and the seconds they took."""

    counts: tuple[int, int, int]
    seconds: tuple[float, float, float]

    @property
    def total(self) -> float:
        return sum(self.seconds)


class GcRecorder:
    """Records every collection while active, through ``gc.callbacks`` (negligible overhead)."""

    def __init__(self) -> None:
        self._counts = [0, 0, 0]
        self._seconds = [0.0, 0.0, 0.0]
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            generation = info["generation"]
            self._counts[generation] += 1
            self._seconds[generation] += time.perf_counter() - self._started

    def __enter__(self) -> GcRecorder:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def activity(self) -> GcActivity:
        c, s = self._counts, self._seconds
        return GcActivity((c[0], c[1], c[2]), (s[0], s[1], s[2]))


def describe_gc(log: Sequence[GcActivity]) -> str:
    """A one-line summary of the collections in a list of samples: median time, how many full ones."""
    full = sorted(activity.counts[2] for activity in log)
    young = median([activity.counts[0] + activity.counts[1] for activity in log])
    per_full = [activity.seconds[2] / activity.counts[2] * 1e3 for activity in log if activity.counts[2]]
    each = f", {median(per_full):.0f} ms each" if per_full else ""
    return (
        f"GC {median([a.total * 1e3 for a in log]):.0f} ms/sample: {young:.0f} young collections, "
        f"{full[0]}-{full[-1]} full ones{each}"
    )


# ---- the table --------------------------------------------------------------------------------------


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _met(row: Row) -> str:
    if row.met is None:
        return "info"
    return "MET" if row.met else "NOT MET"


def table_cells(row: Row) -> list[str]:
    ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
    return [
        row.name,
        f"{_number(row.measured)} {row.unit}",
        "-" if row.baseline is None else f"{_number(row.baseline)} {row.unit}",
        ratio,
        row.judged,
        row.target,
        _met(row),
    ]


HEADERS = ("benchmark", "measured (median)", "baseline (median)", "ratio", "judged", "target", "met")


def format_table(rows: Sequence[Row], *, markdown: bool = False) -> str:
    """The rows as an aligned plain-text table (or a Markdown table), notes listed underneath."""
    body = [table_cells(row) for row in rows]
    if markdown:
        lines = ["| " + " | ".join(HEADERS) + " |", "|" + "|".join("---" for _ in HEADERS) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
    else:
        widths = [max(len(cells[i]) for cells in [list(HEADERS), *body]) for i in range(len(HEADERS))]
        sep = "  "
        lines = [sep.join(h.ljust(w) for h, w in zip(HEADERS, widths, strict=True))]
        lines.append(sep.join("-" * w for w in widths))
        lines += [sep.join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip() for cells in body]
    notes = [f"- {row.name}: {row.note}" for row in rows if row.note]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines)


# ---- clean processes --------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


def source_paths(root: Path = REPO) -> list[str]:
    """``src/`` and every driver's ``src/`` of a checkout: what its children import flowkernel from."""
    return [str(root / "src"), *sorted(str(p) for p in root.glob("drivers/*/src") if p.is_dir())]


def in_clean_process(
    script: str, *args: object, root: Path = REPO, check_modules: Sequence[str] = ("flowkernel",), timeout: float = 900
) -> dict[str, Any]:
    """Run ``script --child ARGS...`` in a fresh interpreter importing ``root``'s code; its JSON report.

    A baseline measured in its own process never walks (in its collections) nor shares caches with the
    heap of the measured code. Each module in ``check_modules`` must be reported (``report[module]`` =
    its ``__file__``) as coming from ``root``, so a stale install cannot be timed by mistake.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*source_paths(root), *filter(None, [env.get("PYTHONPATH")])])
    here = Path(script).resolve()
    done = subprocess.run(
        [sys.executable, str(here), "--child", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=here.parent,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{here.name} --child {' '.join(map(str, args))} exited {done.returncode}:\n{done.stderr}")
    report: dict[str, Any] = json.loads(done.stdout)
    for module in check_modules:
        if not Path(report[module]).resolve().is_relative_to(root.resolve()):
            raise AssertionError(f"child imported {module} from {report[module]}, not from {root}")
    return report


def child_main(child: Callable[..., dict[str, Any]], *types: Callable[[str], Any], usage: str) -> None:
    """The ``__main__`` of a benchmark with a ``--child`` mode: parse ``--child ARGS`` with ``types``,
    print ``child(*args)`` as JSON, with the file of every flowkernel module it imported (for the parent's
    check); anything else exits with ``usage``."""
    argv = sys.argv[1:]
    if len(argv) != len(types) + 1 or argv[0] != "--child":
        sys.exit(f"usage: {Path(sys.argv[0]).name} --child {usage}   (run benchmarks/run.py)")
    report = child(*(kind(value) for kind, value in zip(types, argv[1:], strict=True)))
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] == name and name.startswith("flowkernel") and getattr(module, "__file__", None):
            report.setdefault(name, module.__file__)
    print(json.dumps(report))
