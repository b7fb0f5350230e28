"""Argument checks: the shortcut for steps without literals agrees with validating them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, model_validator

from flowkernel import Ref, Step, tool
from flowkernel.model.arguments import ToolFacts, _literal_problems, argument_problems, validated_literal_problems
from flowkernel.model.json_schema import schema_arguments_model
from flowkernel.model.scan import scan_step
from flowkernel.model.signature import arguments_model


class Plain(BaseModel):
    x: int
    y: str = "y"


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")
    x: int


class PicksOnEmpty(BaseModel):
    x: int = 0

    @model_validator(mode="before")
    @classmethod
    def _refuse_empty(cls, data: Any) -> Any:
        if not data:
            raise ValueError("give me something")
        return data


def _unresolvable() -> type[BaseModel]:
    """A model whose annotation names nothing pydantic can find: unusable until rebuilt."""
    return type("Broken", (BaseModel,), {"__annotations__": {"y": "NotDefinedAnywhere"}})


def _annotated(x: int, y: list[int]) -> int:
    return x


MODELS: dict[str, type[BaseModel]] = {
    "plain": Plain,
    "open": Open,
    "picks on empty": PicksOnEmpty,
    "unresolvable": _unresolvable(),
    "schema": schema_arguments_model("t", {"type": "object", "properties": {"x": {"type": "integer"}}}),
    "signature": arguments_model(_annotated, "annotated", "idempotency_key") or Plain,
}


@pytest.mark.parametrize("name", list(MODELS))
def test_no_literals_give_what_validating_no_literals_gives(name: str) -> None:
    model = MODELS[name]
    facts = ToolFacts()
    general = list(validated_literal_problems("t", model, {}))
    assert list(_literal_problems("t", model, {}, facts)) == general
    assert list(_literal_problems("t", model, {}, facts)) == general  # the second time from the facts


def test_an_unusable_model_is_reported_by_both() -> None:
    model = MODELS["unresolvable"]
    found = list(_literal_problems("t", model, {}, ToolFacts()))
    assert len(found) == 1
    assert found[0].location == "tool"
    assert found[0].message.startswith("the input model of tool 't' is unusable: ")


def test_literals_are_validated() -> None:
    found = list(_literal_problems("t", Plain, {"x": "many"}, ToolFacts()))
    assert [(p.location, p.message.split(",")[0]) for p in found] == [
        ("arguments.x", "Input should be a valid integer")
    ]


def _signatures() -> dict[str, Any]:
    def plain(x: Any, y: Any = 1) -> None: ...
    def rest(x: Any, **kwargs: Any) -> None: ...
    def positional(a: Any, /, b: Any) -> None: ...
    def positional_default(a: Any = 1, /, *, k: Any) -> None: ...
    def keyed(x: Any, idempotency_key: str) -> None: ...
    def keyed_rest(idempotency_key: str, **kwargs: Any) -> None: ...
    def none() -> None: ...

    return {f.__name__: f for f in (plain, rest, positional, positional_default, keyed, keyed_rest, none)}


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(_signatures())),
    st.sets(st.sampled_from(["x", "y", "a", "b", "k", "kwargs", "idempotency_key", "other"]), max_size=4),
)
def test_accepting_a_step_agrees_with_finding_no_problem(name: str, names: set[str]) -> None:
    signature = ToolFacts().signature(tool(_signatures()[name], validate=False))
    assert signature is not None
    arguments = dict.fromkeys(names, 0)
    assert signature.accepts(arguments) == (list(signature.problems(arguments)) == [])


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(set(MODELS) - {"unresolvable"})),
    st.sets(st.sampled_from(["x", "y", "z", "a"]), max_size=3),
)
def test_accepting_names_agrees_with_finding_no_problem(name: str, names: set[str]) -> None:
    model_names = ToolFacts().names(MODELS[name])
    arguments = dict.fromkeys(names, 0)
    assert model_names.accepts(arguments) == (list(model_names.problems("t", arguments)) == [])


def test_a_tools_signature_is_read_once_while_it_lives() -> None:
    import gc

    from flowkernel.model import arguments

    def f(x: Any) -> None: ...

    made = tool(f, validate=False)
    first = ToolFacts().signature(made)
    assert ToolFacts().signature(made) is first  # another build, the same facts
    key = id(made)
    assert key in arguments._signatures
    del made
    gc.collect()
    assert key not in arguments._signatures


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([None, *sorted(MODELS)]),
    st.sampled_from(sorted(_signatures())),
    st.dictionaries(st.sampled_from(["x", "y", "z", "k"]), st.sampled_from([0, "s", Ref("a"), [Ref("a")]]), max_size=3),
)
def test_a_step_that_fits_has_no_argument_problem(model: str | None, function: str, arguments: dict[str, Any]) -> None:
    """``ToolFacts.fits`` (the build's fast answer) never passes a step ``argument_problems`` finds fault with,
    and answers as it does for a step without literals, models or not."""
    step_tool = tool(_signatures()[function], validate=False, input_model=None if model is None else MODELS[model])
    step = Step(id="s", tool=step_tool, arguments=arguments)
    scan = scan_step(step)
    found = list(argument_problems(step, scan, ToolFacts()))
    fits = ToolFacts().fits(scan)
    assert not fits or found == []
    if 0 not in scan.kinds:  # no literal to validate: the two answers are the same
        assert fits == (found == [])
