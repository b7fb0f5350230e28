"""Cache keys: canonical JSON of the arguments (order and spacing never matter), the tool's name and
version in the key, and a typed error naming the argument that is not JSON data."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from pydantic import BaseModel

from flowkernel.errors import CacheKeyError, FlowKernelError
from flowkernel.host.cache import cache_key, json_value


class Point(BaseModel):
    x: int
    y: int


def test_key_order_does_not_matter_but_tool_version_and_values_do() -> None:
    one = cache_key("t", "1", {"a": 1, "b": {"y": [1, 2], "x": "é"}})
    assert one == cache_key("t", "1", {"b": {"x": "é", "y": [1, 2]}, "a": 1})
    assert one.arguments == '{"a":1,"b":{"x":"é","y":[1,2]}}'
    others = {
        cache_key("u", "1", {"a": 1, "b": {"y": [1, 2], "x": "é"}}).digest,
        cache_key("t", "2", {"a": 1, "b": {"y": [1, 2], "x": "é"}}).digest,
        cache_key("t", "1", {"a": 1.0, "b": {"y": [1, 2], "x": "é"}}).digest,
        cache_key("t", "1", {"a": True, "b": {"y": [1, 2], "x": "é"}}).digest,
        cache_key("t", "1", {"a": "1", "b": {"y": [1, 2], "x": "é"}}).digest,
        cache_key("t", "1", {"a": 1, "b": {"y": [2, 1], "x": "é"}}).digest,
    }
    assert one.digest not in others
    assert len(others) == 6


def test_tuples_key_as_lists_and_models_as_their_json() -> None:
    assert cache_key("t", "1", {"a": (1, 2)}) == cache_key("t", "1", {"a": [1, 2]})
    assert cache_key("t", "1", {"p": Point(x=1, y=2)}).arguments == '{"p":{"x":1,"y":2}}'


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"when": dt.date(2026, 1, 1)}, "arguments.when is a date, not JSON data"),
        ({"rows": [1, {"blob": b"x"}]}, "arguments.rows[1].blob is a bytes"),
        ({"x": math.nan}, "arguments.x is nan"),
        ({"m": {1: "a"}}, "arguments.m has a key that is not a string"),
        ({"s": {1, 2}}, "arguments.s is a set"),
    ],
)
def test_arguments_that_are_not_json_data_are_a_typed_error_naming_them(arguments: dict, says: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(CacheKeyError, match=r"cannot key the step cache") as raised:
        cache_key("t", "1", arguments)
    assert says in str(raised.value)
    assert isinstance(raised.value, FlowKernelError)
    assert isinstance(raised.value, TypeError)


def test_deep_nesting_is_refused_not_a_crash() -> None:
    deep: list[object] = []
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(CacheKeyError, match="nested deeper"):
        cache_key("t", "1", {"deep": deep})
    assert json_value(deep) is None


@pytest.mark.parametrize(
    "value", [{"a": [1, 2.5, None, True, "x"]}, [], "", 0, None, {"b": 1, "a": 2}], ids=lambda v: repr(v)[:20]
)
def test_plain_json_values_are_stored_with_their_keys_in_order(value: object) -> None:
    import json

    text = json_value(value)
    assert text is not None
    assert json.loads(text) == value
    if isinstance(value, dict):
        assert list(json.loads(text)) == list(value)


@pytest.mark.parametrize(
    "value", [(1, 2), b"x", Point(x=1, y=2), math.inf, {1: "a"}, [dt.date(2026, 1, 1)], {"a": {1, 2}}]
)
def test_values_that_would_not_read_back_the_same_are_not_stored(value: object) -> None:
    assert json_value(value) is None
