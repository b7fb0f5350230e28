"""Which resources a run opens (the flow's, its tools', the run's own) and the check they make of the flow."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from flowkernel import Flow, Resource, Step, tool
from flowkernel.errors import Problem, ResourceError, ToolMismatchError
from flowkernel.host.world import declared_resources, shared_resources
from flowkernel_sync import SyncDriver

opened: list[str] = []


@contextmanager
def value(name: str) -> Iterator[str]:
    opened.append(name)
    yield name


def clients() -> Any:
    return value("per run")


CLIENT = Resource("client", clients)


@tool(name="uses_client")
def uses_client(x: int) -> str:
    return f"{CLIENT.get()} {x}"


uses_client_tool = uses_client.model_copy(update={"resources": (CLIENT,)})


class Picky(Resource[str]):
    """A resource that finds every step with an argument ``bad`` wrong."""

    def check(self, value: str, flow: Flow) -> Iterable[Problem]:
        for i, step in enumerate(flow.steps):
            if "bad" in step.arguments:
                yield Problem(f"steps[{i}] ({step.id})", f"{value} refuses 'bad'")


def test_a_tool_brings_the_resources_it_uses() -> None:
    opened.clear()
    flow = Flow(name="f", steps=[Step(id="a", tool=uses_client_tool, arguments={"x": 1})])
    assert declared_resources(flow) == (CLIENT,)
    assert SyncDriver().run(flow).outputs == {"a": "per run 1"}
    assert opened == ["per run"]


def test_a_run_s_own_resource_replaces_the_declared_one_of_its_name() -> None:
    opened.clear()
    shared = Resource("client", lambda: value("shared"))
    flow = Flow(name="f", steps=[Step(id="a", tool=uses_client_tool, arguments={"x": 1})])
    assert declared_resources(flow, [shared]) == (shared,)
    assert SyncDriver().run(flow, resources=[shared]).outputs == {"a": "shared 1"}
    assert opened == ["shared"]


def test_two_declarations_of_one_name_in_a_flow_are_refused() -> None:
    other = Resource("client", lambda: value("other"))
    flow = Flow(name="f", steps=[Step(id="a", tool=uses_client_tool, arguments={"x": 1})], resources=[other])
    with pytest.raises(ResourceError, match="two different resources are named 'client'"):
        declared_resources(flow)


def test_every_open_resource_checks_the_flow_and_all_problems_come_at_once() -> None:
    first, second = Picky("first", lambda: value("first")), Picky("second", lambda: value("second"))
    flow = Flow(
        name="f",
        steps=[Step(id="a", tool=uses_client_tool, arguments={"x": 1})],
        resources=[first, second],
    )
    assert SyncDriver().run(flow).status == "succeeded"
    calls: list[int] = []
    tolerant = tool(lambda x, bad: calls.append(x), name="tolerant")
    flow = Flow(name="f", steps=[Step(id="a", tool=tolerant, arguments={"x": 1, "bad": 2})], resources=[first, second])
    with pytest.raises(ToolMismatchError) as raised:
        SyncDriver().run(flow)
    assert [str(p) for p in raised.value.problems] == [
        "steps[0] (a): first refuses 'bad'",
        "steps[0] (a): second refuses 'bad'",
    ]
    assert calls == []  # checked before any call


def test_shared_resources_open_once_for_many_runs_and_close_after_the_block() -> None:
    import anyio

    from flowkernel_asyncio import AsyncioDriver

    opened.clear()
    closed: list[str] = []

    @contextmanager
    def counted() -> Iterator[str]:
        opened.append("shared")
        yield "shared"
        closed.append("shared")

    flow = Flow(name="f", steps=[Step(id="a", tool=uses_client_tool, arguments={"x": 1})])

    async def main() -> list[Any]:
        async with shared_resources([Resource("client", counted)]) as resources:
            outputs = [(await AsyncioDriver().run(flow, resources=resources)).outputs for _ in range(3)]
            assert closed == []
        return outputs

    assert anyio.run(main) == [{"a": "shared 1"}] * 3
    assert opened == ["shared"]
    assert closed == ["shared"]
