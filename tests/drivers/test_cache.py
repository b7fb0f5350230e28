"""The step cache on every driver: a second run with the same cache is served from it (the tools are not
called again, the attempts say ``cached``), with the same canonical result as the first."""

from __future__ import annotations

import time
from pathlib import Path

from flowkernel import AttemptRecord, ErrorKind, ExecutionResult, Flow, Step, StepStatus
from flowkernel.host import Driver
from flowkernel.host.cache import StepCache

from ..host.cache.flows import LATE, cached_flow, calls, late_square, note_leaving
from .support import TIMEOUT, in_thread

CACHED_STEPS = ("sq", "about", "each")


def test_a_second_run_is_served_from_the_cache_on_every_driver(flowkernel_driver: Driver, tmp_path: Path) -> None:
    log = str(tmp_path / "calls.log")
    flow = cached_flow(log)
    with StepCache(tmp_path / "cache.db") as cache:
        first = in_thread(lambda: flowkernel_driver.run_blocking(flow, run_id="r", cache=cache), timeout=60)
        made = calls(log)
        second = in_thread(lambda: flowkernel_driver.run_blocking(flow, run_id="r", cache=cache), timeout=60)
        stats = cache.stats()
    assert first.status == second.status == "succeeded", (first.errors, second.errors)
    assert sorted(made) == ["describe 9", "plain 9", "square 3", "square 9"]  # "each" maps [9]
    assert calls(log) == [*made, "plain 9"]  # the second run called only the uncached tool
    assert second.canonical() == first.canonical()
    for step in CACHED_STEPS:
        assert [a.cached for a in _attempts(first, step)] == [False]
        assert [a.cached for a in _attempts(second, step)] == [True]
    assert [a.cached for a in second.step("bump").attempts] == [False]
    assert (stats.entries, stats.hits) == (3, 3)


def test_without_a_cache_the_policies_change_nothing(flowkernel_driver: Driver, tmp_path: Path) -> None:
    log = str(tmp_path / "calls.log")
    flow = cached_flow(log)
    for _ in range(2):
        result = in_thread(lambda: flowkernel_driver.run_blocking(flow, run_id="r"), timeout=60)
        assert result.status == "succeeded", result.errors
    assert len(calls(log)) == 8
    assert not any(a.cached for s in result.steps for a in _attempts(result, s.id))


def test_a_value_returned_after_its_timeout_is_not_stored_on_any_driver(
    flowkernel_driver: Driver, tmp_path: Path
) -> None:
    """A sync tool cannot be stopped at its timeout: it runs on and returns. The run counted that call as
    timed out, so the next run must call the tool again, not be served the late value (docs/cache.md)."""
    log = str(tmp_path / "calls.log")
    flow = Flow(name="late", steps=[Step(id="s", tool=late_square, arguments={"x": 3, "log": log}, timeout=1.0)])

    def run() -> ExecutionResult:
        return in_thread(lambda: flowkernel_driver.run_blocking(flow, cache=cache, middleware=[note_leaving]), 60)

    LATE.clear()
    with StepCache(tmp_path / "cache.db") as cache:
        try:
            first = run()
        finally:
            LATE.set()
        waited = time.monotonic() + TIMEOUT
        while "left s" not in calls(log):  # the late call has been through the cache
            assert time.monotonic() < waited, "the late call never returned"
            time.sleep(0.01)
        late = cache.stats()
        second = run()  # LATE is set: the tool returns at once, well within its timeout, and is stored
        third = run()
        stats = cache.stats()
    error = first.step("s").error
    assert error is not None
    assert error.kind is ErrorKind.TIMEOUT
    assert late.entries == 0
    assert (second.step("s").output, [a.cached for a in second.step("s").attempts]) == (9, [False])
    assert (third.step("s").output, [a.cached for a in third.step("s").attempts]) == (9, [True])
    assert calls(log) == ["late_square 3", "left s", "late_square 3", "left s", "left s"]
    assert (stats.entries, stats.hits) == (1, 1)


def _attempts(result: ExecutionResult, step: str) -> tuple[AttemptRecord, ...]:
    """A step's attempts; a map step's are its elements'."""
    record = result.step(step)
    if record.subflow is not None:
        assert record.status is StepStatus.SUCCEEDED
        return tuple(a for element in record.subflow.steps for a in element.attempts)
    return record.attempts


def test_dask_worker_processes_share_the_cache_file(tmp_path: Path) -> None:
    """Middleware runs on the workers: the cache travels there as its path and each worker process opens
    the file itself (an SQLite file is fine for a cluster on one machine)."""
    import pytest

    pytest.importorskip("distributed", reason="the Dask driver needs distributed (pip install -e ./drivers/dask)")
    from flowkernel_dask import DaskDriver

    log = str(tmp_path / "calls.log")
    flow = cached_flow(log)
    with StepCache(tmp_path / "cache.db") as cache, DaskDriver(processes=True, n_workers=2) as dask:
        first = in_thread(lambda: dask.run_blocking(flow, run_id="r", cache=cache), timeout=120)
        second = in_thread(lambda: dask.run_blocking(flow, run_id="r", cache=cache), timeout=120)
    assert first.status == second.status == "succeeded", (first.errors, second.errors)
    assert sorted(calls(log)) == ["describe 9", "plain 9", "plain 9", "square 3", "square 9"]
    assert all(a.cached for step in CACHED_STEPS for a in _attempts(second, step))
    assert second.canonical() == first.canonical()
