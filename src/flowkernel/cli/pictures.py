"""The CLI's pictures: ``show --timeline FILE`` (SVG or HTML, by the file's suffix) and ``graph --format``.

The drawing modules load only when a picture is asked for, so the command line starts as fast as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from .common import CannotRunError

if TYPE_CHECKING:
    from ..model.flow import Flow
    from ..result import ExecutionResult

__all__ = ("GRAPH_FORMATS", "TIMELINE_HELP", "graph_text", "timeline_path", "write_timeline")

TIMELINE_SUFFIXES = (".svg", ".html", ".htm")
TIMELINE_HELP = (
    "Also draw the run's timeline (a bar per attempt on a time axis, waits before retries, failures, "
    "sub-flows and map elements under their step, the critical path) into FILE: .svg, or .html for a page."
)
GRAPH_FORMATS = ("mermaid", "svg")


def timeline_path(context: click.Context, parameter: click.Parameter, value: Path | None) -> Path | None:
    """Check ``--timeline FILE``'s suffix before the journal is read (a click callback)."""
    if value is not None and value.suffix.lower() not in TIMELINE_SUFFIXES:
        raise click.BadParameter(
            f"{str(value)!r} must end in .svg or .html (the suffix chooses the format)", context, parameter
        )
    return value


def write_timeline(path: Path, result: ExecutionResult, flow: Flow) -> None:
    """Write ``result``'s timeline to ``path``, as SVG or as an HTML page by its suffix; say so on stderr."""
    from ..pictures import timeline_html, timeline_svg

    text = timeline_svg(result, flow) if path.suffix.lower() == ".svg" else timeline_html(result, flow)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CannotRunError(f"cannot write the timeline to {str(path)!r}: {exc.strerror or exc}") from None
    click.echo(f"wrote the timeline of run {result.run_id} to {path}", err=True)


def graph_text(flow: Flow, form: str) -> str:
    """``flow``'s graph as Mermaid or as an SVG document."""
    if form == "svg":
        from ..pictures import graph_svg

        return graph_svg(flow)
    from ..diagrams import flow_graph

    return flow_graph(flow)
