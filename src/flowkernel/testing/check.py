"""Prove a driver in one call: generate scenarios with hypothesis, run each on the driver and on the
references (the oracle, and by default the sync driver), and on the first divergence let hypothesis
shrink it to a minimal flow.

What ``flowkernel parity --driver NAME`` runs; embedders call it too::

    report = check_driver(MyDriver(), examples=200, seed=1)
    if not report.passed:
        print(report.render())
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hypothesis import HealthCheck, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import DeadlineExceeded, Flaky

from ..errors import FlowKernelError
from ..host.driver import Driver
from ..host.registry import installed_drivers, load_driver
from .parity import DEFAULT_LIMITS, Divergence, ParityError, find_divergence
from .render import render_report
from .scripted import Scenario
from .strategies import scenarios

__all__ = (
    "DEFAULT_MAX_STEPS",
    "DEFAULT_REFERENCE",
    "ParityCheckError",
    "ParityFailure",
    "ParityReport",
    "check_driver",
)

DEFAULT_REFERENCE = "sync"
"""The installed driver a driver is compared with besides the oracle, unless told otherwise."""
DEFAULT_MAX_STEPS = 6
"""Small flows: most driver bugs show in a few steps, and hypothesis shrinks them in seconds (flows of
30 steps can take it minutes)."""


@dataclass(frozen=True)
class ParityFailure:
    """The minimal scenario hypothesis shrank a failure to, and how it failed there.

    ``divergence`` says how a run broke parity; it is ``None`` when the example instead took longer than
    the deadline (``message`` says so). ``flaky``: the scenario did not fail again when replayed (a
    timing-dependent failure); it is the last one that failed.
    """

    scenario: Scenario
    message: str
    divergence: Divergence | None
    flaky: bool = False


@dataclass(frozen=True)
class ParityReport:
    """What a :func:`check_driver` run found: ``failure`` is ``None`` when every example kept parity.

    ``examples`` counts the scenarios that kept parity before the first failure (all of them when there
    was none); ``shrink_runs`` how many more runs hypothesis made to shrink the failure.
    """

    driver: str
    references: tuple[str, ...]
    limits: tuple[int | None, ...]
    seed: int
    examples: int
    failure: ParityFailure | None = None
    shrink_runs: int = 0

    @property
    def passed(self) -> bool:
        return self.failure is None

    def summary(self) -> str:
        """One line: what ran against what, and the verdict."""
        limits = ",".join("none" if limit is None else str(limit) for limit in self.limits)
        verdict = "parity kept" if self.passed else "parity BROKEN"
        return (
            f"{verdict}: driver {self.driver!r} against {' and '.join(self.references)}, "
            f"{self.examples} examples passed, limits {limits}, seed {self.seed}"
        )

    def render(self, *, width: int = 120) -> str:
        """The report in plain text: the summary, then (on a failure) the minimal flow, where the two
        results first differ and both results side by side, in ``width`` columns."""
        return render_report(self, width=width)


@dataclass
class _Tally:
    """What the property saw while hypothesis ran it."""

    passed: int = 0
    after_failure: int = 0
    failed: bool = False
    last_scenario: Scenario | None = None
    last_slow: Scenario | None = None
    last_failing: tuple[Scenario, Divergence] | None = field(default=None, repr=False)


def check_driver(
    driver: Driver,
    *,
    name: str | None = None,
    against: Mapping[str, Driver] | None = None,
    oracle: bool = True,
    examples: int = 100,
    seed: int | None = None,
    deadline_ms: float | None = None,
    limits: Sequence[int | None] = DEFAULT_LIMITS,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> ParityReport:
    """Run ``examples`` generated scenarios on ``driver`` at each of ``limits`` and compare every run to
    the oracle (unless ``oracle`` is false) and to each driver of ``against`` (default: the installed
    ``sync`` driver, unless it is the one under test; pass ``{}`` for none).

    ``seed`` fixes the scenarios (default: a random one, in the report); ``deadline_ms`` is hypothesis'
    deadline for one example (all its runs), ``None`` for none. On the first failure hypothesis shrinks
    the scenario; the report holds the minimal one. Errors in the driver are failures, not exceptions.
    """
    tested: str = name or driver.name
    references = dict(_default_references(tested) if against is None else against)
    references.pop(tested, None)
    limits = tuple(limits)
    _check_options(oracle or bool(references), examples, limits, max_steps)
    runs: dict[str, Driver] = {**references, tested: driver}  # references first: their divergences name them
    seed = random.randrange(2**32) if seed is None else seed
    tally = _Tally()

    @settings(
        max_examples=examples,
        deadline=deadline_ms,
        database=None,
        derandomize=False,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        print_blob=False,
    )
    @hypothesis_seed(seed)
    @given(scenario=scenarios(max_steps=max_steps))
    def keeps_parity(scenario: Scenario) -> None:
        tally.last_scenario = scenario
        if tally.failed:
            tally.after_failure += 1
        started = time.perf_counter()
        divergence = find_divergence(scenario, runs, limits, oracle=oracle)
        if deadline_ms is not None and (time.perf_counter() - started) * 1000 > deadline_ms:
            tally.last_slow = scenario
        if divergence is not None:
            tally.failed, tally.last_failing = True, (scenario, divergence)
            raise ParityError(divergence.message, divergence)
        if not tally.failed:
            tally.passed += 1

    failure: ParityFailure | None = None
    try:
        keeps_parity()
    except ParityError as exc:
        assert tally.last_scenario is not None  # the property ran and raised
        failure = ParityFailure(tally.last_scenario, str(exc), exc.divergence)
    except DeadlineExceeded as exc:
        assert tally.last_scenario is not None
        failure = ParityFailure(tally.last_scenario, f"the example took too long: {exc}", None)
    except Flaky as exc:  # the failure did not happen again on replay: report the last one seen
        if tally.last_failing is not None:
            scenario, divergence = tally.last_failing
            failure = ParityFailure(scenario, divergence.message, divergence, flaky=True)
        elif tally.last_slow is not None:  # a deadline exceeded once, not on replay
            failure = ParityFailure(tally.last_slow, f"the example took too long once: {exc}", None, flaky=True)
        else:
            raise
    reference_names = (("oracle",) if oracle else ()) + tuple(references)
    return ParityReport(
        tested, reference_names, limits, seed, tally.passed, failure, tally.after_failure if failure else 0
    )


class ParityCheckError(FlowKernelError, ValueError):
    """:func:`check_driver` was given options it cannot run with; the message lists every problem."""


def _check_options(compared: bool, examples: int, limits: tuple[int | None, ...], max_steps: int) -> None:
    problems = []
    if not compared:
        problems.append("nothing to compare the driver with: give oracle=True or some drivers in against")
    if examples < 1:
        problems.append(f"examples must be at least 1, not {examples}")
    if not limits or any(limit is not None and limit < 1 for limit in limits):
        problems.append(f"limits must be positive integers or None, at least one: {limits}")
    if max_steps < 1:
        problems.append(f"max_steps must be at least 1, not {max_steps}")
    if problems:
        raise ParityCheckError("cannot check the driver:\n" + "\n".join(f"  - {p}" for p in problems))


def _default_references(name: str) -> dict[str, Driver]:
    if name == DEFAULT_REFERENCE or DEFAULT_REFERENCE not in installed_drivers():
        return {}
    return {DEFAULT_REFERENCE: load_driver(DEFAULT_REFERENCE)}
