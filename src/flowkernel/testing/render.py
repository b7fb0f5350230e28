"""A parity report in plain text: the verdict, the minimal flow, where the two results first differ, and
both canonical results side by side (only where they differ, with a few lines of context).

Plain text, so a terminal, a CI log and a test read the same thing.
"""

from __future__ import annotations

import difflib
import json
from itertools import zip_longest
from typing import TYPE_CHECKING, Any

from .describe import describe_scenario

if TYPE_CHECKING:
    from .check import ParityReport
    from .parity import Divergence

__all__ = ("render_report", "side_by_side")

CONTEXT_LINES = 3


def render_report(report: ParityReport, *, width: int = 120) -> str:
    """``report`` as text in ``width`` columns (the side-by-side columns share it)."""
    lines = [report.summary()]
    failure = report.failure
    if failure is None:
        return "\n".join(lines)
    flaky = " (it did not fail again on replay: timing-dependent)" if failure.flaky else ""
    lines += [
        f"first failure after {report.examples} passing examples, shrunk in {report.shrink_runs} runs{flaky}",
        "",
        "minimal flow:",
        describe_scenario(failure.scenario),
        "",
    ]
    divergence = failure.divergence
    if divergence is None:
        lines.append(failure.message)
    else:
        lines += _divergence(divergence, width)
    return "\n".join(lines)


def _divergence(divergence: Divergence, width: int) -> list[str]:
    lines = [f"{divergence.label} {_what(divergence)}", ""]
    if divergence.kind == "over-limit":
        lines += [divergence.message, ""]
    if divergence.kind == "differs":
        lines += [f"first difference at {divergence.path}:", *divergence.message.splitlines()[1:], ""]
    if divergence.kind == "raised":
        lines += [divergence.message, ""]
    if divergence.expected is not None and divergence.got is not None and divergence.expected != divergence.got:
        lines.append("the two canonical results side by side (where they differ):")
        lines += side_by_side(
            _json_lines(divergence.expected),
            _json_lines(divergence.got),
            divergence.reference,
            divergence.label,
            width,
        )
    elif divergence.expected is not None:
        lines.append(f"{divergence.reference}'s canonical result:")
        lines += [f"  {line}" for line in _json_lines(divergence.expected)]
    return lines


def _what(divergence: Divergence) -> str:
    if divergence.kind == "differs":
        return f"disagrees with {divergence.reference}"
    if divergence.kind == "raised":
        return "raised instead of returning a result"
    return "had more calls in flight than its limits allow"


def side_by_side(left: list[str], right: list[str], left_title: str, right_title: str, width: int) -> list[str]:
    """``left`` and ``right`` in two columns, as ``diff --side-by-side`` shows them: only the groups of
    lines that differ, with ``CONTEXT_LINES`` around them; ``|`` marks a changed line, ``<`` and ``>`` a
    line on one side only. Lines too long for their column are cut with ``…``."""
    column = max(20, (width - 5) // 2)
    out = [_row(left_title, right_title, " ", column), _row("-" * column, "-" * column, " ", column)]
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    for number, group in enumerate(matcher.get_grouped_opcodes(CONTEXT_LINES)):
        if number:
            out.append(_row("...", "...", " ", column))
        for tag, i1, i2, j1, j2 in group:
            for a, b in zip_longest(left[i1:i2], right[j1:j2]):
                mark = " " if tag == "equal" else "|" if a is not None and b is not None else "<" if b is None else ">"
                out.append(_row(a or "", b or "", mark, column))
    return out


def _row(left: str, right: str, mark: str, column: int) -> str:
    return f"{_cut(left, column):<{column}}  {mark}  {_cut(right, column)}".rstrip()


def _cut(text: str, column: int) -> str:
    return text if len(text) <= column else text[: column - 1] + "…"


def _json_lines(value: Any) -> list[str]:
    return json.dumps(value, indent=2, default=repr).splitlines()
