"""A real run of the pictured flow on the sync driver, recorded in a SQLite journal and read back from it."""

from __future__ import annotations

import pytest

from flowkernel import ExecutionResult, Flow
from flowkernel.host.journal import SqliteJournal, replay
from flowkernel_sync import SyncDriver

from .timeline_flow import build


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Flow, ExecutionResult]:
    """The flow and the result ``flowkernel show`` would draw: replayed from the journal, not the run's own."""
    directory = tmp_path_factory.mktemp("recorded")
    flow = build()
    inputs = {"n": 3, "marker": str(directory / "flaky-calls")}
    journal = SqliteJournal(directory / "journal.sqlite")
    try:
        SyncDriver().run(flow, inputs, journal=journal, run_id="pictured-1")
        return flow, replay(flow, journal, "pictured-1")
    finally:
        journal.close()
