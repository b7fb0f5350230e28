"""A flow's graph as SVG: its steps in layers by depth, left to right, an edge per dependency.

The layout is the simple layered one (no Graphviz): a step's layer is the length of the longest chain
of dependencies leading to it; within a layer, steps are ordered by the mean place of what they depend
on (declaration order breaks ties), which keeps most edges short and uncrossed. An edge that skips
layers gets a lane in each layer it crosses, placed like a step, so it never runs through a box. Edges are drawn as
``flowkernel graph`` draws them in Mermaid (:func:`~flowkernel.diagrams.flow_edges`): solid for data,
thick for the context only, dashed for ordering only, labelled ``when`` when the condition reads them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from graphlib import TopologicalSorter

from ..diagrams import Edge, flow_edges
from ..model.flow import Flow
from .svg import Drawing, Group, Path, Rect, Shape, Text, render

__all__ = ("EdgeRoute", "GraphLayout", "NodeBox", "draw_graph", "graph_svg", "layout_graph")

NODE_HEIGHT = 42.0
LANE_HEIGHT = 8.0
"""The room an edge that crosses a layer takes in it."""
ROW_GAP = 18.0
COLUMN_GAP = 70.0
MARGIN = 20.0
TITLE_HEIGHT = 30.0
LEGEND_HEIGHT = 36.0
CHAR_WIDTH = 7.2
"""About the width of a character of the labels' font, to size the boxes."""
MEANING = {"data": "its output reaches", "context": "its output reaches, through the context,", "order": "runs before"}
"""What an edge of each kind says, in its hover title."""
LEGEND = (("data", "output → arguments"), ("context", "output → context only"), ("order", "ordering only"))
LEGEND_WIDTH = 2 * MARGIN + sum(60 + CHAR_WIDTH * len(text) for _, text in LEGEND)

STYLE = """
text { font: 12px system-ui, -apple-system, "Segoe UI", Helvetica, Arial, "DejaVu Sans", sans-serif; fill: #1f2328; }
.title { font-size: 14px; font-weight: 600; }
.node rect { fill: #ddf4ff; stroke: #54aeff; stroke-width: 1.5; }
.node.map rect { fill: #fbefff; stroke: #8250df; }
.node.subflow rect { fill: #dafbe1; stroke: #2da44e; }
.node .id { font-weight: 600; }
.node .target { font-size: 10px; fill: #656d76; }
.edge { fill: none; stroke: #57606a; stroke-width: 1.5; }
.edge.context { stroke-width: 3.5; }
.edge.order { stroke-dasharray: 5 4; }
.edge-label { font-size: 10px; fill: #9a6700; font-style: italic; }
.arrowhead { fill: #57606a; }
""".strip()


@dataclass(frozen=True, slots=True)
class NodeBox:
    """A step's box: its layer (column), its place in the layer, and where it is drawn."""

    step: str
    target: str
    kind: str
    """``tool``, ``map`` or ``subflow``."""
    layer: int
    x: float
    y: float
    width: float


@dataclass(frozen=True, slots=True)
class EdgeRoute:
    """An edge and the points it passes: out of the source's right side, through a lane in each layer it
    crosses (in at a lane's left, out at its right: the lane is kept free of boxes), into the target's left."""

    edge: Edge
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class GraphLayout:
    """Every step's box and every edge's route, and the drawing's size."""

    title: str
    width: float
    height: float
    nodes: tuple[NodeBox, ...]
    routes: tuple[EdgeRoute, ...]


def graph_svg(flow: Flow) -> str:
    """``flow``'s graph as an SVG document (see the module's docstring for the layout and the edges)."""
    return render(draw_graph(layout_graph(flow)))


Slot = str | tuple[int, int]
"""What takes a place in a layer: a step (its id), or a lane of a long edge (the edge's index, the layer)."""


