"""Generated scenarios run a second time with a warm step cache: the same canonical result on every
driver and concurrency limit, every stored result served from the cache."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from flowkernel import ExecutionResult, Flow, Input, Item, Ref, Step
from flowkernel.host import Driver, installed_drivers, load_driver
from flowkernel.testing import ParityError, Scenario, Script, assert_cached_parity, scenarios, scripted_tool

from .broken_drivers import HonestInlineDriver
from .test_driver_parity import LANES, examples

DRIVERS: dict[str, Driver] = {name: load_driver(name) for name in installed_drivers()}


@pytest.mark.parametrize(("drivers", "share"), LANES)
def test_second_runs_served_from_a_warm_cache_agree_on_every_driver_and_limit(
    drivers: dict[str, Driver], share: float, tmp_path_factory: pytest.TempPathFactory
) -> None:
    lane = {"sync": DRIVERS["sync"], **drivers}  # the sync driver warms the cache in every lane

    @examples(share / 2)
    @given(scenario=scenarios(max_steps=12))
    def check(scenario: Scenario) -> None:
        assert_cached_parity(scenario, lane, tmp_path_factory.mktemp("cache"), limits=(1, None))

    check()


def _two_step_scenario() -> Scenario:
    script = Script()
    first = scripted_tool("a", script, is_async=False)
    second = scripted_tool("b", script, is_async=True, output_model=True)
    flow = Flow(
        name="two",
        steps=[
            Step(id="a", tool=first, arguments={"x": 1}),
            Step(id="b", tool=second, arguments={"prev": Ref("a", "n")}),
        ],
    )
    return Scenario(flow, {}, script)


def test_a_fixed_scenario_is_served_from_the_cache_on_every_driver(tmp_path: Path) -> None:
    assert_cached_parity(_two_step_scenario(), DRIVERS, tmp_path)


def test_a_driver_that_skips_the_runs_middleware_fails_cache_parity(tmp_path: Path) -> None:
    drivers = {"sync": DRIVERS["sync"], "inline": HonestInlineDriver()}  # calls tools without the run's world
    with pytest.raises(
        ParityError, match=r"inline .*: 0 attempts say cached, 0 StepFinished events do, the cache served 0, the wa"
    ):
        assert_cached_parity(_two_step_scenario(), drivers, tmp_path, limits=(None,))


class _DropsEvents:
    """The sync driver, except that it never delivers a run's events."""

    name = "drops-events"

    def run_blocking(self, flow: Flow, inputs: Mapping[str, Any] | None = None, **settings: Any) -> ExecutionResult:
        settings.pop("on_event", None)
        return DRIVERS["sync"].run_blocking(flow, inputs, **settings)


def test_a_driver_whose_events_do_not_say_cached_fails_cache_parity(tmp_path: Path) -> None:
    drivers: dict[str, Driver] = {"sync": DRIVERS["sync"], "quiet": _DropsEvents()}
    with pytest.raises(ParityError, match=r"quiet .*: 2 attempts say cached, 0 StepFinished events do, the cache ser"):
        assert_cached_parity(_two_step_scenario(), drivers, tmp_path, limits=(None,))


def test_a_warm_up_that_hits_its_own_entries_still_passes(tmp_path: Path) -> None:
    """Equal map elements: the warm-up's second element is served the first's result, so the warm cache
    already counts a hit; the second runs' own hits are what is compared (found by the property)."""
    script = Script()
    each = Step(id="m", tool=scripted_tool("m", script, is_async=False), map=Input("items"), arguments={"e": Item()})
    assert_cached_parity(Scenario(Flow(name="equal", steps=[each]), {"items": [0, 0]}, script), DRIVERS, tmp_path)
