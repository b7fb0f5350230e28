"""Showing an :class:`ExecutionResult` to a person (a rich table of steps, the run status, the outputs)
and a journal's runs (one line each).

Needs rich (the ``cli`` extra), so the commands import it when they print a table: one that prints JSON
never loads rich. Every value from the run, and every title, goes into ``Text`` objects, never markup, so a
tool's output like ``[red]`` or a run id like ``x[/b]`` is shown as it is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic_core import to_json
from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.highlighter import NullHighlighter, ReprHighlighter
from rich.table import Table
from rich.text import Text

from ..host.journal.base import RunSummary
from ..result import ErrorInfo, ExecutionResult, RunStatus, StepRecord, StepStatus, json_ready
from .summaries import INCOMPLETE, run_summary_dict

__all__ = (
    "DETAIL_WIDTH",
    "INCOMPLETE",
    "error_lines",
    "format_duration",
    "pretty_json",
    "render_result",
    "render_runs",
    "run_summary_dict",
    "served_from_cache",
    "step_detail",
    "step_duration",
    "summary_head",
)

DETAIL_WIDTH = 60
"""How many characters of a step's output, error or reason the table shows."""

_STATUS_STYLE = {
    StepStatus.SUCCEEDED: "green",
    StepStatus.FAILED: "bold red",
    StepStatus.SKIPPED: "yellow",
    StepStatus.CANCELLED: "magenta",
}
_RUN_STYLE = {
    RunStatus.SUCCEEDED: "bold green",
    RunStatus.FAILED: "bold red",
    RunStatus.CANCELLED: "bold magenta",
    RunStatus.TIMED_OUT: "bold magenta",
}
_SUMMARY_STYLE = {**{status.value: style for status, style in _RUN_STYLE.items()}, INCOMPLETE: "bold yellow"}


def step_duration(record: StepRecord) -> float | None:
    """Seconds from the first attempt's start to the last attempt's finish; ``None`` if it never ran."""
    if not record.attempts:
        return None
    started, finished = record.attempts[0].started, record.attempts[-1].finished
    if started is None or finished is None:
        return None
    return max(finished - started, 0.0)


def format_duration(seconds: float | None) -> str:
    """``0.8 ms``, ``12.3 ms``, ``1.25 s``; ``-`` for a step that never ran."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def _compact(value: Any) -> str:
    return to_json(json_ready(value)).decode() if not isinstance(value, str) else value


def _shorten(text: str, width: int = DETAIL_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def step_detail(record: StepRecord, width: int = DETAIL_WIDTH) -> str:
    """One short line: the output of a step that succeeded, the error of one that failed, else why not."""
    if record.status is StepStatus.FAILED and record.error is not None:
        return _shorten(f"{record.error.type}: {record.error.message}", width)
    if record.status is StepStatus.SUCCEEDED:
        return _shorten(_compact(record.output), width)
    if record.reason:
        return _shorten(record.reason, width)
    return "cancelled while running" if record.status is StepStatus.CANCELLED else ""


def served_from_cache(record: StepRecord) -> bool:
    """Whether the step's output came from a step cache: its last attempt's, or every call of its
    sub-flow or map elements."""
    if record.subflow is not None:
        return bool(record.subflow.steps) and all(served_from_cache(step) for step in record.subflow.steps)
    return bool(record.attempts) and record.attempts[-1].cached


def _title(title: str) -> Text:
    """A table's title as rich shows a title string (style ``table.title``), but read as text: a run id or a
    path with ``[/b]`` or ``:smile:`` in it is shown as it is, not read as markup (a closing tag that opens
    nothing raised ``MarkupError``) or an emoji code."""
    return Text(title, style="table.title")


def _table(result: ExecutionResult, width: int) -> Table:
    fixed = [
        (
            Text(record.id),
            Text(record.status.value, style=_STATUS_STYLE[record.status]),
            Text(str(len(record.attempts)) + (" cached" if served_from_cache(record) else "")),
            Text(format_duration(step_duration(record))),
        )
        for record in result.steps
    ]
    headers = (("step", "left"), ("status", "left"), ("attempts", "right"), ("duration", "right"))
    widths = [
        max([len(header), *(len(row[position]) for row in fixed)]) for position, (header, _) in enumerate(headers)
    ]
    # Every column but the last keeps its full width; the detail takes what is left of the line (3 per border).
    detail_width = min(DETAIL_WIDTH, max(12, width - sum(widths) - 3 * len(widths) - 4))
    table = Table(title=_title(f"{result.flow_name} v{result.flow_version}, run {result.run_id}"), title_justify="left")
    for (header, justify), column_width in zip(headers, widths, strict=True):
        table.add_column(Text(header), justify=justify, no_wrap=True, min_width=column_width)  # type: ignore[arg-type]
    table.add_column(Text("output / error / reason"), no_wrap=True)
    for record, row in zip(result.steps, fixed, strict=True):
        style = "red" if record.status is StepStatus.FAILED else ""
        table.add_row(*row, Text(step_detail(record, detail_width), style=style))
    return table


def error_lines(error: ErrorInfo, *, full_traceback: bool = False) -> list[str]:
    """What is shown under a failed step's error: its details, and its traceback (else only where it was raised:
    the innermost frame and the exception, unless ``full_traceback``)."""
    lines = [f"details: {_compact(error.details)}"] if error.details else []
    if error.traceback:
        frames = error.traceback.rstrip("\n").splitlines()
        if full_traceback:
            lines += ["traceback:", *frames]
        else:
            last = max((k for k, line in enumerate(frames) if line.startswith('  File "')), default=0)
            lines += ["raised at (--traceback shows all of it):", *frames[last:]]
    return lines


def render_result(
    result: ExecutionResult, console: Console, *, full_tracebacks: bool = False, table: bool = True
) -> None:
    """Print the step table, the run's status with a count per step status, errors in full (with details and
    where they were raised, or their whole traceback), and outputs. Without ``table``, a short summary
    (:func:`summary_head`) takes the table's place."""
    console.print(_table(result, console.width) if table else summary_head(result))
    counts = Counter(record.status for record in result.steps)
    tally = ", ".join(f"{counts[status]} {status.value}" for status in StepStatus if counts[status])
    line = Text("run ")
    line.append(result.status.value, style=_RUN_STYLE[result.status])
    line.append(f" ({tally})")
    if result.reason:
        line.append(f": {result.reason.removeprefix(result.status.value + ': ')}")
    console.print(line)
    for error in result.errors:
        console.print(Text(f"  error in {error.step}: [{error.kind.value}] {error.type}: {error.message}", style="red"))
        for detail in error_lines(error, full_traceback=full_tracebacks):
            console.print(Text(f"    {detail}"), soft_wrap=True)
    if result.outputs:
        console.print(Text("outputs:", style="bold"))
        coloured = console.color_system is not None
        console.print(pretty_json(json_ready(result.outputs), console.width, highlight=coloured))
    else:
        console.print(Text("outputs: none", style="bold"))


