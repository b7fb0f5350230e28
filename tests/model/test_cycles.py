"""Dependency cycles: the fast path (every step depends on steps declared before it) never hides one."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowkernel import Flow, FlowValidationError, Step, tool
from flowkernel.model.scan import scan_steps
from flowkernel.model.validation import _depend_on_earlier, declared_in_order, graph_cycles


@tool(validate=False)
def noop() -> None:
    return None


@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[str], dict[str, list[str]]]:
    """Step ids in declaration order (duplicates allowed, as a broken flow may have them) and a graph
    built from them the way validation builds it (the last step of an id gives its dependencies)."""
    ids = draw(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=8))
    graph: dict[str, list[str]] = {}
    for step_id in ids:
        others = sorted(set(ids) - {step_id})
        graph[step_id] = draw(st.lists(st.sampled_from(others), max_size=3)) if others else []
    return ids, graph


@settings(max_examples=500, deadline=None)
@given(graphs())
def test_declared_in_order_means_no_cycle(case: tuple[list[str], dict[str, list[str]]]) -> None:
    ids, graph = case
    first_index: dict[str, int] = {}
    for i, step_id in enumerate(ids):
        first_index.setdefault(step_id, i)
    general = graph_cycles({node: list(deps) for node, deps in graph.items()})
    if declared_in_order(graph, first_index):
        assert general == []


def test_a_later_step_declared_again_first_does_not_hide_a_cycle() -> None:
    # Steps d, x -> d, d -> x: each step's dependency is declared before it, yet the graph (where the
    # second d gives d's dependencies) has the cycle d -> x -> d.
    graph = {"d": ["x"], "x": ["d"]}
    assert not declared_in_order(graph, {"d": 0, "x": 1})
    assert len(graph_cycles(graph)) == 1


def test_a_flow_declared_backwards_still_finds_its_cycle() -> None:
    with pytest.raises(FlowValidationError) as caught:
        Flow(
            name="loop",
            steps=[
                Step(id="a", tool=noop, after=("c",)),
                Step(id="b", tool=noop, after=("a",)),
                Step(id="c", tool=noop, after=("b",)),
            ],
        )
    assert [p.location for p in caught.value.problems] == ["steps"]
    assert caught.value.problems[0].message.startswith("dependency cycle: ")


def test_a_flow_declared_out_of_order_without_a_cycle_builds() -> None:
    flow = Flow(name="backwards", steps=[Step(id="b", tool=noop, after=("a",)), Step(id="a", tool=noop)])
    assert flow.plan.deps == ((1,), ())


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda n: st.lists(st.lists(st.sampled_from("abcdefz"), max_size=3), min_size=n, max_size=n)
    )
)
def test_the_scans_fast_path_agrees_with_declared_in_order(afters: list[list[str]]) -> None:
    """With unique ids, the build asks the scans directly (no graph); it must answer as the graph does
    (unknown ids, ``z``, and a step naming itself aside)."""
    ids = list("abcdef"[: len(afters)])
    scans = scan_steps([Step(id=i, tool=noop, after=tuple(after)) for i, after in zip(ids, afters, strict=True)])
    first_index = {step_id: i for i, step_id in enumerate(ids)}
    graph = {s.fields["id"]: [d for d in s.depends_on if d in first_index and d != s.fields["id"]] for s in scans}
    assert _depend_on_earlier(first_index, scans) == declared_in_order(graph, first_index)
