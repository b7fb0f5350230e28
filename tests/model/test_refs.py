"""References and JMESPath selection: ``Ref``, ``Input``, ``compile_path``, ``select``."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from flowkernel import Input, Ref
from flowkernel.model.refs import _INTERPRETER, PathError, compile_path, select


class Address(BaseModel):
    city: str
    zips: list[int]


class User(BaseModel):
    name: str
    address: Address
    tags: list[str] = []


def sel(path: str, value: object) -> object:
    expression = compile_path(path)
    assert expression is not None
    return select(expression, value)


def test_the_empty_path_selects_the_whole_value() -> None:
    assert compile_path("") is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a", {"b": [10, 20, {"c": "deep"}]}),
        ("a.b", [10, 20, {"c": "deep"}]),
        ("a.b[0]", 10),
        ("a.b[-1].c", "deep"),
        ("a.b[2].c", "deep"),
        ("a.missing", None),
        ("a.b[9]", None),
        ('"weird key"', 1),
    ],
)
def test_paths_select_into_nested_dicts_and_lists(path: str, expected: object) -> None:
    value = {"a": {"b": [10, 20, {"c": "deep"}]}, "weird key": 1}
    assert sel(path, value) == expected


def test_projections_and_filters() -> None:
    value = {"rows": [{"id": 1, "ok": True}, {"id": 2, "ok": False}, {"id": 3, "ok": True}]}
    assert sel("rows[*].id", value) == [1, 2, 3]
    assert sel("rows[?ok].id", value) == [1, 3]
    assert sel("length(rows)", value) == 3
    assert sel("rows[0:2].id", value) == [1, 2]
    assert sel("[0].id", value["rows"]) == 1


def test_paths_select_into_pydantic_models_as_their_fields() -> None:
    user = User(name="ada", address=Address(city="London", zips=[1, 2]), tags=["x"])
    assert sel("name", user) == "ada"
    assert sel("address.city", user) == "London"
    assert sel("address.zips[1]", user) == 2
    assert sel("address", user) == Address(city="London", zips=[1, 2])  # the model itself, not a dump


def test_paths_select_into_pydantic_models_nested_in_plain_containers() -> None:
    user = User(name="ada", address=Address(city="London", zips=[1]))
    assert sel("user.name", {"user": user}) == "ada"
    assert sel("[0].address.city", [user]) == "London"


def test_a_path_that_fails_when_evaluated_raises_path_error() -> None:
    expression = compile_path("length(@)")
    assert expression is not None
    with pytest.raises(PathError, match=r"path 'length\(@\)' failed"):
        select(expression, 5)


def test_a_path_that_does_not_parse_raises_path_error_on_one_line() -> None:
    with pytest.raises(PathError) as excinfo:
        compile_path("rows[*")
    assert isinstance(excinfo.value, ValueError)
    assert str(excinfo.value).startswith("invalid path 'rows[*':")
    assert "\n" not in str(excinfo.value)


def test_ref_and_input_are_small_immutable_values() -> None:
    ref = Ref("fetch", "rows[0]")
    assert ref == Ref("fetch", "rows[0]")
    assert ref != Ref("fetch")
    assert hash(ref) == hash(Ref("fetch", "rows[0]"))
    assert Ref("fetch").path == ""
    assert str(ref) == "ref(fetch.rows[0])"
    assert str(Ref("fetch")) == "ref(fetch)"
    assert str(Input("q", "a.b")) == "input(q.a.b)"
    assert str(Input("q")) == "input(q)"
    assert Ref("x") != Input("x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.step = "other"  # type: ignore[misc]


# ---- a plain name is read without the interpreter: the same answer as the interpreter's -------------


class _Extra(BaseModel, extra="allow"):
    x: int = 1


class _WithGet:
    def get(self, name: str) -> str:
        return f"got {name}"


_FIELD_VALUES = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["x", "y", "z"]), st.integers() | st.none(), max_size=3),
    st.builds(_Extra, x=st.integers()),
    st.builds(lambda y: _Extra(x=0, y=y), st.integers()),
    st.just(_WithGet()),
)


@given(value=_FIELD_VALUES, name=st.sampled_from(["x", "y", "z"]))
def test_a_plain_name_selects_what_the_interpreter_selects(value: Any, name: str) -> None:
    expression = compile_path(name)
    assert expression is not None
    assert expression.parsed["type"] == "field"  # so select takes its shortcut
    assert select(expression, value) == _INTERPRETER.visit(expression.parsed, value)
    nested = compile_path(f"[{name}][0]")  # the same field read inside an expression: the interpreter's way
    assert nested is not None
    assert select(nested, value) == select(expression, value)
