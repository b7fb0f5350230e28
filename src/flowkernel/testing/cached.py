"""Cache parity: a scenario run a second time with a warm step cache gives the same result on every
driver and concurrency limit, each second run served from the cache.

Public, like :func:`~flowkernel.testing.parity.assert_parity`::

    @given(scenario=scenarios())
    def test_my_driver_serves_from_the_cache(scenario, tmp_path_factory):
        assert_cached_parity(scenario, {"sync": SyncDriver(), "mine": MyDriver()}, tmp_path_factory.mktemp("c"))
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

from ..events import Event, StepFinished
from ..host.cache import StepCache
from ..host.driver import Driver
from ..model.cache import CachePolicy
from ..result import AttemptRecord, ExecutionResult
from .parity import DEFAULT_LIMITS, ParityError, first_difference
from .scripted import Scenario

__all__ = ("assert_cached_parity", "cached_attempts", "cached_scenario")


def cached_scenario(scenario: Scenario, policy: CachePolicy | None = None) -> Scenario:
    """``scenario`` with every tool step of its flow (map steps included) opted in to the step cache."""
    policy = policy or CachePolicy()
    steps = [
        step.model_copy(update={"cache": policy}) if step.tool is not None else step for step in scenario.flow.steps
    ]
    return Scenario(
        scenario.flow.model_copy(update={"steps": steps}), scenario.inputs, scenario.script, scenario.run_id
    )


def cached_attempts(result: ExecutionResult) -> Iterator[AttemptRecord]:
    """Every attempt of the run (sub-flows' and map elements' too) that was served from a step cache."""
    for step in result.steps:
        yield from (attempt for attempt in step.attempts if attempt.cached)
        if step.subflow is not None:
            yield from cached_attempts(step.subflow)


def assert_cached_parity(
    scenario: Scenario,
    drivers: Mapping[str, Driver],
    directory: Path,
    limits: Iterable[int | None] = DEFAULT_LIMITS,
) -> None:
    """Warm a step cache with one run of :func:`cached_scenario` (the first driver, one call at a time),
    then run it again on every driver and limit, each from its own copy of the warm cache.

    Every second run must give the same canonical result; each must look up, and be served, every
    result the warm-up stored (the cache file counts as many new hits as the result has cached attempts,
    and at least as many as it had entries), and say so in as many ``StepFinished(cached=True)`` events.
    Raises :class:`ParityError` naming the run and what differs.
    """
    scenario = cached_scenario(scenario)
    warm = directory / "warm.db"
    first_name, first = next(iter(drivers.items()))
    with StepCache(warm) as cache:
        first.run_blocking(scenario.flow, scenario.inputs, run_id=scenario.run_id, max_concurrency=1, cache=cache)
        warm_stats = cache.stats()
    stored, warm_hits = warm_stats.entries, warm_stats.hits  # the warm-up may hit too (equal map elements)
    reference: tuple[str, dict[str, Any]] | None = None
    for name, driver in drivers.items():
        for limit in limits:
            label = f"{name} (max_concurrency={limit}) with the cache {first_name} warmed"
            copy = directory / f"{name}-{limit}.db"
            _copy(warm, copy)
            events: list[Event] = []
            with StepCache(copy) as cache:
                try:
                    result = driver.run_blocking(
                        scenario.flow,
                        scenario.inputs,
                        run_id=scenario.run_id,
                        max_concurrency=limit,
                        cache=cache,
                        on_event=events.append,
                    )
                except Exception as exc:
                    raise ParityError(f"{label} raised {type(exc).__name__}: {exc}") from exc
                hits = cache.stats().hits - warm_hits
            served = sum(1 for _ in cached_attempts(result))
            said = sum(1 for event in events if type(event) is StepFinished and event.cached)
            if served != hits or hits < stored or said != served:
                raise ParityError(
                    f"{label}: {served} attempts say cached, {said} StepFinished events do, the cache served "
                    f"{hits}, the warm-up stored {stored}"
                )
            got = result.canonical()
            if reference is None:
                reference = (label, got)
            elif got != reference[1]:
                where, left, right = first_difference(reference[1], got)
                first_label = reference[0]
                raise ParityError(
                    f"{label} disagrees with {first_label} at {where}:\n  {first_label}: {left!r}\n  {label}: {right!r}"
                )


def _copy(source: Path, target: Path) -> None:
    """A consistent copy of a cache file, its write-ahead log included (SQLite's backup)."""
    target.unlink(missing_ok=True)
    with closing(sqlite3.connect(source)) as from_db, closing(sqlite3.connect(target)) as to_db:
        from_db.backup(to_db)
