"""The middleware chain on its own: order, replacing arguments, answering without the tool, failing the
call, seeing the tool's error, and middleware that break the contract (all through ``call_sync``)."""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

import pytest

from flowkernel import Invoke, Raised, Returned, tool
from flowkernel.host import CallWorld, Middleware, call_sync

trace: list[str] = []


@tool
def double(x: int) -> int:
    trace.append(f"tool {x}")
    return 2 * x


@tool
def broken(x: int) -> int:
    raise ValueError(f"bad {x}")


def named(name: str) -> Middleware:
    def layer(call: Invoke) -> Generator[Invoke, Any, Any]:
        trace.append(f"{name} before")
        try:
            value = yield call
        except ValueError:
            trace.append(f"{name} saw an error")
            raise
        trace.append(f"{name} after {value}")
        return value

    return layer


def call(fn: Any, *middleware: Middleware, x: int = 3) -> Returned | Raised:
    trace.clear()
    return call_sync(Invoke("s@1", "s", fn, {"x": x}, 1, "r"), time.monotonic, (), CallWorld({}, middleware))


def test_middleware_compose_in_list_order_the_first_outermost() -> None:
    completion = call(double, named("outer"), named("inner"))
    assert isinstance(completion, Returned)
    assert completion.value == 6
    assert trace == ["outer before", "inner before", "tool 3", "inner after 6", "outer after 6"]


def test_a_middleware_replaces_the_arguments_and_the_result() -> None:
    def plus_one(call: Invoke) -> Generator[Invoke, Any, Any]:
        value = yield call._replace(arguments={"x": call.arguments["x"] + 1})
        return value * 10

    completion = call(double, plus_one)
    assert isinstance(completion, Returned)
    assert completion.value == 80
    assert trace == ["tool 4"]


def test_a_middleware_answers_without_calling_the_tool() -> None:
    def cached(call: Invoke) -> Generator[Invoke, Any, Any]:
        if call.arguments["x"] == 3:
            return "from the cache"
        return (yield call)

    completion = call(double, named("outer"), cached, named("inner"))
    assert isinstance(completion, Returned)
    assert completion.value == "from the cache"
    assert trace == ["outer before", "outer after from the cache"]


def test_a_middleware_fails_the_call_and_the_outer_layers_see_the_error() -> None:
    def deny(call: Invoke) -> Generator[Invoke, Any, Any]:
        raise ValueError(f"{call.tool.name} is not allowed")
        yield call

    completion = call(double, named("outer"), deny)
    assert isinstance(completion, Raised)
    assert completion.error.type == "ValueError"
    assert completion.error.message == "double is not allowed"
    assert trace == ["outer before", "outer saw an error"]


def test_the_tool_error_is_thrown_into_each_layer_and_one_may_recover() -> None:
    def recover(call: Invoke) -> Generator[Invoke, Any, Any]:
        try:
            return (yield call)
        except ValueError as exc:
            return f"recovered from {exc}"

    failed = call(broken, named("outer"), named("inner"))
    assert isinstance(failed, Raised)
    assert failed.error.message == "bad 3"
    assert trace == ["outer before", "inner before", "inner saw an error", "outer saw an error"]
    recovered = call(broken, named("outer"), recover)
    assert isinstance(recovered, Returned)
    assert recovered.value == "recovered from bad 3"


def yields_something_else(call: Invoke) -> Generator[Any, Any, Any]:
    yield "not a call"


def yields_twice(call: Invoke) -> Generator[Invoke, Any, Any]:
    yield call
    yield call


@pytest.mark.parametrize(
    ("middleware", "message"),
    [(yields_something_else, "yielded str, not the call"), (yields_twice, "yielded a second time")],
    ids=["yields-something-else", "yields-twice"],
)
def test_a_middleware_that_breaks_the_contract_fails_the_call_with_a_middleware_error(
    middleware: Middleware, message: str
) -> None:
    completion = call(double, middleware)
    assert isinstance(completion, Raised)
    assert completion.error.type == "flowkernel.errors.MiddlewareError"
    assert message in completion.error.message
