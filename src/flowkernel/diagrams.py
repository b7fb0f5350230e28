"""Diagrams drawn from the code, never by hand: a flow's graph and the step state machine (Mermaid)."""

from __future__ import annotations

from .kernel.states import TRANSITIONS
from .model.flow import Flow
from .model.refs import Ref

__all__ = ("flow_graph", "state_diagram", "state_table")


def flow_graph(flow: Flow) -> str:
    """A Mermaid flowchart of ``flow``: data edges solid, ``after``-only edges dotted."""
    lines = ["flowchart LR"]
    for step in flow.steps:
        lines.append(f'    {_node(step.id)}["{step.id}<br/><small>{step.target_name}</small>"]')
    for step in flow.steps:
        data = dict.fromkeys(source.step for _, source in step.sources() if isinstance(source, Ref))
        for dep in data:
            lines.append(f"    {_node(dep)} --> {_node(step.id)}")
        for dep in step.after:
            if dep not in data:
                lines.append(f"    {_node(dep)} -.-> {_node(step.id)}")
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
