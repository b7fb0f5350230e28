"""Pictures of flows and runs, as SVG: a run's timeline (a Gantt of its attempts) and a flow's graph.

``timeline_svg(result, flow)`` draws where a run's time went; ``timeline_html`` wraps it in a page of
its own; ``graph_svg(flow)`` draws the flow's steps in layers, with an edge per dependency.
"""

from __future__ import annotations

from .graph import graph_svg
from .html import timeline_html
from .timeline_draw import timeline_svg

__all__ = ("graph_svg", "timeline_html", "timeline_svg")
