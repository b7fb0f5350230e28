"""The ``tool`` decorator and the ``Tool`` model: names, descriptions, async detection, immutability."""

from __future__ import annotations

import functools

import pytest
from pydantic import BaseModel, ValidationError

from flowkernel import Tool, tool
from flowkernel.errors import DefinitionError


class Query(BaseModel):
    text: str


class Answer(BaseModel):
    value: int


def test_name_and_description_come_from_the_function_and_its_docstring() -> None:
    @tool
    def fetch_user(user_id: int) -> dict[str, int]:
        """Fetch one user.

        More details here.
        """
        return {"id": user_id}

    assert isinstance(fetch_user, Tool)
    assert fetch_user.name == "fetch_user"
    assert fetch_user.description == "Fetch one user.\n\nMore details here."
    assert fetch_user.is_async is False
    assert fetch_user.fn(user_id=3) == {"id": 3}


def test_a_function_without_docstring_gets_an_empty_description() -> None:
    @tool
    def nodoc() -> None:
        pass

    assert nodoc.description == ""


def test_explicit_name_description_and_models_override_the_defaults() -> None:
    @tool(name="search", description="Search the index.", input_model=Query, output_model=Answer)
    def internal_name(text: str) -> dict[str, int]:
        """Docstring that must not be used."""
        return {"value": len(text)}

    assert internal_name.name == "search"
    assert internal_name.description == "Search the index."
    assert internal_name.input_model is Query
    assert internal_name.output_model is Answer
    assert internal_name.async_backend == "any"


def test_an_explicit_empty_description_beats_the_docstring() -> None:
    @tool(description="")
    def documented() -> None:
        """Not used."""

    assert documented.description == ""


def test_async_def_functions_are_detected() -> None:
    @tool
    async def fetch() -> int:
        return 1

    @tool(async_backend="trio")
    async def trio_only() -> int:
        return 1

    assert fetch.is_async is True
    assert fetch.async_backend == "any"
    assert trio_only.is_async is True
    assert trio_only.async_backend == "trio"


def test_objects_with_an_async_call_method_are_detected() -> None:
    class AsyncCallable:
        """Calls something asynchronously."""

        async def __call__(self, x: int) -> int:
            return x

    class SyncCallable:
        def __call__(self, x: int) -> int:
            return x

    async_tool = tool(name="async_obj")(AsyncCallable())
    sync_tool = tool(name="sync_obj")(SyncCallable())
    assert async_tool.is_async is True
    assert async_tool.description == "Calls something asynchronously."
    assert sync_tool.is_async is False


def test_partial_of_an_async_function_is_detected() -> None:
    async def add(a: int, b: int) -> int:
        return a + b

    assert tool(name="add1")(functools.partial(add, 1)).is_async is True


def test_tool_built_directly_detects_async_unless_told() -> None:
    async def fn() -> None:
        pass

    assert Tool(name="t", fn=fn).is_async is True
    assert Tool(name="t", fn=lambda: None).is_async is False
    assert Tool(name="t", fn=fn, is_async=False).is_async is False


def test_a_callable_object_without_name_gets_its_type_name() -> None:
    class Summarize:
        async def __call__(self, text: str) -> str:
            return text

    assert tool(Summarize()).name == "Summarize"


def test_tool_is_immutable_and_hashable() -> None:
    @tool
    def fixed() -> int:
        return 1

    with pytest.raises(ValidationError):
        fixed.name = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        fixed.is_async = True  # type: ignore[misc]
    assert fixed.name == "fixed"
    assert hash(fixed) == hash(fixed)
    assert repr(fixed) == "Tool('fixed')"


def test_tool_rejects_unknown_fields_and_empty_names() -> None:
    with pytest.raises(DefinitionError):
        Tool(name="t", fn=lambda: None, retries=3)  # type: ignore[call-arg]
    with pytest.raises(DefinitionError):
        Tool(name="", fn=lambda: None)
    with pytest.raises(DefinitionError):
        Tool(name="t", fn=lambda: None, async_backend="curio")  # type: ignore[arg-type]
