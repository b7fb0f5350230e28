"""``Flow.input_schema()`` and ``Flow.output_schema()``: built from the models the flow declares, valid
JSON Schemas that real runs' inputs and outputs satisfy (checked with ``jsonschema``), ``{}`` where
nothing says what a value is, and definitions of nested models gathered in one ``$defs``."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, create_model

from flowkernel import Flow, Input, Item, Ref, Step, tool
from flowkernel.json_values import json_ready
from flowkernel.model import Fallback
from flowkernel_sync import SyncDriver


class Address(BaseModel):
    city: str


class Person(BaseModel):
    name: str
    home: Address


class Options(BaseModel):
    n: int
    label: str = "x"


@tool
def numbers(n: int) -> list[int]:
    return list(range(n))


@tool
def square(x: int) -> int:
    return x * x


@tool
def person(name: str) -> Person:
    return Person(name=name, home=Address(city="Lyon"))


@tool
def untyped(value):  # type: ignore[no-untyped-def]
    return value


def squares() -> Flow:
    return Flow(
        name="squares",
        description="the squares below n",
        steps=[
            Step(id="list", tool=numbers, arguments={"n": Input("n")}),
            Step(id="each", tool=square, map=Ref("list"), arguments={"x": Item()}),
        ],
    )


def valid(schema: dict[str, Any], value: Any) -> bool:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema).is_valid(value)


def test_description_defaults_to_empty_and_is_kept() -> None:
    assert Flow(name="f", steps=[Step(id="a", tool=square, arguments={"x": 1})]).description == ""
    assert squares().description == "the squares below n"


def test_input_schema_from_the_input_model() -> None:
    flow = Flow(name="f", input_model=Options, steps=[Step(id="a", tool=square, arguments={"x": Input("n")})])
    schema = flow.input_schema()
    assert schema == Options.model_json_schema()
    assert valid(schema, {"n": 3})
    assert not valid(schema, {"n": "three"})
    assert not valid(schema, {})


def test_input_schema_from_references_types_each_input_by_the_field_it_feeds() -> None:
    flow = Flow(
        name="f",
        steps=[
            Step(id="a", tool=square, arguments={"x": Input("n")}),
            Step(id="b", tool=untyped, arguments={"value": Input("anything")}),
            Step(id="c", tool=square, arguments={"x": Input("rows", "[0]")}),  # a part of it: unknown
        ],
    )
    schema = flow.input_schema()
    assert schema == {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "anything": {}, "rows": {}},
        "required": ["n", "anything", "rows"],
        "additionalProperties": False,
    }
    assert valid(schema, {"n": 2, "anything": None, "rows": [1]})
    assert not valid(schema, {"n": "2", "anything": 1, "rows": [1]})
    assert not valid(schema, {"n": 2, "anything": 1, "rows": [1], "typo": 0})  # the run refuses it too


def test_an_input_fed_to_fields_that_disagree_is_unknown() -> None:
    @tool
    def shout(x: str) -> str:
        return x.upper()

    flow = Flow(
        name="f",
        steps=[
            Step(id="a", tool=square, arguments={"x": Input("v")}),
            Step(id="b", tool=shout, arguments={"x": Input("v")}),
        ],
    )
    assert flow.input_schema()["properties"] == {"v": {}}


def test_input_schema_through_a_sub_flow_and_a_map_source() -> None:
    outer = Flow(
        name="outer",
        steps=[
            Step(id="inner", flow=squares(), arguments={"n": Input("count")}),
            Step(id="each", tool=square, map=Input("values"), arguments={"x": Item()}),
        ],
    )
    properties = outer.input_schema()["properties"]
    assert properties == {"count": {"type": "integer"}, "values": {"type": "array"}}


def test_output_schema_types_each_output_by_its_step() -> None:
    flow = Flow(
        name="f",
        steps=[
            Step(id="list", tool=numbers, arguments={"n": 3}),
            Step(id="each", tool=square, map=Ref("list"), arguments={"x": Item()}),
            Step(id="who", tool=person, arguments={"name": "Ada"}),
            Step(id="raw", tool=untyped, arguments={"value": [1, "a"]}),
        ],
    )
    schema = flow.output_schema()
    properties = schema["properties"]
    assert properties["each"] == {"type": "array", "items": {"type": "integer"}}
    assert properties["raw"] == {}
    assert properties["who"]["properties"]["home"] == {"$ref": "#/$defs/Address"}
    assert set(schema["$defs"]) == {"Address"}  # the model's nested definitions, moved to the document's
    result = SyncDriver().run(flow)
    assert valid(schema, json_ready(result.outputs))
    assert not valid(schema, {"who": {"name": "Ada", "home": {"city": 3}}})


def test_output_schema_of_a_sub_flow_step_is_its_flows_and_named_outputs_follow_their_refs() -> None:
    outer = Flow(
        name="outer",
        steps=[
            Step(id="inner", flow=squares(), arguments={"n": 3}),
            Step(id="who", tool=person, arguments={"name": "Ada"}),
        ],
        outputs={"inner": Ref("inner"), "city": Ref("who", "home.city"), "who": Ref("who")},
    )
    schema = outer.output_schema()
    assert schema["properties"]["inner"] == squares().output_schema()
    assert schema["properties"]["city"] == {}  # a path selects what no model names
    assert "required" not in schema  # a run gives only the outputs whose step succeeded
    assert valid(schema, json_ready(SyncDriver().run(outer).outputs))


def test_steps_whose_output_may_not_be_the_models_are_unknown() -> None:
    flow = Flow(
        name="f",
        steps=[
            Step(id="a", tool=square, arguments={"x": 1}, on_error="continue"),
            Step(id="b", tool=square, arguments={"x": 1}, on_error=Fallback(value="none")),
        ],
    )
    assert flow.output_schema()["properties"] == {"a": {}, "b": {}}


def test_definitions_with_one_name_from_two_models_are_kept_apart() -> None:
    def flow_returning(holder: type[BaseModel], value: dict[str, Any], name: str) -> Flow:
        make = tool(lambda: holder(row=value), name=f"make_{name}", output_model=holder)
        return Flow(name=name, steps=[Step(id="make", tool=make)])

    first_row = create_model("Row", id=(int, ...))
    second_row = create_model("Row", label=(str, ...))  # another model, the same name
    First = create_model("First", row=(first_row, ...))
    Second = create_model("Second", row=(second_row, ...))

    first, second = flow_returning(First, {"id": 1}, "first"), flow_returning(Second, {"label": "a"}, "second")
    both = Flow(name="both", steps=[Step(id="one", flow=first), Step(id="two", flow=second)])
    schema = both.output_schema()
    assert sorted(schema["$defs"]) == ["Row", "Row_2"]
    result = SyncDriver().run(both)
    assert valid(schema, json_ready(result.outputs))
    swapped = {"one": {"make": {"row": {"label": "a"}}}, "two": {"make": {"row": {"label": "a"}}}}
    assert not valid(schema, swapped)


@pytest.mark.parametrize("method", ["input_schema", "output_schema"])
def test_each_call_gives_a_new_dict(method: str) -> None:
    flow = squares()
    first = getattr(flow, method)()
    first["properties"].clear()
    assert getattr(flow, method)()["properties"]


def test_a_model_pydantic_cannot_describe_gives_an_unknown_schema() -> None:
    class Opaque:
        pass

    @tool
    def make() -> Opaque:
        return Opaque()

    assert Flow(name="f", steps=[Step(id="a", tool=make)]).output_schema()["properties"] == {"a": {}}
