"""The parity harness: run one scenario on many drivers and concurrency limits, compare to the oracle.

Public API, so users can prove their own drivers::

    @given(scenario=scenarios())
    def test_my_driver(scenario):
        assert_parity(scenario, {"mine": MyDriver(), "sync": SyncDriver()})
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..host.driver import Driver
from ..model.flow import Flow
from ..model.step import Step
from .oracle import oracle_result
from .scripted import Scenario

__all__ = (
    "DEFAULT_LIMITS",
    "Divergence",
    "DivergenceKind",
    "ParityError",
    "assert_calls_within_limits",
    "assert_parity",
    "find_divergence",
    "first_difference",
    "run_canonical",
)

DEFAULT_LIMITS: tuple[int | None, ...] = (1, 2, None)


class ParityError(AssertionError):
    """Two runs of one scenario disagree; the message names both sides and the first difference, and
    ``divergence`` holds the same as data."""

    def __init__(self, message: str, divergence: Divergence | None = None) -> None:
        super().__init__(message)
        self.divergence = divergence


DivergenceKind = Literal["differs", "raised", "over-limit"]


@dataclass(frozen=True)
class Divergence:
    """How one run of a scenario broke parity: its canonical result differs from the reference's
    (``differs``), the driver raised (``raised``), or it had more calls in flight than its limits allow
    (``over-limit``). ``expected`` is the reference's canonical result, ``got`` the run's (``None`` if it
    raised); ``path`` is where they first differ."""

    kind: DivergenceKind
    driver: str
    limit: int | None
    reference: str
    message: str
    expected: dict[str, Any] | None = None
    got: dict[str, Any] | None = None
    path: str | None = None
    exception: Exception | None = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        """The run that broke parity: ``driver (max_concurrency=limit)``."""
        return _label(self.driver, self.limit)


def _label(driver: str, limit: int | None) -> str:
    return f"{driver} (max_concurrency={limit})"


def run_canonical(driver: Driver, scenario: Scenario, max_concurrency: int | None) -> dict[str, Any]:
    """Run a scenario on a driver and return the canonical result."""
    result = driver.run_blocking(
        scenario.flow, scenario.inputs, run_id=scenario.run_id, max_concurrency=max_concurrency
    )
    return result.canonical()


def assert_parity(
    scenario: Scenario,
    drivers: Mapping[str, Driver],
    limits: Iterable[int | None] = DEFAULT_LIMITS,
    *,
    oracle: bool = True,
    count_calls: bool = True,
) -> None:
    """Every (driver, limit) run of ``scenario`` gives the same canonical result, equal to the oracle's,
    and (with ``count_calls``) never has more calls in flight than its limits allow: see
    :func:`assert_calls_within_limits`, which needs the tools to run in this process.

    Raises :class:`ParityError` naming the disagreeing pair and where they first differ.
    """
    divergence = find_divergence(scenario, drivers, limits, oracle=oracle, count_calls=count_calls)
    if divergence is not None:
        raise ParityError(divergence.message, divergence) from divergence.exception


def find_divergence(
    scenario: Scenario,
    drivers: Mapping[str, Driver],
    limits: Iterable[int | None] = DEFAULT_LIMITS,
    *,
    oracle: bool = True,
    count_calls: bool = True,
) -> Divergence | None:
    """The first (driver, limit) run of ``scenario`` that breaks parity, as :func:`assert_parity` checks
    it (drivers in the mapping's order, each at every limit), or ``None`` if every run keeps it."""
    limits = tuple(limits)
    reference_name, reference = ("oracle", oracle_result(scenario)) if oracle else ("", None)
    for name, driver in drivers.items():
        for limit in limits:
            label = _label(name, limit)
            scenario.script.gauge.reset()
            try:
                got = run_canonical(driver, scenario, limit)
            except Exception as exc:
                message = f"{label} raised {type(exc).__name__}: {exc}"
                return Divergence("raised", name, limit, reference_name, message, reference, exception=exc)
            if count_calls:
                try:
                    assert_calls_within_limits(scenario, got, limit, label)
                except ParityError as exc:
                    return Divergence("over-limit", name, limit, reference_name, str(exc), reference, got)
            if reference is None:
                reference_name, reference = label, got
            elif got != reference:
                where, left, right = first_difference(reference, got)
                message = (
                    f"{label} disagrees with {reference_name} at {where}:\n"
                    f"  {reference_name}: {left!r}\n  {label}: {right!r}"
                )
                return Divergence("differs", name, limit, reference_name, message, reference, got, where)
    return None


def assert_calls_within_limits(scenario: Scenario, result: dict[str, Any], limit: int | None, label: str) -> None:
    """The run of ``scenario`` that gave the canonical ``result`` never had more scripted calls in flight
    than ``limit`` (every call of the run, its sub-runs' and map elements' included), nor more calls of a
    map step's element tool than the step's own ``max_concurrency``, as the script's gauge counted them
    (reset it before the run).

    The gauge must have counted every call the result records (hanging calls and fallbacks aside, which
    it leaves out): else the tools ran where it cannot see them, and the check would pass vacuously.
    Raises :class:`ParityError`.
    """
    gauge = scenario.script.gauge
    made = _calls_made(result["steps"])
    if gauge.calls != made:
        raise ParityError(
            f"{label}: the scripted tools counted {gauge.calls} calls where the run records {made}; do the tools "
            "run in another process? (pass count_calls=False to check results only)"
        )
    if limit is not None and gauge.peak > limit:
        raise ParityError(f"{label} had {gauge.peak} calls in flight at once, over the run's limit of {limit}")
    for step_id, tool, own in _own_limits(scenario.flow):
        if gauge.peaks[tool] > own:
            raise ParityError(
                f"{label} had {gauge.peaks[tool]} calls of step {step_id!r} in flight at once, over its own "
                f"limit of {own}"
            )


def _calls_made(steps: Sequence[dict[str, Any]]) -> int:
    """How many tool calls the step records tell of, sub-runs' included: every attempt of a step that
    calls a tool (a sub-flow or map step's attempt is its sub-run's), except attempts that timed out
    (scripted hangs, which the gauge leaves out: the kernel stops counting them at their timeout)."""
    made = 0
    for step in steps:
        if step["subflow"] is not None:
            made += _calls_made(step["subflow"]["steps"])
            continue
        for attempt in step["attempts"]:
            error = attempt["error"]
            made += error is None or error["kind"] != "timeout"
    return made


def _own_limits(flow: Flow) -> Iterator[tuple[str, str, int]]:
    """(step id, the name of its element tool, its limit) for map steps with a limit of their own, however
    deep, whose tool no other step uses (the gauge counts calls per tool name)."""
    steps = list(_all_steps(flow))
    uses = Counter(step.tool.name for step in steps if step.tool is not None)
    for step in steps:
        if step.max_concurrency is not None and step.tool is not None and uses[step.tool.name] == 1:
            yield step.id, step.tool.name, step.max_concurrency


def _all_steps(flow: Flow) -> Iterator[Step]:
    for step in flow.steps:
        yield step
        if step.flow is not None:
            yield from _all_steps(step.flow)


def first_difference(left: Any, right: Any, path: str = "result") -> tuple[str, Any, Any]:
    """The path to the first place two JSON-like values differ, with both values there."""
    if isinstance(left, dict) and isinstance(right, dict):
        for key in [*left, *(k for k in right if k not in left)]:
            if left.get(key, _MISSING) != right.get(key, _MISSING):
                return first_difference(left.get(key, _MISSING), right.get(key, _MISSING), f"{path}.{key}")
    elif isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            if a != b:
                label = a.get("id", i) if isinstance(a, dict) else i
                return first_difference(a, b, f"{path}[{label}]")
    return path, left, right


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()
