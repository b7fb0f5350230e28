"""``flowkernel graph``'s charts: one edge for every dependency the kernel waits on, drawn by kind."""

from __future__ import annotations

import re

from hypothesis import given, settings

from flowkernel import Context, ContextPolicy, Flow, Input, Ref, Step, tool
from flowkernel.diagrams import flow_graph
from flowkernel.model.validation import condition_steps
from flowkernel.testing import scenarios
from flowkernel.testing.scripted import Scenario

EDGE = re.compile(r"^    n_(?P<source>\w+) (?P<arrow>-->|==>|-\.->)(?:\|(?P<label>\w+)\|)? n_(?P<target>\w+)$")


@tool
def load(user: str) -> dict[str, str]:
    return {"user": user}


@tool
def check(record: dict[str, str]) -> dict[str, bool]:
    return {"ok": True}


@tool
def notify(user: str) -> str:
    return user


@tool
def summarize(context: dict[str, object]) -> str:
    return ""


@tool
def archive() -> None:
    return None


def edges(chart: str) -> dict[tuple[str, str], tuple[str, str | None]]:
    """``(source, target) -> (arrow, label)`` for every edge line of a chart (node ids without ``n_``)."""
    found = {}
    for line in chart.splitlines():
        match = EDGE.match(line)
        if match:
            key = (match["source"], match["target"])
            assert key not in found, f"two edges for {key}"
            found[key] = (match["arrow"], match["label"])
    return found


def test_condition_and_context_dependencies_are_drawn_each_in_its_own_way() -> None:
    flow = Flow(
        name="kinds",
        context=ContextPolicy(),
        steps=[
            Step(id="load", tool=load, arguments={"user": Input("user")}),
            Step(id="check", tool=check, arguments={"record": Ref("load")}),
            Step(id="notify", tool=notify, arguments={"user": Input("user")}, when="steps.check.ok"),
            Step(id="summary", tool=summarize, arguments={"context": Context()}, after=("check",)),
            Step(id="guarded", tool=notify, arguments={"user": Ref("load", "user")}, when="steps.load.user"),
            Step(id="archive", tool=archive, after=("summary",)),
        ],
    )
    assert edges(flow_graph(flow)) == {
        ("load", "check"): ("-->", None),  # data
        ("check", "notify"): ("-.->", "when"),  # read by the condition only: was not drawn at all
        ("check", "summary"): ("==>", None),  # reaches the tool through the context: was drawn as ordering only
        ("load", "guarded"): ("-->", "when"),  # data and condition
        ("summary", "archive"): ("-.->", None),  # ordering only
    }


def test_a_map_steps_list_is_a_data_edge() -> None:
    flow = Flow(
        name="mapped",
        steps=[
            Step(id="users", tool=load, arguments={"user": "x"}),
            Step(id="each", tool=notify, map=Ref("users", "user"), arguments={"user": Ref("users", "user")}),
        ],
    )
    assert edges(flow_graph(flow)) == {("users", "each"): ("-->", None)}


@settings(max_examples=40, deadline=None)
@given(scenario=scenarios())
def test_the_chart_has_exactly_the_edges_the_kernel_waits_on(scenario: Scenario) -> None:
    flow = scenario.flow
    plan = flow.plan
    waits_on = {
        (plan.step_ids[d], step_id) for step_id, deps in zip(plan.step_ids, plan.deps, strict=True) for d in deps
    }
    node = {step_id: re.sub(r"\W", "_", step_id) for step_id in plan.step_ids}
    drawn = edges(flow_graph(flow))
    assert set(drawn) == {(node[source], node[target]) for source, target in waits_on}
    for step in flow.steps:
        labelled = {source for (source, target), (_, label) in drawn.items() if target == node[step.id] and label}
        assert labelled == {node[read] for read in condition_steps(step)}
