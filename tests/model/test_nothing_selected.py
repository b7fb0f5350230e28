"""A path that selects nothing is an argument error, unless the source gives a default (issue 10, item 14)."""

from __future__ import annotations

import pickle
from typing import Any

from flowkernel import Context, ContextPolicy, ErrorKind, Flow, Input, Item, Ref, Step, tool
from flowkernel.model.refs import MISSING
from flowkernel.result import ExecutionResult, StepStatus
from flowkernel_sync import SyncDriver

SEEN: list[Any] = []


@tool
def profile() -> dict[str, Any]:
    return {"user": {"name": "ann", "address": None, "tags": []}}


@tool
def shout(s: Any) -> Any:
    SEEN.append(s)
    return s.upper() if isinstance(s, str) else s


def run_with(source: Any, **flow: Any) -> ExecutionResult:
    SEEN.clear()
    steps = [Step(id="profile", tool=profile), Step(id="use", tool=shout, arguments={"s": source}, after=("profile",))]
    inputs = {"cfg": {"a": None}} if isinstance(source, Input) else None
    return SyncDriver().run(Flow(name="f", steps=steps, outputs={"use": Ref("use")}, **flow), inputs)


def test_a_path_that_selects_nothing_fails_the_step_naming_the_step_and_path() -> None:
    result = run_with(Ref("profile", "user.address.zip"))
    [error] = result.errors
    assert (error.kind, error.type, error.step) == (ErrorKind.ARGUMENT, "PathError", "use")
    assert error.message == (
        "path 'user.address.zip' selects nothing (null) in the output of step 'profile';"
        " give Ref(..., default=...) the value to use then"
    )
    assert SEEN == []  # the tool was never called with None


def test_an_explicit_null_is_nothing_too() -> None:
    result = run_with(Ref("profile", "user.address"))
    assert result.step("use").status is StepStatus.FAILED


def test_a_default_is_used_when_nothing_is_selected_and_only_then() -> None:
    assert run_with(Ref("profile", "user.address.zip", default="none")).outputs == {"use": "NONE"}
    assert run_with(Ref("profile", "user.address", default=None)).outputs == {"use": None}
    assert run_with(Ref("profile", "user.name", default="x")).outputs == {"use": "ANN"}
    assert run_with(Ref("profile", "user.tags", default=["x"])).outputs == {"use": []}  # empty is not nothing


def test_a_mutable_default_is_copied_for_each_call() -> None:
    default: list[int] = []
    run_with(Ref("profile", "nope", default=default))
    assert SEEN == [[]]
    assert SEEN[0] is not default


def test_a_whole_output_is_never_checked() -> None:
    @tool
    def nothing() -> None:
        return None

    flow = Flow(name="g", steps=[Step(id="n", tool=nothing), Step(id="use", tool=shout, arguments={"s": Ref("n")})])
    assert SyncDriver().run(flow).outputs == {"use": None}


def test_inputs_context_and_items_follow_the_same_rule() -> None:
    assert run_with(Input("cfg", "a")).errors[0].message.startswith("path 'a' selects nothing (null) in flow input")
    assert run_with(Input("cfg", "a", default=1)).outputs == {"use": 1}
    ctx = run_with(Context("nope"), context=ContextPolicy())
    assert "in the step's context" in ctx.errors[0].message
    assert run_with(Context("nope", default=2), context=ContextPolicy()).outputs == {"use": 2}
    each = [
        Step(id="profile", tool=profile),
        Step(id="use", tool=shout, map=Input("rows"), arguments={"s": Item("name")}),
    ]
    mapped = SyncDriver().run(Flow(name="m", steps=each), {"rows": [{"name": "a"}, {}]})
    assert mapped.errors[0].kind is ErrorKind.ARGUMENT
    each[1] = Step(id="use", tool=shout, map=Input("rows"), arguments={"s": Item("name", default="?")})
    assert SyncDriver().run(Flow(name="m", steps=each), {"rows": [{"name": "a"}, {}]}).outputs["use"] == ["A", "?"]


def test_a_map_source_that_selects_nothing_is_an_argument_error() -> None:
    steps = [
        Step(id="profile", tool=profile),
        Step(id="use", tool=shout, map=Ref("profile", "rows"), arguments={"s": Item()}),
    ]
    [error] = SyncDriver().run(Flow(name="m", steps=steps)).errors
    assert (error.kind, error.type) == (ErrorKind.ARGUMENT, "PathError")


def test_flow_outputs_are_null_or_their_default_never_an_error() -> None:
    steps = [Step(id="profile", tool=profile)]
    outputs = {"zip": Ref("profile", "user.address.zip"), "z": Ref("profile", "nope", default=0)}
    result = SyncDriver().run(Flow(name="o", steps=steps, outputs=outputs))
    assert result.outputs == {"zip": None, "z": 0}


def test_sources_without_a_default_keep_their_repr_and_hash() -> None:
    assert repr(Ref("a", "b")) == "Ref(step='a', path='b')"
    assert repr(Input("a")) == "Input(name='a', path='')"
    assert repr(Ref("a", "b", default=[1])) == "Ref(step='a', path='b', default=[1])"
    assert hash(Ref("a", "b", default=[1])) == hash(Ref("a", "b"))  # an unhashable default is fine
    assert Ref("a", "b", default=None) != Ref("a", "b")
    assert pickle.loads(pickle.dumps(Ref("a", "b"))).default is MISSING


def test_an_element_whose_item_path_selects_nothing_names_the_element_and_item() -> None:
    # Regression: the message named the map's internal input ('flow input 'item1'') and told the user
    # to give Input(..., default=...), a source they never wrote.
    each = [Step(id="use", tool=shout, map=Input("rows"), arguments={"s": Item("name")})]
    [error] = SyncDriver().run(Flow(name="m", steps=each), {"rows": [{"name": "a"}, {}]}).errors
    assert error.message == (
        "element 1 failed: path 'name' selects nothing (null) in the element;"
        " give Item(..., default=...) the value to use then"
    )
    inner = SyncDriver().run(Flow(name="m", steps=each), {"rows": [{}]}).step("use").subflow
    assert inner is not None
    assert inner.errors[0].message.startswith("path 'name' selects nothing (null) in the element;")
