"""A run's timeline as a drawing: the layout of :mod:`.timeline` turned into shapes, classes and titles.

Each step is one ``<g class="step" data-step="PATH">`` holding its label, its attempts' bars, its waits
and failure marks, and (for a sub-flow or map step) a nested group of its own steps, so a step's inner
run is grouped under it in the SVG as on the screen. Every shape says what it is in its class
(``attempt failed retry critical``) and in a hover title.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model.flow import Flow
from ..result import ExecutionResult
from .critical import StepPath
from .svg import Drawing, Group, Line, Path, Rect, Shape, Text, render
from .timeline import (
    BAR_HEIGHT,
    LABEL_WIDTH,
    PLOT_WIDTH,
    ROW_HEIGHT,
    TOP,
    AttemptBar,
    Extent,
    GroupSpan,
    Row,
    TimelineLayout,
    Wait,
    format_duration,
    layout_timeline,
)

__all__ = ("STYLE", "draw_timeline", "timeline_svg")

NOTE_CHAR_WIDTH = 6.6
"""About the width of a character of a note (12 px italic), to cut notes at the picture's edge."""
INDENT = 14.0
"""Pixels a sub-flow's or map's rows are indented, per level."""

STYLE = """
text { font: 12px system-ui, -apple-system, "Segoe UI", Helvetica, Arial, "DejaVu Sans", sans-serif; fill: #1f2328; }
.title { font-size: 14px; font-weight: 600; }
.tick { font-size: 11px; fill: #656d76; }
.grid { stroke: #e5e7eb; }
.axis { stroke: #8c959f; }
.stripe { fill: #f6f8fa; }
.label.critical { font-weight: 700; fill: #9a3412; }
.note, .more { font-style: italic; fill: #656d76; }
.attempt.succeeded { fill: #2da44e; }
.attempt.failed { fill: #cf222e; }
.attempt.cancelled { fill: #8c959f; }
.attempt.retry { fill-opacity: 0.85; }
.attempt.critical { stroke: #f97316; stroke-width: 2.5; }
.span.critical { stroke: #f97316; stroke-width: 1.2; }
.attempt-number { font-size: 9px; fill: #ffffff; }
.wait { fill: #fff8c5; stroke: #bf8700; stroke-dasharray: 3 2; }
.failure-mark { stroke: #a40e26; stroke-width: 2; fill: none; }
.span.subflow { fill: #54aeff; }
.span.map { fill: #8250df; }
.row { fill: #ffffff; }
.attempt:hover, .wait:hover, .span:hover { stroke: #1f2328; stroke-width: 1.5; }
""".strip()


def timeline_svg(result: ExecutionResult, flow: Flow | None = None) -> str:
    """The timeline of ``result`` as an SVG document: a bar per attempt at its time (see :mod:`.timeline`).

    Pass the run's ``flow`` to find the critical path along its dependencies (otherwise they are guessed
    from the times).
    """
    return render(draw_timeline(layout_timeline(result, flow)))


def draw_timeline(layout: TimelineLayout) -> Drawing:
    """The shapes of ``layout``: title, axis, one group per step (nested as the runs are), legend."""
    children: dict[StepPath, list[tuple[int, Row]]] = {}
    for index, row in enumerate(layout.rows):
        children.setdefault(row.path[:-1], []).append((index, row))
    shapes: list[Shape] = [Text(8, 20, layout.title, "title"), *_axis(layout)]
    shapes.extend(_steps(children.get((), []), children, layout))
    shapes.append(Group(tuple(_legend(layout)), "legend"))
    return Drawing(
        width=layout.width,
        height=layout.height,
        title=layout.title,
        style=STYLE,
        shapes=tuple(shapes),
        css="flowkernel-timeline",
        data={
            "x0": f"{layout.x0:g}",
            "px-per-second": repr(layout.px_per_second),
            "seconds": repr(layout.seconds),
        },
    )


def _steps(
    rows: list[tuple[int, Row]], children: dict[StepPath, list[tuple[int, Row]]], layout: TimelineLayout
) -> Iterator[Group]:
    """One group per row of ``rows``, holding the groups of its own run's rows (``children``)."""
    for index, row in rows:
        own = list(_row_shapes(row, index, layout))
        inner = tuple(_steps(children.get(row.path, []), children, layout))
        if inner:
            own.append(Group(inner, "children"))
        group = f"group {row.group}" if row.group else ""
        css = " ".join(filter(None, ("step", row.status, group, "critical" if row.critical else "")))
        yield Group(tuple(own), css, data={"step": "/".join(row.path)})


def _row_shapes(row: Row, index: int, layout: TimelineLayout) -> Iterator[Shape]:
    yield Rect(0, row.y, layout.width, ROW_HEIGHT, "stripe" if index % 2 else "row")
    if row.status == "more":
        yield Text(8 + INDENT * row.depth, row.y + 15, row.note, "more")
        return
    css = f"label{' critical' if row.critical else ''}"
    yield Text(8 + INDENT * row.depth, row.y + 15, _label(row.path[-1], row, layout), css, title=_row_title(row))
    ends = [LABEL_WIDTH]
    for span in (g for g in layout.groups if g.path == row.path):
        yield _span(span)
        ends.append(span.at.x + span.at.width)
    for wait in (w for w in layout.waits if w.path == row.path):
        yield _wait(wait)
    for bar in (b for b in layout.bars if b.path == row.path):
        yield from _bar(bar)
        ends.append(bar.at.x + bar.at.width + (12 if bar.status == "failed" else 0))
    if row.note:
        x = max(ends) + 6
        yield Text(x, row.y + 15, _fit(row.note, layout.width - x), "note", title=row.note)


