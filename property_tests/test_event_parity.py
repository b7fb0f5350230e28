"""Every driver delivers, for the completions it fed the kernel, exactly the kernel's events (timing
removed), framed by RunStarted and RunFinished; scenarios that run one call at a time give every driver
the same event sequence."""

from __future__ import annotations

import pytest
from hypothesis import given

from flowkernel.host import Driver
from flowkernel.testing import Scenario, assert_event_parity, runs_in_sequence, scenarios

from .test_driver_parity import LANES, examples


@pytest.mark.parametrize(("drivers", "share"), LANES)
def test_every_driver_delivers_the_kernels_events_for_its_completion_order(
    drivers: dict[str, Driver], share: float
) -> None:
    @examples(share)
    @given(scenario=scenarios(max_steps=15))
    def check(scenario: Scenario) -> None:
        assert_event_parity(scenario, drivers, limits=(1, None))

    check()


@pytest.mark.parametrize(("drivers", "share"), LANES)
def test_one_call_at_a_time_every_driver_delivers_the_same_events(drivers: dict[str, Driver], share: float) -> None:
    @examples(share)
    @given(scenario=scenarios(max_steps=12, max_deps=1).filter(runs_in_sequence))
    def check(scenario: Scenario) -> None:
        assert_event_parity(scenario, drivers, limits=(1,))

    check()
