"""check_driver: the parity check as a library call (what ``flowkernel parity`` runs)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Unpack

import pytest

pytest.importorskip("hypothesis", reason="check_driver needs hypothesis (flowkernel[testing])")

from flowkernel import ExecutionResult, Flow, Step
from flowkernel.host import RunSettings
from flowkernel.testing import (
    Divergence,
    ParityError,
    ParityFailure,
    ParityReport,
    Scenario,
    Script,
    assert_parity,
    check_driver,
    describe_scenario,
    find_divergence,
    scripted_tool,
)
from flowkernel.testing.check import ParityCheckError
from flowkernel_sync import SyncDriver

from .off_by_one import OffByOneDriver


class RaisingDriver:
    """Refuses any flow with a sub-flow step: a driver that raises where it should run."""

    name = "raising"

    def run_blocking(
        self, flow: Flow, inputs: Mapping[str, Any] | None = None, **settings: Unpack[RunSettings]
    ) -> ExecutionResult:
        if any(step.flow is not None for step in flow.steps):
            raise NotImplementedError("sub-flows are not supported")
        return SyncDriver().run_blocking(flow, inputs, **settings)


def test_an_honest_driver_keeps_parity_on_every_example() -> None:
    report = check_driver(SyncDriver(), examples=4, seed=5, limits=(1, None))
    assert report.passed
    assert report.failure is None
    assert report.examples == 4
    assert report.references == ("oracle",)  # the sync driver is not compared with itself
    assert report.render() == report.summary()
    assert report.summary() == "parity kept: driver 'sync' against oracle, 4 examples passed, limits 1,none, seed 5"


def test_a_broken_driver_is_caught_with_the_minimal_scenario_and_both_results() -> None:
    report = check_driver(OffByOneDriver(), examples=10, seed=1, limits=(2,))
    assert not report.passed
    assert report.references == ("oracle", "sync")
    failure = report.failure
    assert failure is not None
    assert not failure.flaky
    assert [step.id for step in failure.scenario.flow.steps] == ["s0"]
    divergence = failure.divergence
    assert divergence is not None
    assert (divergence.kind, divergence.driver, divergence.limit, divergence.reference) == (
        "differs",
        "off-by-one",
        2,
        "oracle",
    )
    assert divergence.path == "result.outputs.s0.n"
    assert divergence.expected is not None
    assert divergence.got is not None
    assert divergence.got["outputs"]["s0"]["n"] == divergence.expected["outputs"]["s0"]["n"] + 1
    text = report.render(width=100)
    assert describe_scenario(failure.scenario) in text
    assert "first difference at result.outputs.s0.n:" in text
    # the minimal scenario, replayed, still breaks parity in the same way
    with pytest.raises(ParityError, match=r"off-by-one \(max_concurrency=2\) disagrees with oracle"):
        assert_parity(failure.scenario, {"off-by-one": OffByOneDriver()}, limits=(2,))


def test_the_same_seed_gives_the_same_report() -> None:
    first, second = (check_driver(OffByOneDriver(), examples=5, seed=11, limits=(1,)) for _ in range(2))
    assert first.render() == second.render()


def test_a_driver_that_raises_is_a_failure_not_an_exception() -> None:
    report = check_driver(RaisingDriver(), examples=60, seed=3, limits=(1,), against={})
    failure = report.failure
    assert failure is not None
    assert failure.divergence is not None
    assert failure.divergence.kind == "raised"
    assert isinstance(failure.divergence.exception, NotImplementedError)
    assert [step.flow is not None for step in failure.scenario.flow.steps] == [True]
    assert "raising (max_concurrency=1) raised NotImplementedError: sub-flows are not supported" in report.render()


def test_find_divergence_gives_what_assert_parity_raises() -> None:
    script = Script()
    scenario = Scenario(
        Flow(name="one", steps=[Step(id="a", tool=scripted_tool("a", script, is_async=False))]), {}, script
    )
    assert find_divergence(scenario, {"sync": SyncDriver()}, (1,)) is None
    divergence = find_divergence(scenario, {"sync": SyncDriver(), "off": OffByOneDriver()}, (None,))
    assert divergence is not None
    assert (divergence.kind, divergence.label, divergence.path) == (
        "differs",
        "off (max_concurrency=None)",
        "result.outputs.a.n",
    )
    with pytest.raises(ParityError) as raised:
        assert_parity(scenario, {"off": OffByOneDriver()}, limits=(None,))
    assert raised.value.divergence == divergence
    assert str(raised.value) == divergence.message


def test_options_it_cannot_run_with_are_all_named_at_once() -> None:
    with pytest.raises(ParityCheckError) as raised:
        check_driver(SyncDriver(), against={}, oracle=False, examples=0, limits=(0,), max_steps=0)
    message = str(raised.value)
    for problem in ("nothing to compare", "examples must be at least 1", "limits must be", "max_steps must be"):
        assert problem in message


class SlowDriver:
    """The sync driver, 30 ms slower per run."""

    name = "slow"

    def run_blocking(
        self, flow: Flow, inputs: Mapping[str, Any] | None = None, **settings: Unpack[RunSettings]
    ) -> ExecutionResult:
        time.sleep(0.03)
        return SyncDriver().run_blocking(flow, inputs, **settings)


def test_an_example_over_the_deadline_is_a_failure_with_its_scenario() -> None:
    report = check_driver(SlowDriver(), examples=5, seed=2, limits=(1,), against={}, deadline_ms=10)
    failure = report.failure
    assert failure is not None
    assert failure.divergence is None
    assert failure.message.startswith("the example took too long")
    text = report.render()
    assert "minimal flow:\nflow 'generated': 1 step" in text
    assert failure.message in text


def test_a_run_over_its_limit_is_reported_with_the_gauges_count() -> None:
    script = Script(delays={("a", 1): 0.01, ("b", 1): 0.01})
    steps = [Step(id=k, tool=scripted_tool(k, script, is_async=False)) for k in "ab"]
    scenario = Scenario(Flow(name="two", steps=steps), {}, script)
    message = "wide (max_concurrency=1) had 2 calls in flight at once, over the run's limit of 1"
    divergence = Divergence(
        "over-limit", "wide", 1, "oracle", message, {"status": "succeeded"}, {"status": "succeeded"}
    )
    report = ParityReport("wide", ("oracle",), (1,), 9, 3, ParityFailure(scenario, message, divergence), 7)
    text = report.render()
    assert text.splitlines()[:2] == [
        "parity BROKEN: driver 'wide' against oracle, 3 examples passed, limits 1, seed 9",
        "first failure after 3 passing examples, shrunk in 7 runs",
    ]
    assert f"wide (max_concurrency=1) had more calls in flight than its limits allow\n\n{message}" in text
    assert "side by side" not in text  # equal results: nothing to set side by side
    assert "oracle's canonical result:" in text
