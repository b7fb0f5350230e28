"""Facts kept per flow (:mod:`flowkernel.host.per_flow`): computed once per flow object, agreeing with a
fresh walk of the flow, gone with the flow, and never keeping an error."""

from __future__ import annotations

import gc
import weakref

import pytest

from flowkernel import Flow, Resource, Step, tool
from flowkernel.errors import ResourceError
from flowkernel.host import UnsupportedToolError, check_tools_fit
from flowkernel.host.per_flow import per_flow
from flowkernel.host.world import declared_resources


@tool
def one() -> int:
    return 1


def _flow(name: str = "f") -> Flow:
    return Flow(name=name, steps=[Step(id="a", tool=one)])


def test_a_fact_is_computed_once_per_flow_object() -> None:
    seen: list[str] = []

    @per_flow
    def name_of(flow: Flow) -> str:
        seen.append(flow.name)
        return flow.name

    first, second = _flow("first"), _flow("second")
    assert [name_of(first), name_of(first), name_of(second), name_of(first)] == ["first"] * 2 + ["second", "first"]
    assert seen == ["first", "second"]


def test_a_fact_goes_with_its_flow() -> None:
    @per_flow
    def steps(flow: Flow) -> int:
        return len(flow.steps)

    flow = _flow()
    assert steps(flow) == 1
    gone = weakref.ref(flow)
    del flow
    gc.collect()
    assert gone() is None  # the kept fact did not keep the flow alive


def test_an_error_is_not_kept() -> None:
    calls: list[int] = []

    @per_flow
    def refuses(flow: Flow) -> int:
        calls.append(1)
        raise ValueError(flow.name)

    flow = _flow()
    for _ in range(2):
        with pytest.raises(ValueError, match="f"):
            refuses(flow)
    assert len(calls) == 2


def test_the_kept_checks_agree_with_a_fresh_walk_on_every_run() -> None:
    """``check_tools_fit`` and ``declared_resources`` keep their walk of the flow: a second call answers as
    the first (refusal, resources, the run's own resources replacing the flow's)."""
    trio_resource = Resource("conn", lambda: None)
    shared = Resource("conn", lambda: None)

    @tool(async_backend="trio")
    async def trio_only() -> None:
        pass

    bound = trio_only.model_copy(update={"resources": (trio_resource,)})
    flow = Flow(name="f", steps=[Step(id="a", tool=one), Step(id="t", tool=bound)])
    for _ in range(2):
        with pytest.raises(UnsupportedToolError, match=r"steps\[1\] \(t\)"):
            check_tools_fit(flow, "asyncio")
        check_tools_fit(flow, "trio")
        assert declared_resources(flow) == (trio_resource,)
        assert declared_resources(flow, [shared]) == (shared,)
        assert declared_resources(flow) == (trio_resource,)


def test_a_flow_whose_resources_clash_is_refused_on_every_run() -> None:
    a, b = Resource("conn", lambda: None), Resource("conn", lambda: None)
    uses_a = one.model_copy(update={"name": "uses_a", "resources": (a,)})
    uses_b = one.model_copy(update={"name": "uses_b", "resources": (b,)})
    flow = Flow(name="f", steps=[Step(id="a", tool=uses_a), Step(id="b", tool=uses_b)])
    for _ in range(2):
        with pytest.raises(ResourceError, match="two different resources are named 'conn'"):
            declared_resources(flow)