def pretty_json(value: Any, width: int, *, highlight: bool = True) -> RenderableType:
    """``value`` (strict JSON data: :func:`json_ready`'s) as ``rich.pretty.Pretty`` shows it on a console
    ``width`` cells wide: highlighted, and over several lines if one does not fit.

    One line that fits, the common case, is built here: for JSON data, ``Pretty``'s one-line form is the
    value's ``repr``, highlighted by ``ReprHighlighter`` in the style ``pretty``. Only a value that needs
    more lines loads ``rich.pretty``, which imports attrs when it is installed (26 ms of a run's start-up,
    24 of them attrs, by ``-X importtime`` at load 4.5). A test holds the two paths to the same output.
    Without ``highlight`` (for a console with no colour system, such as a pipe, which drops every style)
    nothing is highlighted, which spares compiling the highlighter's patterns (~1% of a run's start-up)."""
    one_line = repr(value)
    if cell_len(one_line) <= width:
        text = Text(one_line, style="pretty")
        return ReprHighlighter()(text) if highlight else text
    from rich.pretty import Pretty

    return Pretty(value, indent_guides=False, highlighter=None if highlight else NullHighlighter())


_SUMMARY_NAMES = 5
"""How many steps of each kind a summary names before it counts the rest."""


def summary_head(result: ExecutionResult) -> Text:
    """What a run that did not succeed shows instead of its table: its title, and which steps were skipped
    and cancelled (the failed ones follow with their errors), a few names each, so a stopped 200-step run
    is a few lines, not 200 rows."""
    head = Text(f"{result.flow_name} v{result.flow_version}, run {result.run_id} (a summary: --table lists every step)")
    groups = (
        ("skipped", [r for r in result.steps if r.status is StepStatus.SKIPPED]),
        ("cancelled while running", [r for r in result.steps if r.status is StepStatus.CANCELLED and r.attempts]),
        ("cancelled before starting", [r for r in result.steps if r.status is StepStatus.CANCELLED and not r.attempts]),
    )
    for label, records in groups:
        if records:
            names = ", ".join(record.id for record in records[:_SUMMARY_NAMES])
            more = f" and {len(records) - _SUMMARY_NAMES} more" if len(records) > _SUMMARY_NAMES else ""
            head.append(f"\n  {label}: {names}{more}", style=_STATUS_STYLE[records[0].status])
    return head


def render_runs(summaries: Sequence[RunSummary], console: Console, *, title: str) -> None:
    """A table of runs, oldest first: id, flow and version, status, start (local time), progress."""
    if not summaries:
        console.print(Text(f"{title}: no runs"))
        return
    table = Table(title=_title(title), title_justify="left")
    for header, justify in (
        ("run", "left"),
        ("flow", "left"),
        ("status", "left"),
        ("started", "left"),
        ("steps done", "right"),
        ("entries", "right"),
    ):
        table.add_column(Text(header), justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for summary in summaries:
        table.add_row(
            Text(summary.run_id),
            Text(f"{summary.flow_name} v{summary.flow_version}"),
            Text(summary.status, style=_SUMMARY_STYLE.get(summary.status, "")),
            Text(summary.started.astimezone().strftime("%Y-%m-%d %H:%M:%S")),
            Text(str(summary.steps_done)),
            Text(str(summary.entries)),
        )
    console.print(table)
