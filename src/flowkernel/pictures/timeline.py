"""The layout of a run's timeline, as immutable data: a row per step, a bar per attempt on a time axis.

Positions come from the attempts' own timestamps (the driver's clock): x is the attempt's start since
the run's first start, the width its duration, both at one scale (``px_per_second``). The wait between
a failed attempt and the next (the backoff) is a :class:`Wait`; a sub-flow's or map step's run is a
:class:`GroupSpan` on the step's row with its steps (or elements) on indented rows below it. Drawing it
is :mod:`.timeline_draw`'s job; this module knows nothing of SVG.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from ..model.flow import ELEMENT, Flow
from ..result import AttemptRecord, AttemptStatus, ExecutionResult, StepRecord
from .critical import StepPath, critical_path, span_of

__all__ = (
    "MAX_ELEMENT_ROWS",
    "AttemptBar",
    "Extent",
    "GroupSpan",
    "Row",
    "TimelineLayout",
    "Wait",
    "format_duration",
    "layout_timeline",
)

LABEL_WIDTH = 230.0
"""Room on the left for the step labels."""
PLOT_WIDTH = 760.0
"""The time axis's length in pixels, whatever the run's duration."""
RIGHT_MARGIN = 30.0
TOP = 58.0
"""The title and the axis above the first row."""
ROW_HEIGHT = 22.0
BAR_HEIGHT = 14.0
LEGEND_HEIGHT = 40.0
MIN_BAR_WIDTH = 1.0
"""An attempt shorter than a pixel is drawn a pixel wide, so it can be seen (and hovered)."""
MAX_ELEMENT_ROWS = 40
"""A map step's elements drawn, at most; one more row says how many were left out."""

_ELEMENT_ID = re.compile(rf"{ELEMENT}\d+")


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the chart: a step (``path`` names it), a note in place of bars, or a "more elements" line."""

    path: StepPath
    depth: int
    y: float
    """The row's top."""
    status: str
    """The step's status, or ``"more"`` for the row that counts the elements left out."""
    note: str = ""
    critical: bool = False
    group: Literal["", "map", "subflow"] = ""
    """``map`` or ``subflow`` when rows of the step's own run follow."""


@dataclass(frozen=True, slots=True)
class Extent:
    """A stretch of time and where it is drawn: ``start`` and ``end`` in seconds since the run's first
    start, ``x`` and ``width`` in pixels (at least :data:`MIN_BAR_WIDTH` for an attempt)."""

    start: float
    end: float
    x: float
    width: float


@dataclass(frozen=True, slots=True)
class AttemptBar:
    """One attempt, on its step's row (``y``: the row's top)."""

    path: StepPath
    attempt: int
    status: AttemptStatus
    at: Extent
    y: float
    critical: bool
    error: str | None
    retry_in: float | None


@dataclass(frozen=True, slots=True)
class Wait:
    """The time between a failed attempt and the next one (or the backoff it announced, if none came)."""

    path: StepPath
    after_attempt: int
    at: Extent
    y: float
    retry_in: float | None


@dataclass(frozen=True, slots=True)
class GroupSpan:
    """The run of a sub-flow or map step, from its first start to its last end, on the step's own row."""

    path: StepPath
    kind: Literal["map", "subflow"]
    at: Extent
    y: float
    critical: bool
    steps: int
    """How many steps (or elements) the inner run has."""


@dataclass(frozen=True, slots=True)
class TimelineLayout:
    """The whole chart: its size and scale, the run it shows, and every row, bar, wait and group."""

    title: str
    width: float
    height: float
    x0: float
    """Where time zero (the run's first start) is."""
    px_per_second: float
    seconds: float
    """From the run's first start to its last end."""
    ticks: tuple[tuple[float, str], ...]
    """The axis's marks: x and label."""
    rows: tuple[Row, ...]
    bars: tuple[AttemptBar, ...]
    waits: tuple[Wait, ...]
    groups: tuple[GroupSpan, ...]


def layout_timeline(result: ExecutionResult, flow: Flow | None = None) -> TimelineLayout:
    """Lay out ``result``'s attempts; ``flow`` (the run's flow) gives the dependencies for the critical path."""
    spans = [s for record in result.steps if (s := span_of(record)) is not None]
    origin = min((start for start, _ in spans), default=0.0)
    seconds = max((end for _, end in spans), default=origin) - origin
    scale = PLOT_WIDTH / seconds if seconds > 0 else PLOT_WIDTH
    builder = _Builder(origin, scale, critical_path(result, flow))
    builder.add_run(result, flow, elements=False, prefix=(), depth=0)
    height = TOP + ROW_HEIGHT * len(builder.rows) + LEGEND_HEIGHT
    run = f"{result.flow_name} v{result.flow_version} · run {result.run_id}"
    title = f"{run} · {result.status} · {format_duration(seconds)}"
    return TimelineLayout(
        title=title,
        width=LABEL_WIDTH + PLOT_WIDTH + RIGHT_MARGIN,
        height=height,
        x0=LABEL_WIDTH,
        px_per_second=scale,
        seconds=seconds,
        ticks=_ticks(seconds, scale),
        rows=tuple(builder.rows),
        bars=tuple(builder.bars),
        waits=tuple(builder.waits),
        groups=tuple(builder.groups),
    )


