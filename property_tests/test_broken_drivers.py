"""The parity suite catches drivers that break the contract, and names them; an honest one passes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, find, given, settings

from flowkernel.host import Driver
from flowkernel.testing import ParityError, Scenario, assert_parity, scenarios

from .broken_drivers import CompletesTwiceDriver, FailuresAsReturnedDriver, HonestInlineDriver, MixesUpResultsDriver

BROKEN: list[tuple[str, Driver]] = [
    ("reports-failures-as-returned", FailuresAsReturnedDriver()),
    ("completes-twice", CompletesTwiceDriver()),
    ("mixes-up-results", MixesUpResultsDriver()),
]


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
    found = find(
        scenarios(max_steps=6),
        lambda scenario: _caught(driver, name, scenario),
        settings=settings(max_examples=300, database=None, derandomize=True, suppress_health_check=list(HealthCheck)),
    )
    with pytest.raises(ParityError, match=name):
        assert_parity(found, {name: driver}, limits=(1,))


@given(scenario=scenarios(max_steps=10))
def test_the_honest_inline_driver_passes(scenario: Scenario) -> None:
    assert_parity(scenario, {"honest-inline": HonestInlineDriver()}, limits=(1, None))
