"""Sub-flow steps and map steps at build time: every problem reported at once (sub-flow inputs, retry and
timeout on a sub-flow step, ``Item()`` misuse, nesting deeper than 16), ``Flow.tools()`` through nested
flows and fallbacks, and ``Flow.depth``."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from flowkernel import Flow, FlowValidationError, Input, Item, Ref, Step, tool
from flowkernel.errors import DefinitionError
from flowkernel.model import Fallback, RetryPolicy
from flowkernel.model.validation import MAX_FLOW_DEPTH

from ..kernel.support import backup, echo


@tool
def pair(x: Any, k: Any) -> Any:
    return [x, k]


class ChildInputs(BaseModel):
    text: str
    lang: str = "en"


def problems_of(excinfo: pytest.ExceptionInfo[FlowValidationError]) -> list[tuple[str, str]]:
    return [(p.location, p.message) for p in excinfo.value.problems]


CHILD = Flow(
    name="child",
    steps=[
        Step(id="a", tool=echo, arguments={"x": Input("p")}),
        Step(id="b", tool=echo, arguments={"x": Input("q"), "y": Ref("a")}),
    ],
)
MODELLED = Flow(
    name="modelled", input_model=ChildInputs, steps=[Step(id="a", tool=echo, arguments={"x": Input("text")})]
)


def nested(levels: int) -> Flow:
    """A flow whose sub-flows nest ``levels`` deep (``levels`` flows in all)."""
    flow = Flow(name="level1", steps=[Step(id="leaf", tool=echo)])
    for level in range(2, levels + 1):
        flow = Flow(name=f"level{level}", steps=[Step(id="s", flow=flow)])
    return flow


# ---- valid shapes ------------------------------------------------------------------------------


def test_sub_flow_and_map_steps_build_and_report_their_targets() -> None:
    flow = Flow(
        name="f",
        steps=[
            Step(id="rows", tool=echo),
            Step(id="enrich", flow=CHILD, arguments={"p": Ref("rows"), "q": Input("q")}),
            Step(id="each", tool=pair, map=Ref("rows", "items"), arguments={"x": Item("id"), "k": Ref("enrich")}),
            Step(id="each_flow", flow=CHILD, map=Input("xs"), arguments={"p": Item(), "q": 1}, max_concurrency=3),
            Step(id="nested_item", tool=echo, map=Input("xs"), arguments={"x": {"deep": [Item("a"), 1]}, "y": 2}),
        ],
    )
    assert flow.step("enrich").target_name == "flow:child"
    assert flow.step("each").target_name == "pair"
    assert flow.plan.input_names == ("q", "xs")
    # The map source and the references beside Item() are dependencies; Item() is not.
    assert flow.plan.deps == ((), (0,), (0, 1), (), ())
    assert [source is not None for source in flow.plan.map_sources] == [False, False, True, True, True]


def test_a_sub_flow_with_an_input_model_takes_its_fields_and_needs_only_the_required_ones() -> None:
    Flow(name="f", steps=[Step(id="s", flow=MODELLED, arguments={"text": "hi"})])
    Flow(name="f", steps=[Step(id="s", flow=MODELLED, arguments={"text": "hi", "lang": "fr"})])
    with pytest.raises(FlowValidationError) as excinfo:
        Flow(name="f", steps=[Step(id="s", flow=MODELLED, arguments={"langg": "fr"})])
    assert problems_of(excinfo) == [
        ("steps[0] (s).arguments.langg", "unknown input 'langg' of sub-flow 'modelled'; did you mean 'lang'?"),
        ("steps[0] (s).arguments", "missing input 'text' of sub-flow 'modelled'"),
    ]


@pytest.mark.parametrize(
    "targets",
    [{}, {"tool": echo, "flow": CHILD}],
    ids=["neither", "both"],
)
def test_a_step_runs_exactly_one_of_a_tool_and_a_sub_flow(targets: dict[str, Any]) -> None:
    with pytest.raises(DefinitionError, match="give exactly one of tool= and flow="):
        Step(id="s", **targets)


def test_max_concurrency_must_be_positive() -> None:
    with pytest.raises(DefinitionError, match="greater than or equal to 1"):
        Step(id="m", tool=echo, map=Input("xs"), arguments={"x": Item()}, max_concurrency=0)


# ---- every problem at once ---------------------------------------------------------------------


def test_every_sub_flow_and_item_problem_is_reported_at_once() -> None:
    with pytest.raises(FlowValidationError) as excinfo:
        Flow(
            name="broken",
            steps=[
                Step(id="rows", tool=echo),
                Step(
                    id="s",
                    flow=CHILD,
                    arguments={"p": 1, "qq": 2},
                    retry=RetryPolicy(max_attempts=2),
                    timeout=1.0,
                ),
                Step(id="stray", tool=echo, arguments={"x": Item()}),
                Step(id="stray_nested", tool=echo, arguments={"x": {"k": [Item("a")]}}),
                Step(id="mixed_ref", tool=echo, map=Ref("rows"), arguments={"x": [Item(), Ref("rows")]}),
                Step(id="mixed_input", tool=echo, map=Ref("rows"), arguments={"x": {"a": Item(), "b": Input("k")}}),
                Step(id="bad_source", tool=echo, map=Ref("rwos"), arguments={"x": Item()}),
                Step(id="bad_arg", tool=echo, map=Ref("rows"), arguments={"x": Item(), "z": 1}),
                Step(
                    id="mapped_flow",
                    flow=CHILD,
                    map=Ref("rows"),
                    arguments={"p": Item(), "r": 1},
                    retry=RetryPolicy(max_attempts=2),
                ),
            ],
        )
    assert problems_of(excinfo) == [
        ("steps[1] (s).arguments.qq", "unknown input 'qq' of sub-flow 'child'; did you mean 'q'?"),
        ("steps[1] (s).arguments", "missing input 'q' of sub-flow 'child'"),
        ("steps[1] (s).retry", "a sub-flow step has no retry of its own; give its steps one"),
        ("steps[1] (s).timeout", "a sub-flow step has no timeout of its own; give its steps one"),
        ("steps[2] (stray).arguments.x", "Item() is only meaningful in a step with map="),
        ("steps[3] (stray_nested).arguments.x", "Item() is only meaningful in a step with map="),
        (
            "steps[4] (mixed_ref).arguments.x",
            "an argument holding Item() cannot also hold Ref() or Input(); pass those as another argument",
        ),
        (
            "steps[5] (mixed_input).arguments.x",
            "an argument holding Item() cannot also hold Ref() or Input(); pass those as another argument",
        ),
        ("steps[6] (bad_source).map", "references unknown step 'rwos'; did you mean 'rows'?"),
        ("steps[7] (bad_arg).arguments.z", "unknown argument 'z' of tool 'echo'"),
        ("steps[8] (mapped_flow).arguments.r", "unknown input 'r' of sub-flow 'child'"),
        ("steps[8] (mapped_flow).arguments", "missing input 'q' of sub-flow 'child'"),
        ("steps[8] (mapped_flow).retry", "a sub-flow step has no retry of its own; give its steps one"),
    ]


def test_a_missing_tool_argument_is_refused_even_when_item_supplies_the_others() -> None:
    with pytest.raises(FlowValidationError) as excinfo:
        Flow(name="f", steps=[Step(id="m", tool=pair, map=Input("xs"), arguments={"x": Item()})])
    assert problems_of(excinfo) == [("steps[0] (m).arguments", "missing required argument 'k' of tool 'pair'")]


def test_an_item_path_that_does_not_parse_is_refused_at_build_time() -> None:
    with pytest.raises(FlowValidationError) as excinfo:
        Flow(name="f", steps=[Step(id="m", tool=echo, map=Input("xs"), arguments={"x": Item("[[")})])
    assert [location for location, _ in problems_of(excinfo)] == ["steps[0] (m).arguments.x"]


# ---- depth -------------------------------------------------------------------------------------


def test_depth_counts_nested_flows_through_sub_flow_and_map_steps() -> None:
    assert CHILD.depth == 1
    assert Flow(name="f", steps=[Step(id="s", flow=CHILD, arguments={"p": 1, "q": 2})]).depth == 2
    mapped = Flow(name="m", steps=[Step(id="s", flow=CHILD, map=Input("xs"), arguments={"p": Item(), "q": 2})])
    assert mapped.depth == 2
    deepest_wins = Flow(
        name="f",
        steps=[
            Step(id="shallow", flow=CHILD, arguments={"p": 1, "q": 2}),
            Step(id="deep", flow=nested(4)),
            Step(id="plain", tool=echo),
        ],
    )
    assert deepest_wins.depth == 5


def test_sub_flows_nest_at_most_16_deep() -> None:
    assert MAX_FLOW_DEPTH == 16
    assert nested(16).depth == 16
    with pytest.raises(FlowValidationError) as excinfo:
        nested(17)
    assert excinfo.value.name == "level17"
    assert problems_of(excinfo) == [("steps[0] (s).flow", "sub-flows nest 17 deep; at most 16 are allowed")]


def test_the_depth_problem_is_reported_with_the_others() -> None:
    too_deep = nested(16)
    with pytest.raises(FlowValidationError) as excinfo:
        Flow(
            name="f",
            steps=[
                Step(id="deep", flow=too_deep, map=Input("xs"), arguments={"zz": Item()}),
                Step(id="stray", tool=echo, arguments={"x": Item()}),
            ],
        )
    assert problems_of(excinfo) == [
        ("steps[0] (deep).flow", "sub-flows nest 17 deep; at most 16 are allowed"),
        ("steps[0] (deep).arguments.zz", "unknown input 'zz' of sub-flow 'level16'"),
        ("steps[1] (stray).arguments.x", "Item() is only meaningful in a step with map="),
    ]


# ---- tools() -----------------------------------------------------------------------------------


def test_tools_lists_every_tool_depth_first_with_where_it_is() -> None:
    inner = Flow(
        name="inner",
        steps=[
            Step(id="a", tool=echo, on_error=Fallback(tool=backup)),
            Step(id="b", tool=pair, map=Input("xs"), arguments={"x": Item(), "k": 1}, on_error=Fallback(value=0)),
        ],
    )
    middle = Flow(
        name="middle",
        steps=[
            Step(id="s", flow=inner, arguments={"xs": Input("xs")}, on_error=Fallback(tool=backup)),
            Step(id="m", flow=inner, map=Input("xss"), arguments={"xs": Item()}),
        ],
    )
    top = Flow(
        name="top",
        steps=[Step(id="first", tool=echo), Step(id="t", flow=middle, arguments={"xs": [], "xss": []})],
    )
    assert [(where, t.name) for where, t in top.tools()] == [
        ("steps[0] (first)", "echo"),
        ("steps[1] (t).flow.steps[0] (s).on_error", "backup"),
        ("steps[1] (t).flow.steps[0] (s).flow.steps[0] (a)", "echo"),
        ("steps[1] (t).flow.steps[0] (s).flow.steps[0] (a).on_error", "backup"),
        ("steps[1] (t).flow.steps[0] (s).flow.steps[1] (b)", "pair"),
        ("steps[1] (t).flow.steps[1] (m).flow.steps[0] (a)", "echo"),
        ("steps[1] (t).flow.steps[1] (m).flow.steps[0] (a).on_error", "backup"),
        ("steps[1] (t).flow.steps[1] (m).flow.steps[1] (b)", "pair"),
    ]
    assert top.depth == 3