class _Builder:
    """Collects the rows and shapes, top to bottom (mutable while it works; the layout it feeds is not)."""

    def __init__(self, origin: float, scale: float, critical: frozenset[StepPath]) -> None:
        self.origin = origin
        self.scale = scale
        self.critical = critical
        self.rows: list[Row] = []
        self.bars: list[AttemptBar] = []
        self.waits: list[Wait] = []
        self.groups: list[GroupSpan] = []

    def add_run(
        self, result: ExecutionResult, flow: Flow | None, *, elements: bool, prefix: StepPath, depth: int
    ) -> None:
        records = result.steps[:MAX_ELEMENT_ROWS] if elements else result.steps
        for record in records:
            self.add_step(record, _step_flow(flow, record.id, elements), (*prefix, record.id), depth)
        left_out = len(result.steps) - len(records)
        if left_out:
            note = f"… {left_out} more element{'s' * (left_out != 1)} not drawn"
            self.rows.append(Row((*prefix, "…"), depth, self._next_y(), "more", note))

    def add_step(self, record: StepRecord, step: _StepShape, path: StepPath, depth: int) -> None:
        y = self._next_y()
        critical = path in self.critical
        if record.subflow is None:
            self.rows.append(Row(path, depth, y, str(record.status), _note(record), critical))
            self._add_attempts(record.attempts, path, y, critical)
            return
        group: Literal["map", "subflow"] = "map" if step.is_map or _looks_like_elements(record.subflow) else "subflow"
        self.rows.append(Row(path, depth, y, str(record.status), _note(record), critical, group))
        self._add_attempts(record.attempts, path, y, critical)
        span = span_of(record)
        if span is not None:
            self.groups.append(GroupSpan(path, group, self._place(*span), y, critical, len(record.subflow.steps)))
        self.add_run(record.subflow, step.flow, elements=group == "map", prefix=path, depth=depth + 1)

    def _add_attempts(self, attempts: tuple[AttemptRecord, ...], path: StepPath, y: float, critical: bool) -> None:
        timed = [a for a in attempts if a.started is not None and a.finished is not None]
        for position, attempt in enumerate(timed):
            assert attempt.started is not None  # for the type checker, as the next
            assert attempt.finished is not None
            at = self._place(attempt.started, attempt.finished)
            error = f"{attempt.error.type}: {attempt.error.message}" if attempt.error is not None else None
            self.bars.append(
                AttemptBar(path, attempt.attempt, attempt.status, at, y, critical, error, attempt.retry_in)
            )
            following = timed[position + 1] if position + 1 < len(timed) else None
            if following is not None:
                wait_end = following.started  # the real wait: backoff, and a slot to run in
            elif attempt.retry_in is not None:
                wait_end = attempt.finished + attempt.retry_in  # the run stopped during the backoff
            else:
                continue
            assert wait_end is not None  # timed attempts only
            wait = self._place(attempt.finished, max(wait_end, attempt.finished), minimum=0.0)
            self.waits.append(Wait(path, attempt.attempt, wait, y, attempt.retry_in))

    def _place(self, start: float, end: float, *, minimum: float = MIN_BAR_WIDTH) -> Extent:
        """Where the clock times ``start`` to ``end`` are, in seconds since the run's start and in pixels."""
        x = LABEL_WIDTH + (start - self.origin) * self.scale
        return Extent(start - self.origin, end - self.origin, x, max((end - start) * self.scale, minimum))

    def _next_y(self) -> float:
        return TOP + ROW_HEIGHT * len(self.rows)


@dataclass(frozen=True, slots=True)
class _StepShape:
    """What the flow says of a step, when the flow is known: whether it maps, and the flow its run runs."""

    is_map: bool = False
    flow: Flow | None = None


def _step_flow(flow: Flow | None, step_id: str, elements: bool) -> _StepShape:
    """For an element of a map (``elements``), ``flow`` is the map step's sub-flow, if it has one."""
    if flow is None:
        return _StepShape()
    if elements:
        return _StepShape(flow=flow)
    step = next((s for s in flow.steps if s.id == step_id), None)
    if step is None:
        return _StepShape()
    return _StepShape(is_map=step.map is not None, flow=step.flow)


def _looks_like_elements(result: ExecutionResult) -> bool:
    """A run whose steps are all named ``item<k>``: a map step's elements (when the flow is not known)."""
    return bool(result.steps) and all(_ELEMENT_ID.fullmatch(record.id) for record in result.steps)


def _note(record: StepRecord) -> str:
    """What the row says beside its bars: why a step was skipped or cancelled, a tolerated failure."""
    parts = []
    if record.tolerated:
        parts.append("failed, tolerated")
    if record.fallback:
        parts.append("fallback used")
    if record.reason:
        parts.append(f"{record.status}: {record.reason}")
    elif not any(a.started is not None for a in record.attempts) and record.subflow is None:
        parts.append(str(record.status))
    return "; ".join(parts)


def _ticks(seconds: float, scale: float) -> tuple[tuple[float, str], ...]:
    """Marks at a round step (1, 2 or 5 times a power of ten), about eight along the axis."""
    if seconds <= 0:
        return ((LABEL_WIDTH, "0 s"),)
    rough = seconds / 8
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    count = int(seconds / step + 1e-9)
    return tuple((LABEL_WIDTH + k * step * scale, format_duration(k * step)) for k in range(count + 1))


def format_duration(seconds: float) -> str:
    """``0 s``, ``250 ms``, ``1.5 s``, ``2 min 5 s``: a human reading of a duration."""
    if seconds == 0:
        return "0 s"
    if seconds < 1:
        return f"{seconds * 1000:.4g} ms"
    if seconds < 120:
        return f"{seconds:.4g} s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)} min {rest:.0f} s"
