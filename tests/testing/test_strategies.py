"""The scenario strategy: the timeouts it sets and the hangs that outlast them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from flowkernel.testing import Scenario, scenarios


@pytest.mark.parametrize("firing_timeout", [0.25, 1.0])
def test_timeouts_that_fire_are_the_given_one_and_every_hang_outlasts_it(firing_timeout: float) -> None:
    @settings(max_examples=40)
    @given(scenario=scenarios(max_steps=6, timeouts_fire=True, firing_timeout=firing_timeout))
    def check(scenario: Scenario) -> None:
        timeouts = {step.timeout_seconds for step in scenario.flow.steps} - {None}
        assert timeouts <= {firing_timeout}
        script = scenario.script
        assert script.hang_seconds >= firing_timeout + 2.0
        assert script.block_seconds >= 2 * firing_timeout

    check()


def test_timeouts_that_never_fire_are_long() -> None:
    @settings(max_examples=40)
    @given(scenario=scenarios(max_steps=6))
    def check(scenario: Scenario) -> None:
        assert {step.timeout_seconds for step in scenario.flow.steps} <= {None, 30.0}
        assert not scenario.script.hangs

    check()