def layout_graph(flow: Flow) -> GraphLayout:
    """Place ``flow``'s steps in layers by depth, ordered within a layer to keep edges straight."""
    edges = flow_edges(flow)
    steps = {step.id: step for step in flow.steps}
    layer = _layers(list(steps), edges)
    columns: list[list[Slot]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for step_id in steps:
        columns[layer[step_id]].append(step_id)
    before: dict[Slot, list[Slot]] = {}  # what each slot is drawn from, one layer to its left
    for index, edge in enumerate(edges):
        previous: Slot = edge.source
        for lane_layer in range(layer[edge.source] + 1, layer[edge.target]):
            lane = (index, lane_layer)
            columns[lane_layer].append(lane)
            before[lane] = [previous]
            previous = lane
        before.setdefault(edge.target, []).append(previous)
    _order(columns, before)
    widths = {step.id: max(len(step.id), len(step.target_name) * 0.85) * CHAR_WIDTH + 24 for step in flow.steps}
    plot_height = max((_column_height(column) for column in columns), default=0.0)
    nodes = []
    where: dict[Slot, tuple[float, float, float]] = {}  # x, middle y, width
    x = MARGIN
    for number, column in enumerate(columns):
        column_width = max(widths[slot] for slot in column if isinstance(slot, str))
        y = TITLE_HEIGHT + MARGIN + (plot_height - _column_height(column)) / 2
        for slot in column:
            height = _height(slot)
            where[slot] = (x, y + height / 2, column_width)
            if isinstance(slot, str):
                step = steps[slot]
                kind = "map" if step.map is not None else "subflow" if step.flow is not None else "tool"
                nodes.append(NodeBox(slot, step.target_name, kind, number, x, y, column_width))
            y += height + ROW_GAP
        x += column_width + COLUMN_GAP
    routes = tuple(_route(index, edge, layer, where) for index, edge in enumerate(edges))
    width = max(x - COLUMN_GAP + MARGIN, LEGEND_WIDTH)
    height = TITLE_HEIGHT + 2 * MARGIN + plot_height + LEGEND_HEIGHT
    title = f"{flow.name} v{flow.version}: {len(steps)} step{'s' * (len(steps) != 1)}"
    return GraphLayout(title, width, height, tuple(nodes), routes)


def _height(slot: Slot) -> float:
    return NODE_HEIGHT if isinstance(slot, str) else LANE_HEIGHT


def _column_height(column: Sequence[Slot]) -> float:
    return sum(map(_height, column)) + max(len(column) - 1, 0) * ROW_GAP


def _route(index: int, edge: Edge, layer: dict[str, int], where: dict[Slot, tuple[float, float, float]]) -> EdgeRoute:
    x, y, width = where[edge.source]
    points = [(x + width, y)]
    for lane_layer in range(layer[edge.source] + 1, layer[edge.target]):
        x, y, width = where[(index, lane_layer)]
        points += [(x, y), (x + width, y)]
    x, y, _ = where[edge.target]
    points.append((x, y))
    return EdgeRoute(edge, tuple(points))


def _layers(ids: Sequence[str], edges: Sequence[Edge]) -> dict[str, int]:
    """Each step's layer: 0 without dependencies, else one more than its deepest dependency."""
    deps: dict[str, list[str]] = {step_id: [] for step_id in ids}
    for edge in edges:
        deps[edge.target].append(edge.source)
    layer: dict[str, int] = {}
    for step_id in TopologicalSorter(deps).static_order():  # a validated flow has no cycle
        layer[step_id] = 1 + max((layer[d] for d in deps[step_id]), default=-1)
    return layer


def _order(columns: list[list[Slot]], before: dict[Slot, list[Slot]]) -> None:
    """Sort each column by the mean place of what its slots are drawn from, in the column before it."""
    place: dict[Slot, float] = {}
    for column in columns:
        declared = {slot: index for index, slot in enumerate(column)}
        column.sort(key=partial(_barycenter, before=before, place=place, declared=declared))
        place.update({slot: float(index) for index, slot in enumerate(column)})


def _barycenter(
    slot: Slot, before: dict[Slot, list[Slot]], place: dict[Slot, float], declared: dict[Slot, int]
) -> tuple[float, int]:
    """Where a slot goes in its layer: the mean place of what it is drawn from (its declared place if none)."""
    placed = [place[s] for s in before.get(slot, []) if s in place]
    return (sum(placed) / len(placed) if placed else declared[slot], declared[slot])


def draw_graph(layout: GraphLayout) -> Drawing:
    """The shapes of ``layout``: edges under the boxes, then the boxes, then the legend."""
    shapes: list[Shape] = [Text(MARGIN, 22, layout.title, "title")]
    shapes.extend(_edge(route) for route in layout.routes)
    shapes.extend(_node(node) for node in layout.nodes)
    shapes.extend(_legend(layout.height - LEGEND_HEIGHT + 14))
    return Drawing(layout.width, layout.height, layout.title, STYLE, tuple(shapes), css="flowkernel-graph")


def _node(node: NodeBox) -> Group:
    title = f"{node.step}: {node.target}" + {"map": " (map)", "subflow": " (sub-flow)", "tool": ""}[node.kind]
    box = Rect(node.x, node.y, node.width, NODE_HEIGHT, rx=6)
    middle = node.x + node.width / 2
    shapes = (
        box,
        Text(middle, node.y + 18, node.step, "id", "middle"),
        Text(middle, node.y + 33, node.target, "target", "middle"),
    )
    return Group(shapes, f"node {node.kind}", title, {"step": node.step, "layer": str(node.layer)})


def _edge(route: EdgeRoute) -> Group:
    edge, points = route.edge, route.points
    (x, y), *rest = points
    d = [f"M {x:.2f} {y:.2f}"]
    for number, (x2, y2) in enumerate(rest):
        if number % 2:  # across a lane: straight
            d.append(f"L {x2:.2f} {y2:.2f}")
        else:  # between layers: a curve leaving and arriving level
            bend = (x2 - x) / 2
            d.append(f"C {x + bend:.2f} {y:.2f}, {x2 - bend:.2f} {y2:.2f}, {x2:.2f} {y2:.2f}")
        x, y = x2, y2
    title = f"{edge.source} → {edge.target}: {edge.source} {MEANING[edge.kind]} {edge.target}"
    if edge.when:
        title += f" (and {edge.target}'s condition reads it)"
    data = {"source": edge.source, "target": edge.target, "kind": edge.kind, "when": str(edge.when).lower()}
    css = f"edge {edge.kind}{' when' if edge.when else ''}"
    shapes: list[Shape] = [Path(" ".join(d), css, arrow=True, title=title, data=data)]
    if edge.when:
        (x1, y1), (x2, y2) = points[-2], points[-1]
        shapes.append(Text((x1 + x2) / 2, (y1 + y2) / 2 - 4, "when", "edge-label", "middle"))
    return Group(tuple(shapes), "dependency")


def _legend(y: float) -> Iterator[Shape]:
    x = MARGIN
    for kind, text in LEGEND:
        yield Path(f"M {x:.2f} {y:.2f} L {x + 36:.2f} {y:.2f}", f"edge {kind} legend", arrow=True)
        yield Text(x + 44, y + 4, text)
        x += 60 + CHAR_WIDTH * len(text)
