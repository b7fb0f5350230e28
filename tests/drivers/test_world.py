"""A run's world on every driver: call middleware around sync and async tools in the tool's own thread or
task, resources opened once per run and closed exactly once (success, failure, Ctrl-C), and the
caller's contextvars inside tools."""

from __future__ import annotations

import asyncio
import contextvars
import signal
import threading
from collections.abc import AsyncIterator, Generator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest

from flowkernel import Flow, Invoke, Ref, Resource, Step, tool
from flowkernel.errors import ResourceError
from flowkernel.host import Driver, partial_result

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")
inside: contextvars.ContextVar[str] = contextvars.ContextVar("inside", default="no middleware")
observed: list[tuple[str, dict[str, Any], Any]] = []
lifecycle: list[str] = []
release = threading.Event()


def annotate(call: Invoke) -> Generator[Invoke, Any, Any]:
    """Sets a contextvar the tool reads (so it must run in the tool's thread or task) and records the call."""
    token = inside.set(f"middleware for {call.tool.name}")
    try:
        value = yield call
    finally:
        inside.reset(token)
    observed.append((call.tool.name, dict(call.arguments), value))
    return value


def double_the_input(call: Invoke) -> Generator[Invoke, Any, Any]:
    return (yield call._replace(arguments={**call.arguments, "x": call.arguments["x"] * 2}))


@tool
def sync_probe(x: int) -> dict[str, Any]:
    return {"x": x, "inside": inside.get(), "request": request_id.get(), "thread": threading.current_thread().name}


@tool
async def async_probe(x: int) -> dict[str, Any]:
    await asyncio.sleep(0) if _on_asyncio() else None
    return {"x": x, "inside": inside.get(), "request": request_id.get()}


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@contextmanager
def counter_client() -> Iterator[dict[str, int]]:
    lifecycle.append("open counter")
    try:
        yield {"calls": 0}
    finally:
        lifecycle.append("close counter")


@asynccontextmanager
async def async_client() -> AsyncIterator[str]:
    lifecycle.append("open async")
    try:
        yield "async client"
    finally:
        await asyncio.sleep(0) if _on_asyncio() else None
        lifecycle.append("close async")


counter = Resource("counter", counter_client)
client = Resource("client", async_client)


@tool
def uses_counter(x: int) -> int:
    state = counter.get()
    state["calls"] += 1
    return state["calls"]


@tool
async def uses_client(x: int) -> str:
    return f"{client.get()} {x}"


@tool
def fails(x: int) -> int:
    raise ValueError("no")


@tool
def interrupts(x: int) -> int:
    """Ctrl-C to the caller's thread, then wait (released at teardown)."""
    main = threading.main_thread().ident
    assert main is not None
    signal.pthread_kill(main, signal.SIGINT)
    release.wait(5)
    return x


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    observed.clear()
    lifecycle.clear()
    release.clear()
    yield
    release.set()


PROBES = Flow(
    name="probes",
    steps=[
        Step(id="s", tool=sync_probe, arguments={"x": 1}),
        Step(id="a", tool=async_probe, arguments={"x": 2}),
    ],
)


def test_middleware_wraps_sync_and_async_tools_in_their_own_thread_or_task(flowkernel_driver: Driver) -> None:
    result = flowkernel_driver.run_blocking(PROBES, middleware=[annotate, double_the_input])
    assert result.status == "succeeded", result.errors
    assert result.step("s").output["inside"] == "middleware for sync_probe"
    assert result.step("a").output["inside"] == "middleware for async_probe"
    assert result.step("s").output["x"] == 2  # the inner middleware doubled the argument
    assert sorted((name, args["x"]) for name, args, _ in observed) == [("async_probe", 2), ("sync_probe", 1)]


def test_tools_see_the_callers_contextvars_on_every_driver(flowkernel_driver: Driver) -> None:
    token = request_id.set("req-42")
    try:
        threaded = flowkernel_driver.run_blocking(PROBES)
        one_at_a_time = flowkernel_driver.run_blocking(PROBES, max_concurrency=1)
    finally:
        request_id.reset(token)
    for result in (threaded, one_at_a_time):
        assert result.status == "succeeded", result.errors
        assert result.step("s").output["request"] == "req-42"
        assert result.step("a").output["request"] == "req-42"


RESOURCEFUL = Flow(
    name="resourceful",
    steps=[
        Step(id="one", tool=uses_counter, arguments={"x": 1}),
        Step(id="two", tool=uses_counter, arguments={"x": Ref("one")}),
        Step(id="remote", tool=uses_client, arguments={"x": Ref("two")}),
    ],
    resources=[counter],
)


def test_resources_open_once_per_run_and_close_when_it_ends(flowkernel_driver: Driver) -> None:
    result = flowkernel_driver.run_blocking(RESOURCEFUL, resources=[client])
    assert result.status == "succeeded", result.errors
    assert result.step("two").output == 2  # the same open counter for both steps
    assert result.step("remote").output == "async client 2"
    assert sorted(lifecycle[:2]) == ["open async", "open counter"]
    assert sorted(lifecycle[2:]) == ["close async", "close counter"]
    assert lifecycle.index("close counter") > lifecycle.index("open counter")


def test_resources_close_exactly_once_when_the_run_fails(flowkernel_driver: Driver) -> None:
    flow = Flow(name="failing", steps=[Step(id="f", tool=fails, arguments={"x": 1})], resources=[counter, client])
    result = flowkernel_driver.run_blocking(flow)
    assert result.status == "failed"
    assert sorted(lifecycle) == ["close async", "close counter", "open async", "open counter"]


def test_resources_close_exactly_once_on_ctrl_c(flowkernel_driver: Driver) -> None:
    flow = Flow(
        name="interrupted",
        steps=[Step(id="i", tool=interrupts, arguments={"x": 1}), Step(id="n", tool=uses_counter, arguments={"x": 1})],
        resources=[counter, client],
    )
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt) as raised:
            flowkernel_driver.run_blocking(flow)
    finally:
        signal.signal(signal.SIGINT, previous)
        release.set()
    partial = partial_result(raised.value)
    assert partial is not None
    assert partial.status == "cancelled"
    assert sorted(lifecycle) == ["close async", "close counter", "open async", "open counter"]


def test_a_resource_that_cannot_open_stops_the_run_before_any_call_and_closes_the_others(
    flowkernel_driver: Driver,
) -> None:
    broken = Resource("broken", lambda: 42)  # type: ignore[arg-type, return-value]
    with pytest.raises(ResourceError, match="resource 'broken' could not be opened"):
        flowkernel_driver.run_blocking(RESOURCEFUL, resources=[client, broken])
    assert observed == []
    assert sorted(lifecycle) == ["close async", "close counter", "open async", "open counter"]


def test_a_tool_asking_for_an_undeclared_resource_fails_with_a_clear_error(flowkernel_driver: Driver) -> None:
    flow = Flow(name="undeclared", steps=[Step(id="u", tool=uses_counter, arguments={"x": 1})])
    result = flowkernel_driver.run_blocking(flow)
    error = result.step("u").error
    assert error is not None
    assert error.type == "flowkernel.errors.ResourceError"
    assert "resource 'counter' is not open here" in error.message
