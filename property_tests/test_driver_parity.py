"""Every generated scenario gives the oracle's canonical result on every driver and concurrency limit,
and replays and resumes from its journal to that same result."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowkernel.host import Driver, installed_drivers, load_driver
from flowkernel.host.journal import SqliteJournal
from flowkernel.testing import Scenario, assert_parity, assert_replay_parity, oracle_result, scenarios

from .conftest import EXAMPLES

DRIVERS: dict[str, Driver] = {name: load_driver(name) for name in installed_drivers()}

CLUSTER_DRIVERS = frozenset({"dask"})
"""Drivers whose every call is a task on a cluster (a round trip of ~10 ms, most of it the Dask client's
send batching): they run every property in a lane of their own, with a quarter of the examples."""
CLUSTER_SHARE = 0.25
CLUSTER_FIRING_TIMEOUT = 1.0
"""The timeout that fires in scenarios run on a cluster driver. The in-process drivers' 0.25 s holds
every call that does not hang; a cluster round trip shares its loop with the scheduler, the worker and
the run (journal writes included), and under CI load took longer than 0.25 s (a spurious timeout)."""


def firing_timeout(drivers: dict[str, Driver]) -> float:
    """The timeout of the scenarios whose timeouts fire, for a lane of ``drivers``."""
    return CLUSTER_FIRING_TIMEOUT if CLUSTER_DRIVERS & set(drivers) else 0.25


def _lanes() -> list[Any]:
    """(drivers, share of the examples) per lane: the in-process drivers, then the cluster drivers."""
    local = {name: driver for name, driver in DRIVERS.items() if name not in CLUSTER_DRIVERS}
    cluster = {name: driver for name, driver in DRIVERS.items() if name in CLUSTER_DRIVERS}
    lanes = [pytest.param(local, 1.0, id="in-process")]
    if cluster:
        lanes.append(pytest.param(cluster, CLUSTER_SHARE, id="cluster"))
    return lanes


LANES = _lanes()


def examples(share: float, base: int = EXAMPLES) -> settings:
    """``share`` of ``base`` examples, never fewer than 3: a lane always runs the property."""
    return settings(max_examples=max(3, round(base * share)))


def test_the_bundled_drivers_are_all_in_the_suite() -> None:
    assert {"sync", "asyncio", "trio"} <= set(DRIVERS)


def test_every_installed_driver_is_in_a_lane() -> None:
    in_lanes = [name for lane in LANES for name in lane.values[0]]
    assert sorted(in_lanes) == sorted(DRIVERS)


@pytest.mark.parametrize(("drivers", "share"), LANES)
def test_every_driver_and_limit_agrees_with_the_oracle(drivers: dict[str, Driver], share: float) -> None:
    @examples(share)
    @given(scenario=scenarios())
    def check(scenario: Scenario) -> None:
        assert_parity(scenario, drivers, limits=(1, 2, None))

    check()


@pytest.mark.parametrize("limit", [1, 3])
@pytest.mark.parametrize(("drivers", "share"), LANES)
def test_chains_and_thin_trees_agree_at_other_limits(drivers: dict[str, Driver], share: float, limit: int) -> None:
    @examples(share)
    @given(scenario=scenarios(max_steps=12, max_deps=1))
    def check(scenario: Scenario) -> None:
        assert_parity(scenario, drivers, limits=(limit,))

    check()


@pytest.mark.parametrize(("drivers", "share"), LANES)
def test_timeouts_that_fire_agree_with_the_oracle(drivers: dict[str, Driver], share: float) -> None:
    """Calls that hang past their step's timeout: really cancelled (async), released (threads)."""

    @examples(share, base=max(5, EXAMPLES // 6))
    @given(scenario=scenarios(max_steps=8, timeouts_fire=True, firing_timeout=firing_timeout(drivers)))
    def check(scenario: Scenario) -> None:
        assert_parity(scenario, drivers, limits=(2, None))

    check()


@examples(1.0)
@given(scenario=st.one_of(scenarios(max_steps=12, max_deps=1), scenarios()))
def test_inline_lone_calls_agree_with_threads(scenario: Scenario) -> None:
    """The sync driver's fast path (a call alone in flight runs in the caller's thread:
    ``flowkernel_sync.runs_inline``) gives the oracle's result, as the same driver does with a thread
    for every call; chains take the fast path at every step, wider flows whenever they narrow to one call.
    (Timeouts that fire are left to ``test_timeouts_that_fire_agree_with_the_oracle``: a step with a
    timeout never takes the fast path, and their 0.25 s timeouts misfire on a loaded machine.)"""
    from flowkernel_sync import SyncDriver

    drivers = {"sync": SyncDriver(), "sync, threads only": SyncDriver(inline_lone_calls=False)}
    assert_parity(scenario, drivers, limits=(1, 2, None))


@pytest.mark.parametrize(("drivers", "share"), LANES)
def test_fail_fast_keeps_what_stays_deterministic(drivers: dict[str, Driver], share: float) -> None:
    """fail_fast is the documented exception to the contract: which steps finish before the stop depends
    on timing. What stays: the run fails exactly when the oracle's does, and every step that succeeded
    did so with the oracle's output."""

    @examples(share)
    @given(scenario=scenarios(max_steps=15))
    def check(scenario: Scenario) -> None:
        check_fail_fast(scenario, drivers)

    check()


def failed_attempts(result: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every failed attempt of a canonical result, by step: what a failure message should show."""
    return [
        (step["id"], attempt["error"]) for step in result["steps"] for attempt in step["attempts"] if attempt["error"]
    ]


def check_fail_fast(scenario: Scenario, drivers: dict[str, Driver]) -> None:
    expected = oracle_result(scenario)
    oracle_steps = {step["id"]: step for step in expected["steps"]}
    for name, driver in drivers.items():
        for limit in (1, None):
            result = driver.run_blocking(
                scenario.flow, scenario.inputs, run_id=scenario.run_id, max_concurrency=limit, fail_fast=True
            ).canonical()
            label = f"{name} (max_concurrency={limit})"
            assert result["status"] == expected["status"], (label, failed_attempts(result))
            for step in result["steps"]:
                if step["status"] == "succeeded":
                    assert step["output"] == oracle_steps[step["id"]]["output"], (
                        label,
                        step["id"],
                        failed_attempts(result),
                    )
            if expected["status"] == "failed":
                assert "fail_fast" in (result["reason"] or ""), label


@pytest.mark.parametrize(("drivers", "share"), LANES)
def test_journals_replay_and_resume_to_the_same_result(
    drivers: dict[str, Driver], share: float, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The journal of every run replays to its result, and a run resumed on any driver from any point
    of its journal (as if its process had died there) ends with the same result. A lane's runs resume
    on its drivers; the cluster lane's from a journal any driver may have recorded."""
    recorders = sorted(DRIVERS) if CLUSTER_DRIVERS & set(drivers) else sorted(drivers)

    @examples(share, base=max(10, EXAMPLES // 3))
    @given(
        scenario=st.one_of(
            scenarios(max_steps=10),
            scenarios(max_steps=6, timeouts_fire=True, firing_timeout=firing_timeout(drivers)),
        ),
        recorder=st.sampled_from(recorders),
        cut=st.floats(0, 1),
        limit=st.sampled_from([1, 2, None]),
    )
    def check(scenario: Scenario, recorder: str, cut: float, limit: int | None) -> None:
        directory = tmp_path_factory.mktemp("journals")
        journals = (SqliteJournal(directory / f"{k}.db") for k in itertools.count())
        lane = {recorder: DRIVERS[recorder], **drivers}
        assert_replay_parity(scenario, lane, lambda: next(journals), cuts=(cut,), max_concurrency=limit)

    check()
