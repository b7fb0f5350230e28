"""A flow's graph as SVG: its steps in layers by depth, left to right, an edge per dependency.

The layout is the simple layered one (no Graphviz): a step's layer is the length of the longest chain
of dependencies leading to it; within a layer, steps are ordered by the mean place of what they depend
on (declaration order breaks ties), which keeps most edges short and uncrossed. Edges are drawn as
``flowkernel graph`` draws them in Mermaid (:func:`~flowkernel.diagrams.flow_edges`): solid for data,
thick for the context only, dashed for ordering only, labelled ``when`` when the condition reads them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial

from ..diagrams import Edge, flow_edges
from ..model.flow import Flow
from .svg import Drawing, Group, Path, Rect, Shape, Text, render

__all__ = ("GraphLayout", "NodeBox", "graph_svg", "layout_graph")

NODE_HEIGHT = 42.0
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
class GraphLayout:
    """Every step's box and every edge, and the drawing's size."""

    title: str
    width: float
    height: float
    nodes: tuple[NodeBox, ...]
    edges: tuple[Edge, ...]


def graph_svg(flow: Flow) -> str:
    """``flow``'s graph as an SVG document (see the module's docstring for the layout and the edges)."""
    return render(draw_graph(layout_graph(flow)))


def layout_graph(flow: Flow) -> GraphLayout:
    """Place ``flow``'s steps in layers by depth, ordered within a layer to keep edges straight."""
    edges = flow_edges(flow)
    ids = [step.id for step in flow.steps]
    layer = _layers(ids, edges)
    columns: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for step_id in ids:
        columns[layer[step_id]].append(step_id)
    _order(columns, edges)
    widths = {step.id: max(len(step.id), len(step.target_name) * 0.85) * CHAR_WIDTH + 24 for step in flow.steps}
    tallest = max((len(column) for column in columns), default=0)
    plot_height = tallest * NODE_HEIGHT + max(tallest - 1, 0) * ROW_GAP
    nodes = []
    x = MARGIN
    steps = {step.id: step for step in flow.steps}
    for number, column in enumerate(columns):
        column_width = max(widths[step_id] for step_id in column)
        height = len(column) * NODE_HEIGHT + (len(column) - 1) * ROW_GAP
        y = TITLE_HEIGHT + MARGIN + (plot_height - height) / 2
        for step_id in column:
            step = steps[step_id]
            kind = "map" if step.map is not None else "subflow" if step.flow is not None else "tool"
            nodes.append(NodeBox(step_id, step.target_name, kind, number, x, y, column_width))
            y += NODE_HEIGHT + ROW_GAP
        x += column_width + COLUMN_GAP
    width = max(x - COLUMN_GAP + MARGIN, LEGEND_WIDTH)
    height = TITLE_HEIGHT + 2 * MARGIN + plot_height + LEGEND_HEIGHT
    title = f"{flow.name} v{flow.version}: {len(ids)} step{'s' * (len(ids) != 1)}"
    return GraphLayout(title, width, height, tuple(nodes), tuple(edges))


def _layers(ids: Sequence[str], edges: Sequence[Edge]) -> dict[str, int]:
    """Each step's layer: 0 without dependencies, else one more than its deepest dependency."""
    deps: dict[str, list[str]] = {step_id: [] for step_id in ids}
    for edge in edges:
        deps[edge.target].append(edge.source)
    layer: dict[str, int] = {}
    for step_id in ids:  # a validated flow has no cycle; an explicit stack keeps deep chains off the recursion limit
        stack = [step_id]
        while stack:
            current = stack[-1]
            waiting = [d for d in deps[current] if d not in layer]
            if waiting:
                stack.extend(waiting)
                continue
            stack.pop()
            layer[current] = 1 + max((layer[d] for d in deps[current]), default=-1)
    return layer


def _order(columns: list[list[str]], edges: Sequence[Edge]) -> None:
    """Sort each column by the mean place of its steps' dependencies in the columns before it."""
    sources: dict[str, list[str]] = {}
    for edge in edges:
        sources.setdefault(edge.target, []).append(edge.source)
    place: dict[str, float] = {}
    for column in columns:
        declared = {step_id: index for index, step_id in enumerate(column)}
        column.sort(key=partial(_barycenter, sources=sources, place=place, declared=declared))
        place.update({step_id: float(index) for index, step_id in enumerate(column)})


def _barycenter(
    step_id: str, sources: dict[str, list[str]], place: dict[str, float], declared: dict[str, int]
) -> tuple[float, int]:
    """Where a step goes in its layer: the mean place of its dependencies (its declared place if none)."""
    placed = [place[s] for s in sources.get(step_id, []) if s in place]
    return (sum(placed) / len(placed) if placed else declared[step_id], declared[step_id])


def draw_graph(layout: GraphLayout) -> Drawing:
    """The shapes of ``layout``: edges under the boxes, then the boxes, then the legend."""
    boxes = {node.step: node for node in layout.nodes}
    shapes: list[Shape] = [Text(MARGIN, 22, layout.title, "title")]
    shapes.extend(_edge(edge, boxes[edge.source], boxes[edge.target]) for edge in layout.edges)
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


def _edge(edge: Edge, source: NodeBox, target: NodeBox) -> Group:
    x1, y1 = source.x + source.width, source.y + NODE_HEIGHT / 2
    x2, y2 = target.x, target.y + NODE_HEIGHT / 2
    bend = (x2 - x1) / 2
    d = f"M {x1:.2f} {y1:.2f} C {x1 + bend:.2f} {y1:.2f}, {x2 - bend:.2f} {y2:.2f}, {x2:.2f} {y2:.2f}"
    meaning = {
        "data": "its output reaches",
        "context": "its output reaches, through the context,",
        "order": "runs before",
    }
    title = f"{edge.source} → {edge.target}: {edge.source} {meaning[edge.kind]} {edge.target}"
    if edge.when:
        title += f" (and {edge.target}'s condition reads it)"
    data = {"source": edge.source, "target": edge.target, "kind": edge.kind, "when": str(edge.when).lower()}
    shapes: list[Shape] = [
        Path(d, f"edge {edge.kind}{' when' if edge.when else ''}", arrow=True, title=title, data=data)
    ]
    if edge.when:
        shapes.append(Text((x1 + x2) / 2, (y1 + y2) / 2 - 4, "when", "edge-label", "middle"))
    return Group(tuple(shapes), "dependency")


def _legend(y: float) -> Iterator[Shape]:
    x = MARGIN
    for kind, text in LEGEND:
        yield Path(f"M {x:.2f} {y:.2f} L {x + 36:.2f} {y:.2f}", f"edge {kind} legend", arrow=True)
        yield Text(x + 44, y + 4, text)
        x += 60 + CHAR_WIDTH * len(text)
