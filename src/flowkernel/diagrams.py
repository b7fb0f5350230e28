"""Diagrams drawn from the code, never by hand: a flow's graph and the step state machine (Mermaid).

:func:`flow_edges` is the graph itself, which :mod:`flowkernel.pictures.graph` draws as SVG too.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from .kernel.states import TRANSITIONS
from .model.flow import Flow
from .model.refs import Context, Ref
from .model.step import holds
from .model.validation import condition_steps, dependencies_of

__all__ = ("ARROWS", "Edge", "flow_edges", "flow_graph", "state_diagram", "state_table")


class Edge(NamedTuple):
    """A dependency the kernel waits on, and what reaches the dependent step through it (see :func:`flow_graph`)."""

    source: str
    target: str
    kind: Literal["data", "context", "order"]
    when: bool
    """The target's ``when`` condition reads the source's output."""


def flow_edges(flow: Flow) -> list[Edge]:
    """Every dependency of ``flow``'s steps, step by step in the kernel's own order, with its kind."""
    edges = []
    for step in flow.steps:
        data = {source.step for _, source in step.sources() if isinstance(source, Ref)}
        condition = condition_steps(step)
        reads_context = any(holds(value, Context) for value in step.arguments.values())
        for dep in dependencies_of(step):  # the kernel's own dependencies, in their order
            kind: Literal["data", "context", "order"] = (
                "data" if dep in data else "context" if reads_context else "order"
            )
            edges.append(Edge(dep, step.id, kind, dep in condition))
    return edges


ARROWS = {"data": "-->", "context": "==>", "order": "-.->"}
"""Mermaid's line for each kind of edge."""


def flow_graph(flow: Flow) -> str:
    """A Mermaid flowchart of ``flow``, with one edge for every dependency the kernel waits on.

    The line says what reaches the step's tool: solid (``-->``) the dependency's output, through the
    arguments (a ``Ref``, or the list a map step maps over); thick (``==>``) only through the step's
    accumulated context (``Context()``, which merges every ancestor's output along these edges); dotted
    (``-.->``) nothing, the edge only orders (``after``). ``|when|`` on an edge: the step's ``when``
    condition reads the dependency's output.
    """
    lines = ["flowchart LR"]
    for step in flow.steps:
        label = f"{step.id}<br/><small>{step.target_name}</small>".replace('"', "#quot;")
        lines.append(f'    {_node(step.id)}["{label}"]')
    for edge in flow_edges(flow):
        label = "|when|" if edge.when else ""
        lines.append(f"    {_node(edge.source)} {ARROWS[edge.kind]}{label} {_node(edge.target)}")
    return "\n".join(lines)


def state_diagram() -> str:
    """A Mermaid state diagram of a step's life, from :data:`~flowkernel.kernel.states.TRANSITIONS`."""
    lines = ["stateDiagram-v2", "    [*] --> pending"]
    for t in TRANSITIONS:
        lines.append(f"    {t.source} --> {t.target}: {t.event}")
    for final in ("succeeded", "failed", "skipped", "cancelled"):
        lines.append(f"    {final} --> [*]")
    return "\n".join(lines)


def state_table() -> str:
    """The transition table as Markdown."""
    rows = ["| from | when | to | the kernel yields |", "|---|---|---|---|"]
    rows += [f"| {t.source} | {t.event} | {t.target} | {t.commands} |" for t in TRANSITIONS]
    return "\n".join(rows)


def _node(step_id: str) -> str:
    return "n_" + "".join(c if c.isalnum() else "_" for c in step_id)
