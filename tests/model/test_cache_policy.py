"""Cache policies on tools and steps: which one is in force, what the kernel's calls carry, and the
definition errors for bad values (every problem at once)."""

from __future__ import annotations

import pytest

from flowkernel import CachePolicy, Flow, Invoke, Item, Ref, Returned, RunOptions, Step, tool
from flowkernel.errors import DefinitionError, Problem
from flowkernel.kernel import run_flow


@tool(cache=CachePolicy(version="3", ttl=60))
def cached(x: int) -> int:
    return x


@tool
def uncached(x: int) -> int:
    return x


def test_the_step_policy_wins_then_the_tools_and_false_turns_it_off() -> None:
    mine = CachePolicy(version="9")
    assert Step(id="a", tool=cached).cache_policy == CachePolicy(version="3", ttl=60)
    assert Step(id="a", tool=cached, cache=mine).cache_policy is mine
    assert Step(id="a", tool=cached, cache=False).cache_policy is None
    assert Step(id="a", tool=uncached).cache_policy is None
    assert Step(id="a", tool=uncached, cache=mine).cache_policy is mine


def test_the_kernels_calls_carry_the_policy_in_force_map_elements_too() -> None:
    mine = CachePolicy(version="9")
    flow = Flow(
        name="f",
        steps=[
            Step(id="a", tool=cached, arguments={"x": 1}),
            Step(id="b", tool=uncached, arguments={"x": 2}),
            Step(id="c", tool=uncached, arguments={"x": 3}, cache=mine),
            Step(id="d", tool=cached, arguments={"x": 3}, cache=False),
            Step(id="m", tool=uncached, map=Ref("l"), arguments={"x": Item()}, cache=mine),
            Step(id="l", tool=tool(lambda: [1, 2], name="l")),
        ],
    )
    kernel = run_flow(flow, {}, RunOptions("r"))
    first = {c.step_id: c.cache for c in next(kernel) if isinstance(c, Invoke)}
    assert first == {"a": CachePolicy(version="3", ttl=60), "b": None, "c": mine, "d": None, "l": None}
    later = kernel.send([Returned("l@1", [1, 2], 0.0, 0.0)])
    assert {c.step_id: c.cache for c in later if isinstance(c, Invoke)} == {"m/item0": mine, "m/item1": mine}


def test_bad_policies_list_every_problem() -> None:
    with pytest.raises(DefinitionError) as raised:
        CachePolicy(version=2, ttl=-1, size=3)  # type: ignore[call-arg]
    assert [p.location for p in raised.value.problems] == ["version", "ttl", "size"]
    for ttl in (0, float("inf"), float("nan"), 1e12):
        with pytest.raises(DefinitionError, match="ttl"):
            CachePolicy(ttl=ttl)


def test_a_sub_flow_step_cannot_take_a_cache_policy() -> None:
    inner = Flow(name="inner", steps=[Step(id="a", tool=cached, arguments={"x": 1})])
    with pytest.raises(DefinitionError) as raised:
        Step(id="s", flow=inner, cache=CachePolicy())
    assert raised.value.problems == (
        Problem(
            "(the whole)",
            "cache= is for a step that calls a tool; a sub-flow's own steps (or tools) opt in to the cache",
        ),
    )
    assert Step(id="s", flow=inner, cache=False).cache_policy is None
