"""The parity suite catches drivers that break the contract, and names them; an honest one passes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, find, given, settings

from flowkernel import Flow, Input, Item, Step, Tool
from flowkernel.host import Driver
from flowkernel.testing import ParityError, Scenario, Script, assert_parity, scenarios, scripted_tool

from .broken_drivers import (
    CompletesTwiceDriver,
    FailuresAsReturnedDriver,
    HonestInlineDriver,
    IgnoresTheLimitsDriver,
    MixesUpResultsDriver,
    RecordsOwnCancelsRawDriver,
)

BROKEN: list[tuple[str, Driver]] = [
    ("reports-failures-as-returned", FailuresAsReturnedDriver()),
    ("completes-twice", CompletesTwiceDriver()),
    ("mixes-up-results", MixesUpResultsDriver()),
    ("records-own-cancels-raw", RecordsOwnCancelsRawDriver()),
]
FIND = settings(max_examples=300, database=None, derandomize=True, suppress_health_check=list(HealthCheck))


def _caught(driver: Driver, name: str, scenario: Scenario) -> bool:
    try:
        assert_parity(scenario, {name: driver}, limits=(1,))
    except ParityError as exc:
        if name not in str(exc):  # the failure must name the disagreeing driver
            raise AssertionError(f"parity error does not name {name!r}: {exc}") from exc
        return True
    return False


@pytest.mark.parametrize(("name", "driver"), BROKEN, ids=[name for name, _ in BROKEN])
def test_hypothesis_finds_a_scenario_that_exposes_the_broken_driver(name: str, driver: Driver) -> None:
    found = find(scenarios(max_steps=6), lambda scenario: _caught(driver, name, scenario), settings=FIND)
    with pytest.raises(ParityError, match=name):
        assert_parity(found, {name: driver}, limits=(1,))


def _sleepy(step: str, script: Script) -> Tool:
    return scripted_tool(step, script, is_async=False)


def test_a_driver_ignoring_the_run_limit_in_sub_flows_is_caught() -> None:
    """Its results are right: only the scripted tools' gauge of calls in flight can tell (issue 10.16:
    a run limit of 1 with two sub-flows). Each call sleeps 50 ms in its own thread, so they overlap."""
    script = Script(delays={("a_c0", 1): 0.05, ("b_c0", 1): 0.05})
    steps = [
        Step(id=k, flow=Flow(name=k, steps=[Step(id="c0", tool=_sleepy(f"{k}_c0", script))]), arguments={})
        for k in "ab"
    ]
    scenario = Scenario(Flow(name="two-subflows", steps=steps), {}, script)
    assert_parity(scenario, {"honest-inline": HonestInlineDriver()}, limits=(1,))
    over = r"ignores-the-limits .* had 2 calls in flight at once, over the run's limit of 1"
    with pytest.raises(ParityError, match=over):
        assert_parity(scenario, {"ignores-the-limits": IgnoresTheLimitsDriver()}, limits=(1,))


def test_a_driver_ignoring_a_map_steps_own_limit_is_caught() -> None:
    script = Script(delays={("m", 1): 0.05})
    step = Step(id="m", tool=_sleepy("m", script), map=Input("xs"), arguments={"x": Item()}, max_concurrency=1)
    scenario = Scenario(Flow(name="map", steps=[step]), {"xs": [1, 2, 3]}, script)
    assert_parity(scenario, {"honest-inline": HonestInlineDriver()}, limits=(None,))
    with pytest.raises(ParityError, match="calls of step 'm' in flight at once, over its own limit of 1"):
        assert_parity(scenario, {"ignores-the-limits": IgnoresTheLimitsDriver()}, limits=(None,))


@given(scenario=scenarios(max_steps=10))
def test_the_honest_inline_driver_passes(scenario: Scenario) -> None:
    assert_parity(scenario, {"honest-inline": HonestInlineDriver()}, limits=(1, None))
