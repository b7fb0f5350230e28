"""Every generated scenario gives the oracle's canonical result on every driver and concurrency limit,
and replays and resumes from its journal to that same result."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowkernel.host import Driver, installed_drivers, load_driver
from flowkernel.host.journal import SqliteJournal
from flowkernel.testing import Scenario, assert_parity, assert_replay_parity, oracle_result, scenarios

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


@settings(max_examples=max(10, EXAMPLES // 3))
@given(
    scenario=st.one_of(scenarios(max_steps=10), scenarios(max_steps=6, timeouts_fire=True)),
    recorder=st.sampled_from(sorted(DRIVERS)),
    cut=st.floats(0, 1),
    limit=st.sampled_from([1, 2, None]),
)
def test_journals_replay_and_resume_to_the_same_result(
    scenario: Scenario, recorder: str, cut: float, limit: int | None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The journal of every run replays to its result, and a run resumed on any driver from any point
    of its journal (as if its process had died there) ends with the same result."""
    directory = tmp_path_factory.mktemp("journals")
    journals = (SqliteJournal(directory / f"{k}.db") for k in itertools.count())
    drivers = {recorder: DRIVERS[recorder], **DRIVERS}
    assert_replay_parity(scenario, drivers, lambda: next(journals), cuts=(cut,), max_concurrency=limit)
