"""The parity harness: run one scenario on many drivers and concurrency limits, compare to the oracle.

Public API, so users can prove their own drivers::

    @given(scenario=scenarios())
    def test_my_driver(scenario):
        assert_parity(scenario, {"mine": MyDriver(), "sync": SyncDriver()})
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..host.driver import Driver
from .oracle import oracle_result
from .scripted import Scenario

__all__ = ("DEFAULT_LIMITS", "ParityError", "assert_parity", "first_difference", "run_canonical")

DEFAULT_LIMITS: tuple[int | None, ...] = (1, 2, None)


class ParityError(AssertionError):
    """Two runs of one scenario disagree; the message names both sides and the first difference."""


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
) -> None:
    """Every (driver, limit) run of ``scenario`` gives the same canonical result, equal to the oracle's.

    Raises :class:`ParityError` naming the disagreeing pair and where they first differ.
    """
    reference_name, reference = ("oracle", oracle_result(scenario)) if oracle else ("", None)
    for name, driver in drivers.items():
        for limit in limits:
            label = f"{name} (max_concurrency={limit})"
            try:
                got = run_canonical(driver, scenario, limit)
            except Exception as exc:
                raise ParityError(f"{label} raised {type(exc).__name__}: {exc}") from exc
            if reference is None:
                reference_name, reference = label, got
            elif got != reference:
                where, left, right = first_difference(reference, got)
                raise ParityError(
                    f"{label} disagrees with {reference_name} at {where}:\n"
                    f"  {reference_name}: {left!r}\n  {label}: {right!r}"
                )


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