def _fit(text: str, room: float) -> str:
    """``text``, cut with an ellipsis to about ``room`` pixels (the whole of it is in the hover title)."""
    fits = max(int(room / NOTE_CHAR_WIDTH), 1)
    return text if len(text) <= fits else text[: fits - 1] + "…"


def _label(name: str, row: Row, layout: TimelineLayout) -> str:
    span = next((g for g in layout.groups if g.path == row.path), None)
    if span is None:
        return name
    what = f"{span.steps} element{'s' * (span.steps != 1)}" if span.kind == "map" else "sub-flow"
    return f"{name} ({what})"


def _row_title(row: Row) -> str:
    text = f"{'/'.join(row.path)}: {row.status}"
    if row.critical:
        text += " (on the critical path)"
    return f"{text}\n{row.note}" if row.note else text


def _bar(bar: AttemptBar) -> Iterator[Shape]:
    top = bar.y + (ROW_HEIGHT - BAR_HEIGHT) / 2
    classes = ["attempt", str(bar.status)]
    if bar.attempt > 1:
        classes.append("retry")
    if bar.critical:
        classes.append("critical")
    title = (
        f"{'/'.join(bar.path)} · attempt {bar.attempt} · {bar.status} · {format_duration(bar.at.end - bar.at.start)}"
        f" (from {format_duration(bar.at.start)} to {format_duration(bar.at.end)})"
    )
    if bar.error:
        title += f"\n{bar.error}"
    if bar.retry_in is not None:
        title += f"\nretry in {format_duration(bar.retry_in)}"
    data = {**_place_data(bar.path, bar.at), "attempt": str(bar.attempt), "status": str(bar.status)}
    yield Rect(bar.at.x, top, bar.at.width, BAR_HEIGHT, " ".join(classes), title, data, rx=2)
    if bar.at.width >= 14:
        yield Text(bar.at.x + bar.at.width / 2, top + BAR_HEIGHT - 4, f"#{bar.attempt}", "attempt-number", "middle")
    if str(bar.status) == "failed":
        cx, cy, r = bar.at.x + bar.at.width + 6, bar.y + ROW_HEIGHT / 2, 4
        cross = f"M {cx - r:.2f} {cy - r:.2f} l {2 * r} {2 * r} M {cx - r:.2f} {cy + r:.2f} l {2 * r} {-2 * r}"
        mark = {"step": data["step"], "attempt": data["attempt"]}
        yield Path(cross, "failure-mark", title=bar.error or "failed", data=mark)


def _wait(wait: Wait) -> Rect:
    waited = wait.at.end - wait.at.start
    title = f"{'/'.join(wait.path)} · waited {format_duration(waited)} after attempt {wait.after_attempt}"
    if wait.retry_in is not None:
        title += f" (backoff {format_duration(wait.retry_in)})"
    data = {**_place_data(wait.path, wait.at), "after-attempt": str(wait.after_attempt)}
    return Rect(wait.at.x, wait.y + ROW_HEIGHT / 2 - 3, wait.at.width, 6, "wait backoff", title, data)


def _span(span: GroupSpan) -> Rect:
    what = f"map over {span.steps} elements" if span.kind == "map" else f"sub-flow of {span.steps} steps"
    title = f"{'/'.join(span.path)} · {what} · {format_duration(span.at.end - span.at.start)}"
    data = _place_data(span.path, span.at)
    css = f"span {span.kind}{' critical' if span.critical else ''}"
    return Rect(span.at.x, span.y + ROW_HEIGHT - 7, span.at.width, 5, css, title, data)


def _place_data(path: StepPath, at: Extent) -> dict[str, str]:
    """The ``data-*`` attributes of a shape on the time axis: its step, and its times (seconds since the start)."""
    return {"step": "/".join(path), "start": f"{at.start:.6f}", "end": f"{at.end:.6f}"}


def _axis(layout: TimelineLayout) -> Iterator[Shape]:
    bottom = TOP + ROW_HEIGHT * len(layout.rows)
    yield Line(LABEL_WIDTH, TOP - 4, LABEL_WIDTH + PLOT_WIDTH, TOP - 4, "axis")
    for x, label in layout.ticks:
        yield Line(x, TOP - 8, x, bottom, "grid")
        yield Text(x, TOP - 12, label, "tick", "middle")


def _legend(layout: TimelineLayout) -> Iterator[Shape]:
    y = TOP + ROW_HEIGHT * len(layout.rows) + 14
    entries = (
        ("attempt succeeded", "attempt succeeded"),
        ("attempt failed", "attempt failed"),
        ("cancelled", "attempt cancelled"),
        ("wait before a retry", "wait backoff"),
        ("sub-flow", "span subflow"),
        ("map elements", "span map"),
        ("critical path", "attempt succeeded critical"),
    )
    x = 8.0
    for text, css in entries:
        yield Rect(x, y, 14, 10, css)
        yield Text(x + 18, y + 9, text, "legend-text")
        x += 34 + 7 * len(text)
