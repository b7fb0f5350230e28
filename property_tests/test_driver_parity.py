"""Every generated scenario gives the oracle's canonical result on every driver and concurrency limit."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from flowkernel.host import Driver, installed_drivers, load_driver
from flowkernel.testing import Scenario, assert_parity, oracle_result, scenarios

from .conftest import EXAMPLES

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


@settings(max_examples=max(5, EXAMPLES // 6))
@given(scenario=scenarios(max_steps=8, timeouts_fire=True))
def test_timeouts_that_fire_agree_with_the_oracle(scenario: Scenario) -> None:
    """Calls that hang past their step's timeout: really cancelled (async), released (threads)."""
    assert_parity(scenario, DRIVERS, limits=(2, None))


@given(scenario=scenarios(max_steps=15))
def test_fail_fast_keeps_what_stays_deterministic(scenario: Scenario) -> None:
    """fail_fast is the documented exception to the contract: which steps finish before the stop depends
    on timing. What stays: the run fails exactly when the oracle's does, and every step that succeeded
    did so with the oracle's output."""
    expected = oracle_result(scenario)
    oracle_steps = {step["id"]: step for step in expected["steps"]}
    for name, driver in DRIVERS.items():
        for limit in (1, None):
            result = driver.run_blocking(
                scenario.flow, scenario.inputs, run_id=scenario.run_id, max_concurrency=limit, fail_fast=True
            ).canonical()
            label = f"{name} (max_concurrency={limit})"
            assert result["status"] == expected["status"], label
            for step in result["steps"]:
                if step["status"] == "succeeded":
                    assert step["output"] == oracle_steps[step["id"]]["output"], (label, step["id"])
            if expected["status"] == "failed":
                assert "fail_fast" in (result["reason"] or ""), label
