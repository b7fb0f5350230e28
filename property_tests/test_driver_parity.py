"""Every generated scenario gives the oracle's canonical result on every driver and concurrency limit."""

from __future__ import annotations

import pytest
from hypothesis import given

from flowkernel.host import Driver, installed_drivers, load_driver
from flowkernel.testing import Scenario, assert_parity, scenarios

DRIVERS: dict[str, Driver] = {name: load_driver(name) for name in installed_drivers()}


def test_the_bundled_drivers_are_all_in_the_suite() -> None:
    assert {"sync", "asyncio", "trio"} <= set(DRIVERS)


@given(scenario=scenarios())
def test_every_driver_and_limit_agrees_with_the_oracle(scenario: Scenario) -> None:
    assert_parity(scenario, DRIVERS, limits=(1, 2, None))


@pytest.mark.parametrize("limit", [1, 3])
@given(scenario=scenarios(max_steps=12, max_deps=1))
def test_chains_and_thin_trees_agree_at_other_limits(scenario: Scenario, limit: int) -> None:
    assert_parity(scenario, DRIVERS, limits=(limit,))
