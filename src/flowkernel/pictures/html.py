"""A run's timeline as a self-contained HTML page: the SVG inline, no script, nothing fetched."""

from __future__ import annotations

from html import escape

from ..model.flow import Flow
from ..result import ExecutionResult
from .timeline_draw import timeline_svg

__all__ = ("html_page", "timeline_html")


def timeline_html(result: ExecutionResult, flow: Flow | None = None) -> str:
    """A page showing :func:`~flowkernel.pictures.timeline_svg` of ``result``; hover a bar for its details."""
    heading = f"Run {result.run_id} of {result.flow_name} v{result.flow_version}: {result.status}"
    return html_page(heading, timeline_svg(result, flow), "Hover over a bar for the attempt's times and error.")


def html_page(heading: str, svg: str, note: str) -> str:
    """A page with ``heading``, ``note`` and ``svg`` (a whole SVG document, embedded as it is)."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(heading)}</title>
<style>
body {{ font: 14px system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem; color: #1f2328; }}
h1 {{ font-size: 1.2rem; }}
.picture {{ overflow-x: auto; }}
</style>
</head>
<body>
<h1>{escape(heading)}</h1>
<p>{escape(note)}</p>
<div class="picture">
{svg}</div>
</body>
</html>
"""
