"""Replaying a journal into a fresh kernel: same completions in, the same commands must come out.

Replay checks every batch of commands against the digest recorded with the next entry, and tells which
calls were still in flight when the record ends: those a resumed run starts again (at least once), or
answers as cancelled when the kernel had already cancelled them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ...errors import CorruptJournalError, JournalError, NonDeterminismError
from ...kernel.inputs import prepare_inputs
from ...kernel.run import RunState, drive
from ...model.flow import Flow
from ...protocol import Cancel, Command, Completion, Invoke, StartTimer
from ...result import ExecutionResult
from .base import Entry, Journal
from .declared import declared_classes
from .recorder import check_flow, digest, options_of
from .retry import segments

__all__ = ("Replayed", "replay", "replay_entries")

Send = Callable[[Sequence[Completion] | None], list[Command]]


@dataclass(frozen=True, slots=True)
class Replayed:
    """Where replay left the run: the kernel's latest commands (never started), the earlier calls
    still in flight (to start again), and those in flight that the kernel had cancelled."""

    commands: list[Command]
    restart: list[Invoke | StartTimer]
    cancelled: list[str]


def replay_entries(
    run_id: str, entries: Sequence[Entry], first: list[Command], send: Send, finished: Callable[[], bool]
) -> Replayed:
    """Feed ``entries`` to a kernel whose first batch was ``first``, through ``send``."""
    in_flight: dict[str, Invoke | StartTimer] = {}
    cancelled: set[str] = set()
    commands = first
    for entry in entries:
        replayed = ("the run had already finished",) if finished() else tuple(digest(commands))
        if replayed != entry.issued:
            raise NonDeterminismError(run_id, entry.seq, entry.issued, replayed)
        _track(commands, in_flight, cancelled)
        for completion in entry.completions:
            in_flight.pop(completion.call_id, None)  # type: ignore[union-attr]
        commands = send(entry.completions)
    for command in commands:  # the latest batch is started as usual, but cancels what it names at once
        if type(command) is Cancel:
            cancelled.add(command.call_id)
    restart = [command for call_id, command in in_flight.items() if call_id not in cancelled]
    return Replayed(commands, restart, [call_id for call_id in in_flight if call_id in cancelled])


def replay(flow: Flow, journal: Journal, run_id: str, *, allow_flow_change: bool = False) -> ExecutionResult:
    """Re-derive a finished run's result from its journal alone, calling no tool; checks determinism.

    Raises :class:`~flowkernel.errors.NonDeterminismError` at the first divergence, and
    :class:`~flowkernel.errors.JournalError` if the run has not finished (resume it with a driver).
    """
    journal.allow(declared_classes(flow))
    recorded = journal.load(run_id)
    header = recorded.header
    check_flow(flow, header, allow_flow_change)
    kernel = drive(RunState(flow, prepare_inputs(flow, header.inputs), options_of(header)))
    results: list[ExecutionResult] = []

    def send(batch: Sequence[Completion] | None) -> list[Command]:
        try:
            return kernel.send(batch)  # type: ignore[arg-type]
        except StopIteration as stop:
            results.append(stop.value)
            return []

    latest = segments(recorded.entries)[-1]  # after a retry, the run is its latest segment
    replay_entries(run_id, latest, send(None), send, lambda: bool(results))
    if not results and recorded.status is not None:
        raise record_cut_short(journal, run_id)
    if not results:
        raise JournalError(f"run {run_id!r} has not finished: resume it with a driver (flowkernel resume)")
    return results[0]


def record_cut_short(journal: Journal, run_id: str) -> CorruptJournalError:
    """The error for a finished run whose entries end before its replay does (its last entries lost)."""
    where = getattr(journal, "path", None) or type(journal).__name__
    return CorruptJournalError(
        f"{where}: run {run_id!r} has a result, but its record ends before the run does: entries are missing"
    )


def _track(commands: list[Command], in_flight: dict[str, Invoke | StartTimer], cancelled: set[str]) -> None:
    for command in commands:
        kind = type(command)
        if kind is Invoke or kind is StartTimer:
            in_flight[command.call_id] = command  # type: ignore[assignment]
        elif kind is Cancel:
            cancelled.add(command.call_id)
