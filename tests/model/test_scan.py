"""One walk of a step's references (``scan_step``) tells what every check and the plan need, in the order
the step's own accessors give it."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flowkernel import Input, Item, Ref, Step, tool
from flowkernel.model.refs import Context
from flowkernel.model.scan import CONTEXT, ITEM, SOURCE, scan_step, walk
from flowkernel.model.step import holds, walk_sources
from flowkernel.model.validation import condition_steps


@tool(validate=False)
def anything(**kwargs: Any) -> Any:
    return kwargs


leaves = st.sampled_from(
    [Ref("a"), Ref("b", "rows[0]"), Input("x"), Input("y", "k"), Item(), Item("id"), Context(), 1, "s", None]
)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.sampled_from(["k", "0", "rows"]), inner, max_size=3)
    ),
    max_leaves=8,
)


def _kind(value: Any) -> int:
    """What ``value`` holds, asked the slow way: one question per marker."""
    found = next(walk_sources(value, ""), None) is not None
    return (SOURCE if found else 0) | (ITEM if holds(value, Item) else 0) | (CONTEXT if holds(value, Context) else 0)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["p", "q", "r"]), values, max_size=3))
def test_a_scan_finds_the_sources_in_step_order_and_what_each_argument_holds(arguments: dict[str, Any]) -> None:
    step = Step(id="s", tool=anything, arguments=arguments, map=Input("xs"))
    scan = scan_step(step)
    assert list(scan.sources) == [source for _, source in step.sources()]
    assert scan.kinds == [_kind(value) for value in arguments.values()]
    holds_all = 0
    for kind in scan.kinds:
        holds_all |= kind
    assert scan.holds == holds_all


@settings(max_examples=100, deadline=None)
@given(values)
def test_walking_with_locations_finds_the_same_sources(value: Any) -> None:
    bare: list[Ref | Input] = []
    located: list[Ref | Input] = []
    locations: list[str] = []
    assert walk(value, bare) == walk(value, located, locations, "arguments.v")
    assert bare == located
    assert len(locations) == len(located)


def test_locations_name_the_path_into_the_argument() -> None:
    step = Step(id="s", tool=anything, arguments={"rows": [1, {"id": Ref("a"), "n": [Input("x")]}]})
    assert list(step.sources()) == [("arguments.rows[1].id", Ref("a")), ("arguments.rows[1].n[0]", Input("x"))]


def test_dependencies_are_references_then_after_then_the_condition_in_first_mention_order() -> None:
    step = Step(
        id="s",
        tool=anything,
        arguments={"p": Ref("b"), "q": [Ref("a"), Ref("b")]},
        after=("c", "a"),
        when="steps.e.ok && steps.d.ok",
    )
    scan = scan_step(step)
    assert scan.depends_on == ["b", "a", "c", "d", "e"]
    assert scan.condition is not None
    assert scan.condition.steps == {"d", "e"} == condition_steps(step)


def test_a_condition_that_does_not_parse_is_kept_as_its_error() -> None:
    scan = scan_step(Step(id="s", tool=anything, when="steps.[["))
    assert scan.condition is not None
    assert scan.condition.expression is None
    assert scan.condition.error is not None
    assert scan.condition.error.startswith("invalid path 'steps.[['")
