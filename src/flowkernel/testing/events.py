"""Event parity: what a driver delivers is exactly the kernel's events for the completions it fed, and
drivers fed the same completions deliver the same events.

Public, like :func:`~flowkernel.testing.parity.assert_parity`::

    @given(scenario=scenarios())
    def test_my_driver_reports_events(scenario):
        assert_event_parity(scenario, {"mine": MyDriver(), "sync": SyncDriver()})
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..events import Event, RunFinished, RunStarted, without_timing
from ..host.driver import Driver
from ..host.journal import Entry, SqliteJournal
from ..kernel.inputs import prepare_inputs
from ..kernel.options import RunOptions
from ..kernel.run import RunState, drive
from .parity import ParityError
from .scripted import Scenario

__all__ = ("assert_event_parity", "kernel_events", "runs_in_sequence")


def kernel_events(scenario: Scenario, entries: Sequence[Entry], max_concurrency: int | None) -> list[Event]:
    """The events the kernel emits, without timing, when fed the completion batches ``entries``."""
    options = RunOptions(scenario.run_id, max_concurrency=max_concurrency, events=True)
    state = RunState(scenario.flow, prepare_inputs(scenario.flow, scenario.inputs), options)
    kernel = drive(state)
    try:
        kernel.send(None)  # type: ignore[arg-type]
        for entry in entries:
            kernel.send(list(entry.completions))
    except StopIteration:
        pass
    return [without_timing(event) for event in state.events]


def runs_in_sequence(scenario: Scenario) -> bool:
    """Whether at ``max_concurrency=1`` one call at a time is in flight, so calls complete in one order on
    every driver: no sub-flow or map step, no fallback tool, no retry that waits (a backoff timer runs
    beside the next call, and those run beside the limited calls)."""
    for step in scenario.flow.steps:
        if step.tool is None or step.map is not None:
            return False
        retry = step.retry_policy
        if retry is not None and retry.initial_delay > 0:
            return False
        fallback = getattr(step.on_error, "tool", None)
        if fallback is not None:
            return False
    return True


def assert_event_parity(
    scenario: Scenario, drivers: Mapping[str, Driver], limits: Iterable[int | None] = (1, None)
) -> None:
    """Each (driver, limit) run delivers ``RunStarted``, then exactly the kernel's events for the
    completions that driver fed it (read back from a journal), then ``RunFinished``, times increasing;
    and for a scenario that :func:`runs_in_sequence` every driver delivers the same events at limit 1."""
    sequences: dict[str, list[Any]] = {}
    for name, driver in drivers.items():
        for limit in limits:
            label = f"{name} (max_concurrency={limit})"
            seen: list[Event] = []
            with SqliteJournal(":memory:") as journal:
                try:
                    driver.run_blocking(
                        scenario.flow,
                        scenario.inputs,
                        run_id=scenario.run_id,
                        max_concurrency=limit,
                        on_event=seen.append,
                        journal=journal,
                    )
                except Exception as exc:
                    raise ParityError(f"{label} raised {type(exc).__name__}: {exc}") from exc
                entries = journal.load(scenario.run_id).entries
            _check_frame(seen, label)
            expected = kernel_events(scenario, entries, limit)
            got = [without_timing(event) for event in seen[1:-1]]
            if got != expected:
                raise ParityError(f"{label} delivered other events than the kernel emitted:\n{_diff(expected, got)}")
            if limit == 1:
                sequences[label] = [without_timing(event) for event in seen]
    if runs_in_sequence(scenario) and len(sequences) > 1:
        (first, reference), *others = sequences.items()
        for label, sequence in others:
            if sequence != reference:
                raise ParityError(f"{label} and {first} delivered different events:\n{_diff(reference, sequence)}")


def _check_frame(seen: list[Event], label: str) -> None:
    if not seen or type(seen[0]) is not RunStarted or type(seen[-1]) is not RunFinished:
        raise ParityError(f"{label}: events must start with RunStarted and end with RunFinished, got {seen[:1]}")
    times = [event.time for event in seen]
    if times != sorted(times):
        raise ParityError(f"{label}: event times go backwards: {times}")


def _diff(expected: list[Any], got: list[Any]) -> str:
    for i, (left, right) in enumerate(zip(expected, got, strict=False)):
        if left != right:
            return f"  first difference at event {i}:\n  expected: {left!r}\n  got:      {right!r}"
    return f"  {len(expected)} events expected, {len(got)} delivered"
