"""A real run of the pictured flow on each driver, recorded in a SQLite journal and read back from it."""

from __future__ import annotations

import pytest

from flowkernel import ExecutionResult, Flow
from flowkernel.host import load_driver
from flowkernel.host.journal import SqliteJournal, replay

from .timeline_flow import build


@pytest.fixture(scope="module", params=["sync", "asyncio", "trio"])
def recorded_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Flow, ExecutionResult]:
    """The flow and the result ``flowkernel show`` would draw: replayed from the journal, not the run's own.

    On each driver: each has its own clock (the loop's time on asyncio and trio, ``time.monotonic`` on sync).
    """
    directory = tmp_path_factory.mktemp("recorded")
    flow = build()
    inputs = {"n": 3, "marker": str(directory / "flaky-calls")}
    journal = SqliteJournal(directory / "journal.sqlite")
    try:
        load_driver(request.param).run_blocking(flow, inputs, journal=journal, run_id="pictured-1")
        return flow, replay(flow, journal, "pictured-1")
    finally:
        journal.close()
