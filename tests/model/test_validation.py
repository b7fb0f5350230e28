"""Building a flow validates it and reports every problem at once, in one ``FlowValidationError``."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from flowkernel import Flow, FlowKernelError, FlowValidationError, Input, Problem, Ref, Step, tool
from flowkernel.errors import DefinitionError


class SearchInput(BaseModel):
    query: str
    limit: int = 10


class FlowInputs(BaseModel):
    query: str
    user: str = "anon"


@tool
def source() -> dict[str, object]:
    return {"rows": [{"id": 1}]}


@tool
def one(a: object) -> object:
    return a


@tool
def two(a: object, b: object = None) -> object:
    return a, b


@tool(input_model=SearchInput)
def search(query: str, limit: int) -> list[str]:
    return [query] * limit


def problems_of(excinfo: pytest.ExceptionInfo[FlowValidationError]) -> list[tuple[str, str]]:
    return [(p.location, p.message) for p in excinfo.value.problems]


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(FlowValidationError) as excinfo:
        Flow(
            name="broken",
            input_model=FlowInputs,
            steps=[
                Step(id="fetch", tool=source),
                Step(id="fetch", tool=source),
                Step(id="typo", tool=one, arguments={"a": Ref("fecth")}),
                Step(id="selfish", tool=one, arguments={"a": Ref("selfish")}),
                Step(id="waits", tool=source, after=("waits", "nowhere")),
                Step(id="badpath", tool=one, arguments={"a": Ref("fetch", "rows[[")}),
                Step(id="s", tool=search, arguments={"qurey": "x", "limit": "many"}),
                Step(id="sig", tool=one, arguments={"b": 1}),
                Step(id="inp", tool=one, arguments={"a": Input("qeury")}),
                Step(id="c1", tool=one, arguments={"a": Ref("c2")}),
                Step(id="c2", tool=one, arguments={"a": Ref("c1")}),
            ],
        )
    error = excinfo.value
    assert isinstance(error, FlowKernelError)
    assert error.name == "broken"
    assert all(isinstance(p, Problem) for p in error.problems)
    found = problems_of(excinfo)
    locations = [location for location, _ in found]
    assert locations == [
        "steps[1].id",
        "steps[2] (typo).arguments.a",
        "steps[3] (selfish).arguments.a",
        "steps[4] (waits).after[0]",
        "steps[4] (waits).after[1]",
        "steps[5] (badpath).arguments.a",
        "steps[6] (s).arguments.qurey",
        "steps[6] (s).arguments",
        "steps[6] (s).arguments.limit",
        "steps[7] (sig).arguments",
        "steps[7] (sig).arguments.b",
        "steps[8] (inp).arguments.a",
        "steps",
    ]
    text = str(error)
    assert text.startswith(f"invalid flow 'broken': {len(found)} problems")
    for problem in error.problems:
        assert f"  - {problem.location}: {problem.message}" in text


def test_duplicate_ids_name_the_first_use() -> None:
    with pytest.raises(FlowValidationError) as excinfo:
        Flow(name="f", steps=[Step(id="a", tool=source), Step(id="b", tool=source), Step(id="a", tool=source)])
    assert problems_of(excinfo) == [("steps[2].id", "duplicate step id 'a' (first used by steps[0])")]


def test_unknown_reference_suggests_the_closest_step() -> None:
    with pytest.raises(FlowValidationError) as excinfo:
        Flow(
            name="f",
            steps=[
                Step(id="fetch_users", tool=source),
                Step(id="b", tool=one, arguments={"a": Ref("fetch_user")}),
                Step(id="c", tool=one, arguments={"a": Ref("zzz")}),
            ],
        )
    assert problems_of(excinfo) == [
        ("steps[1] (b).arguments.a", "references unknown step 'fetch_user'; did you mean 'fetch_users'?"),
        ("steps[2] (c).arguments.a", "references unknown step 'zzz'"),
    ]


def test_unknown_refs_nested_in_lists_and_dicts_are_located_precisely() -> None:
    with pytest.raises(FlowValidationError) as excinfo:
        Flow(
            name="f",
            steps=[
                Step(id="a", tool=source),
                Step(id="b", tool=one, arguments={"a": [1, {"k": Ref("ghost")}, (Ref("a"), Ref("a2"))]}),
            ],
        )
    assert problems_of(excinfo) == [
        ("steps[1] (b).arguments.a[1].k", "references unknown step 'ghost'"),
        ("steps[1] (b).arguments.a[2][1]", "references unknown step 'a2'; did you mean 'a'?"),
    ]


def test_unknown_after_and_waiting_for_itself() -> None:
    with pytest.raises(FlowValidationError) as excinfo:
        Flow(name="f", steps=[Step(id="load", tool=source), Step(id="b", tool=source, after=("lod", "b"))])
    assert problems_of(excinfo) == [
        ("steps[1] (b).after[0]", "waits for unknown step 'lod'; did you mean 'load'?"),
        ("steps[1] (b).after[1]", "a step cannot wait for itself"),
    ]


def test_self_reference_is_not_also_reported_as_a_cycle() -> None:
    with pytest.raises(FlowValidationError) as excinfo:
        Flow(name="f", steps=[Step(id="a", tool=one, arguments={"a": Ref("a")})])
    assert problems_of(excinfo) == [("steps[0] (a).arguments.a", "a step cannot reference its own output")]


def test_invalid_jmespath_is_reported_with_its_location() -> None:
    with pytest.raises(FlowValidationError) as excinfo:
        Flow(
            name="f",
            steps=[
                Step(id="a", tool=source),
                Step(id="b", tool=one, arguments={"a": {"deep": Ref("a", "rows[?")}}),
            ],
        )
    [(location, message)] = problems_of(excinfo)
    assert location == "steps[1] (b).arguments.a.deep"
    assert message.startswith("invalid path 'rows[?':")
    assert "\n" not in message


def test_invalid_path_on_an_input_is_reported_too() -> None:
    with pytest.raises(FlowValidationError) as excinfo:
        Flow(name="f", steps=[Step(id="a", tool=one, arguments={"a": Input("q", "a..b")})])
    [(location, message)] = problems_of(excinfo)
    assert location == "steps[0] (a).arguments.a"
    assert message.startswith("invalid path 'a..b'")


def test_a_cycle_is_named() -> None:
    with pytest.raises(FlowValidationError) as excinfo:
        Flow(
            name="f",
            steps=[
                Step(id="root", tool=source),
                Step(id="x", tool=one, arguments={"a": Ref("z")}),
                Step(id="y", tool=one, arguments={"a": Ref("x")}),
                Step(id="z", tool=two, arguments={"a": Ref("y"), "b": Ref("root")}),
                Step(id="tail", tool=one, arguments={"a": Ref("z")}),
            ],
        )
    [(location, message)] = problems_of(excinfo)
    assert location == "steps"
    assert message.startswith("dependency cycle: ")
    names = message.removeprefix("dependency cycle: ").split(" -> ")
    assert names[0] == names[-1]
    assert set(names) == {"x", "y", "z"}
    assert len(names) == 4


def test_two_disjoint_cycles_are_both_reported() -> None:
    with pytest.raises(FlowValidationError) as excinfo:
        Flow(
            name="f",
            steps=[
                Step(id="a1", tool=one, arguments={"a": Ref("a2")}),
                Step(id="a2", tool=one, arguments={"a": Ref("a1")}),
                Step(id="ok", tool=source),
                Step(id="b1", tool=source, after=("b3",)),
                Step(id="b2", tool=source, after=("b1",)),
                Step(id="b3", tool=source, after=("b2",)),
            ],
        )
    found = problems_of(excinfo)
    assert [location for location, _ in found] == ["steps", "steps"]
    cycles = [set(message.removeprefix("dependency cycle: ").split(" -> ")) for _, message in found]
    assert sorted(cycles, key=sorted) == [{"a1", "a2"}, {"b1", "b2", "b3"}]


def test_arguments_are_checked_against_the_input_model() -> None:
    with pytest.raises(FlowValidationError) as excinfo:
        Flow(name="f", steps=[Step(id="s", tool=search, arguments={"qeury": "x", "limit": "lots"})])
    found = problems_of(excinfo)
    assert found[0] == (
        "steps[0] (s).arguments.qeury",
        "unknown argument 'qeury' of tool 'search'; did you mean 'query'?",
    )
    assert found[1] == ("steps[0] (s).arguments", "missing required argument 'query' of tool 'search'")
    location, message = found[2]
    assert location == "steps[0] (s).arguments.limit"
    assert "valid integer" in message
    assert message.endswith("(tool 'search')")
    assert len(found) == 3


def test_literals_of_the_right_type_and_refs_pass_the_input_model_check() -> None:
    flow = Flow(
        name="f",
        steps=[
            Step(id="src", tool=source),
            # a ref is not checked statically; "5" is coercible to int in lax mode
            Step(id="s", tool=search, arguments={"query": Ref("src", "rows[0].id"), "limit": "5"}),
        ],
    )
    assert flow.plan.deps == ((), (0,))


def test_input_model_allowing_extra_fields_accepts_unknown_arguments() -> None:
    class Loose(BaseModel, extra="allow"):
        query: str

    @tool(input_model=Loose)
    def loose(**kwargs: object) -> object:
        return kwargs

    flow = Flow(name="f", steps=[Step(id="s", tool=loose, arguments={"query": "q", "other": 1})])
    assert flow.plan.resolvers[0]([None], {}) == {"query": "q", "other": 1}


def test_arguments_must_fit_a_plain_function_signature() -> None:
    with pytest.raises(FlowValidationError) as excinfo:
        Flow(
            name="f",
            steps=[
                Step(id="missing", tool=two, arguments={"b": 1}),
                Step(id="unknown", tool=two, arguments={"a": 1, "c": 2}),
                Step(id="fine", tool=two, arguments={"a": 1}),
            ],
        )
    found = problems_of(excinfo)
    assert found == [
        ("steps[0] (missing).arguments", "missing required argument 'a' of tool 'two'"),
        ("steps[1] (unknown).arguments.c", "unknown argument 'c' of tool 'two'"),
    ]


def test_signature_mismatches_are_all_reported() -> None:
    with pytest.raises(FlowValidationError) as excinfo:
        Flow(name="f", steps=[Step(id="s", tool=two, arguments={"c": 1})])
    messages = " | ".join(message for _, message in problems_of(excinfo))
    assert "'a'" in messages
    assert "'c'" in messages


def test_kwargs_functions_and_builtins_accept_any_arguments() -> None:
    @tool
    def anything(**kwargs: object) -> object:
        return kwargs

    flow = Flow(
        name="f",
        steps=[
            Step(id="a", tool=anything, arguments={"x": 1, "y": 2}),
            Step(id="b", tool=tool(name="max")(max), arguments={"whatever": 1}),
        ],
    )
    assert flow.plan.step_ids == ("a", "b")


def test_refs_to_inputs_missing_from_the_input_model() -> None:
    with pytest.raises(FlowValidationError) as excinfo:
        Flow(
            name="f",
            input_model=FlowInputs,
            steps=[
                Step(id="a", tool=two, arguments={"a": Input("query"), "b": Input("usr", "name")}),
            ],
            outputs={"x": Ref("a")},
        )
    assert problems_of(excinfo) == [
        ("steps[0] (a).arguments.b", "references unknown flow input 'usr'; did you mean 'user'?")
    ]


def test_inputs_are_not_checked_without_an_input_model() -> None:
    flow = Flow(name="f", steps=[Step(id="a", tool=one, arguments={"a": Input("anything")})])
    assert flow.plan.input_names == ("anything",)


def test_outputs_must_reference_known_steps() -> None:
    with pytest.raises(FlowValidationError) as excinfo:
        Flow(
            name="f",
            steps=[Step(id="a", tool=source)],
            outputs={"good": Ref("a", "rows"), "bad": Ref("aa"), "path": Ref("a", "[")},
        )
    found = problems_of(excinfo)
    assert found[0] == ("outputs.bad", "references unknown step 'aa'; did you mean 'a'?")
    assert found[1][0] == "outputs.path"
    assert found[1][1].startswith("invalid path '['")
    assert len(found) == 2


def test_an_empty_flow_is_invalid() -> None:
    with pytest.raises(FlowValidationError) as excinfo:
        Flow(name="empty", steps=[])
    assert problems_of(excinfo) == [("steps", "a flow needs at least one step")]
    assert str(excinfo.value) == "invalid flow 'empty': 1 problem\n  - steps: a flow needs at least one step"


@pytest.mark.parametrize("bad_id", ["1st", "has space", "", "a@1", "x/y", "ünï"])
def test_bad_step_ids_are_rejected(bad_id: str) -> None:
    with pytest.raises(DefinitionError) as excinfo:
        Step(id=bad_id, tool=source)
    assert [problem.location for problem in excinfo.value.problems] == ["id"]


@pytest.mark.parametrize("good_id", ["a", "_x", "fetch-users.v2", "A9_b-c.d"])
def test_good_step_ids_are_accepted(good_id: str) -> None:
    assert Step(id=good_id, tool=source).id == good_id


def test_step_and_flow_reject_unknown_fields() -> None:
    with pytest.raises(DefinitionError):
        Step(id="a", tool=source, retries=3)  # type: ignore[call-arg]
    with pytest.raises(FlowValidationError):
        Flow(name="f", steps=[Step(id="a", tool=source)], owner="me")  # type: ignore[call-arg]
    with pytest.raises(FlowValidationError):
        Flow(name="", steps=[Step(id="a", tool=source)])


def test_a_valid_flow_with_nested_refs_builds_with_the_right_plan() -> None:
    flow = Flow(
        name="dag",
        version="7",
        steps=[
            Step(id="a", tool=source),
            Step(id="b", tool=source),
            Step(id="c", tool=two, arguments={"a": [Ref("b"), {"x": Ref("a", "rows[0].id")}], "b": {"n": [1, 2]}}),
            Step(id="d", tool=one, arguments={"a": {"deep": [[Ref("c")]]}}, after=("a",)),
            Step(id="e", tool=source, after=("b",)),
        ],
    )
    plan = flow.plan
    assert plan.step_ids == ("a", "b", "c", "d", "e")
    assert plan.deps == ((), (), (0, 1), (0, 2), (1,))
    assert plan.dependents == ((2, 3), (2, 4), (3,), (), ())
    assert [(name, index) for name, index, _ in plan.outputs] == [("d", 3), ("e", 4)]
    assert flow.step("c").id == "c"
    assert repr(flow) == "Flow('dag', version='7', steps=5)"


def test_flow_is_immutable() -> None:
    flow = Flow(name="f", steps=[Step(id="a", tool=source)])
    with pytest.raises(ValidationError):
        flow.name = "g"  # type: ignore[misc]
    step = flow.steps[0]
    with pytest.raises(ValidationError):
        step.id = "b"  # type: ignore[misc]


def test_unhashable_callable_objects_can_be_tools() -> None:
    class Fetch:
        __hash__ = None  # type: ignore[assignment]  # like a @dataclass instance with eq=True

        def __init__(self, base: str) -> None:
            self.base = base

        def __call__(self, path: str) -> str:
            return self.base + path

    fetch = tool(name="fetch")(Fetch("http://x"))
    flow = Flow(name="f", steps=[Step(id="a", tool=fetch, arguments={"path": "/y"})])
    assert flow.plan.step_ids == ("a",)
