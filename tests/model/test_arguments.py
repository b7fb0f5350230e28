"""Argument checks: the shortcut for steps without literals agrees with validating them."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, model_validator

from flowkernel.model.arguments import ToolFacts, _literal_problems, validated_literal_problems
from flowkernel.model.json_schema import schema_arguments_model
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
