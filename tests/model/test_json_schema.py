"""Tools described by JSON Schemas: the same validation path as annotated tools, checked by jsonschema."""

from __future__ import annotations

from typing import Any

import pytest

from flowkernel import Flow, Input, Step
from flowkernel.errors import FlowValidationError
from flowkernel.host.journal.fingerprint import flow_fingerprint
from flowkernel.model.json_schema import schema_tool
from flowkernel.result import ErrorKind
from flowkernel_sync import SyncDriver

pytest.importorskip("jsonschema", reason="JSON Schema tools need the schema extra: pip install 'flowkernel[schema]'")

ARGUMENTS = {
    "type": "object",
    "properties": {"q": {"type": "string", "minLength": 1}, "limit": {"type": "integer", "maximum": 10}},
    "required": ["q"],
}


def search(**arguments: Any) -> dict[str, Any]:
    return {"hits": [arguments["q"]] * arguments.get("limit", 1)}


SEARCH = schema_tool(
    search,
    name="search",
    input_schema=ARGUMENTS,
    output_schema={"type": "object", "properties": {"hits": {"type": "array"}}, "required": ["hits"]},
)


def test_a_flow_is_checked_against_the_schema_when_built_every_problem_at_once() -> None:
    with pytest.raises(FlowValidationError) as raised:
        Flow(
            name="f",
            steps=[
                Step(id="a", tool=SEARCH, arguments={"limit": 11}),
                Step(id="b", tool=SEARCH, arguments={"q": "", "lmit": 2}),
            ],
        )
    assert [str(p) for p in raised.value.problems] == [
        "steps[0] (a).arguments: missing required argument 'q' of tool 'search'",
        "steps[0] (a).arguments.limit: 11 is greater than the maximum of 10 (tool 'search')",
        "steps[1] (b).arguments.lmit: unknown argument 'lmit' of tool 'search'; did you mean 'limit'?",
        "steps[1] (b).arguments.q: '' should be non-empty (tool 'search')",
    ]


def test_arguments_and_results_are_validated_in_runs() -> None:
    flow = Flow(name="f", steps=[Step(id="s", tool=SEARCH, arguments={"q": Input("q"), "limit": 2})])
    assert SyncDriver().run(flow, {"q": "x"}).outputs == {"s": {"hits": ["x", "x"]}}
    bad = SyncDriver().run(flow, {"q": 3}).step("s").error
    assert bad is not None
    assert bad.kind is ErrorKind.INPUT_VALIDATION
    assert bad.message == "search arguments: q: 3 is not of type 'string'"


def test_a_result_that_violates_the_output_schema_is_an_output_validation_error() -> None:
    liar = schema_tool(lambda **_: {"hits": "not a list"}, name="liar", input_schema={"type": "object"},
                       output_schema={"type": "object", "properties": {"hits": {"type": "array"}}})  # fmt: skip
    error = SyncDriver().run(Flow(name="f", steps=[Step(id="l", tool=liar)])).step("l").error
    assert error is not None
    assert error.kind is ErrorKind.OUTPUT_VALIDATION
    assert error.message == "liar result: hits: 'not a list' is not of type 'array'"


def test_names_a_schema_does_not_list_are_accepted_only_where_it_says_so() -> None:
    open_schema = {**ARGUMENTS, "additionalProperties": True}
    tool = schema_tool(search, name="open", input_schema=open_schema)
    flow = Flow(name="f", steps=[Step(id="s", tool=tool, arguments={"q": "x", "extra": 1})])
    assert SyncDriver().run(flow).outputs == {"s": {"hits": ["x"]}}


def test_a_schema_that_is_not_one_is_refused_where_the_tool_is_made() -> None:
    with pytest.raises(TypeError, match=r"not a valid JSON Schema \(at properties/q/type\)"):
        schema_tool(search, name="bad", input_schema={"type": "object", "properties": {"q": {"type": "strng"}}})


def test_a_changed_schema_changes_the_flow_fingerprint() -> None:
    def fingerprint(schema: dict[str, Any]) -> str:
        tool = schema_tool(search, name="search", input_schema=schema)
        return flow_fingerprint(Flow(name="f", steps=[Step(id="s", tool=tool, arguments={"q": "x"})]))

    assert fingerprint(ARGUMENTS) == fingerprint(dict(ARGUMENTS))
    assert fingerprint(ARGUMENTS) != fingerprint({**ARGUMENTS, "required": []})
