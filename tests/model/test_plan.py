"""The compiled plan: argument resolvers (refs nested anywhere, paths, inputs) and output getters."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from flowkernel import Flow, Input, Ref, Step, tool


class Profile(BaseModel):
    name: str
    emails: list[str]


@tool
def anything(**kwargs: Any) -> Any:
    return kwargs


def resolve(flow: Flow, step_id: str, outputs: list[Any], inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    i = flow.plan.step_ids.index(step_id)
    return flow.plan.resolvers[i](outputs, inputs or {})


def test_literal_arguments_resolve_to_a_fresh_copy_each_time() -> None:
    flow = Flow(name="f", steps=[Step(id="a", tool=anything, arguments={"n": 1, "s": "x"})])
    first = resolve(flow, "a", [None])
    assert first == {"n": 1, "s": "x"}
    first["n"] = 99
    assert resolve(flow, "a", [None]) == {"n": 1, "s": "x"}
    assert resolve(flow, "a", [None]) is not resolve(flow, "a", [None])


def test_a_single_ref_argument_with_a_projection() -> None:
    flow = Flow(
        name="f",
        steps=[
            Step(id="rows", tool=anything),
            Step(id="ids", tool=anything, arguments={"ids": Ref("rows", "rows[*].id")}),
        ],
    )
    outputs = [{"rows": [{"id": 4}, {"id": 5}]}, None]
    assert resolve(flow, "ids", outputs) == {"ids": [4, 5]}


def test_refs_nested_in_lists_and_dicts_are_resolved_and_literals_kept() -> None:
    flow = Flow(
        name="f",
        steps=[
            Step(id="a", tool=anything),
            Step(id="b", tool=anything),
            Step(
                id="c",
                tool=anything,
                arguments={
                    "items": [Ref("a"), 2, {"k": Ref("b", "x"), "lit": [1, 2]}, (Ref("a"), "t")],
                    "mapping": {"outer": {"inner": [Ref("b", "y[1]")]}},
                    "plain": "kept",
                    "query": Input("q", "terms[0]"),
                },
            ),
        ],
    )
    outputs = ["A", {"x": "bx", "y": [0, "second"]}, None]
    arguments = resolve(flow, "c", outputs, {"q": {"terms": ["first", "other"]}})
    assert arguments == {
        "items": ["A", 2, {"k": "bx", "lit": [1, 2]}, ("A", "t")],
        "mapping": {"outer": {"inner": ["second"]}},
        "plain": "kept",
        "query": "first",
    }
    assert type(arguments["items"]) is list
    assert type(arguments["items"][3]) is tuple


def test_input_without_and_with_path() -> None:
    flow = Flow(
        name="f",
        steps=[Step(id="a", tool=anything, arguments={"whole": Input("cfg"), "part": Input("cfg", "db.port")})],
    )
    cfg = {"db": {"port": 5432}}
    assert resolve(flow, "a", [None], {"cfg": cfg}) == {"whole": cfg, "part": 5432}
    assert flow.plan.input_names == ("cfg",)


def test_paths_into_a_pydantic_model_output() -> None:
    flow = Flow(
        name="f",
        steps=[
            Step(id="p", tool=anything),
            Step(id="use", tool=anything, arguments={"whole": Ref("p"), "first": Ref("p", "emails[0]")}),
        ],
    )
    profile = Profile(name="ada", emails=["a@x", "b@x"])
    arguments = resolve(flow, "use", [profile, None])
    assert arguments["whole"] is profile
    assert arguments["first"] == "a@x"


def test_input_names_are_listed_once_in_first_use_order() -> None:
    flow = Flow(
        name="f",
        steps=[
            Step(id="a", tool=anything, arguments={"x": Input("beta"), "y": [Input("alpha", "z")]}),
            Step(id="b", tool=anything, arguments={"x": Input("alpha"), "y": Input("gamma")}),
        ],
    )
    assert flow.plan.input_names == ("beta", "alpha", "gamma")


def test_default_outputs_are_the_steps_nothing_depends_on() -> None:
    flow = Flow(
        name="f",
        steps=[
            Step(id="a", tool=anything),
            Step(id="b", tool=anything, arguments={"x": Ref("a")}),
            Step(id="c", tool=anything, after=("a",)),
        ],
    )
    outputs = [(name, index, getter(["A", "B", "C"], {})) for name, index, getter in flow.plan.outputs]
    assert outputs == [("b", 1, "B"), ("c", 2, "C")]


def test_explicit_outputs_with_paths() -> None:
    flow = Flow(
        name="f",
        steps=[Step(id="a", tool=anything), Step(id="b", tool=anything, arguments={"x": Ref("a")})],
        outputs={"count": Ref("a", "length(rows)"), "first": Ref("a", "rows[0]"), "all": Ref("b")},
    )
    values = ({"rows": [7, 8, 9]}, "B")
    got = {name: (index, getter(values, {})) for name, index, getter in flow.plan.outputs}
    assert got == {"count": (0, 3), "first": (0, 7), "all": (1, "B")}
